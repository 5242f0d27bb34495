package model

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/graph"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BNState is one batch-norm layer's running statistics, shared by every
// graph (input size) built from the same network.
type BNState struct {
	Mean, Var []float32
	// Momentum: running = (1-Momentum)*running + Momentum*batch; 0.1 as in
	// GluonCV (MXNet momentum 0.9) and PyTorch. Darknet uses 0.01, which lags far
	// behind the weights in short runs.
	Momentum float64
	// Eps is added to the variance: xhat = (x-mean)/sqrt(var+Eps).
	Eps float64
}

// bnActOp is batch normalisation followed by an activation, fused:
//
//	training:  mean, var = batch statistics over (N,H,W) per channel (var biased)
//	           y = act(gamma * (x-mean)/sqrt(var+eps) + beta)
//	           running stats updated with the unbiased variance, as darknet and PyTorch do
//	inference: y = act(gamma * (x-rmean)/sqrt(rvar+eps) + beta)
//
// Inputs x (N,C,H,W), gamma (C), beta (C).
type bnActOp struct {
	opBase
	act      Activation
	training bool
	bn       *BNState
	st       *bnActState
	// sync, when set, makes the batch statistics those of every replica's
	// batch together (synchronized BN, syncbn.go).
	sync Collective
	// overwrite (inference graphs, set by NewGraph when x is a conv output
	// read by nothing else) makes the op write y over x.
	overwrite bool
}

type bnActState struct {
	y, dx, dgamma, dbeta *tensor.Dense
	mean, invstd         []float64
}

// BNAct applies batch norm with scale gamma and shift beta, then the activation.
func BNAct(x, gamma, beta *G.Node, a Activation, bn *BNState, training bool) (*G.Node, error) {
	return BNActSync(x, gamma, beta, a, bn, training, nil)
}

// BNActSync is BNAct whose training statistics are reduced over the
// replicas of coll (nil: this batch alone).
func BNActSync(x, gamma, beta *G.Node, a Activation, bn *BNState, training bool, coll Collective) (*G.Node, error) {
	op := &bnActOp{newOpBase("bnact", 4, 4, 1, 1), a, training, bn, &bnActState{}, coll, false}
	return G.ApplyOp(op, x, gamma, beta)
}

func (o *bnActOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return shapeOf(in[0]) }

func (o *bnActOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *bnActOp) forward(t []*tensor.Dense) (G.Value, error) {
	x := t[0]
	var err error
	var y *tensor.Dense
	if o.overwrite && !o.training && !x.IsView() {
		y = x // element-wise: each y[j] depends on x[j] only
	} else {
		y = o.buffer(&o.st.y, x.Dtype(), x.Shape()...)
	}
	switch x.Dtype() {
	case tensor.Float32:
		err = bnForward(o, x.Shape(), f32s(x), f32s(t[1]), f32s(t[2]), f32s(y))
	case tensor.Float64:
		err = bnForward(o, x.Shape(), x.Float64s(), t[1].Float64s(), t[2].Float64s(), y.Float64s())
	default:
		return nil, fmt.Errorf("bnact: unsupported dtype %v", x.Dtype())
	}
	return y, err
}

func bnForward[T float](o *bnActOp, s tensor.Shape, x, gamma, beta, y []T) error {
	n, c, h, w := dims4(s)
	hw := h * w
	m := float64(n * hw)
	if len(o.st.mean) != c {
		o.st.mean, o.st.invstd = make([]float64, c), make([]float64, c)
	}
	if o.training && o.sync != nil {
		return syncForward(o, n, c, hw, x, gamma, beta, y)
	}
	parallelFor(c, 1, func(_, c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			bnForwardChannel(o, ch, n, c, hw, m, x, gamma, beta, y)
		}
	})
	return nil
}

