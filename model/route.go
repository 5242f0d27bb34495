package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// routeOp is darknet's [route] with groups (route_layer.c): from each input
// x_k (N,C_k,H,W) it takes channel group g of G,
//
//	y = concat_k x_k[:, g*C_k/G : (g+1)*C_k/G]
//
// along the channels. Its gradient copies each slice of dy back into a
// zeroed dx_k. Routes without groups are this op with one group.
type routeOp struct {
	opBase
	groups, id int
	st         *routeState
}

type routeState struct {
	y  *tensor.Dense
	dx []*tensor.Dense
}

// RouteGroups concatenates group id of groups of each input's channels.
func RouteGroups(groups, id int, xs ...*G.Node) (*G.Node, error) {
	op := &routeOp{newOpBase("route", 4, ranks4(len(xs))...), groups, id, &routeState{dx: make([]*tensor.Dense, len(xs))}}
	return G.ApplyOp(op, xs...)
}

// ranks4 is the input ranks of an op of k 4-D inputs.
func ranks4(k int) []int {
	in := make([]int, k)
	for i := range in {
		in[i] = 4
	}
	return in
}

func (o *routeOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	ss, err := shapes(in)
	if err != nil {
		return nil, err
	}
	var out tensor.Shape
	for i, s := range ss {
		if len(s) != 4 || s[1]%o.groups != 0 {
			return nil, fmt.Errorf("route: input %d has shape %v, want 4-D with channels divisible by %d", i, s, o.groups)
		}
		if i == 0 {
			out = tensor.Shape{s[0], 0, s[2], s[3]}
		} else if s[0] != out[0] || s[2] != out[2] || s[3] != out[3] {
			return nil, fmt.Errorf("route: input %d is %dx%d, the first %dx%d: inputs must have the same size", i, s[3], s[2], out[3], out[2])
		}
		out[1] += s[1] / o.groups
	}
	return out, nil
}

func (o *routeOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *routeOp) forward(ts []*tensor.Dense) (G.Value, error) {
	n, _, h, w := dims4(ts[0].Shape())
	c := 0
	for _, t := range ts {
		c += t.Shape()[1] / o.groups
	}
	y := o.buffer(&o.st.y, ts[0].Dtype(), n, c, h, w)
	off := 0
	for _, t := range ts {
		k := t.Shape()[1] / o.groups
		switch t.Dtype() {
		case tensor.Float32:
			copyChannels(f32s(y), f32s(t), n, c, t.Shape()[1], h*w, off, o.id*k, k)
		case tensor.Float64:
			copyChannels(y.Float64s(), t.Float64s(), n, c, t.Shape()[1], h*w, off, o.id*k, k)
		default:
			return nil, fmt.Errorf("route: unsupported dtype %v", t.Dtype())
		}
		off += k
	}
	return y, nil
}

// copyChannels copies k channels of each image from src (n, cs, hw) starting
// at channel so into dst (n, cd, hw) starting at channel do.
func copyChannels[T float](dst, src []T, n, cd, cs, hw, do, so, k int) {
	for i := 0; i < n; i++ {
		copy(dst[(i*cd+do)*hw:(i*cd+do+k)*hw], src[(i*cs+so)*hw:(i*cs+so+k)*hw])
	}
}

func (o *routeOp) DiffWRT(n int) []bool { return allInputs(n) }

func (o *routeOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	ds := make(G.Nodes, len(in))
	off := 0
	for i, x := range in {
		k := x.Shape()[1] / o.groups
		d, err := newBack("routegrad", routeBack{o, i, off, o.id * k, k}, 0, x, grad)
		if err != nil {
			return nil, err
		}
		ds[i] = d
		off += k
	}
	return ds, nil
}

// routeBack takes (x_k, dy) and returns dx_k: zero except for the channels
// the route took, which get their slice of dy.
type routeBack struct {
	fw            *routeOp
	input         int
	yOff, xOff, k int
}

func (k routeBack) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	x, dy := t[0], t[1]
	n, c, h, w := dims4(x.Shape())
	dx := o.grad(&k.fw.st.dx[k.input], x)
	cy := dy.Shape()[1]
	switch x.Dtype() {
	case tensor.Float32:
		if k.k != c {
			clear(f32s(dx))
		}
		copyChannels(f32s(dx), f32s(dy), n, c, cy, h*w, k.xOff, k.yOff, k.k)
	case tensor.Float64:
		if k.k != c {
			clear(dx.Float64s())
		}
		copyChannels(dx.Float64s(), dy.Float64s(), n, c, cy, h*w, k.xOff, k.yOff, k.k)
	}
	return dx, nil
}

// shortcutOp is darknet's [shortcut] sum, y = x_0 + x_1 + ... (left to
// right, as the chained gorgonia Adds it replaces), into a buffer reused
// every step and split over the threads. Each input's gradient is dy itself.
type shortcutOp struct {
	opBase
	st *routeState
}

func shortcut(xs ...*G.Node) (*G.Node, error) {
	return G.ApplyOp(&shortcutOp{newOpBase("shortcut", 4, ranks4(len(xs))...), &routeState{}}, xs...)
}

func (o *shortcutOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return sameShapes("shortcut: input", in)
}

// sameShapes is the shape of ops whose inputs must all have one shape (the
// first's); what names an input in the error ("shortcut: input").
func sameShapes(what string, in []G.DimSizer) (tensor.Shape, error) {
	ss, err := shapes(in)
	if err != nil {
		return nil, err
	}
	s0 := ss[0]
	for i, s := range ss[1:] {
		if !s.Eq(s0) {
			return nil, fmt.Errorf("%s %d has shape %v, the first %v", what, i+1, s, s0)
		}
	}
	return s0.Clone(), nil
}

