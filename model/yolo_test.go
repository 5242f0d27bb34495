package model

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/dettrain/dettrain/box"
)

var testHead = &Head{
	Anchors:      [][2]float64{{10, 13}, {16, 30}, {33, 23}, {30, 61}, {62, 45}, {59, 119}},
	Mask:         []int{0, 1, 2},
	Classes:      2,
	IgnoreThresh: 0.7,
}

func TestYOLOLossGradient(t *testing.T) {
	truths := [][]Truth{
		{{Class: 1, Box: box.Box{X1: 3, Y1: 5, X2: 15, Y2: 20}, Weight: 1}, {Class: 0, Box: box.Box{X1: 20, Y1: 2, X2: 50, Y2: 30}, Weight: 0.4}},
		{{Class: 0, Box: box.Box{X1: 30, Y1: 30, X2: 45, Y2: 58}, Weight: 1}},
	}
	// Grid 4x4 on a 64x64 input: stride 16.
	gradCheck(t, [][]int{{2, 3 * 7, 4, 4}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
		l, st, err := newYOLOLoss(ps[0], testHead, 64, 64)
		st.truths = truths
		return l, err
	})
}

// TestYOLOLossByHand checks every term on a 1x1 grid with one anchor, where
// the loss can be written out: input 32x32, anchor (16,16), one truth box
// (8,8)-(24,24) of class 0 with weight 0.5, all logits 0 except tw = 0.1.
//
//	obj  = 0.5*BCE(0,1) = 0.5*ln2
//	xy   = 0.5*bw*(BCE(0,0.5)+BCE(0,0.5)) = 0.5*bw*2*ln2, bw = 2 - 256/1024 = 1.75
//	       (centre 16/32 = 0.5 of the only cell; BCE(0,t) = ln2 for any t)
//	wh   = 0.5*bw*(|0.1-log(16/16)| + |0-0|) = 0.5*1.75*0.1
//	cls  = 0.5*(BCE(0,1)+BCE(0,0)) = 0.5*2*ln2
func TestYOLOLossByHand(t *testing.T) {
	h := &Head{Anchors: [][2]float64{{16, 16}}, Mask: []int{0}, Classes: 2, IgnoreThresh: 0.7}
	x := make([]float64, 7)
	x[2] = 0.1
	st := &yoloState{netW: 32, netH: 32, truths: [][]Truth{{{Class: 0, Box: box.Box{X1: 8, Y1: 8, X2: 24, Y2: 24}, Weight: 0.5}}}}
	yoloLoss(h, st, tensor.Shape{1, 7, 1, 1}, x)
	ln2 := math.Ln2
	want := LossParts{Obj: 0.5 * ln2, XY: 0.5 * 1.75 * 2 * ln2, WH: 0.5 * 1.75 * 0.1, Cls: 0.5 * 2 * ln2, Positives: 1}
	p := st.parts
	if math.Abs(p.Obj-want.Obj)+math.Abs(p.XY-want.XY)+math.Abs(p.WH-want.WH)+math.Abs(p.Cls-want.Cls) > 1e-12 || p.Positives != 1 {
		t.Fatalf("parts %+v, want %+v", p, want)
	}
}

// TestYOLOLossIgnore: a negative prediction whose box overlaps a truth by
// more than the threshold has no objectness loss; one below it has BCE(x,0).
func TestYOLOLossIgnore(t *testing.T) {
	// Two anchors, one cell, 32x32: the truth (0,0)-(32,32) goes to anchor 1
	// (32x32); anchor 0 (30x30) predicts the same centre box: IoU 900/1024 > 0.7.
	h := &Head{Anchors: [][2]float64{{30, 30}, {32, 32}}, Mask: []int{0, 1}, Classes: 1, IgnoreThresh: 0.7}
	x := make([]float64, 12)
	st := &yoloState{netW: 32, netH: 32, truths: [][]Truth{{{Class: 0, Box: box.Box{X2: 32, Y2: 32}, Weight: 1}}}}
	yoloLoss(h, st, tensor.Shape{1, 12, 1, 1}, x)
	if math.Abs(st.parts.Obj-math.Ln2) > 1e-12 { // only the positive
		t.Fatalf("obj = %v, want ln2 (negative ignored)", st.parts.Obj)
	}
	h.IgnoreThresh = 0.95
	yoloLoss(h, st, tensor.Shape{1, 12, 1, 1}, x)
	if math.Abs(st.parts.Obj-2*math.Ln2) > 1e-12 {
		t.Fatalf("obj = %v, want 2 ln2 (negative counted)", st.parts.Obj)
	}
}