// bnForwardChannel normalises channel ch (and updates its running statistics
// in training).
func bnForwardChannel[T float](o *bnActOp, ch, n, c, hw int, m float64, x, gamma, beta, y []T) {
	var mean, vr float64
	if o.training {
		var sum float64
		for i := 0; i < n; i++ {
			sum += sumOf(x[(i*c+ch)*hw : (i*c+ch+1)*hw])
		}
		mean = sum / m
		var ss float64
		for i := 0; i < n; i++ {
			ss += sqDevOf(x[(i*c+ch)*hw:(i*c+ch+1)*hw], mean)
		}
		vr = ss / m
		unbiased := vr
		if m > 1 {
			unbiased = ss / (m - 1)
		}
		mo := o.bn.Momentum
		o.bn.Mean[ch] = float32((1-mo)*float64(o.bn.Mean[ch]) + mo*mean)
		o.bn.Var[ch] = float32((1-mo)*float64(o.bn.Var[ch]) + mo*unbiased)
	} else {
		mean, vr = float64(o.bn.Mean[ch]), float64(o.bn.Var[ch])
	}
	bnApplyChannel(o, ch, n, c, hw, mean, vr, x, gamma, beta, y)
}

// bnApplyChannel normalises channel ch with the given statistics and applies
// the activation.
func bnApplyChannel[T float](o *bnActOp, ch, n, c, hw int, mean, vr float64, x, gamma, beta, y []T) {
	inv := 1 / math.Sqrt(vr+o.bn.Eps)
	o.st.mean[ch], o.st.invstd[ch] = mean, inv
	sc := float64(gamma[ch]) * inv
	sh := float64(beta[ch]) - mean*sc
	a, b := T(sc), T(sh)
	for i := 0; i < n; i++ {
		off := (i*c + ch) * hw
		xs, ys := x[off:off+hw], y[off:off+hw]
		if x32, ok := any(xs).([]float32); ok && (o.act == Leaky || o.act == Linear) {
			affine32(x32, any(ys).([]float32), float32(a), float32(b), o.act == Leaky)
			continue
		}
		switch o.act {
		case Leaky:
			ys = ys[:len(xs)]
			for j, v := range xs {
				z := a*v + b
				ys[j] = max(z, 0.1*z) // z < 0 ? 0.1z : z, without a branch
			}
		case Linear:
			for j, v := range xs {
				ys[j] = a*v + b
			}
		default:
			for j, v := range xs {
				ys[j] = act(o.act, a*v+b)
			}
		}
	}
}

func (o *bnActOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (o *bnActOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if !o.training {
		return nil, fmt.Errorf("%s: no gradient in inference mode", o.name)
	}
	dx, err := newBack("bnactgrad", &bnActBack{fw: o, dy: grad}, 0, in[0], in[1], in[2], out, grad)
	if err != nil {
		return nil, err
	}
	c := in[1].Shape().Clone()
	dg, err := G.ApplyOp(newExtract("dgamma", 4, c, func() *tensor.Dense { return o.st.dgamma }), dx)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(newExtract("dbeta", 4, c, func() *tensor.Dense { return o.st.dbeta }), dx)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dg, db}, nil
}

// bnActBack takes (x, gamma, beta, y, dy) and returns dx, leaving dgamma and
// dbeta in the forward op's state. With g = dy * act'(z), z = gamma*xhat + beta,
// xhat = (x-mean)*invstd, M = N*H*W:
//
//	dbeta = sum g,  dgamma = sum g*xhat,
//	dx = gamma*invstd/M * (M*g - dbeta - xhat*dgamma)
type bnActBack struct {
	fw *bnActOp
	// dy is the gradient node this op reads. inPlace (set by
	// planInPlace) makes the op write dx over dy's buffer, which only this
	// op reads: one activation-sized buffer less per BN layer.
	dy      *G.Node
	inPlace bool
}

// bnActGradOp is the BN backward op (planInPlace and inPlaceSource look for it).
type bnActGradOp = backOp[*bnActBack]

func (k *bnActBack) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	x := t[0]
	st := k.fw.st
	var dx *tensor.Dense
	if k.inPlace && k.fw.sync == nil && t[4].Dtype() == x.Dtype() && t[4].Shape().Eq(x.Shape()) && !t[4].IsView() {
		dx = t[4]
	} else {
		dx = o.grad(&st.dx, x)
	}
	c := x.Shape()[1]
	dg := o.buffer(&st.dgamma, x.Dtype(), c)
	db := o.buffer(&st.dbeta, x.Dtype(), c)
	var err error
	switch x.Dtype() {
	case tensor.Float32:
		err = bnBackward(k.fw, x.Shape(), f32s(x), f32s(t[1]), f32s(t[2]), f32s(t[3]), f32s(t[4]), f32s(dx), f32s(dg), f32s(db))
	case tensor.Float64:
		err = bnBackward(k.fw, x.Shape(), x.Float64s(), t[1].Float64s(), t[2].Float64s(), t[3].Float64s(), t[4].Float64s(),
			dx.Float64s(), dg.Float64s(), db.Float64s())
	}
	return dx, err
}