func (o *shortcutOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *shortcutOp) forward(ts []*tensor.Dense) (G.Value, error) {
	y := o.buffer(&o.st.y, ts[0].Dtype(), ts[0].Shape()...)
	switch y.Dtype() {
	case tensor.Float32:
		xs := make([][]float32, len(ts))
		for i, t := range ts {
			xs[i] = f32s(t)
		}
		addAll(f32s(y), xs)
	case tensor.Float64:
		xs := make([][]float64, len(ts))
		for i, t := range ts {
			xs[i] = t.Float64s()
		}
		addAll(y.Float64s(), xs)
	default:
		return nil, fmt.Errorf("shortcut: unsupported dtype %v", y.Dtype())
	}
	return y, nil
}

func addAll[T float](y []T, xs [][]T) {
	parallelFor(len(y), 1<<14, func(_, lo, hi int) {
		d := y[lo:hi]
		copy(d, xs[0][lo:hi])
		for _, x := range xs[1:] {
			addTo(d, x[lo:hi])
		}
	})
}

func (o *shortcutOp) DiffWRT(n int) []bool { return allInputs(n) }

func (o *shortcutOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	ds := make(G.Nodes, len(in))
	for i := range ds {
		ds[i] = grad
	}
	return ds, nil
}

// The layer: its type, its parser (network.go's layerTypes), the node it
// adds to a graph and darknet's size rule along one axis (extent).

// RouteLayer is [route]: the concatenation of earlier layers' outputs along
// channels. With groups=G and group_id=k it takes from each input only its
// k-th of G equal channel groups (darknet's route groups, YOLOv4-tiny's CSP).
type RouteLayer struct {
	sec             *Section
	From            []int // absolute layer indices
	Groups, GroupID int
	C               int
}

// ShortcutLayer is [shortcut]: act(previous output + the outputs of the From layers).
type ShortcutLayer struct {
	sec  *Section
	From []int // absolute indices
	C    int
	Act  Activation
}

func (l *RouteLayer) Section() *Section { return l.sec }

func (l *ShortcutLayer) Section() *Section { return l.sec }

func (l *RouteLayer) OutChannels() int { return l.C }

func (l *ShortcutLayer) OutChannels() int { return l.C }

func newRoute(sec *Section, at int, outs []int, abs absFunc) (*RouteLayer, error) {
	idx, err := sec.Ints("layers")
	if err != nil {
		return nil, err
	}
	if len(idx) == 0 {
		return nil, sec.errf(0, "layers= is required")
	}
	r := &ints{sec: sec}
	l := &RouteLayer{sec: sec, Groups: r.get("groups", 1), GroupID: r.get("group_id", 0)}
	if r.err != nil {
		return nil, r.err
	}
	if l.Groups < 1 || l.GroupID < 0 || l.GroupID >= l.Groups {
		return nil, sec.errf(0, "groups=%d group_id=%d: need groups >= 1 and 0 <= group_id < groups", l.Groups, l.GroupID)
	}
	for _, v := range idx {
		a, err := abs(sec, "layers", v, at)
		if err != nil {
			return nil, err
		}
		if outs[a]%l.Groups != 0 {
			return nil, sec.errf(sec.opts["groups"].line, "groups=%d does not divide the %d channels of layer %d", l.Groups, outs[a], a)
		}
		l.From = append(l.From, a)
		l.C += outs[a] / l.Groups
	}
	return l, nil
}

func newShortcut(sec *Section, at, in int, outs []int, abs absFunc) (*ShortcutLayer, error) {
	from, err := sec.Ints("from")
	if err != nil {
		return nil, err
	}
	if len(from) == 0 {
		return nil, sec.errf(0, "from= is required")
	}
	l := &ShortcutLayer{sec: sec, C: in}
	if l.Act, err = activation(sec, "linear"); err != nil {
		return nil, err
	}
	for _, f := range from {
		a, err := abs(sec, "from", f, at)
		if err != nil {
			return nil, err
		}
		if outs[a] != in {
			return nil, sec.errf(sec.opts["from"].line, "from=%d: layer %d has %d channels but the previous layer %d (darknet's channel truncation is not supported)", f, a, outs[a], in)
		}
		l.From = append(l.From, a)
	}
	return l, nil
}

func (l *RouteLayer) node(b *builder, i int) (*G.Node, error) {
	ins := make([]*G.Node, len(l.From))
	for k, f := range l.From {
		ins[k] = b.outs[f]
	}
	switch {
	case l.Groups > 1:
		return RouteGroups(l.Groups, l.GroupID, ins...)
	case len(ins) == 1:
		return ins[0], nil
	}
	// dettrain's route op (one group): a copy per image and input, where
	// gorgonia's Concat walks element iterators.
	return RouteGroups(1, 0, ins...)
}

func (l *RouteLayer) extent(cur int, out []int) int { return out[l.From[0]] }

func (l *ShortcutLayer) node(b *builder, i int) (*G.Node, error) {
	ins := []*G.Node{b.cur}
	for _, f := range l.From {
		ins = append(ins, b.outs[f])
	}
	y, err := shortcut(ins...)
	if err != nil {
		return nil, err
	}
	return Activate(y, l.Act)
}

func (l *ShortcutLayer) extent(cur int, out []int) int { return cur }

func parseRoute(c layerCtx) (Layer, error) { return newRoute(c.sec, c.at, c.outs, c.abs) }

func parseShortcut(c layerCtx) (Layer, error) { return newShortcut(c.sec, c.at, c.in, c.outs, c.abs) }
