package model

import (
	"fmt"
	"sync"

	"gonum.org/v1/gonum/graph"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Gradient buffers shared by liveness. Each backward op used to keep its
// output (an activation-sized gradient) for the whole step, although most
// are read once, by the next backward op, right after they are written.
// planSlots walks the training graph in the tape machine's order and gives
// the backward ops whose outputs are never live at the same time the same
// memory (a gradSlot), as a register allocator would; in-place ops (BN
// backward, gradient sums) extend the life of the buffer they write over.

// gradSlot is memory shared by backward ops whose outputs' lifetimes do not
// overlap. owner is the tensor (an op's view of the memory) written last:
// an op that reads a tensor of a slot whose owner is another one fails
// (checkLive), rather than reading a buffer reused while still needed.
type gradSlot struct {
	arena *Arena // its memory is the arena's slot idx (WithArena), or its own
	idx   int
	size  int
	f32   []float32
	f64   []float64
	owner *tensor.Dense
	views []*tensor.Dense // registered in slotOf
}

// gradBuf is embedded in the backward ops that planSlots may give a slot.
type gradBuf struct{ slot *gradSlot }

func (b *gradBuf) gradSlotRef() **gradSlot { return &b.slot }

type slotted interface{ gradSlotRef() **gradSlot }

// slotRef is n's gradient slot field, or nil when planSlots leaves n alone
// (not a backward op, or one whose output is a parameter's gradient).
func slotRef(n *G.Node) **gradSlot {
	if s, ok := n.Op().(slotted); ok {
		return s.gradSlotRef()
	}
	return nil
}

// slotOf maps each tensor view of a slot's memory to its slot (checkLive).
var slotOf sync.Map // *tensor.Dense -> *gradSlot

// gradBuffer returns *t, a tensor of shape over the slot's memory, or a
// private buffer (buffer) when s is nil. The slot's owner becomes *t.
func (o *opBase) gradBuffer(s *gradSlot, t **tensor.Dense, dt tensor.Dtype, shape ...int) *tensor.Dense {
	if s == nil {
		return o.buffer(t, dt, shape...)
	}
	size := tensor.Shape(shape).TotalSize()
	if s.arena != nil && dt == tensor.Float32 {
		s.f32 = s.arena.slot(s.idx, max(size, s.size)) // shared with other graphs' slot idx
	}
	if *t == nil || (*t).Dtype() != dt || !(*t).Shape().Eq(tensor.Shape(shape)) || !s.holds(*t) {
		var backing any
		switch dt {
		case tensor.Float32:
			if len(s.f32) < max(size, s.size) {
				s.f32 = make([]float32, max(size, s.size))
			}
			backing = s.f32[:size]
		case tensor.Float64:
			if len(s.f64) < max(size, s.size) {
				s.f64 = make([]float64, max(size, s.size))
			}
			backing = s.f64[:size]
		default:
			return buffer(t, dt, shape...)
		}
		if *t != nil {
			slotOf.Delete(*t)
		}
		*t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(backing))
		slotOf.Store(*t, s)
		s.views = append(s.views, *t)
	}
	s.owner = *t
	return *t
}

// holds reports whether t is a view of s's current memory.
func (s *gradSlot) holds(t *tensor.Dense) bool {
	switch d := t.Data().(type) {
	case []float32:
		return len(d) > 0 && len(s.f32) > 0 && &d[0] == &s.f32[0]
	case []float64:
		return len(d) > 0 && len(s.f64) > 0 && &d[0] == &s.f64[0]
	}
	return false
}

// checkLive fails when t lives in a slot that another op has written since.
func checkLive(t *tensor.Dense) error {
	if s, ok := slotOf.Load(t); ok && s.(*gradSlot).owner != t {
		return fmt.Errorf("internal error: a gradient buffer was reused while still needed (planSlots)")
	}
	return nil
}

// disableSlots turns planSlots off (tests compare both).
var disableSlots bool

// release drops the slots' memory and their views' entries in slotOf
// (Graph.Close).
func releaseSlots(slots []*gradSlot) {
	for _, s := range slots {
		for _, v := range s.views {
			slotOf.Delete(v)
		}
		s.views, s.f32, s.f64, s.owner = nil, nil, nil, nil
	}
}

// planSlots assigns gradient slots in a training graph after planInPlace and
// returns them. The order is the tape machine's: gorgonia's Sort, reversed.
func planSlots(g *G.ExprGraph) ([]*gradSlot, error) {
	if disableSlots {
		return nil, nil
	}
	sorted, err := G.Sort(g)
	if err != nil {
		return nil, err
	}
	pos := make(map[*G.Node]int, len(sorted))
	for i, n := range sorted {
		pos[n] = len(sorted) - 1 - i
	}
	// A buffer's nodes: the op that writes it (its root) and the in-place ops
	// that write over it after, each reading the one before.
	type buf struct {
		root       *G.Node
		start, end int
		size       int
	}
	bufOf := map[*G.Node]*buf{}
	lastUse := func(n *G.Node) int {
		end := pos[n]
		for _, c := range graph.NodesOf(g.To(n.ID())) {
			end = max(end, pos[c.(*G.Node)])
		}
		return end
	}
	var bufs []*buf
	for i := len(sorted) - 1; i >= 0; i-- { // execution order
		n := sorted[i]
		if slotRef(n) == nil {
			continue
		}
		if src := inPlaceSource(g, n); src != nil {
			if b := bufOf[src]; b != nil {
				bufOf[n] = b
				b.end = max(b.end, lastUse(n))
			}
			continue // written over its input's buffer: no slot of its own
		}
		b := &buf{root: n, start: pos[n], end: lastUse(n), size: n.Shape().TotalSize()}
		bufOf[n] = b
		bufs = append(bufs, b)
	}
	// Greedy, in order of first write: the smallest free slot that fits (or
	// the largest free one, grown), a slot being free once every reader of
	// its last buffer has run.
	type slotUse struct {
		s   *gradSlot
		end int
	}
	var slots []*slotUse
	var out []*gradSlot
	for _, b := range bufs {
		var best *slotUse
		for _, su := range slots {
			if su.end >= b.start {
				continue
			}
			switch {
			case best == nil:
				best = su
			case su.s.size >= b.size && (best.s.size < b.size || su.s.size < best.s.size):
				best = su
			case best.s.size < b.size && su.s.size > best.s.size:
				best = su
			}
		}
		if best == nil {
			best = &slotUse{s: &gradSlot{}}
			slots = append(slots, best)
			out = append(out, best.s)
		}
		best.s.size = max(best.s.size, b.size)
		best.end = b.end
		*slotRef(b.root) = best.s
	}
	return out, nil
}

// inPlaceSource is the input whose buffer n writes over (planInPlace), or nil.
func inPlaceSource(g *G.ExprGraph, n *G.Node) *G.Node {
	switch op := n.Op().(type) {
	case *bnActGradOp:
		if op.k.inPlace {
			return op.k.dy
		}
	case *gradSumOp:
		if op.into >= 0 {
			return graph.NodesOf(g.From(n.ID()))[op.into].(*G.Node)
		}
	}
	return nil
}

// slotBytes is the memory of a graph's slots once allocated (tests).
func slotBytes(g *G.ExprGraph) (slots, bytes int) {
	seen := map[*gradSlot]bool{}
	for _, n := range g.AllNodes() {
		if s := slotRef(n); s != nil && *s != nil && !seen[*s] {
			seen[*s] = true
			bytes += 4 * (*s).size
		}
	}
	return len(seen), bytes
}
