package model

import (
	"math/rand"
	"os"
	"testing"

	"github.com/dettrain/dettrain/box"
)

// allLayersCfg has every layer type and activation, with a dropout
// (testdata/all-layers.cfg; the GPU tests use it without the dropout).
func allLayersCfg(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/all-layers.cfg")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBackwardMatchesGorgonia checks backward (dettrain's gradient sums,
// written in place) and the shared gradient buffers (planSlots) against
// gorgonia's Grad with its Adds and dual values: bit-identical gradients of
// every param, over two steps with different inputs (a buffer shared wrongly
// would show in the second), on the three shipped layouts (routes,
// shortcuts, heads) and one with every layer type.
func TestBackwardMatchesGorgonia(t *testing.T) {
	for _, cfg := range []string{"../configs/models/demo-tiny.cfg", "../configs/models/yolov3-tiny.cfg", "../configs/models/yolov3.cfg", "all-layers"} {
		run := func(gorgonia bool) [][][]float32 {
			gorgoniaGrad = gorgonia
			defer func() { gorgoniaGrad = false }()
			var net *Network
			if cfg == "all-layers" {
				c, err := ParseCfg("all-layers.cfg", allLayersCfg(t))
				if err != nil {
					t.Fatal(err)
				}
				if net, err = NewNetwork(c, 3); err != nil {
					t.Fatal(err)
				}
				net.Init(7)
			} else {
				net = mustNet(t, cfg, 3)
				net.Init(7)
			}
			g, err := net.NewGraph(2, Square(64), true)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			r := rand.New(rand.NewSource(1))
			var steps [][][]float32
			for step := 0; step < 2; step++ {
				for i := range g.Input() {
					g.Input()[i] = r.Float32()
				}
				x, y := 5+r.Float64()*20, 6+r.Float64()*20
				g.SetTruths([][]Truth{{{Class: 1, Box: box.Box{X1: x, Y1: y, X2: x + 25, Y2: y + 34}, Weight: 1}}, {{Class: 2, Box: box.Box{X1: 20, Y1: 10, X2: 60, Y2: 50}, Weight: 1}}})
				if err := g.Run(); err != nil {
					t.Fatal(err)
				}
				gs, err := g.Grads()
				if err != nil {
					t.Fatal(err)
				}
				out := make([][]float32, len(gs))
				for i, v := range gs {
					out[i] = append([]float32(nil), v...)
					clear(v) // dual values add up over steps; training clears them
				}
				steps = append(steps, out)
			}
			return steps
		}
		want, got := run(true), run(false)
		nonzero, total := 0, 0
		for _, g := range want[1] {
			for _, v := range g {
				if v != 0 {
					nonzero++
				}
				total++
			}
		}
		if nonzero < total/2 {
			t.Fatalf("%s: only %d of %d gradient elements are nonzero: a weak comparison", cfg, nonzero, total)
		}
		for s := range want {
			for i := range want[s] {
				for j := range want[s][i] {
					if got[s][i][j] != want[s][i][j] {
						t.Fatalf("%s step %d: param %d [%d]: %v, gorgonia's Grad %v", cfg, s, i, j, got[s][i][j], want[s][i][j])
					}
				}
			}
		}
	}
}
