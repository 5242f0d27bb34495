package model

import (
	"fmt"

	"gonum.org/v1/gonum/graph"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// backward builds the gradient of the scalar loss with respect to params in
// g, as gorgonia's Grad does (each op's SymDiff, nodes visited consumers
// first), with one difference: where a node's gradient has several terms (a
// shortcut or route source read by two layers) they are summed by
// dettrain's gradSumOp, which adds into the first term's buffer, instead of
// a chain of gorgonia Adds that allocate a fresh tensor every step. It
// returns the gradient node of each param. The graph then needs no
// BindDualValues: Graph.Grads reads these nodes' values (the ops' own
// buffers, overwritten by the next Run).
func backward(g *G.ExprGraph, loss *G.Node, params G.Nodes) (G.Nodes, error) {
	if !loss.IsScalar() {
		return nil, fmt.Errorf("backward: the loss must be a scalar, got %v", loss.Shape())
	}
	sorted, err := G.Sort(g) // every node before its children (inputs)
	if err != nil {
		return nil, err
	}
	children := func(n *G.Node) G.Nodes {
		ns := graph.NodesOf(g.From(n.ID()))
		out := make(G.Nodes, len(ns))
		for i, c := range ns {
			out[i] = c.(*G.Node)
		}
		return out
	}
	// Active nodes lie on a path from a param to the loss.
	reachesLoss := map[*G.Node]bool{loss: true}
	for _, n := range sorted {
		if reachesLoss[n] {
			for _, c := range children(n) {
				reachesLoss[c] = true
			}
		}
	}
	fromParam := map[*G.Node]bool{}
	for _, p := range params {
		fromParam[p] = true
	}
	for i := len(sorted) - 1; i >= 0; i-- {
		n := sorted[i]
		for _, c := range children(n) {
			if fromParam[c] {
				fromParam[n] = true
			}
		}
	}
	one := G.NewScalar(g, loss.Dtype(), G.WithName("dloss"), G.WithValue(oneOf(loss.Dtype())))
	terms := map[*G.Node]G.Nodes{loss: {one}}
	grad := map[*G.Node]*G.Node{}
	for _, n := range sorted {
		if !reachesLoss[n] || !fromParam[n] {
			continue
		}
		ts := terms[n]
		switch len(ts) {
		case 0:
			return nil, fmt.Errorf("backward: no gradient reaches %v", n)
		case 1:
			grad[n] = ts[0]
		default:
			s, err := G.ApplyOp(newGradSum(n.Dims(), len(ts)), ts...)
			if err != nil {
				return nil, fmt.Errorf("backward: summing the gradient of %v: %w", n, err)
			}
			grad[n] = s
		}
		if n.Op() == nil { // a param
			continue
		}
		op, ok := n.Op().(G.SDOp)
		if !ok {
			return nil, fmt.Errorf("backward: %v has no symbolic derivative", n)
		}
		kids := children(n)
		gs, err := op.SymDiff(kids, n, grad[n])
		if err != nil {
			return nil, fmt.Errorf("backward: %v: %w", n, err)
		}
		diff := op.DiffWRT(len(kids))
		for i, k := range kids {
			if diff[i] && gs[i] != nil {
				terms[k] = append(terms[k], gs[i])
			}
		}
	}
	out := make(G.Nodes, len(params))
	for i, p := range params {
		if out[i] = grad[p]; out[i] == nil {
			return nil, fmt.Errorf("backward: %s does not affect the loss", p.Name())
		}
	}
	return out, nil
}

func oneOf(dt tensor.Dtype) any {
	if dt == tensor.Float64 {
		return 1.0
	}
	return float32(1)
}

// gradSumOp adds the terms of a node's gradient, left to right as gorgonia's
// Adds did: y = ((x0 + x1) + x2) ... into is the term whose buffer y
// overwrites (set by planInPlace when it is a buffer of a dettrain backward
// op that only this op reads: the first term, or either of two, since x0 +
// x1 = x1 + x0 exactly), or -1: y has a buffer of its own.
type gradSumOp struct {
	opBase
	y    *tensor.Dense
	into int
	gradBuf
}

func newGradSum(rank, k int) *gradSumOp {
	in := make([]int, k)
	for i := range in {
		in[i] = rank
	}
	return &gradSumOp{opBase: newOpBase("gradsum", rank, in...), into: -1}
}

func (o *gradSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return sameShapes("gradsum: term", in)
}

func (o *gradSumOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *gradSumOp) forward(ts []*tensor.Dense) (G.Value, error) {
	var y *tensor.Dense
	if o.into >= 0 && !ts[o.into].IsView() {
		y = ts[o.into]
		if o.into == 1 { // two terms: x1 + x0
			ts = []*tensor.Dense{ts[1], ts[0]}
		}
	} else {
		y = o.gradBuffer(o.slot, &o.y, ts[0].Dtype(), ts[0].Shape()...)
	}
	switch y.Dtype() {
	case tensor.Float32:
		sumTerms(f32s(y), ts, y == ts[0], f32s)
	case tensor.Float64:
		sumTerms(y.Float64s(), ts, y == ts[0], (*tensor.Dense).Float64s)
	default:
		return nil, fmt.Errorf("gradsum: unsupported dtype %v", y.Dtype())
	}
	return y, nil
}

// sumTerms sets y = ((ts[0] + ts[1]) + ...); y is ts[0]'s storage when inPlace.
func sumTerms[T float](y []T, ts []*tensor.Dense, inPlace bool, data func(*tensor.Dense) []T) {
	parallelFor(len(y), 1<<14, func(_, lo, hi int) {
		d := y[lo:hi]
		if !inPlace {
			copy(d, data(ts[0])[lo:hi])
		}
		for _, t := range ts[1:] {
			addTo(d, data(t)[lo:hi])
		}
	})
}

func (o *gradSumOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (o *gradSumOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("%s: gradients of gradients are not implemented", o.name)
}
