package model

import (
	"fmt"
	"math"
	"math/rand/v2"

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
//
// The mask is a pure function of a stream key and a step: element j keeps
// when the j-th output of PCG-DXSM (math/rand/v2's NewPCG) seeded with
// (splitmix64 of the key, splitmix64 of the step), shifted right by 11, is at
// least ceil(p * 2^53) -- that is when a uniform u in [0, 1) with 53 bits
// satisfies u >= p. A training loop fixes the keys and the step with
// Graph.SetDropoutStep: each image has its own stream, keyed by the train
// seed, the layer and the image's place in the whole batch, so masks depend
// on those and the iteration only -- a resumed run draws the masks the
// uninterrupted one drew, and R replicas of B/R images draw exactly the
// masks one graph of B images draws. Without SetDropoutStep the key is the
// seed given to Dropout (one stream for the whole tensor) and the step
// counts the op's forward passes.
type dropoutOp struct {
	opBase
	p  float64
	st *dropoutState
}

type dropoutState struct {
	seed  int64  // the key while no step is set
	calls uint64 // forward passes, the step while none is set
	set   bool   // keys and step come from SetDropoutStep
	seedK int64  // the train seed, layer and first image of the set keys
	layer int
	first int
	step  uint64
	keep  []bool
	y, dx *tensor.Dense
}

// Dropout drops elements of x with probability p, using masks drawn from seed.
func Dropout(x *G.Node, p float64, seed int64) (*G.Node, error) {
	if p == 0 {
		return x, nil
	}
	d := x.Dims()
	return G.ApplyOp(&dropoutOp{newOpBase("dropout", d, d), p, &dropoutState{seed: seed}}, x)
}

// DropoutSeed is the seed of the network's dropout masks (the one given to
// Init, or SetDropoutSeed's); checkpoints keep it.
func (n *Network) DropoutSeed() int64 { return n.seed }

// SetDropoutSeed sets the seed of the dropout masks (a resumed run takes it
// from its checkpoint) without touching the weights.
func (n *Network) SetDropoutSeed(seed int64) { n.seed = seed }

// SetDropoutStep fixes the masks of the next forward passes of gr's training
// dropout layers: in layer i, image k of the graph draws from the stream
// keyed by (seed, i, first+k) at step, where first is the place of the
// graph's first image in the whole batch (replica r of R, each of n images:
// r*n), the same in every graph built for any batch or input size of the
// network. Call it before each Run with the global iteration as step.
func (gr *Graph) SetDropoutStep(seed int64, first, step int) {
	for i, n := range gr.outs {
		if o, ok := n.Op().(*dropoutOp); ok {
			o.st.set = true
			o.st.seedK, o.st.layer, o.st.first = seed, i, first
			o.st.step = uint64(step)
		}
	}
}

// dropoutKey mixes the seed, layer index and image into one stream key.
func dropoutKey(seed int64, layer, image int) uint64 {
	return splitmix64(splitmix64(splitmix64(uint64(seed))^uint64(layer)) ^ uint64(image))
}

// splitmix64 is the finalizer of Steele, Lea and Flood's SplitMix64
// ("Fast splittable pseudorandom number generators", OOPSLA 2014), a
// bijection of uint64 that spreads nearby inputs over all bits.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// dropoutMask fills keep with the mask of stream (key, step): element j
// keeps when the j-th draw u_j in [0, 1) is >= p.
func dropoutMask(keep []bool, p float64, key, step uint64) {
	r := rand.NewPCG(splitmix64(key), splitmix64(step))
	// u = (x>>11) / 2^53 >= p  <=>  x>>11 >= p*2^53 (exact: a power-of-two
	// scaling) <=>  x>>11 >= ceil(p*2^53), both sides integers.
	t := uint64(math.Ceil(p * (1 << 53)))
	for i := range keep {
		keep[i] = r.Uint64()>>11 >= t
	}
}

func (o *dropoutOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return shapeOf(in[0]) }

func (o *dropoutOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *dropoutOp) forward(t []*tensor.Dense) (G.Value, error) {
	x := t[0]
	y := o.buffer(&o.st.y, x.Dtype(), x.Shape()...)
	n := x.Shape().TotalSize()
	switch {
	case o.arena != nil:
		o.arena.bools.get(o.arena.graph, &o.st.keep, n)
	case len(o.st.keep) != n:
		o.st.keep = make([]bool, n)
	}
	if o.st.set {
		per := n / x.Shape()[0] // one image's elements
		for k := 0; k < x.Shape()[0]; k++ {
			dropoutMask(o.st.keep[k*per:(k+1)*per], o.p, dropoutKey(o.st.seedK, o.st.layer, o.st.first+k), o.st.step)
		}
	} else {
		dropoutMask(o.st.keep, o.p, uint64(o.st.seed), o.st.calls)
		o.st.calls++
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
	return gradOf(newBack("dropoutgrad", dropoutBack{o}, 1, out, grad))
}

// dropoutBack takes (y, dy) and returns dy * keep / (1-p); y only orders it
// after the forward pass that drew the mask.
type dropoutBack struct{ fw *dropoutOp }

func (k dropoutBack) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	dy := t[1]
	dx := o.grad(&k.fw.st.dx, dy)
	switch dy.Dtype() {
	case tensor.Float32:
		maskScale(k.fw.st.keep, float32(1/(1-k.fw.p)), f32s(dy), f32s(dx))
	case tensor.Float64:
		maskScale(k.fw.st.keep, 1/(1-k.fw.p), dy.Float64s(), dx.Float64s())
	}
	return dx, nil
}

// The layer: its type, its parser (network.go's layerTypes), the node it
// adds to a graph and darknet's size rule along one axis (extent).

// DropoutLayer is [dropout]: in a training graph each element is zeroed with
// probability P and the others scaled by 1/(1-P) (darknet's dropout_layer.c);
// in an inference graph it is the identity.
type DropoutLayer struct {
	sec *Section
	C   int
	P   float64
}

func (l *DropoutLayer) Section() *Section { return l.sec }

func (l *DropoutLayer) OutChannels() int { return l.C }

func (l *DropoutLayer) node(b *builder, i int) (*G.Node, error) {
	if !b.training {
		return b.cur, nil
	}
	b.net.graphs++
	return Dropout(b.cur, l.P, b.net.seed*1_000_003+int64(b.net.graphs)*1_009+int64(i))
}

func (l *DropoutLayer) extent(cur int, out []int) int { return cur }

func parseDropout(c layerCtx) (Layer, error) {
	sec := c.sec
	p, err := sec.Float("probability", 0.5)
	if err == nil && !(p >= 0 && p < 1) {
		err = sec.errf(sec.opts["probability"].line, "probability=%v must be in [0, 1)", p)
	}
	if err != nil {
		return nil, err
	}
	return &DropoutLayer{sec: sec, C: c.in, P: p}, nil
}