func bnBackward[T float](o *bnActOp, s tensor.Shape, x, gamma, beta, y, dy, dx, dgamma, dbeta []T) error {
	n, c, h, w := dims4(s)
	hw := h * w
	m := float64(n * hw)
	if o.sync != nil {
		return syncBackward(o, n, c, hw, x, gamma, beta, y, dy, dx, dgamma, dbeta)
	}
	parallelFor(c, 1, func(_, c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			mean, inv := o.st.mean[ch], o.st.invstd[ch]
			a, b := T(float64(gamma[ch])*inv), T(float64(beta[ch])-mean*float64(gamma[ch])*inv) // z = a*x + b
			var sg, sgx float64
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				xs, ys, ds, gs := x[off:off+hw], y[off:off+hw], dy[off:off+hw], dx[off:off+hw]
				s1, s2 := actGradSums(o.act, a, b, xs, ys, ds, gs) // keep g = dy*act'(z) in dx for the second pass
				sg += float64(s1)
				sgx += float64(s2)
			}
			sgx = (sgx - mean*sg) * inv // sum g*xhat
			dbeta[ch], dgamma[ch] = T(sg), T(sgx)
			// dx = k*(M*g - sg - xhat*sgx) = A*g + B*x + C
			k := float64(gamma[ch]) * inv / m
			A, B, C := T(k*m), T(-k*sgx*inv), T(-k*sg+k*sgx*inv*mean)
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				xs, gs := x[off:off+hw], dx[off:off+hw]
				if g32, ok := any(gs).([]float32); ok {
					axpbyc32(g32, any(xs).([]float32), float32(A), float32(B), float32(C))
					continue
				}
				for j, v := range xs {
					gs[j] = A*gs[j] + B*v + C
				}
			}
		}
	})
	return nil
}

// actGradSums is actGradSlice that also returns sum g and sum g*x, in one
// pass over the data for the common activations.
func actGradSums[T float](act Activation, a, b T, x, y, dy, g []T) (s1, s2 T) {
	switch act {
	case Leaky:
		if y32, ok := any(y).([]float32); ok {
			a, b := leakyGradSums32(any(x).([]float32), y32, any(dy).([]float32), any(g).([]float32))
			return T(a), T(b)
		}
		for j, v := range y {
			d := dy[j]
			if v <= 0 {
				d *= 0.1
			}
			g[j] = d
			s1 += d
			s2 += d * x[j]
		}
	case Linear:
		copy(g, dy)
		return dotSums(x, dy)
	default:
		actGradSlice(act, a, b, x, y, dy, g)
		for j, d := range g {
			s1 += d
			s2 += d * x[j]
		}
	}
	return s1, s2
}

// actGradSlice sets g = dy * act'(z) with z = a*x + b and y = act(z).
func actGradSlice[T float](act Activation, a, b T, x, y, dy, g []T) {
	switch act {
	case Leaky:
		for j, v := range y {
			if v > 0 {
				g[j] = dy[j]
			} else {
				g[j] = 0.1 * dy[j]
			}
		}
	case Linear:
		copy(g, dy)
	default:
		for j := range x {
			g[j] = dy[j] * actGrad(act, a*x[j]+b, y[j])
		}
	}
}

// biasActOp is y = act(x + bias[c]) for convolutions without batch norm
// (the linear 1x1 convs in front of the YOLO heads). Inputs x (N,C,H,W), bias (C).
type biasActOp struct {
	opBase
	act Activation
	st  *biasActState
}

type biasActState struct {
	y, dx, db *tensor.Dense
	// overwrite: as bnActOp's (inference graphs only).
	overwrite bool
}

// BiasAct adds a per-channel bias and applies the activation.
func BiasAct(x, bias *G.Node, a Activation) (*G.Node, error) {
	return G.ApplyOp(&biasActOp{newOpBase("biasact", 4, 4, 1), a, &biasActState{}}, x, bias)
}

func (o *biasActOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return shapeOf(in[0]) }

