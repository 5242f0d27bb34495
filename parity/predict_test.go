package parity

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dettrain/dettrain/box"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/model"
)

const fastest = "../../shared/models/yolo-fastest-1.1-coco"

// buildCLI builds cmd/dettrain into a temporary folder and returns its path.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dettrain")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/dettrain").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ../cmd/dettrain: %v\n%s", err, out)
	}
	return bin
}

type refDetection struct {
	ClassID int        `json:"class_id"`
	Class   string     `json:"class"`
	Score   float64    `json:"score"`
	XYWH    [4]float64 `json:"xywh"`
}

type reference struct {
	Images []struct {
		Image      string         `json:"image"`
		Size       [2]int         `json:"image_size"`
		Detections []refDetection `json:"detections"`
	} `json:"images"`
}

type prediction struct {
	FileName   string     `json:"file_name"`
	CategoryID int        `json:"category_id"`
	BBox       [4]float64 `json:"bbox"`
	Score      float64    `json:"score"`
}

func xywh(b [4]float64) box.Box { return box.Box{X1: b[0], Y1: b[1], X2: b[0] + b[2], Y2: b[1] + b[3]} }

// loadReference reads OpenCV's detections and lists the reference images
// present in ../shared/models/test-images.
func loadReference(t *testing.T) (reference, string) {
	t.Helper()
	refPath := filepath.Join(fastest, "reference", "opencv_reference.json")
	if _, err := os.Stat(refPath); err != nil {
		t.Skipf("%s is absent (../shared is not here?): %v", refPath, err)
	}
	var ref reference
	b, err := os.ReadFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	imgDir := filepath.Join(fastest, "..", "test-images")
	keep := ref.Images[:0]
	for _, im := range ref.Images {
		if _, err := os.Stat(filepath.Join(imgDir, im.Image)); err == nil {
			keep = append(keep, im)
		}
	}
	ref.Images = keep
	if len(ref.Images) < 5 {
		t.Fatalf("only %d of the reference's images are in %s", len(ref.Images), imgDir)
	}
	return ref, imgDir
}

// compareDetections requires every reference box to be found with the same
// class, IoU >= 0.95 and a score within 0.01, and every box found to be a
// reference box. The reference's boxes are clipped to the image, as dettrain
// clips its own.
func compareDetections(t *testing.T, ref reference, byImage map[string][]prediction) {
	t.Helper()
	matched, total := 0, 0
	for _, im := range ref.Images {
		mine := byImage[im.Image]
		used := make([]bool, len(mine))
		w, h := float64(im.Size[0]), float64(im.Size[1])
		for _, d := range im.Detections {
			total++
			rb := xywh(d.XYWH).Clip(w, h)
			found := false
			for k, p := range mine {
				if used[k] || p.CategoryID-1 != d.ClassID { // predictions.json: COCO category ids are class index + 1
					continue
				}
				if iou := box.IoU(rb, xywh(p.BBox)); iou >= 0.95 && math.Abs(p.Score-d.Score) <= 0.01 {
					used[k], found = true, true
					matched++
					break
				}
			}
			if !found {
				t.Errorf("%s: OpenCV's %s %.3f at %v: dettrain has no box of that class with IoU >= 0.95 and score within 0.01 (dettrain: %+v)",
					im.Image, d.Class, d.Score, d.XYWH, mine)
			}
		}
		for k, p := range mine {
			if !used[k] {
				t.Errorf("%s: dettrain's class %d %.3f at %v is not among OpenCV's boxes", im.Image, p.CategoryID, p.Score, p.BBox)
			}
		}
	}
	t.Logf("%d of OpenCV's %d boxes on %d images found, nothing else", matched, total, len(ref.Images))
}

// TestPretrainedDetectionsMatchOpenCV runs the pretrained Yolo-Fastest 1.1
// (COCO) at 320 the way `dettrain predict` does (image.OpenCV's resize, the
// inference graph, boxes scaled to the image and clipped, per-class NMS 0.45)
// but with DecodeBest, one class per box, as OpenCV's reference does, at conf
// 0.25, and compares with the boxes OpenCV 4.6 found
// (reference/opencv_reference.json: cv2.dnn, then cv2.dnn.NMSBoxes per class).
// dettrain keeps its default (darknet's) BN epsilon: outputs differ by ~1e-3.
func TestPretrainedDetectionsMatchOpenCV(t *testing.T) {
	ref, imgDir := loadReference(t)
	c, err := model.ReadCfg(filepath.Join(fastest, "yolo-fastest-1.1.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.LoadWeights(filepath.Join(fastest, "yolo-fastest-1.1.weights")); err != nil {
		t.Fatal(err)
	}
	size := net.InputSize() // [net] width=320 height=320
	g, err := net.NewGraph(1, size, false)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	byImage := map[string][]prediction{}
	for _, im := range ref.Images {
		w, h, err := image.OpenCV{}.Load(filepath.Join(imgDir, im.Image), size.W, size.H, g.Input())
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Run(); err != nil {
			t.Fatal(err)
		}
		var dets []eval.Detection
		for _, d := range net.DecodeBest(g.Heads(), 0, size, 0.25) {
			bb := d.Box.Scale(float64(w)/float64(size.W), float64(h)/float64(size.H)).Clip(float64(w), float64(h))
			dets = append(dets, eval.Detection{Class: d.Class, Score: d.Score, Box: bb})
		}
		for _, d := range eval.NMS(dets, 0.45, 300) {
			byImage[im.Image] = append(byImage[im.Image], prediction{FileName: im.Image, CategoryID: d.Class + 1, BBox: d.Box.XYWH(), Score: d.Score})
		}
	}
	compareDetections(t, ref, byImage)
}

// TestPredictMatchesOpenCV is the same comparison through the `dettrain
// predict` command itself, at its default input size: the cfg's [net]
// 320x320 (predict used 416 whatever the cfg said, and found other boxes). predict reports one box per class above the
// threshold (model.Decode, darknet's way); OpenCV's reference keeps each box's
// best class. The test runs once predict offers the best-class decoding
// (model.DecodeBest) behind --best-class; until then it skips.
func TestPredictMatchesOpenCV(t *testing.T) {
	ref, imgDir := loadReference(t)
	bin := buildCLI(t)
	help, _ := exec.Command(bin, "predict", "--help").CombinedOutput()
	if !bytes.Contains(help, []byte("--best-class")) {
		t.Skip("dettrain predict has no --best-class flag yet (model.DecodeBest is not wired into infer/predict)")
	}
	out := t.TempDir()
	args := []string{"predict", "--model", filepath.Join(fastest, "yolo-fastest-1.1.cfg"),
		"--weights", filepath.Join(fastest, "yolo-fastest-1.1.weights"), "--names", filepath.Join(fastest, "coco.names"),
		"--conf", "0.25", "--nms", "0.45", "--best-class", "--out", out}
	for _, im := range ref.Images {
		args = append(args, filepath.Join(imgDir, im.Image))
	}
	if msg, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("dettrain predict: %v\n%s", err, msg)
	}
	var preds []prediction
	b, err := os.ReadFile(filepath.Join(out, "predictions.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &preds); err != nil {
		t.Fatal(err)
	}
	byImage := map[string][]prediction{}
	for _, p := range preds {
		byImage[p.FileName] = append(byImage[p.FileName], p)
	}
	compareDetections(t, ref, byImage)
}
