package model

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const tinyHead = "[convolutional]\nfilters=12\nsize=1\nactivation=linear\n[yolo]\nmask=0,1\nanchors=4,4, 8,8\nclasses=1\nnum=2\n"

// TestCfgErrorsName: every error names the file, the line and the key or
// section, as darknet's own parser never does.
func TestCfgErrorsName(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"unknown section", "[net]\n[convolutional]\nfilters=12\nsize=1\nactivation=linear\n[reorg3d]\nstride=2\n" + tinyHead,
			"x.cfg:6: [reorg3d] #1: unsupported layer type [reorg3d] (supported: convolutional, maxpool, avgpool, route, shortcut, scale_channels, upsample, dropout, yolo)"},
		{"bad integer", "[net]\n[convolutional]\nfilters=12\nsize=three\n", `x.cfg:4: [convolutional] #0: size="three" is not an integer`},
		{"bad number", "[net]\n[convolutional]\nfilters=6\nsize=1\nactivation=linear\n[yolo]\nmask=0\nanchors=4,4\nclasses=1\nnum=1\nignore_thresh=high\n",
			`x.cfg:11: [yolo] #1: ignore_thresh="high" is not a number`},
		{"route to a missing layer", "[net]\n[convolutional]\nfilters=12\nsize=1\n[route]\nlayers=-1, 4\n" + tinyHead,
			"x.cfg:6: [route] #1: layers: 4 refers to layer 4, which is not an earlier layer (this is layer 1)"},
		{"route before the start", "[net]\n[route]\nlayers=-1\n" + tinyHead, "x.cfg:3: [route] #0: layers: -1 refers to layer -1"},
		{"shortcut channels", "[net]\n[convolutional]\nfilters=8\nsize=1\n[convolutional]\nfilters=4\nsize=1\n[shortcut]\nfrom=-2\n",
			"x.cfg:9: [shortcut] #2: from=-2: layer 0 has 8 channels but the previous layer 4"},
		{"shortcut weights", "[net]\n[convolutional]\nfilters=8\nsize=1\n[shortcut]\nfrom=-1\nweights_type=per_feature\n",
			`x.cfg:7: [shortcut] #1: unsupported key "weights_type"`},
		{"unsupported activation", "[net]\n[convolutional]\nfilters=8\nsize=1\nactivation=hardswish\n",
			"x.cfg:5: [convolutional] #0: activation=hardswish is not supported (supported: linear, leaky, relu, logistic, mish, swish)"},
		{"route groups", "[net]\n[convolutional]\nfilters=6\nsize=1\n[route]\nlayers=-1\ngroups=4\ngroup_id=1\n",
			"x.cfg:7: [route] #1: groups=4 does not divide the 6 channels of layer 0"},
		{"route group_id", "[net]\n[convolutional]\nfilters=6\nsize=1\n[route]\nlayers=-1\ngroups=2\ngroup_id=2\n",
			"x.cfg:5: [route] #1: groups=2 group_id=2: need groups >= 1 and 0 <= group_id < groups"},
		{"maxpool key", "[net]\n[maxpool]\nsize=2\nstride_x=2\n", `x.cfg:4: [maxpool] #0: unsupported key "stride_x"`},
		{"maxpool size", "[net]\n[maxpool]\nsize=0\nstride=1\n", "x.cfg:2: [maxpool] #0: size=0 stride=1 padding=-1"},
		{"dropout probability", "[net]\n[convolutional]\nfilters=8\nsize=1\n[dropout]\nprobability=1\n", "x.cfg:6: [dropout] #1: probability=1 must be in [0, 1)"},
		{"dropblock", "[net]\n[convolutional]\nfilters=8\nsize=1\n[dropout]\nprobability=0.1\ndropblock=1\n", `x.cfg:7: [dropout] #1: unsupported key "dropblock"`},
		{"upsample stride", "[net]\n[upsample]\nstride=-2\n", "x.cfg:3: [upsample] #0: stride=-2 must be between 1 and 64"},
		{"scale_channels", "[net]\n[convolutional]\nfilters=8\nsize=1\n[avgpool]\n[convolutional]\nfilters=4\nsize=1\n[scale_channels]\nfrom=-3\n",
			"x.cfg:10: [scale_channels] #3: from=-3: layer 0 has 8 channels but the previous layer (the scales) 4"},
		{"yolo new_coords", "[net]\n[convolutional]\nfilters=12\nsize=1\n[yolo]\nmask=0,1\nanchors=4,4, 8,8\nclasses=1\nnum=2\nnew_coords=1\n",
			`x.cfg:10: [yolo] #1: unsupported key "new_coords"`},
		{"yolo anchors", "[net]\n[convolutional]\nfilters=6\nsize=1\n[yolo]\nmask=0\nanchors=0,4\nclasses=1\nnum=1\n",
			"x.cfg:7: [yolo] #1: anchor 0 is 0x4: anchors must be positive"},
		{"yolo scale_x_y", "[net]\n[convolutional]\nfilters=6\nsize=1\n[yolo]\nmask=0\nanchors=4,4\nclasses=1\nnum=1\nscale_x_y=0.5\n",
			"x.cfg:10: [yolo] #1: scale_x_y=0.5 must be between 1 and 4"},
		{"yolo filters", "[net]\n[convolutional]\nfilters=7\nsize=1\n[yolo]\nmask=0\nanchors=4,4\nclasses=1\nnum=1\n",
			"x.cfg:2: [convolutional] #0: filters=7 but the [yolo] layer at line 5 needs 6 for 1 classes"},
		{"huge conv", "[net]\n[convolutional]\nfilters=65536\nsize=64\n", "x.cfg:2: [convolutional] #0: 65536 filters of 3x64x64: more than 16777216 weights in one layer"},
		{"net key", "[net]\nwidth=32\nheight=32\nmystery=1\n" + tinyHead, `x.cfg:4: [net]: unsupported key "mystery"`},
		{"repeated key", "[net]\n[convolutional]\nsize=1\nsize=3\n", `x.cfg:4: key "size" repeated (first at line 3)`},
		{"header", "[net]\n[convolutional\n", `x.cfg:2: malformed section header "[convolutional"`},
		{"no detector", "[net]\n[convolutional]\nfilters=8\nsize=1\n", "x.cfg: no [yolo] layer: not a detector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCfg("x.cfg", []byte(tc.cfg))
			if err == nil {
				_, err = NewNetwork(c, 0)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestCfgTextUnchanged: a cfg read and written back unchanged is identical
// to its file, comments and blank lines included.
func TestCfgTextUnchanged(t *testing.T) {
	for _, f := range []string{"../configs/models/yolov3.cfg", "../configs/models/yolov3-tiny.cfg", "../configs/models/demo-tiny.cfg"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCfg(f, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewNetwork(c, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.Text(), b) {
			t.Errorf("%s: Text() differs from the file", f)
		}
	}
}

// TestCfgTextChanged: keys changed by Set are rewritten on their own lines
// (CRLF kept), keys added go after their section's last key, the rest is
// untouched, and the text builds the same network.
func TestCfgTextChanged(t *testing.T) {
	src := "# a comment\r\n[net]\r\nwidth=64\r\n\r\n[convolutional]\r\nfilters=255\r\nsize=1\r\nactivation=linear\r\n" +
		"; another\r\n[yolo]\r\nmask = 0,1,2\r\nanchors = 4,4, 8,8, 16,16\r\nclasses=80\r\nnum=3\r\n"
	c, err := ParseCfg("x.cfg", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	net, err := NewNetwork(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	c.Net.Set("height", "64")
	want := "# a comment\r\n[net]\r\nwidth=64\r\nheight=64\n\r\n[convolutional]\r\nfilters=24\r\nsize=1\r\nactivation=linear\r\n" +
		"; another\r\n[yolo]\r\nmask = 0,1,2\r\nanchors = 4,4, 8,8, 16,16\r\nclasses=3\r\nnum=3\r\n"
	if got := string(c.Text()); got != want {
		t.Fatalf("Text:\n%q\nwant\n%q", got, want)
	}
	c2, err := ParseCfg("y.cfg", c.Text())
	if err != nil {
		t.Fatal(err)
	}
	net2, err := NewNetwork(c2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if net2.Classes != 3 || net2.floatCount() != net.floatCount() || net2.Height != 64 {
		t.Fatalf("re-read: %d classes, %d floats, height %d", net2.Classes, net2.floatCount(), net2.Height)
	}
	// Clone forgets the changes.
	if cl := c.Clone(); !bytes.Equal(cl.Text(), []byte(src)) {
		t.Fatal("Clone kept changes made by Set")
	}
}

// TestMaxPoolDefaults: darknet's parse_maxpool defaults, stride 1, size =
// stride, padding = size-1.
func TestMaxPoolDefaults(t *testing.T) {
	n := mustParse(t, "[net]\n[maxpool]\nstride=2\n[maxpool]\n[maxpool]\nsize=3\n"+tinyHead)
	for i, want := range [][3]int{{2, 2, 1}, {1, 1, 0}, {3, 1, 2}} {
		l := n.Layers[i].(*MaxPoolLayer)
		if got := [3]int{l.Size, l.Stride, l.Padding}; got != want {
			t.Errorf("layer %d: size, stride, padding %v, want %v", i, got, want)
		}
	}
}

func mustParse(t *testing.T, text string) *Network {
	t.Helper()
	c, err := ParseCfg("t.cfg", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNetwork(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
