package parity

import (
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/dettrain/dettrain/model"
)

// OpenCV's darknet importer normalises with sqrt(var + 1e-6)
// (darknet_io.cpp setBatchNorm); dettrain's networks use it in these tests.
const opencvBNEps = 1e-6

// tol is the largest maxRelErr allowed between dettrain and OpenCV: float32
// sums in a different order over up to a few thousand terms per output.
const tol = 1e-4

// randomize gives every convolution random weights and batch-norm
// parameters and statistics: weights as Init draws them, gamma in
// [0.5, 1.5], beta and the running mean N(0, 0.2^2), the running variance
// in [0.5, 2], biases N(0, 0.2^2).
func randomize(net *model.Network, seed int64) {
	net.Init(seed)
	r := rand.New(rand.NewSource(seed))
	for _, l := range net.Layers {
		c, ok := l.(*model.ConvLayer)
		if !ok {
			continue
		}
		for i := range c.Bias.Float32s() {
			c.Bias.Float32s()[i] = float32(0.2 * r.NormFloat64())
		}
		if c.BatchNorm {
			for i := range c.Gamma.Float32s() {
				c.Gamma.Float32s()[i] = float32(0.5 + r.Float64())
				c.BN.Mean[i] = float32(0.2 * r.NormFloat64())
				c.BN.Var[i] = float32(0.5 + 1.5*r.Float64())
			}
		}
	}
}

func randomInput(n int, seed int64) []float32 {
	r := rand.New(rand.NewSource(seed))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.Float64())
	}
	return x
}

// maxRelErr is max_i |got_i - want_i| / max(1, |want_i|).
func maxRelErr(got, want []float32) (float64, int) {
	worst, at := 0.0, -1
	for i := range want {
		e := math.Abs(float64(got[i])-float64(want[i])) / math.Max(1, math.Abs(float64(want[i])))
		if e > worst || math.IsNaN(e) {
			worst, at = e, i
		}
	}
	return worst, at
}

