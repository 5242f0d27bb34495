package train

import (
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/dettrain/dettrain/model"
)

// TestSGDStep works two steps out by hand for a decayed and an undecayed
// parameter: momentum 0.9, decay 0.1, lr 0.5, gradient 1 each time.
//
//	decayed, w0 = 2: v1 = -0.5*(1+0.2) = -0.6, w1 = 1.4
//	                 v2 = 0.9*-0.6 - 0.5*(1+0.14) = -1.11, w2 = 0.29
//	plain,   w0 = 2: v1 = -0.5, w1 = 1.5; v2 = -0.45-0.5 = -0.95, w2 = 0.55
func TestSGDStep(t *testing.T) {
	a := tensor.New(tensor.WithBacking([]float32{2}))
	b := tensor.New(tensor.WithBacking([]float32{2}))
	s := NewSGD([]model.Param{{Name: "w", Value: a, Decay: true}, {Name: "b", Value: b}}, 0.9, 0.1)
	g := [][]float32{{1}, {1}}
	s.Step(g, 0.5)
	s.Step(g, 0.5)
	if got := a.Float32s()[0]; math.Abs(float64(got)-0.29) > 1e-6 {
		t.Errorf("decayed w = %v, want 0.29", got)
	}
	if got := b.Float32s()[0]; math.Abs(float64(got)-0.55) > 1e-6 {
		t.Errorf("plain w = %v, want 0.55", got)
	}
}
