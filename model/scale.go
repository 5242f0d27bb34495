package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// scaleChannelsOp is darknet's [scale_channels] (scale_channels_layer.c):
// x (N,C,H,W) is the output of layer from=, s (N,C,1,1) the previous layer's,
//
//	y[n,c,i,j] = x[n,c,i,j] * s[n,c]
//
// with gradients dx = dy*s and ds[n,c] = sum_ij dy[n,c,i,j]*x[n,c,i,j].
type scaleChannelsOp struct {
	opBase
	st *scaleState
}

type scaleState struct{ y, dx, ds *tensor.Dense }

// ScaleChannels multiplies each channel of x by the matching element of s.
func ScaleChannels(x, s *G.Node) (*G.Node, error) {
	return G.ApplyOp(&scaleChannelsOp{newOpBase("scalechannels", 4, 4, 4), &scaleState{}}, x, s)
}

func (o *scaleChannelsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	ss, err := shapes(in)
	if err != nil {
		return nil, err
	}
	xs, s := ss[0], ss[1]
	if len(xs) != 4 || len(s) != 4 || s[0] != xs[0] || s[1] != xs[1] || s[2] != 1 || s[3] != 1 {
		return nil, fmt.Errorf("scale_channels: scales %v do not fit input %v (want (N,C,1,1))", s, xs)
	}
	return xs.Clone(), nil
}

func (o *scaleChannelsOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *scaleChannelsOp) forward(t []*tensor.Dense) (G.Value, error) {
	x := t[0]
	y := o.buffer(&o.st.y, x.Dtype(), x.Shape()...)
	n, c, h, w := dims4(x.Shape())
	switch x.Dtype() {
	case tensor.Float32:
		scaleForward(n*c, h*w, f32s(x), f32s(t[1]), f32s(y))
	case tensor.Float64:
		scaleForward(n*c, h*w, x.Float64s(), t[1].Float64s(), y.Float64s())
	default:
		return nil, fmt.Errorf("scale_channels: unsupported dtype %v", x.Dtype())
	}
	return y, nil
}

func scaleForward[T float](planes, hw int, x, s, y []T) {
	for p := 0; p < planes; p++ {
		k := s[p]
		for j, v := range x[p*hw : (p+1)*hw] {
			y[p*hw+j] = v * k
		}
	}
}

func (o *scaleChannelsOp) DiffWRT(int) []bool { return []bool{true, true} }
func (o *scaleChannelsOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := newBack("scalechannelsgrad", scaleBack{o}, 0, in[0], in[1], grad)
	if err != nil {
		return nil, err
	}
	ds, err := G.ApplyOp(newExtract("dscale", 4, in[1].Shape().Clone(), func() *tensor.Dense { return o.st.ds }), dx)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, ds}, nil
}

// scaleBack takes (x, s, dy), returns dx and leaves ds in the forward op's state.
type scaleBack struct{ fw *scaleChannelsOp }

func (k scaleBack) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	x, s, dy := t[0], t[1], t[2]
	n, c, h, w := dims4(x.Shape())
	dx := o.grad(&k.fw.st.dx, x)
	ds := o.buffer(&k.fw.st.ds, x.Dtype(), s.Shape()...)
	switch x.Dtype() {
	case tensor.Float32:
		scaleBackward(n*c, h*w, f32s(x), f32s(s), f32s(dy), f32s(dx), f32s(ds))
	case tensor.Float64:
		scaleBackward(n*c, h*w, x.Float64s(), s.Float64s(), dy.Float64s(), dx.Float64s(), ds.Float64s())
	}
	return dx, nil
}

func scaleBackward[T float](planes, hw int, x, s, dy, dx, ds []T) {
	for p := 0; p < planes; p++ {
		var sum float64
		k := s[p]
		for j := p * hw; j < (p+1)*hw; j++ {
			dx[j] = dy[j] * k
			sum += float64(dy[j] * x[j])
		}
		ds[p] = T(sum)
	}
}

// The layer: its type, its parser (network.go's layerTypes), the node it
// adds to a graph and darknet's size rule along one axis (extent).

// ScaleChannelsLayer is [scale_channels]: act(out[From] * previous), the
// previous output being (N,C,1,1) (squeeze-and-excitation, EfficientNet).
type ScaleChannelsLayer struct {
	sec  *Section
	From int // absolute index
	C    int
	Act  Activation
}

func (l *ScaleChannelsLayer) Section() *Section { return l.sec }

func (l *ScaleChannelsLayer) OutChannels() int { return l.C }

func newScaleChannels(sec *Section, at, in int, outs []int, abs absFunc) (*ScaleChannelsLayer, error) {
	if _, ok := sec.opts["from"]; !ok {
		return nil, sec.errf(0, "from= is required")
	}
	from, err := sec.Int("from", 0)
	if err != nil {
		return nil, err
	}
	a, err := abs(sec, "from", from, at)
	if err != nil {
		return nil, err
	}
	l := &ScaleChannelsLayer{sec: sec, From: a, C: outs[a]}
	if l.Act, err = activation(sec, "linear"); err != nil {
		return nil, err
	}
	if outs[a] != in {
		return nil, sec.errf(sec.opts["from"].line, "from=%d: layer %d has %d channels but the previous layer (the scales) %d", from, a, outs[a], in)
	}
	return l, nil
}

func (l *ScaleChannelsLayer) node(b *builder, i int) (*G.Node, error) {
	y, err := ScaleChannels(b.outs[l.From], b.cur)
	if err != nil {
		return nil, err
	}
	return Activate(y, l.Act)
}

func (l *ScaleChannelsLayer) extent(cur int, out []int) int { return out[l.From] }

func parseScaleChannels(c layerCtx) (Layer, error) {
	l, err := newScaleChannels(c.sec, c.at, c.in, c.outs, c.abs)
	if err != nil {
		return nil, err
	}
	if _, ok := c.prev.(*YOLOLayer); ok {
		return nil, c.sec.errf(0, "the previous layer is a [yolo] head")
	}
	return l, nil
}
