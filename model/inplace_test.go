package model

import (
	"math/rand"
	"testing"

	"github.com/dettrain/dettrain/box"
)

// TestInPlaceBNGradsIdentical checks that BN backward writing over its
// incoming gradient (planInPlace) gives bit-identical gradients to separate
// buffers, on both shipped layouts' patterns (maxpool chains, routes with
// upsample; yolov3's shortcuts).
func TestInPlaceBNGradsIdentical(t *testing.T) {
	for _, cfg := range []string{"../configs/models/demo-tiny.cfg", "../configs/models/yolov3-tiny.cfg", "../configs/models/yolov3.cfg"} {
		run := func(inPlace bool) [][]float32 {
			disableInPlace = !inPlace
			defer func() { disableInPlace = false }()
			net := mustNet(t, cfg, 3)
			net.Init(7) // nonzero weights: otherwise most gradients are 0
			g, err := net.NewGraph(2, Square(64), true)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			marked := 0
			for _, n := range g.g.AllNodes() {
				if op, ok := n.Op().(*bnActGradOp); ok && op.k.inPlace {
					marked++
				}
			}
			if inPlace && marked == 0 {
				t.Fatalf("%s: no BN backward op runs in place", cfg)
			}
			r := rand.New(rand.NewSource(1))
			for i := range g.Input() {
				g.Input()[i] = r.Float32()
			}
			g.SetTruths([][]Truth{{{Class: 1, Box: box.Box{X1: 5, Y1: 6, X2: 30, Y2: 40}, Weight: 1}}, {{Class: 2, Box: box.Box{X1: 20, Y1: 10, X2: 60, Y2: 50}, Weight: 1}}})
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
			}
			return out
		}
		a, b := run(false), run(true)
		for i := range a {
			for j := range a[i] {
				if a[i][j] != b[i][j] {
					t.Fatalf("%s: param %d [%d]: %v in place, %v separate", cfg, i, j, b[i][j], a[i][j])
				}
			}
		}
	}
}