func TestBCEStable(t *testing.T) {
	for _, x := range []float64{-800, -30, -1, 0, 2, 40, 800} {
		l, _ := bce(x, 0.3)
		if math.IsInf(l, 0) || math.IsNaN(l) {
			t.Fatalf("bce(%v) = %v", x, l)
		}
	}
	// BCE(x,t) = -t log s(x) - (1-t) log(1-s(x)), checked at a moderate x.
	x, tt := 0.7, 0.3
	s := 1 / (1 + math.Exp(-x))
	if l, _ := bce(x, tt); math.Abs(l-(-tt*math.Log(s)-(1-tt)*math.Log(1-s))) > 1e-12 {
		t.Fatalf("bce mismatch")
	}
}

// TestYOLOLossScaleXYGradient: with scale_x_y (YOLOv4) the loss is still the
// gradient of what it reports.
func TestYOLOLossScaleXYGradient(t *testing.T) {
	h := *testHead
	h.ScaleXY = 1.2
	truths := [][]Truth{{{Class: 1, Box: box.Box{X1: 3, Y1: 5, X2: 15, Y2: 20}, Weight: 1}, {Class: 0, Box: box.Box{X1: 16, Y1: 1, X2: 50, Y2: 30}, Weight: 1}}}
	gradCheck(t, [][]int{{1, 3 * 7, 4, 4}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
		l, st, err := newYOLOLoss(ps[0], &h, 64, 64)
		st.truths = truths
		return l, err
	})
}

// TestScaleXYTarget: with scale_x_y = 2 a centre at the very start of its
// cell (offset 0) needs sigmoid(tx) = (0 + 0.5)/2 = 0.25, i.e. the BCE target
// is 0.25, and Decode maps tx = logit(0.25) back to offset 0.
func TestScaleXYTarget(t *testing.T) {
	h := &Head{Anchors: [][2]float64{{16, 16}}, Mask: []int{0}, Classes: 1, IgnoreThresh: 0.7, ScaleXY: 2}
	tx := math.Log(0.25 / 0.75)
	if o := h.offset(tx); math.Abs(o) > 1e-12 {
		t.Fatalf("offset(logit 0.25) = %v, want 0", o)
	}
	x := make([]float64, 6)
	x[0], x[1] = tx, tx // predict exactly the target: the xy gradient is 0
	st := &yoloState{netW: 32, netH: 32, truths: [][]Truth{{{Class: 0, Box: box.Box{X1: -8, Y1: -8, X2: 8, Y2: 8}, Weight: 1}}}}
	yoloLoss(h, st, tensor.Shape{1, 6, 1, 1}, x)
	if math.Abs(st.grad[0])+math.Abs(st.grad[1]) > 1e-12 {
		t.Fatalf("xy gradient %v %v, want 0", st.grad[0], st.grad[1])
	}
}

// TestYOLOLossMixupWeights: a mixed sample's loss is the weighted sum of its
// objects' losses (docs/FREEBIES.md: the mix weight multiplies every term of the
// object). Two truths on a 2x1 grid, weights lambda and 1-lambda, each alone
// at weight 1 for comparison; with both cells positive there are no
// negative objectness terms, so every part must add up exactly.
func TestYOLOLossMixupWeights(t *testing.T) {
	h := &Head{Anchors: [][2]float64{{20, 20}}, Mask: []int{0}, Classes: 2, IgnoreThresh: 0.7}
	x := []float64{0.3, -0.2, 0.1, 0.4, -1, 0.5, -0.7, -0.2, 0.6, -0.3, 0.2, 0.8, 0.1, -0.4} // (1, 7, 1, 2)
	a := Truth{Class: 0, Box: box.Box{X1: 4, Y1: 6, X2: 24, Y2: 30}}
	b := Truth{Class: 1, Box: box.Box{X1: 36, Y1: 2, X2: 60, Y2: 22}}
	parts := func(ts ...Truth) LossParts {
		st := &yoloState{netW: 64, netH: 32, truths: [][]Truth{ts}}
		yoloLoss(h, st, tensor.Shape{1, 7, 1, 2}, x)
		return st.parts
	}
	const lam = 0.3
	a.Weight, b.Weight = 1, 1
	pa, pb := parts(a), parts(b)
	a.Weight, b.Weight = lam, 1-lam
	mixed := parts(a, b)
	wa, wb := float64(a.Weight), float64(b.Weight) // the float32 weights the loss sees
	// Objectness of the two positives alone: BCE(x_obj, 1) at each cell.
	objA, _ := bce(x[4*2+0], 1)
	objB, _ := bce(x[4*2+1], 1)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"xy", mixed.XY, wa*pa.XY + wb*pb.XY},
		{"wh", mixed.WH, wa*pa.WH + wb*pb.WH},
		{"cls", mixed.Cls, wa*pa.Cls + wb*pb.Cls},
		{"obj", mixed.Obj, wa*objA + wb*objB},
	} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
