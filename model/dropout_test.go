package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// dropoutNet is testdata/all-layers.cfg (its [dropout], probability 0.25,
// is layer 2, after a conv and a maxpool) with seed 7.
func dropoutNet(t *testing.T) (*Network, int) {
	t.Helper()
	c, err := ParseCfg("all-layers.cfg", allLayersCfg(t))
	if err != nil {
		t.Fatal(err)
	}
	net, err := NewNetwork(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(7)
	for i, l := range net.Layers {
		if d, ok := l.(*DropoutLayer); ok {
			if d.P != 0.25 {
				t.Fatalf("testdata/all-layers.cfg: dropout probability %v, the test expects 0.25", d.P)
			}
			return net, i
		}
	}
	t.Fatal("testdata/all-layers.cfg has no [dropout]")
	return nil, 0
}

// referenceKeep is the mask rule of dropoutOp's doc comment written out
// directly, with the float comparison u >= p instead of dropoutMask's
// integer threshold: element j keeps when u_j = (x_j>>11)/2^53 >= p, x_j the
// j-th output of PCG(splitmix64(key), splitmix64(step)) within its image,
// key the splitmix64 chain of (seed, layer, first + the image's index).
func referenceKeep(images, n int, p float64, seed int64, layer, first, step int) []bool {
	var keep []bool
	for k := 0; k < images; k++ {
		key := splitmix64(splitmix64(splitmix64(uint64(seed))^uint64(layer)) ^ uint64(first+k))
		r := rand.NewPCG(splitmix64(key), splitmix64(uint64(step)))
		for j := 0; j < n/images; j++ {
			keep = append(keep, float64(r.Uint64()>>11)/(1<<53) >= p)
		}
	}
	return keep
}

// dropoutRun runs g once at (seed, replica, step) on a fixed input and
// returns copies of the dropout layer's input and output.
func dropoutRun(t *testing.T, g *Graph, layer int, seed int64, replica, step int) (x, y []float32) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range g.Input() {
		g.Input()[i] = r.Float32()
	}
	g.SetTruths(make([][]Truth, g.N))
	g.SetDropoutStep(seed, replica, step)
	if err := g.Run(); err != nil {
		t.Fatal(err)
	}
	xin, _ := g.LayerOutput(layer - 1)
	yout, _ := g.LayerOutput(layer)
	return append([]float32(nil), xin...), append([]float32(nil), yout...)
}

