package model

import (
	"gorgonia.org/tensor"
)

// Arena is memory shared by the training graphs of one network that are
// built for different input sizes and never run at the same time: the
// graphs of one replica under random shapes. Without it each input size's
// graph keeps its own activations and gradient buffers, so k cached sizes
// cost the sum of k graphs; with it they cost about the largest one.
//
// The sharing key is the order of requests within a Run: graphs of one
// network have the same ops in the same order whatever their input size, so
// the k-th activation buffer an op asks for in one graph's Run and the k-th
// in another's are the same role, and get the same memory (grown to the
// largest request); gradient slots (planSlots) are shared by slot index.
// Nothing a graph computes is kept from one Run to the next except the
// weights, BN statistics and parameter gradients (read before the next
// step), so graphs that alternate may overwrite each other's buffers.
//
// When a buffer grows, the views other graphs hold of its old memory are
// dropped (they are rebuilt at their next Run), so that the old memory is
// garbage as soon as the request that outgrew it returns.
type Arena struct {
	graphs int // graphs registered so far (their ids)
	bufs   []arenaBuf
	slots  [][]float32
	bools  arenaSeq[bool]    // dropout masks
	ints   arenaSeq[int32]   // maxpool argmax
	f64s   arenaSeq[float64] // YOLO loss gradients
	next   int
}

type arenaBuf struct {
	mem     []float32
	holders []holder[*tensor.Dense] // every graph's view of mem
}

// NewArena returns an empty arena (WithArena).
func NewArena() *Arena { return &Arena{} }

// WithArena makes a training graph take its float32 activation and
// gradient buffers from a (see Arena). Graphs sharing an arena must not run
// concurrently.
func WithArena(a *Arena) GraphOption { return func(o *graphOptions) { o.arena = a } }

// holder is a graph's pointer to its view of arena memory.
type holder[T any] struct {
	graph int
	p     *T
}

// arenaRef is what an op holds: the arena and its graph's id there.
type arenaRef struct {
	*Arena
	graph int
}

func (a *Arena) begin() { a.next, a.bools.next, a.ints.next, a.f64s.next = 0, 0, 0, 0 }

// register gives a new graph its id.
func (a *Arena) register() *arenaRef {
	a.graphs++
	return &arenaRef{a, a.graphs}
}

// release forgets graph id's views (Graph.Close), so that a long run that
// builds and drops graphs does not keep their states.
func (a *Arena) release(id int) {
	for i := range a.bufs {
		a.bufs[i].holders = dropGraph(a.bufs[i].holders, id)
	}
	a.bools.release(id)
	a.ints.release(id)
	a.f64s.release(id)
}

func dropGraph[T any](hs []holder[T], id int) []holder[T] {
	out := hs[:0]
	for _, h := range hs {
		if h.graph != id {
			out = append(out, h)
		}
	}
	clear(hs[len(out):])
	return out
}

// hold adds graph id's pointer p to hs unless it is there.
func hold[T any](hs []holder[T], id int, p *T) []holder[T] {
	for _, h := range hs {
		if h.p == p {
			return hs
		}
	}
	return append(hs, holder[T]{id, p})
}

// buffer is the arena's version of buffer for a float32 tensor of shape.
func (a *Arena) buffer(id int, t **tensor.Dense, shape ...int) *tensor.Dense {
	k := a.next
	a.next++
	if k == len(a.bufs) {
		a.bufs = append(a.bufs, arenaBuf{})
	}
	b := &a.bufs[k]
	size := tensor.Shape(shape).TotalSize()
	if len(b.mem) < size {
		for _, h := range b.holders {
			*h.p = nil
		}
		b.holders = b.holders[:0]
		b.mem = nil // the old memory is garbage now
		b.mem = make([]float32, size)
	}
	mem := b.mem[:size]
	if *t != nil && (*t).Dtype() == tensor.Float32 && (*t).Shape().Eq(tensor.Shape(shape)) {
		if d := (*t).Float32s(); len(d) > 0 && &d[0] == &mem[0] {
			return *t
		}
	}
	*t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(mem))
	b.holders = hold(b.holders, id, t)
	return *t
}

// arenaSeq is the arena's memory for one element type outside tensors
// (dropout masks, maxpool argmax indices, the YOLO loss's float64
// gradient): the k-th request of a Run, grown to the largest, the views
// other graphs hold dropped when it grows (as buffer does).
type arenaSeq[T any] struct {
	vecs []arenaVec[T]
	next int
}

type arenaVec[T any] struct {
	mem     []T
	holders []holder[[]T]
}

func (s *arenaSeq[T]) release(id int) {
	for i := range s.vecs {
		s.vecs[i].holders = dropGraph(s.vecs[i].holders, id)
	}
}

// get sets *p to n elements of the sequence's next memory.
func (s *arenaSeq[T]) get(id int, p *[]T, n int) {
	k := s.next
	s.next++
	if k == len(s.vecs) {
		s.vecs = append(s.vecs, arenaVec[T]{})
	}
	v := &s.vecs[k]
	if len(v.mem) < n {
		for _, h := range v.holders {
			*h.p = nil
		}
		v.holders = v.holders[:0]
		v.mem = nil
		v.mem = make([]T, n)
	}
	v.holders = hold(v.holders, id, p)
	*p = v.mem[:n]
}

// slot returns gradient slot i's memory with at least size floats.
func (a *Arena) slot(i, size int) []float32 {
	for len(a.slots) <= i {
		a.slots = append(a.slots, nil)
	}
	if len(a.slots[i]) < size {
		a.slots[i] = nil
		a.slots[i] = make([]float32, size)
	}
	return a.slots[i]
}

// arenaUser is implemented by dettrain's ops (opBase): NewGraph hands them
// the graph's arena.
type arenaUser interface{ setArena(*arenaRef) }

func (o *opBase) setArena(a *arenaRef) { o.arena = a }

// buffer returns *t reshaped or reallocated to shape with dtype dt, from
// the op's arena when it has one (float32 only). Its contents are
// unspecified.
func (o *opBase) buffer(t **tensor.Dense, dt tensor.Dtype, shape ...int) *tensor.Dense {
	if o.arena == nil || dt != tensor.Float32 {
		return buffer(t, dt, shape...)
	}
	return o.arena.buffer(o.arena.graph, t, shape...)
}
