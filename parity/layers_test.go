package parity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/model"
)

const netHead = "[net]\nwidth=64\nheight=64\nchannels=3\n"

func conv(filters, size, stride int, bn bool, act string, extra ...string) string {
	s := "[convolutional]\nfilters=" + itoa(filters) + "\nsize=" + itoa(size) + "\nstride=" + itoa(stride) + "\npad=1\nactivation=" + act + "\n"
	if bn {
		s += "batch_normalize=1\n"
	}
	return s + strings.Join(extra, "\n") + "\n"
}

// yoloHead is a linear 1x1 conv and a [yolo] layer with 2 classes and the
// anchors of mask 0,1,2 of yolov3-tiny's list.
func yoloHead(mask string, extra ...string) string {
	return conv(21, 1, 1, false, "linear") + "[yolo]\nmask=" + mask +
		"\nanchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319\nclasses=2\nnum=6\n" + strings.Join(extra, "\n") + "\n"
}

// TestLayersMatchOpenCV: every layer type and activation dettrain reads,
// with random weights and BN statistics, run by dettrain and by OpenCV 4.6
// (gocv) on the same random input, compared layer by layer.
func TestLayersMatchOpenCV(t *testing.T) {
	cases := []struct {
		name, cfg string
		size      model.Size
		n         int
	}{
		{"activations", netHead +
			conv(8, 3, 2, true, "leaky") + conv(8, 3, 1, true, "relu") + conv(8, 3, 1, true, "logistic") +
			conv(8, 3, 1, true, "mish") + conv(8, 3, 1, true, "swish") + conv(8, 1, 1, true, "linear") +
			conv(8, 3, 1, false, "leaky") + conv(8, 3, 1, false, "mish") + conv(8, 3, 1, false, "swish") +
			conv(8, 1, 1, false, "relu") + conv(8, 1, 1, false, "logistic") + yoloHead("0,1,2"), model.Square(64), 2},
		{"depthwise", netHead +
			conv(16, 3, 2, true, "leaky") + conv(16, 3, 1, true, "leaky", "groups=16") +
			conv(16, 3, 2, true, "leaky", "groups=16") + conv(16, 5, 1, true, "relu", "groups=16") +
			conv(32, 1, 1, true, "linear") + conv(32, 3, 1, true, "leaky", "groups=8") +
			conv(32, 5, 2, true, "leaky", "groups=32") + yoloHead("3,4,5"), model.Square(96), 2},
		{"maxpools", netHead + conv(8, 3, 1, true, "leaky") +
			"[maxpool]\nsize=2\nstride=2\n" + "[maxpool]\nsize=2\nstride=1\n" + "[maxpool]\nsize=3\nstride=1\n" +
			"[maxpool]\nsize=4\nstride=2\n" + "[maxpool]\nsize=3\nstride=2\n" + "[maxpool]\nsize=2\nstride=2\npadding=0\n" +
			"[maxpool]\nsize=8\nstride=2\n" + yoloHead("0,1,2"), model.Square(96), 1},
		{"spp and 4-input route", netHead + conv(16, 3, 2, true, "leaky") + conv(8, 1, 1, true, "leaky") +
			"[maxpool]\nsize=3\nstride=1\n[route]\nlayers=-2\n[maxpool]\nsize=5\nstride=1\n[route]\nlayers=-4\n" +
			"[maxpool]\nsize=9\nstride=1\n[route]\nlayers=-1,-3,-5,-6\n" + conv(16, 1, 1, true, "leaky") + yoloHead("0,1,2"), model.Square(64), 2},
		{"route groups and shortcut activations", netHead + conv(16, 3, 2, true, "leaky") +
			"[route]\nlayers=-1\ngroups=2\ngroup_id=1\n" + conv(8, 3, 1, true, "leaky") + conv(8, 3, 1, true, "leaky") +
			"[route]\nlayers=-1,-2\n" + conv(16, 1, 1, true, "leaky") + "[route]\nlayers=-6,-1\n" +
			conv(32, 1, 1, true, "linear") + conv(32, 1, 1, true, "linear") + "[shortcut]\nfrom=-2\nactivation=leaky\n" + conv(32, 1, 1, true, "mish") +
			"[shortcut]\nfrom=-2\nactivation=linear\n" + "[shortcut]\nfrom=-3\nactivation=swish\n" + yoloHead("0,1,2"), model.Square(64), 2},
		{"upsample and dropout", netHead + conv(8, 3, 2, true, "leaky") + "[dropout]\nprobability=0.3\n" +
			conv(16, 3, 2, true, "leaky") + "[upsample]\nstride=2\n" + "[route]\nlayers=-1,-4\n" +
			"[dropout]\nprobability=0.1\n" + "[upsample]\nstride=3\n" + yoloHead("0,1,2"), model.Square(64), 2},
		{"avgpool and scale_channels", netHead + conv(16, 3, 2, true, "swish") + "[avgpool]\n" +
			conv(4, 1, 1, false, "swish") + conv(16, 1, 1, false, "logistic") +
			"[scale_channels]\nfrom=-4\nactivation=leaky\n" + conv(16, 3, 1, true, "swish") + "[avgpool]\n" +
			conv(16, 1, 1, false, "logistic") + "[scale_channels]\nfrom=-3\n" + conv(16, 1, 1, true, "linear") +
			yoloHead("0,1,2"), model.Square(64), 1},
		{"scale_x_y heads", netHead + conv(16, 3, 2, true, "leaky") + conv(16, 3, 2, true, "leaky") +
			yoloHead("3,4,5", "scale_x_y=1.2", "ignore_thresh=0.5", "iou_loss=ciou", "nms_kind=greedynms") +
			"[route]\nlayers=-3\n" + conv(16, 3, 1, true, "leaky") + yoloHead("0,1,2", "scale_x_y=1.05"), model.Square(64), 2},
		// Non-square inputs: darknet's maxpool padding and the heads' strides
		// on each axis, decoded against each side.
		{"non-square maxpools", netHead + conv(8, 3, 1, true, "leaky") +
			"[maxpool]\nsize=2\nstride=2\n" + "[maxpool]\nsize=3\nstride=1\n" + "[maxpool]\nsize=3\nstride=2\n" +
			"[maxpool]\nsize=2\nstride=2\npadding=0\n" + yoloHead("0,1,2"), model.Size{W: 96, H: 64}, 2},
		{"non-square heads and upsample", netHead + conv(16, 3, 2, true, "leaky") + conv(16, 3, 2, true, "leaky") +
			yoloHead("3,4,5", "scale_x_y=1.2") + "[route]\nlayers=-3\n" + "[upsample]\nstride=2\n" +
			conv(16, 3, 1, true, "mish") + yoloHead("0,1,2"), model.Size{W: 64, H: 128}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			net := parse(t, strings.ReplaceAll(tc.name, " ", "-")+".cfg", tc.cfg)
			randomize(net, 3)
			e := compareWithOpenCV(t, net, tc.n, tc.size, 5)
			t.Logf("worst relative error %.2g over %d layers", e, len(net.Layers))
		})
	}
}

