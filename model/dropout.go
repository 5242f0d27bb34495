package model

import (
	"fmt"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// dropoutOp is darknet's [dropout] in training (dropout_layer.c): each
// element is dropped with probability p and the others scaled by 1/(1-p),
//
//	y = x * keep / (1-p),  keep ~ Bernoulli(1-p), drawn anew at every forward pass,
//
// so that the expected output equals the input and inference graphs use the
// identity. The gradient is dy * keep / (1-p) with the same mask.
type dropoutOp struct {
	opBase
	p  float64
	st *dropoutState
}

type dropoutState struct {
	rng   *rand.Rand
	keep  []bool
	y, dx *tensor.Dense
}

// Dropout drops elements of x with probability p, using masks drawn from seed.
func Dropout(x *G.Node, p float64, seed int64) (*G.Node, error) {
	if p == 0 {
		return x, nil
	}
	d := x.Dims()
	return G.ApplyOp(&dropoutOp{opBase{uniqueName("dropout"), 1, []int{d}, d}, p, &dropoutState{rng: rand.New(rand.NewSource(seed))}}, x)
}

func (o *dropoutOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return shapeOf(in[0]) }
func (o *dropoutOp) Do(vs ...G.Value) (G.Value, error) {
	defer timeOp(o.name)()
	x, err := dense(vs[0])
	if err != nil {
		return nil, err
	}
	y := buffer(&o.st.y, x.Dtype(), x.Shape()...)
	n := x.Shape().TotalSize()
	if len(o.st.keep) != n {
		o.st.keep = make([]bool, n)
	}
	for i := range o.st.keep {
		o.st.keep[i] = o.st.rng.Float64() >= o.p
	}
	switch x.Dtype() {
	case tensor.Float32:
		maskScale(o.st.keep, float32(1/(1-o.p)), f32s(x), f32s(y))
	case tensor.Float64:
		maskScale(o.st.keep, 1/(1-o.p), x.Float64s(), y.Float64s())
	default:
		return nil, fmt.Errorf("dropout: unsupported dtype %v", x.Dtype())
	}
	return y, nil
}

func maskScale[T float](keep []bool, scale T, x, y []T) {
	for i, k := range keep {
		if k {
			y[i] = x[i] * scale
		} else {
			y[i] = 0
		}
	}
}

func (o *dropoutOp) DiffWRT(int) []bool { return []bool{true} }
func (o *dropoutOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	d := in[0].Dims()
	dx, err := G.ApplyOp(&dropoutGradOp{opBase{uniqueName("dropoutgrad"), 2, []int{d, d}, d}, o, gradBuf{}}, out, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// dropoutGradOp takes (y, dy) and returns dy * keep / (1-p); y only orders it
// after the forward pass that drew the mask.
type dropoutGradOp struct {
	opBase
	fw *dropoutOp
	gradBuf
}

func (o *dropoutGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return shapeOf(in[1]) }
func (o *dropoutGradOp) Do(vs ...G.Value) (G.Value, error) {
	defer timeOp(o.name)()
	t, err := densen(vs, 2)
	if err != nil {
		return nil, err
	}
	dy := t[1]
	dx := gradBuffer(o.slot, &o.fw.st.dx, dy.Dtype(), dy.Shape()...)
	switch dy.Dtype() {
	case tensor.Float32:
		maskScale(o.fw.st.keep, float32(1/(1-o.fw.p)), f32s(dy), f32s(dx))
	case tensor.Float64:
		maskScale(o.fw.st.keep, 1/(1-o.fw.p), dy.Float64s(), dx.Float64s())
	}
	return dx, nil
}
