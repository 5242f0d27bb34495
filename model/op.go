package model

import (
	"fmt"
	"hash"
	"hash/fnv"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/dettrain/dettrain/blas"
)

// This file holds what every dettrain op shares: the gorgonia.Op methods that
// are the same for all of them, tensor helpers and the element type switch.
//
// Each op is a struct with a pointer to its own state (buffers reused from
// step to step, values saved by the forward pass for the backward pass). One
// op value is one node: graphs for different input sizes get their own op
// values and share only the weights and BN running statistics.

// float is the element type of a graph: float32 to train, float64 for the
// numerical gradient checks.
type float = blas.Float

type opBase struct {
	name  string
	arity int
	// in and out are the ranks of the inputs and of the output.
	in      []int
	outRank int
	arena   *arenaRef // the graph's arena (WithArena), or nil
}

func (o opBase) Arity() int { return o.arity }
func (o opBase) Type() hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, 0, len(o.in)+1)
	for _, d := range o.in {
		ts = append(ts, rankType(d, a))
	}
	ts = append(ts, rankType(o.outRank, a))
	return hm.NewFnType(ts...)
}
func rankType(d int, a hm.TypeVariable) hm.Type {
	if d == 0 {
		return a
	}
	return G.TensorType{Dims: d, Of: a}
}
func (o opBase) ReturnsPtr() bool      { return false }
func (o opBase) CallsExtern() bool     { return false }
func (o opBase) OverwritesInput() int  { return -1 }
func (o opBase) String() string        { return o.name }
func (o opBase) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%s", o.name) }
func (o opBase) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// newOpBase is the opBase of an op named kind#k (uniqueName) whose inputs
// have ranks in and whose output has rank out.
func newOpBase(kind string, out int, in ...int) opBase {
	return opBase{uniqueName(kind), len(in), in, out, nil}
}

// do is the body of every op's Do: it times the op (bench --op-times) and
// hands fn, the op's own code, its inputs as tensors.
func (o *opBase) do(vs []G.Value, fn func(t []*tensor.Dense) (G.Value, error)) (G.Value, error) {
	defer timeOp(o.name)()
	t, err := densen(vs, o.arity)
	if err != nil {
		return nil, err
	}
	return fn(t)
}

// shapes converts an op's input shapes (InferShape's arguments).
func shapes(in []G.DimSizer) ([]tensor.Shape, error) {
	out := make([]tensor.Shape, len(in))
	for i, d := range in {
		s, err := shapeOf(d)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// allInputs is DiffWRT for an op differentiable in each of its n inputs.
func allInputs(n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = true
	}
	return out
}

// backKernel is what a backward op (backOp) computes: its output from its
// inputs t, through o's buffers (o.grad for the gradient it returns). Side
// products, such as the gradients of BN's gamma and beta, go to the forward
// op's state, which the kernel points to; extractOp nodes read them.
type backKernel interface {
	backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error)
}

// backOp is the backward op of every dettrain op that has one: the
// gorgonia.Op methods here, the computation in its kernel K (actGrad,
// convGradX, ...), the output shaped as input like.
type backOp[K backKernel] struct {
	backBase
	k K
}

type backBase struct {
	opBase
	like int
	// param: the output is a parameter's gradient, read after the Run (a
	// conv's dW): it keeps its own buffer and never gets a slot (planSlots).
	param bool
	gradBuf
}

// newBack applies the backward op of k to in (named kind#n); its output has
// in[like]'s shape.
func newBack[K backKernel](kind string, k K, like int, in ...*G.Node) (*G.Node, error) {
	return G.ApplyOp(backOpFor(kind, k, like, false, in), in...)
}

func backOpFor[K backKernel](kind string, k K, like int, param bool, in G.Nodes) *backOp[K] {
	ranks := make([]int, len(in))
	for i, n := range in {
		ranks[i] = n.Dims()
	}
	return &backOp[K]{backBase{newOpBase(kind, in[like].Dims(), ranks...), like, param, gradBuf{}}, k}
}

// gradOf is a SymDiff's result for an op with one input.
func gradOf(dx *G.Node, err error) (G.Nodes, error) {
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

func (o *backOp[K]) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return shapeOf(in[o.like]) }
func (o *backOp[K]) Do(vs ...G.Value) (G.Value, error) {
	return o.do(vs, func(t []*tensor.Dense) (G.Value, error) { return o.k.backward(&o.backBase, t) })
}

// gradSlotRef is nil for a parameter's gradient: planSlots leaves it alone.
func (o *backOp[K]) gradSlotRef() **gradSlot {
	if o.param {
		return nil
	}
	return &o.slot
}

// grad returns the backward op's output buffer *t, shaped and typed as like:
// the op's gradient slot (planSlots) when it has one.
func (o *backBase) grad(t **tensor.Dense, like *tensor.Dense) *tensor.Dense {
	return o.gradBuffer(o.slot, t, like.Dtype(), like.Shape()...)
}

// uniqueName makes op names distinct per node: gorgonia deduplicates nodes
// whose op hashes and children are equal, and two layers must never merge.
var opCounter atomic.Int64

func uniqueName(kind string) string {
	return fmt.Sprintf("%s#%d", kind, opCounter.Add(1))
}

func dense(v G.Value) (*tensor.Dense, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("expected *tensor.Dense, got %T", v)
	}
	return d, checkLive(d)
}

func densen(vs []G.Value, n int) ([]*tensor.Dense, error) {
	if len(vs) != n {
		return nil, fmt.Errorf("expected %d inputs, got %d", n, len(vs))
	}
	out := make([]*tensor.Dense, n)
	for i, v := range vs {
		d, err := dense(v)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// buffer returns *t reshaped or reallocated to shape with dtype dt. Its
// contents are unspecified.
func buffer(t **tensor.Dense, dt tensor.Dtype, shape ...int) *tensor.Dense {
	if *t != nil && (*t).Dtype() == dt && (*t).Shape().Eq(tensor.Shape(shape)) {
		return *t
	}
	*t = tensor.New(tensor.WithShape(shape...), tensor.Of(dt))
	return *t
}

func f32s(t *tensor.Dense) []float32 { return t.Float32s() }

// dims4 returns N, C, H, W of a 4-D shape.
func dims4(s tensor.Shape) (n, c, h, w int) { return s[0], s[1], s[2], s[3] }

func shapeOf(ds G.DimSizer) (tensor.Shape, error) {
	s, ok := ds.(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("expected tensor.Shape, got %T", ds)
	}
	return s, nil
}

// extractOp returns a buffer that an earlier backward op filled as a side
// product (the gradients of BN's gamma and beta, of a bias). Its input is
// that backward op's node, which orders the two.
type extractOp struct {
	opBase
	get   func() *tensor.Dense
	shape tensor.Shape
}

func newExtract(name string, inRank int, shape tensor.Shape, get func() *tensor.Dense) *extractOp {
	return &extractOp{newOpBase(name, len(shape), inRank), get, shape}
}
func (o *extractOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.shape.Clone(), nil }
func (o *extractOp) Do(...G.Value) (G.Value, error) {
	t := o.get()
	if t == nil {
		return nil, fmt.Errorf("%s: the backward pass has not run", o.name)
	}
	return t, nil
}
