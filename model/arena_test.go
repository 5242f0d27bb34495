package model

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/dettrain/dettrain/box"
)

// arenaNet is testdata/all-layers.cfg (every layer type) with seed 3.
func arenaNet(t *testing.T) *Network {
	t.Helper()
	c, err := ParseCfg("all-layers.cfg", allLayersCfg(t))
	if err != nil {
		t.Fatal(err)
	}
	net, err := NewNetwork(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(3)
	return net
}

func arenaStep(t *testing.T, g *Graph, seed uint64) (LossParts, [][]float32) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range g.Input() {
		g.Input()[i] = r.Float32()
	}
	truths := make([][]Truth, g.N)
	for i := range truths {
		x, y := r.Float64()*float64(g.Size.W)*0.6, r.Float64()*float64(g.Size.H)*0.6
		truths[i] = []Truth{{Class: r.IntN(3), Box: box.Box{X1: x, Y1: y, X2: x + 12, Y2: y + 16}, Weight: 1}}
	}
	g.SetTruths(truths)
	g.SetDropoutStep(1, 0, int(seed))
	if err := g.Run(); err != nil {
		t.Fatal(err)
	}
	grads, err := g.Grads()
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(grads))
	for i := range grads {
		out[i] = append([]float32(nil), grads[i]...)
	}
	return g.Loss(), out
}

// TestArenaSharesAndMatches: graphs of two input sizes that share an arena
// and alternate compute bit for bit what graphs with their own buffers
// compute (the same operations on other memory), and cost about the larger
// graph: the live heap with both (and the arena) is at most 1.25x the one
// with the larger graph alone, where two private graphs cost more than that
// (the bound of the issue: random shapes at most 1.25x the peak at the
// largest size).
func TestArenaSharesAndMatches(t *testing.T) {
	small, large := Size{W: 128, H: 96}, Size{W: 160, H: 128}
	const n = 4
	// Bitwise: the same sequence of steps on two identical networks.
	shared, private := arenaNet(t), arenaNet(t)
	a := NewArena()
	gs := [2]*Graph{}
	gp := [2]*Graph{}
	for i, s := range []Size{small, large} {
		var err error
		if gs[i], err = shared.NewGraph(n, s, true, WithArena(a)); err != nil {
			t.Fatal(err)
		}
		defer gs[i].Close()
		if gp[i], err = private.NewGraph(n, s, true); err != nil {
			t.Fatal(err)
		}
		defer gp[i].Close()
	}
	for step, i := range []int{0, 1, 0, 1, 1, 0} {
		l1, g1 := arenaStep(t, gs[i], uint64(step))
		l2, g2 := arenaStep(t, gp[i], uint64(step))
		if l1 != l2 {
			t.Fatalf("step %d at %s: loss %+v with the arena, %+v without", step, gs[i].Size, l1, l2)
		}
		for k := range g1 {
			for j := range g1[k] {
				if math.Float32bits(g1[k][j]) != math.Float32bits(g2[k][j]) {
					t.Fatalf("step %d at %s: gradient %d[%d] %v with the arena, %v without", step, gs[i].Size, k, j, g1[k][j], g2[k][j])
				}
			}
		}
	}

	// Memory: the live heap after building and running.
	gc := func() { // objects with finalizers take a second cycle
		for range 3 {
			runtime.GC()
		}
	}
	live := func(build func() []*Graph) uint64 {
		gc()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		graphs := build()
		gc()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		for _, g := range graphs {
			g.Close()
		}
		return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
	}
	run := func(net *Network, s Size, opts ...GraphOption) *Graph {
		g, err := net.NewGraph(n, s, true, opts...)
		if err != nil {
			t.Fatal(err)
		}
		arenaStep(t, g, 1)
		return g
	}
	net := arenaNet(t)
	// Warm up what every graph shares once built (scratch pools, caches).
	live(func() []*Graph { return []*Graph{run(net, large), run(net, small)} })
	alone := live(func() []*Graph { return []*Graph{run(net, large)} })
	two := live(func() []*Graph { return []*Graph{run(net, small), run(net, large)} })
	both := live(func() []*Graph {
		a := NewArena()
		g1 := run(net, small, WithArena(a))
		g2 := run(net, large, WithArena(a))
		arenaStep(t, g1, 2) // the small graph again, now over the grown buffers
		return []*Graph{g1, g2}
	})
	t.Logf("live heap: %s alone %.1f MB, %s and %s private %.1f MB, sharing an arena %.1f MB", large, float64(alone)/1e6, small, large, float64(two)/1e6, float64(both)/1e6)
	if float64(two) <= 1.25*float64(alone) {
		t.Fatalf("two private graphs cost %.2fx one: the test cannot tell sharing from not", float64(two)/float64(alone))
	}
	if float64(both) > 1.25*float64(alone) {
		t.Errorf("graphs sharing an arena cost %.2fx the larger alone, want <= 1.25x", float64(both)/float64(alone))
	}
}

// TestArenaForgetsClosedGraphs: a closed graph's views leave the arena, so
// that a long run that keeps building and dropping graphs (random shapes
// with shape_graphs below the number of sizes) does not accumulate them.
func TestArenaForgetsClosedGraphs(t *testing.T) {
	net := arenaNet(t)
	a := NewArena()
	count := func() int {
		n := 0
		for _, b := range a.bufs {
			n += len(b.holders)
		}
		for _, v := range a.bools.vecs {
			n += len(v.holders)
		}
		for _, v := range a.ints.vecs {
			n += len(v.holders)
		}
		for _, v := range a.f64s.vecs {
			n += len(v.holders)
		}
		return n
	}
	g1, _ := net.NewGraph(2, Size{W: 64, H: 64}, true, WithArena(a))
	arenaStep(t, g1, 1)
	one := count()
	g2, _ := net.NewGraph(2, Size{W: 32, H: 32}, true, WithArena(a))
	arenaStep(t, g2, 2)
	if one == 0 || count() != 2*one {
		t.Fatalf("views held: %d after one graph, %d after two", one, count())
	}
	g1.Close()
	if count() != one {
		t.Fatalf("after closing one of two graphs %d views are held, want %d", count(), one)
	}
	g2.Close()
	if count() != 0 {
		t.Fatalf("after closing both %d views are held", count())
	}
}
