package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// smallCfg is a small detector with BN convs, a depthwise conv and two heads
// for `classes` classes.
func smallCfg(classes int) string {
	f := strconv.Itoa(3 * (5 + classes))
	return "[net]\nwidth=64\nheight=64\n" +
		"[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n" +
		"[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\ngroups=8\nstride=2\npad=1\nactivation=leaky\n" +
		"[convolutional]\nfilters=" + f + "\nsize=1\nactivation=linear\n" +
		"[yolo]\nmask=3,4,5\nanchors=4,4, 8,8, 12,12, 16,16, 24,24, 32,32\nclasses=" + strconv.Itoa(classes) + "\nnum=6\n" +
		"[route]\nlayers=-3\n" +
		"[convolutional]\nbatch_normalize=1\nfilters=8\nsize=1\nactivation=leaky\n" +
		"[convolutional]\nfilters=" + f + "\nsize=1\nactivation=linear\n" +
		"[yolo]\nmask=0,1,2\nanchors=4,4, 8,8, 12,12, 16,16, 24,24, 32,32\nclasses=" + strconv.Itoa(classes) + "\nnum=6\n"
}

func weightsFile(t *testing.T, n *Network, h WeightsHeader) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := n.writeWeights(&b, h); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestWeightsErrors: a truncated file, a file too long, a header that is not
// darknet's, a transposed one: each refused with the counts or the reason.
func TestWeightsErrors(t *testing.T) {
	n := mustParse(t, smallCfg(2))
	n.Init(1)
	good := weightsFile(t, n, DefaultHeader)
	want := n.floatCount()
	hdr := func(major, minor, rev int32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[0:], uint32(major))
		binary.LittleEndian.PutUint32(b[4:], uint32(minor))
		binary.LittleEndian.PutUint32(b[8:], uint32(rev))
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		msg  string
	}{
		{"truncated", good[:len(good)-4], "has " + strconv.Itoa(want-1) + " floats after its 20-byte header, but t.cfg needs " + strconv.Itoa(want)},
		{"torn float", good[:len(good)-2], "has " + strconv.Itoa(want-1) + " floats after its 20-byte header and 2 more bytes"},
		{"too long", append(bytes.Clone(good), 0, 0, 0, 0), "has " + strconv.Itoa(want+1) + " floats"},
		{"short header", good[:10], "truncated header"},
		{"no seen", good[:14], "truncated header"},
		{"negative version", hdr(-1, 2, 5), "header version -1.2.5: not a darknet .weights file"},
		{"transposed", hdr(0, 1001, 0), "marks transposed weights"},
		{"old header", hdr(0, 1, 0), "has " + strconv.Itoa(want+1) + " floats after its 16-byte header"},
		{"empty", nil, "truncated header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.ReadWeights(bytes.NewReader(tc.b), int64(len(tc.b)), "w.weights")
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "w.weights: ") || !errors.Is(err, ErrWeights) {
				t.Errorf("error %v\nwant it to start with the file and contain %q", err, tc.msg)
			}
		})
	}
}

// TestWeightsHeaderRoundTrip: files with darknet's old header (version 0.1,
// 32-bit seen) and the current one (0.2.5, 64-bit) load and are written back
// byte for byte, as `dettrain export` does.
func TestWeightsHeaderRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, h := range []WeightsHeader{{0, 1, 0, 123456}, {0, 2, 5, 1 << 40}, {1, 0, 0, 7}} {
		a := mustParse(t, smallCfg(2))
		a.Init(3)
		src := weightsFile(t, a, h)
		p := filepath.Join(dir, "a.weights")
		if err := os.WriteFile(p, src, 0o644); err != nil {
			t.Fatal(err)
		}
		b := mustParse(t, smallCfg(2))
		got, err := b.LoadWeights(p)
		if err != nil {
			t.Fatal(err)
		}
		if got != h {
			t.Fatalf("header %+v, want %+v", got, h)
		}
		q := filepath.Join(dir, "b.weights")
		if err := b.WriteWeightsHeader(q, got); err != nil {
			t.Fatal(err)
		}
		if out, _ := os.ReadFile(q); !bytes.Equal(out, src) {
			t.Fatalf("version %d.%d: re-exported weights differ", h.Major, h.Minor)
		}
		if wantSize := 16; h.Major*10+h.Minor < 2 && len(src)-4*b.floatCount() != wantSize {
			t.Fatalf("version %d.%d: header of %d bytes, want %d", h.Major, h.Minor, len(src)-4*b.floatCount(), wantSize)
		}
	}
}