// TestRandomModelsMatchOpenCV: whole models with random weights, written as
// .weights by dettrain and read by OpenCV: the shipped YOLOv3-tiny (at 160),
// the demo model, and Yolo-Fastest's cfg (depthwise convs, dropout, SPP
// maxpools and its 4-input route; at 160, random weights).
func TestRandomModelsMatchOpenCV(t *testing.T) {
	models := []struct {
		path    string
		classes int
		size    model.Size
	}{
		{"../configs/models/yolov3-tiny.cfg", 3, model.Square(160)},
		{"../configs/models/demo-tiny.cfg", 4, model.Square(128)},
		{"../../shared/models/yolo-fastest-1.1-coco/yolo-fastest-1.1.cfg", 3, model.Square(160)},
		{"../../shared/models/yoloface-50k/yoloface-50k.cfg", 0, model.Square(64)},
		// Non-square inputs, as face and video models use them (width=352
		// height=288 and the like): the same tolerance as the square ones.
		{"../configs/models/yolov3-tiny.cfg", 3, model.Size{W: 224, H: 160}},
		{"../../shared/models/yolo-fastest-1.1-coco/yolo-fastest-1.1.cfg", 3, model.Size{W: 160, H: 224}},
	}
	for _, m := range models {
		t.Run(filepath.Base(m.path)+"@"+m.size.String(), func(t *testing.T) {
			if _, err := os.Stat(m.path); err != nil {
				t.Skipf("%s is absent (../shared is not here?): %v", m.path, err)
			}
			c, err := model.ReadCfg(m.path)
			if err != nil {
				t.Fatal(err)
			}
			net, err := model.NewNetwork(c, m.classes)
			if err != nil {
				t.Fatal(err)
			}
			randomize(net, 7)
			e := compareWithOpenCV(t, net, 2, m.size, 9)
			t.Logf("worst relative error %.2g over %d layers", e, len(net.Layers))
		})
	}
}