func (o *biasActOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *biasActOp) forward(t []*tensor.Dense) (G.Value, error) {
	x := t[0]
	var y *tensor.Dense
	if o.st.overwrite && !x.IsView() {
		y = x
	} else {
		y = o.buffer(&o.st.y, x.Dtype(), x.Shape()...)
	}
	switch x.Dtype() {
	case tensor.Float32:
		biasForward(o.act, x.Shape(), f32s(x), f32s(t[1]), f32s(y))
	case tensor.Float64:
		biasForward(o.act, x.Shape(), x.Float64s(), t[1].Float64s(), y.Float64s())
	}
	return y, nil
}

func biasForward[T float](a Activation, s tensor.Shape, x, b, y []T) {
	n, c, h, w := dims4(s)
	hw := h * w
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			off := (i*c + ch) * hw
			bb := b[ch]
			for j, v := range x[off : off+hw] {
				y[off+j] = act(a, v+bb)
			}
		}
	}
}

func (o *biasActOp) DiffWRT(int) []bool { return []bool{true, true} }
func (o *biasActOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	dx, err := newBack("biasactgrad", biasActBack{o}, 0, in[0], in[1], out, grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(newExtract("dbias", 4, in[1].Shape().Clone(), func() *tensor.Dense { return o.st.db }), dx)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, db}, nil
}

// biasActBack takes (x, bias, y, dy) and returns dx = dy*act'(x+bias);
// dbias = sum over N,H,W of dx.
type biasActBack struct{ fw *biasActOp }

func (k biasActBack) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	y := t[2]
	dx := o.grad(&k.fw.st.dx, y)
	db := o.buffer(&k.fw.st.db, y.Dtype(), y.Shape()[1])
	switch y.Dtype() {
	case tensor.Float32:
		biasBackward(k.fw.act, y.Shape(), f32s(t[0]), f32s(t[1]), f32s(y), f32s(t[3]), f32s(dx), f32s(db))
	case tensor.Float64:
		biasBackward(k.fw.act, y.Shape(), t[0].Float64s(), t[1].Float64s(), y.Float64s(), t[3].Float64s(), dx.Float64s(), db.Float64s())
	}
	return dx, nil
}

func biasBackward[T float](a Activation, s tensor.Shape, x, b, y, dy, dx, db []T) {
	n, c, h, w := dims4(s)
	hw := h * w
	clear(db)
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			off := (i*c + ch) * hw
			var sum float64
			bb := b[ch]
			for j := off; j < off+hw; j++ {
				g := dy[j] * actGrad(a, x[j]+bb, y[j])
				dx[j] = g
				sum += float64(g)
			}
			db[ch] += T(sum)
		}
	}
}

// sum4 is the float64 sum of v with four accumulators (independent add
// chains: about four times the speed of one; a fixed order, so deterministic).
func sum4[T float](v []T) float64 {
	var a0, a1, a2, a3 float64
	j := 0
	for ; j+4 <= len(v); j += 4 {
		a0 += float64(v[j])
		a1 += float64(v[j+1])
		a2 += float64(v[j+2])
		a3 += float64(v[j+3])
	}
	for ; j < len(v); j++ {
		a0 += float64(v[j])
	}
	return (a0 + a1) + (a2 + a3)
}

// sumOf is sum4, with the AVX2 kernel for float32.
func sumOf[T float](v []T) float64 {
	if v32, ok := any(v).([]float32); ok {
		return sum32(v32)
	}
	return sum4(v)
}

// sqDevOf is sqDev4, with the AVX2 kernel for float32.
func sqDevOf[T float](v []T, mean float64) float64 {
	if v32, ok := any(v).([]float32); ok {
		return sqDev32(v32, mean)
	}
	return sqDev4(v, mean)
}

// sqDev4 is the float64 sum of (v-mean)^2, four accumulators.
func sqDev4[T float](v []T, mean float64) float64 {
	var a0, a1, a2, a3 float64
	j := 0
	for ; j+4 <= len(v); j += 4 {
		d0, d1, d2, d3 := float64(v[j])-mean, float64(v[j+1])-mean, float64(v[j+2])-mean, float64(v[j+3])-mean
		a0 += d0 * d0
		a1 += d1 * d1
		a2 += d2 * d2
		a3 += d3 * d3
	}
	for ; j < len(v); j++ {
		d := float64(v[j]) - mean
		a0 += d * d
	}
	return (a0 + a1) + (a2 + a3)
}