// TestDropoutMaskIsAFunctionOfTheStep: with SetDropoutStep, the mask of a
// training graph is the documented function of (seed, layer, replica, step)
// (checked element by element against referenceKeep), whatever the number
// of graphs built before (the old seed counted them, so a resumed run, which
// builds fewer, drew other masks), and kept values are x/(1-p) exactly.
func TestDropoutMaskIsAFunctionOfTheStep(t *testing.T) {
	const p = 0.25
	net, layer := dropoutNet(t)
	g1, err := net.NewGraph(2, Square(64), true)
	if err != nil {
		t.Fatal(err)
	}
	defer g1.Close()
	// Another network with the same seed that has built three graphs first.
	net2, _ := dropoutNet(t)
	for range 3 {
		g, err := net2.NewGraph(1, Square(32), true)
		if err != nil {
			t.Fatal(err)
		}
		g.Close()
	}
	g2, err := net2.NewGraph(2, Square(64), true)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()

	x, y := dropoutRun(t, g1, layer, 5, 1, 42)
	want := referenceKeep(2, len(y), p, 5, layer, 1, 42)
	scale := float32(1 / (1 - p)) // 4/3 rounded to float32, as the op scales
	nonzero := 0
	for j := range y {
		if x[j] == 0 {
			continue // a zero input says nothing about the mask
		}
		nonzero++
		if want[j] && y[j] != x[j]*scale || !want[j] && y[j] != 0 {
			t.Fatalf("element %d: x %v y %v, reference keep %v", j, x[j], y[j], want[j])
		}
	}
	if nonzero < len(y)/2 {
		t.Fatalf("only %d of %d dropout inputs are non-zero: the check saw too little", nonzero, len(y))
	}
	// Same (seed, replica, step) in the other network's fifth graph: the same bits.
	_, y2 := dropoutRun(t, g2, layer, 5, 1, 42)
	for j := range y {
		if math.Float32bits(y[j]) != math.Float32bits(y2[j]) {
			t.Fatalf("element %d: %v in the first graph, %v in a network that built 3 graphs before", j, y[j], y2[j])
		}
	}
	// Running the same step again repeats the mask (a rollback replays a step).
	if _, y3 := dropoutRun(t, g1, layer, 5, 1, 42); !equalBits(y, y3) {
		t.Fatal("the same step run twice gave two masks")
	}
	// Replicas draw what one graph of the whole batch draws: a graph of the
	// two images 1 and 2 (first = 1) gives image 1 the mask that the graph
	// of images 0..3 gives its second image.
	g4, err := net.NewGraph(4, Square(64), true)
	if err != nil {
		t.Fatal(err)
	}
	defer g4.Close()
	x4, y4 := dropoutRun(t, g4, layer, 5, 0, 42)
	keep4 := referenceKeep(4, len(y4), p, 5, layer, 0, 42)
	for j := range y4 {
		if x4[j] != 0 && (keep4[j] && y4[j] != x4[j]*scale || !keep4[j] && y4[j] != 0) {
			t.Fatalf("4 images: element %d: x %v y %v, reference keep %v", j, x4[j], y4[j], keep4[j])
		}
	}
	per := len(y) / 2
	for j := 0; j < 2*per; j++ {
		if want[j] != keep4[per+j] {
			t.Fatalf("element %d: the mask of image %d depends on its graph", j, 1+j/per)
		}
	}
	// Another step, first image or seed gives another mask.
	for _, c := range []struct {
		name          string
		seed          int64
		replica, step int
	}{{"step", 5, 1, 43}, {"first image", 5, 0, 42}, {"seed", 6, 1, 42}} {
		if _, yc := dropoutRun(t, g1, layer, c.seed, c.replica, c.step); equalBits(y, yc) {
			t.Errorf("another %s, the same mask", c.name)
		}
	}
}

func equalBits(a, b []float32) bool {
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

// TestDropoutThreshold: the integer threshold ceil(p*2^53) keeps exactly
// the draws whose u = k/2^53 is >= p, at the edges: for p = 0.25 the
// threshold is 2^51 (k = 2^51 gives u = 0.25, kept; 2^51-1 dropped), and for
// p = 0.1, whose p*2^53 = 900719925474099.25 is not an integer, k =
// 900719925474100 is the smallest kept.
func TestDropoutThreshold(t *testing.T) {
	for _, c := range []struct {
		p    float64
		want uint64
	}{{0.25, 1 << 51}, {0.1, 900719925474100}, {0.5, 1 << 52}} {
		got := uint64(math.Ceil(c.p * (1 << 53)))
		if got != c.want {
			t.Errorf("p %v: threshold %d, want %d", c.p, got, c.want)
		}
		if !(float64(got)/(1<<53) >= c.p) || !(float64(got-1)/(1<<53) < c.p) {
			t.Errorf("p %v: threshold %d is not the smallest k with k/2^53 >= p", c.p, got)
		}
	}
}

// TestDropoutSeedRoundTrip: SetDropoutSeed gives back what DropoutSeed
// reports, and Init sets it.
func TestDropoutSeedRoundTrip(t *testing.T) {
	net, _ := dropoutNet(t)
	if net.DropoutSeed() != 7 {
		t.Fatalf("after Init(7): %d", net.DropoutSeed())
	}
	net.SetDropoutSeed(-3)
	if net.DropoutSeed() != -3 {
		t.Fatalf("after SetDropoutSeed(-3): %d", net.DropoutSeed())
	}
}