// parse builds a network from cfg text (0 classes: the cfg's own).
func parse(t *testing.T, name, text string) *model.Network {
	t.Helper()
	c, err := model.ParseCfg(name, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	n, err := model.NewNetwork(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// export writes the network's cfg (with [net] width/height set to size) and
// weights into dir, as `dettrain export` does.
func export(t *testing.T, net *model.Network, dir string, size model.Size) (cfg, weights string) {
	t.Helper()
	net.Cfg.Net.Set("width", itoa(size.W))
	net.Cfg.Net.Set("height", itoa(size.H))
	cfg, weights = filepath.Join(dir, "model.cfg"), filepath.Join(dir, "model.weights")
	if err := os.WriteFile(cfg, net.Cfg.Text(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := net.WriteWeights(weights, 0); err != nil {
		t.Fatal(err)
	}
	return cfg, weights
}

func itoa(v int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + v%10)}, b...)
		if v /= 10; v == 0 {
			return string(b)
		}
	}
}

// compareWithOpenCV runs net (BN eps set to OpenCV's) and OpenCV on the same
// random input of n images of size.W x size.H and compares every layer's output
// that OpenCV exposes; [yolo] layers are compared through their decoded form
// (compareYOLO). It returns the worst error.
func compareWithOpenCV(t *testing.T, net *model.Network, n int, size model.Size, seed int64) float64 {
	t.Helper()
	net.SetBNEps(opencvBNEps)
	cfg, weights := export(t, net, t.TempDir(), size)
	ocv, err := LoadOpenCV(cfg, weights)
	if err != nil {
		t.Fatal(err)
	}
	defer ocv.Close()
	g, err := net.NewGraph(n, size, false)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	in := randomInput(n*net.Channels*size.W*size.H, seed)
	copy(g.Input(), in)
	if err := g.Run(); err != nil {
		t.Fatal(err)
	}
	var layers []int
	for i, l := range net.Layers {
		if ocv.BlobName(i) == "" {
			t.Logf("layer %d [%s]: OpenCV has no blob to compare (checked through the next layers)", i, l.Section().Type)
			continue
		}
		// OpenCV computes a [shortcut] in the memory of its first input, the
		// previous layer (through [dropout], an in-place identity there), and
		// fuses it into a convolution before it: that layer's own output
		// cannot be read; it is checked through the sum.
		next := i + 1
		for next < len(net.Layers) && net.Layers[next].Section().Type == "dropout" {
			next++
		}
		if next < len(net.Layers) && net.Layers[next].Section().Type == "shortcut" {
			continue
		}
		layers = append(layers, i)
	}
	outs, err := ocv.Forward(in, [4]int{n, net.Channels, size.H, size.W}, layers)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	heads := g.Heads()
	hi := 0
	for k, i := range layers {
		l := net.Layers[i]
		var e float64
		if y, ok := l.(*model.YOLOLayer); ok {
			for hi < len(net.Heads) && net.Heads[hi] != y.Head {
				hi++
			}
			e = compareYOLO(t, y.Head, heads[hi], n, size, outs[k], i)
		} else {
			got, shape := g.LayerOutput(i)
			if len(got) != len(outs[k]) {
				t.Fatalf("layer %d [%s]: dettrain has %d values %v, OpenCV (%s) %d", i, l.Section().Type, len(got), shape, ocv.BlobName(i), len(outs[k]))
			}
			var at int
			e, at = maxRelErr(got, outs[k])
			if e > tol {
				t.Errorf("layer %d [%s] (%s): max relative error %.3g > %g at %d: dettrain %v, OpenCV %v",
					i, l.Section().Type, ocv.BlobName(i), e, tol, at, got[at], outs[k][at])
			}
		}
		worst = math.Max(worst, e)
	}
	return worst
}

// compareYOLO checks OpenCV's region-layer output for one head against the
// head's raw output decoded as model.Decode does: rows (image, y, x, anchor),
// columns cx, cy, w, h relative to the input, objectness, then
// sigmoid(class)*objectness, zeroed by OpenCV when <= 0.2.
func compareYOLO(t *testing.T, h *model.Head, ho model.HeadOutput, n int, size model.Size, want []float32, layer int) float64 {
	t.Helper()
	na, nc := len(h.Mask), h.Classes
	per, plane := 5+nc, ho.H*ho.W
	if len(want) != n*plane*na*per {
		t.Fatalf("yolo layer %d: OpenCV gives %d values, want %d rows of %d", layer, len(want), n*plane*na, per)
	}
	s := h.ScaleXY
	if s == 0 {
		s = 1
	}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	worst := 0.0
	for b := 0; b < n; b++ {
		base := b * na * per * plane
		v := func(a, k, p int) float64 { return float64(ho.Data[base+(a*per+k)*plane+p]) }
		for p := 0; p < plane; p++ {
			i, j := p/ho.W, p%ho.W
			for a := 0; a < na; a++ {
				row := want[((b*plane+p)*na+a)*per:][:per]
				an := h.Anchors[h.Mask[a]]
				obj := sig(v(a, 4, p))
				got := []float64{
					(float64(j) + sig(v(a, 0, p))*s - (s-1)/2) / float64(ho.W),
					(float64(i) + sig(v(a, 1, p))*s - (s-1)/2) / float64(ho.H),
					an[0] * math.Exp(v(a, 2, p)) / float64(size.W),
					an[1] * math.Exp(v(a, 3, p)) / float64(size.H),
					obj,
				}
				for c := 0; c < nc; c++ {
					got = append(got, obj*sig(v(a, 5+c, p)))
				}
				for k, gv := range got {
					wv := float64(row[k])
					if k >= 5 && wv == 0 {
						if gv > 0.2+tol {
							t.Errorf("yolo layer %d row %d class %d: %v, OpenCV zeroed it (<= 0.2)", layer, p*na+a, k-5, gv)
						}
						continue
					}
					e := math.Abs(gv-wv) / math.Max(1, math.Abs(wv))
					if e > tol {
						t.Errorf("yolo layer %d image %d row %d column %d: dettrain %v, OpenCV %v", layer, b, p*na+a, k, gv, wv)
						return e
					}
					worst = math.Max(worst, e)
				}
			}
		}
	}
	return worst
}