// dotSums returns sum g and sum g*x, two accumulators each.
func dotSums[T float](x, g []T) (s1, s2 T) {
	var a0, a1, b0, b1 T
	x = x[:len(g)]
	j := 0
	for ; j+2 <= len(g); j += 2 {
		a0 += g[j]
		a1 += g[j+1]
		b0 += g[j] * x[j]
		b1 += g[j+1] * x[j+1]
	}
	for ; j < len(g); j++ {
		a0 += g[j]
		b0 += g[j] * x[j]
	}
	return a0 + a1, b0 + b1
}

// leakyGradSums32 sets g = dy * leaky'(y) (0.1 where y <= 0) and returns
// sum g and sum g*x. The slope is picked by the sign bit instead of a branch
// (the signs of activations are close to random, so a branch mispredicts);
// (bits-1)>>31 is 1 for y <= 0 (+0 included), 0 for y > 0 (and for -0,
// where the derivative is a convention anyway).
func leakyGradSums32(x, y, dy, g []float32) (s1, s2 float32) {
	slope := [2]float32{1, 0.1}
	x, dy, g = x[:len(y)], dy[:len(y)], g[:len(y)]
	var a0, a1, b0, b1 float32
	j := 0
	if useAVX2 && len(y) >= 16 {
		// y > 0 picks 1 there: the same slopes except at y = -0.
		a0, b0 = leakyGradSumsAVX2(x, y, dy, g)
		j = len(y) &^ 15
	}
	for ; j+2 <= len(y); j += 2 {
		d0 := dy[j] * slope[(math.Float32bits(y[j])-1)>>31]
		d1 := dy[j+1] * slope[(math.Float32bits(y[j+1])-1)>>31]
		g[j], g[j+1] = d0, d1
		a0 += d0
		a1 += d1
		b0 += d0 * x[j]
		b1 += d1 * x[j+1]
	}
	for ; j < len(y); j++ {
		d := dy[j] * slope[(math.Float32bits(y[j])-1)>>31]
		g[j] = d
		a0 += d
		b0 += d * x[j]
	}
	return a0 + a1, b0 + b1
}

// disableInPlace turns planInPlace off (tests compare both).
var disableInPlace bool

// planInPlace marks the BN backward ops and gradient sums whose incoming
// gradient (the first term, for a sum) is a buffer of one of dettrain's own
// backward ops that no other node reads: they overwrite it with their own
// result instead of keeping a buffer of their own. A gradient read by two
// nodes (a shortcut passes its gradient to both inputs) is left alone.
func planInPlace(g *G.ExprGraph) {
	if disableInPlace {
		return
	}
	ownBuffer := func(n *G.Node) bool {
		switch n.Op().(type) {
		case *backOp[maxPoolBack], *backOp[convBackX], *backOp[upsampleBack], *backOp[routeBack], *bnActGradOp, *gradSumOp, *backOp[biasActBack]:
			return g.To(n.ID()).Len() == 1
		}
		return false
	}
	for _, n := range g.AllNodes() {
		switch op := n.Op().(type) {
		case *bnActGradOp:
			op.k.inPlace = op.k.dy != nil && ownBuffer(op.k.dy)
		case *gradSumOp:
			op.into = -1
			for i, k := range graph.NodesOf(g.From(n.ID())) {
				if (i == 0 || op.arity == 2) && ownBuffer(k.(*G.Node)) {
					op.into = i
					break
				}
			}
		}
	}
}

// planOverwrite makes the BN and bias ops of an inference graph write over
// their input when it is a conv output that nothing else reads: one
// activation-sized buffer less per conv layer.
func planOverwrite(g *G.ExprGraph) {
	for _, n := range g.AllNodes() {
		var flag *bool
		switch op := n.Op().(type) {
		case *bnActOp:
			if op.training {
				continue
			}
			flag = &op.overwrite
		case *biasActOp:
			flag = &op.st.overwrite
		default:
			continue
		}
		kids := graph.NodesOf(g.From(n.ID()))
		if len(kids) == 0 {
			continue
		}
		for _, k := range kids {
			x, ok := k.(*G.Node)
			if !ok {
				continue
			}
			if _, conv := x.Op().(*convOp); conv && g.To(x.ID()).Len() == 1 {
				*flag = true
			}
		}
	}
}
