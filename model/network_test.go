package model

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustNet(t *testing.T, path string, classes int) *Network {
	t.Helper()
	c, err := ReadCfg(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNetwork(c, classes)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestShippedCfgs builds the shipped models and checks their size against
// darknet's published 80-class weight files: yolov3-tiny.weights is
// 35,434,956 bytes and yolov3.weights 248,007,048, i.e. 20-byte headers and
// 8,858,734 and 62,001,757 floats.
func TestShippedCfgs(t *testing.T) {
	for _, tc := range []struct {
		file   string
		floats int
	}{{"yolov3-tiny.cfg", 8858734}, {"yolov3.cfg", 62001757}} {
		n := mustNet(t, filepath.Join("..", "configs", "models", tc.file), 0)
		if got := n.floatCount(); got != tc.floats {
			t.Errorf("%s: %d floats, want %d", tc.file, got, tc.floats)
		}
	}
	n := mustNet(t, "../configs/models/yolov3-tiny.cfg", 3)
	if len(n.Heads) != 2 || n.Classes != 3 {
		t.Fatalf("heads %d classes %d", len(n.Heads), n.Classes)
	}
	// The conv before each head now has 3*(5+3) = 24 filters.
	for i, l := range n.Layers {
		if _, ok := l.(*YOLOLayer); ok {
			if f := n.Layers[i-1].(*ConvLayer).Filters; f != 24 {
				t.Fatalf("head conv filters %d, want 24", f)
			}
		}
	}
}

func TestCfgErrors(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{"[net]\nwidth=32\n[convolutional]\nfilters=8\nsize=3\nbogus=1\n", "x.cfg:6: [convolutional] #0: unsupported key \"bogus\""},
		{"[net]\n[convolutional]\nfilters=eight\n", "x.cfg:3: [convolutional] #0: filters=\"eight\" is not an integer"},
		{"[net]\n[conv]\n", "x.cfg:2: [conv] #0: unsupported layer type [conv]"},
		{"[convolutional]\nfilters=3\n", "x.cfg:1: no [net] section"},
		{"[net]\nwidth\n", "x.cfg:2: expected key=value"},
		{"[net]\n[convolutional]\nfilters=8\nsize=3\n[route]\nlayers=-5\n", "x.cfg:6: [route] #1: layers: -5 refers to layer -4, which is not an earlier layer"},
		{"[net]\n[convolutional]\nfilters=6\nsize=1\nactivation=mish2\n[yolo]\nclasses=1\nnum=1\nanchors=1,1\nmask=0\n", "x.cfg:5: [convolutional] #0: activation=mish2 is not supported"},
	} {
		c, err := ParseCfg("x.cfg", []byte(tc.cfg))
		if err == nil {
			_, err = NewNetwork(c, 0)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cfg %q: error %v, want it to contain %q", tc.cfg, err, tc.want)
		}
	}
}

// TestWeightsRoundTrip: write, read back into a fresh network, write again:
// the two files are byte-identical; a truncated file is refused with counts.
func TestWeightsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a := mustNet(t, "../configs/models/demo-tiny.cfg", 4)
	a.Init(1)
	p1 := filepath.Join(dir, "a.weights")
	if err := a.WriteWeights(p1, 1234); err != nil {
		t.Fatal(err)
	}
	b := mustNet(t, "../configs/models/demo-tiny.cfg", 4)
	h, err := b.LoadWeights(p1)
	if err != nil {
		t.Fatal(err)
	}
	if h.Seen != 1234 || h.Major != 0 || h.Minor != 2 {
		t.Fatalf("header %+v", h)
	}
	p2 := filepath.Join(dir, "b.weights")
	if err := b.WriteWeights(p2, 1234); err != nil {
		t.Fatal(err)
	}
	x, _ := os.ReadFile(p1)
	y, _ := os.ReadFile(p2)
	if !bytes.Equal(x, y) {
		t.Fatal("re-exported weights differ")
	}
	if err := os.WriteFile(p2, x[:len(x)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = b.LoadWeights(p2)
	if err == nil || !strings.Contains(err.Error(), "b.weights: has") || !strings.Contains(err.Error(), "needs") {
		t.Fatalf("truncated file: %v", err)
	}
}
