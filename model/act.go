package model

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Activation is a darknet activation function (darknet's activations.c).
type Activation int

const (
	Linear   Activation = iota
	Leaky               // x if x > 0 else 0.1x (darknet's leaky)
	ReLU                // max(x, 0)
	Logistic            // 1/(1+exp(-x))
	Mish                // x * tanh(softplus(x)) (Misra 2019; darknet's mish, softplus threshold 20)
	Swish               // x * logistic(x) (Ramachandran et al. 2017; darknet's swish)
)

var activationNames = map[string]Activation{"linear": Linear, "leaky": Leaky, "relu": ReLU, "logistic": Logistic,
	"mish": Mish, "swish": Swish}

// activationList is the supported names, for error messages.
const activationList = "linear, leaky, relu, logistic, mish, swish"

func (a Activation) String() string {
	for k, v := range activationNames {
		if v == a {
			return k
		}
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// ParseActivation maps darknet's activation names.
func ParseActivation(s string) (Activation, bool) { a, ok := activationNames[s]; return a, ok }

// needsInput reports whether the derivative needs the activation's input z:
// for mish and swish it cannot be written through the output y alone.
func (a Activation) needsInput() bool { return a == Mish || a == Swish }

// softplus is log(1+exp(z)) as darknet's softplus_activate computes it for
// mish: z above 20, exp(z) below -20.
func softplus(z float64) float64 {
	switch {
	case z > 20:
		return z
	case z < -20:
		return math.Exp(z)
	}
	return math.Log1p(math.Exp(z))
}

func act[T float](a Activation, z T) T {
	switch a {
	case Leaky:
		if z > 0 {
			return z
		}
		return 0.1 * z
	case ReLU:
		if z > 0 {
			return z
		}
		return 0
	case Logistic:
		return T(1 / (1 + math.Exp(-float64(z))))
	case Mish:
		x := float64(z)
		return T(x * math.Tanh(softplus(x)))
	case Swish:
		x := float64(z)
		return T(x / (1 + math.Exp(-x)))
	}
	return z
}

// actGrad is d act/dz at input z with output y = act(z). The piecewise-linear
// activations and the logistic use y only (z may be anything); mish and swish
// need z:
//
//	mish'  = tanh(sp) + z * (1 - tanh(sp)^2) * sigmoid(z),  sp = softplus(z)
//	swish' = s + z*s*(1-s),  s = sigmoid(z)
func actGrad[T float](a Activation, z, y T) T {
	switch a {
	case Leaky:
		if y > 0 {
			return 1
		}
		return 0.1
	case ReLU:
		if y > 0 {
			return 1
		}
		return 0
	case Logistic:
		return y * (1 - y)
	case Mish:
		x := float64(z)
		t := math.Tanh(softplus(x))
		return T(t + x*(1-t*t)*sigmoid(x))
	case Swish:
		x := float64(z)
		s := sigmoid(x)
		return T(s + x*s*(1-s))
	}
	return 1
}

// actOp is an activation on its own: y = act(x), element-wise. [shortcut] and
// [scale_channels] use it for their activation= key (convolutions fuse theirs
// with BN or the bias).
type actOp struct {
	opBase
	act Activation
	st  *actState
}

type actState struct{ y, dx *tensor.Dense }

// Activate applies a to every element of x.
func Activate(x *G.Node, a Activation) (*G.Node, error) {
	if a == Linear {
		return x, nil
	}
	return G.ApplyOp(&actOp{newOpBase("act", x.Dims(), x.Dims()), a, &actState{}}, x)
}

func (o *actOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return shapeOf(in[0]) }

func (o *actOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *actOp) forward(t []*tensor.Dense) (G.Value, error) {
	x := t[0]
	y := o.buffer(&o.st.y, x.Dtype(), x.Shape()...)
	switch x.Dtype() {
	case tensor.Float32:
		actForward(o.act, f32s(x), f32s(y))
	case tensor.Float64:
		actForward(o.act, x.Float64s(), y.Float64s())
	default:
		return nil, fmt.Errorf("act: unsupported dtype %v", x.Dtype())
	}
	return y, nil
}

func actForward[T float](a Activation, x, y []T) {
	for i, v := range x {
		y[i] = act(a, v)
	}
}

func (o *actOp) DiffWRT(int) []bool { return []bool{true} }
func (o *actOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return gradOf(newBack("actgrad", actBack{o}, 0, in[0], out, grad))
}

// actBack takes (x, y, dy) and returns dx = dy * act'(x).
type actBack struct{ fw *actOp }

func (k actBack) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	dx := o.grad(&k.fw.st.dx, t[0])
	switch t[0].Dtype() {
	case tensor.Float32:
		actBackward(k.fw.act, f32s(t[0]), f32s(t[1]), f32s(t[2]), f32s(dx))
	case tensor.Float64:
		actBackward(k.fw.act, t[0].Float64s(), t[1].Float64s(), t[2].Float64s(), dx.Float64s())
	}
	return dx, nil
}

func actBackward[T float](a Activation, x, y, dy, dx []T) {
	for i := range x {
		dx[i] = dy[i] * actGrad(a, x[i], y[i])
	}
}