// TestLoadPartial: fine-tuning imports. The 2-class pretrained weights go
// into a 3-class network: every conv but the two heads is loaded, the heads
// keep their initial values, one log line each. A prefix file (darknet's
// partial) loads its layers; layers > 0 stops early; other sizes are refused.
func TestLoadPartial(t *testing.T) {
	dir := t.TempDir()
	src := mustParse(t, smallCfg(2))
	src.Init(5)
	for _, l := range src.Layers {
		if c, ok := l.(*ConvLayer); ok && c.BatchNorm {
			c.BN.Mean[0], c.BN.Var[0] = 0.5, 2
		}
	}
	full := filepath.Join(dir, "src.weights")
	if err := src.WriteWeights(full, 99); err != nil {
		t.Fatal(err)
	}
	same := func(a, b *ConvLayer) bool {
		pa, pb := convParts(a), convParts(b)
		for i := range pa {
			if !equalF32(pa[i], pb[i]) {
				return false
			}
		}
		return true
	}
	c3, err := ParseCfg("t3.cfg", []byte(smallCfg(2)))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := NewNetwork(c3, 3) // same cfg, fitted to 3 classes
	if err != nil {
		t.Fatal(err)
	}
	dst.Init(1)
	var log strings.Builder
	res, err := dst.LoadPartial(full, 0, &log)
	if err != nil {
		t.Fatal(err)
	}
	if res.Header.Seen != 99 || !slices.Equal(res.Loaded, []int{0, 1, 5}) || !slices.Equal(res.Skipped, []int{2, 6}) {
		t.Fatalf("result %+v", res)
	}
	for i, l := range dst.Layers {
		c, ok := l.(*ConvLayer)
		if !ok {
			continue
		}
		head := i == 2 || i == 6
		if got := same(c, src.Layers[i].(*ConvLayer)); got == head {
			t.Errorf("layer %d: loaded %v, want %v", i, got, !head)
		}
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "layer 2 [convolutional] (t3.cfg:") ||
		!strings.Contains(lines[0], "has 24 filters of 8x1x1 here but 21 filters of 8x1x1 in the weights: initialised") ||
		!strings.Contains(lines[2], "loaded 3 of 5 convolutions (the file is this cfg with 2 classes)") {
		t.Fatalf("log:\n%s", log.String())
	}

	// The first two convs only, as darknet's partial writes them.
	var pre bytes.Buffer
	binary.Write(&pre, binary.LittleEndian, [3]int32{0, 2, 5})
	binary.Write(&pre, binary.LittleEndian, uint64(0))
	for _, i := range []int{0, 1} {
		for _, p := range convParts(src.Layers[i].(*ConvLayer)) {
			binary.Write(&pre, binary.LittleEndian, p)
		}
	}
	prefix := filepath.Join(dir, "prefix.weights")
	if err := os.WriteFile(prefix, pre.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dst.Init(1)
	log.Reset()
	if _, err := dst.LoadPartial(prefix, 0, &log); err != nil {
		t.Fatal(err)
	}
	if !same(dst.Layers[1].(*ConvLayer), src.Layers[1].(*ConvLayer)) || same(dst.Layers[5].(*ConvLayer), src.Layers[5].(*ConvLayer)) ||
		!strings.Contains(log.String(), "layer 5 [convolutional] (t3.cfg:") || !strings.Contains(log.String(), "is not in the weights") ||
		!strings.Contains(log.String(), "loaded 2 of 5 convolutions (the file is the first 2 layers of this cfg)") {
		t.Fatalf("prefix: log\n%s", log.String())
	}

	// layers=1: only layer 0.
	dst.Init(1)
	log.Reset()
	if _, err := dst.LoadPartial(full, 1, &log); err != nil {
		t.Fatal(err)
	}
	if !same(dst.Layers[0].(*ConvLayer), src.Layers[0].(*ConvLayer)) || same(dst.Layers[1].(*ConvLayer), src.Layers[1].(*ConvLayer)) ||
		!strings.Contains(log.String(), "is after the first 1 layers: initialised") {
		t.Fatalf("layers=1: log\n%s", log.String())
	}

	// A file of another model is refused with the counts that would fit.
	bad := filepath.Join(dir, "bad.weights")
	if err := os.WriteFile(bad, pre.Bytes()[:len(pre.Bytes())-8], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = dst.LoadPartial(bad, 0, &log)
	if err == nil || !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "needs "+strconv.Itoa(dst.floatCount())+" (3 classes)") {
		t.Fatalf("bad file: %v", err)
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestLoadPartialPretrained: the 80-class Yolo-Fastest weights into the
// 3-class BCCD model: all but the two head convs load.
func TestLoadPartialPretrained(t *testing.T) {
	dir := filepath.Join(sharedModels, "yolo-fastest-1.1-coco")
	needShared(t, filepath.Join(dir, "yolo-fastest-1.1.weights"))
	n := mustNet(t, filepath.Join(dir, "yolo-fastest-1.1.cfg"), 3)
	n.Init(1)
	var log strings.Builder
	if _, err := n.LoadPartial(filepath.Join(dir, "yolo-fastest-1.1.weights"), 0, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "loaded 82 of 84 convolutions (the file is this cfg with 80 classes)") ||
		strings.Count(log.String(), "initialised") != 2 {
		t.Fatalf("log:\n%s", log.String())
	}
}

// TestHeadPriors: with 4 objects per image on a 16x16 grid the objectness
// bias is logit(4/256) = -4.143, the class biases log(0.6/(2-0.99)) = -0.521;
// only the listed head changes.
func TestHeadPriors(t *testing.T) {
	n := mustParse(t, smallCfg(2))
	n.Init(1)
	n.HeadPriors(4, Square(64), []int{6})
	b := n.Layers[6].(*ConvLayer).Bias.Float32s()
	for a := 0; a < 3; a++ {
		if got := float64(b[a*7+4]); math.Abs(got-math.Log(4.0/252)) > 1e-6 {
			t.Fatalf("objectness bias %v", got)
		}
		if got := float64(b[a*7+6]); math.Abs(got-math.Log(0.6/1.01)) > 1e-6 {
			t.Fatalf("class bias %v", got)
		}
		if b[a*7] != 0 {
			t.Fatalf("box bias changed")
		}
	}
	for _, v := range n.Layers[2].(*ConvLayer).Bias.Float32s() {
		if v != 0 {
			t.Fatal("head 0 changed")
		}
	}
}
