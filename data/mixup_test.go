package data

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMixup: a 4x3 and a 2x5 image mix on a 4x5 canvas; a pixel inside both
// is lambda*a + (1-lambda)*b, inside one only that image's term, inside
// neither 0; boxes keep their coordinates and get weights lambda, 1-lambda.
func TestMixup(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a, b := randomImage(r, 4, 3), randomImage(r, 2, 5)
	ac, bc := a.Clone(), b.Clone()
	const lambda = 0.3
	ta := []Target{tgt(0, 0, 0, 2, 2), tgt(1, 1, 1, 4, 3)}
	tb := []Target{tgt(2, 0, 1, 2, 5)}
	tb[0].Weight = 0.5 // an already weighted box keeps its factor
	out, ts := Mixup(a, ta, b, tb, lambda)
	if out.W != 4 || out.H != 5 {
		t.Fatalf("canvas %dx%d, want max(4,2) x max(3,5) = 4x5", out.W, out.H)
	}
	for y := range 5 {
		for x := range 4 {
			for c := range 3 {
				var want float64
				if x < 4 && y < 3 {
					want += lambda * float64(a.At(x, y, c))
				}
				if x < 2 && y < 5 {
					want += (1 - lambda) * float64(b.At(x, y, c))
				}
				if got := float64(out.At(x, y, c)); math.Abs(got-want) > 1e-4 {
					t.Errorf("(%d,%d,%d) = %v, want %v", x, y, c, got, want)
				}
			}
		}
	}
	want := []Target{ta[0], ta[1], tb[0]}
	ws := []float32{lambda, lambda, (1 - lambda) * 0.5}
	for i := range want {
		if ts[i].Box != want[i].Box || ts[i].Class != want[i].Class || math.Abs(float64(ts[i].Weight-ws[i])) > 1e-7 {
			t.Errorf("target %d = %+v, want box %v class %d weight %v", i, ts[i], want[i].Box, want[i].Class, ws[i])
		}
	}
	if len(ts) != 3 {
		t.Errorf("%d targets", len(ts))
	}
	for i := range a.Pix {
		if a.Pix[i] != ac.Pix[i] {
			t.Fatal("Mixup changed a")
		}
	}
	for i := range b.Pix {
		if b.Pix[i] != bc.Pix[i] {
			t.Fatal("Mixup changed b")
		}
	}
}
