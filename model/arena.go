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
	bufs  []arenaBuf
	slots [][]float32
	bools arenaSeq[bool]    // dropout masks
	ints  arenaSeq[int32]   // maxpool argmax
	f64s  arenaSeq[float64] // YOLO loss gradients
	next  int
}

type arenaBuf struct {
	mem     []float32
	holders []**tensor.Dense // every graph's view of mem
}

// NewArena returns an empty arena (WithArena).
func NewArena() *Arena { return &Arena{} }

// WithArena makes a training graph take its float32 activation and
// gradient buffers from a (see Arena). Graphs sharing an arena must not run
// concurrently.
func WithArena(a *Arena) GraphOption { return func(o *graphOptions) { o.arena = a } }

func (a *Arena) begin() { a.next, a.bools.next, a.ints.next, a.f64s.next = 0, 0, 0, 0 }

// buffer is the arena's version of buffer for a float32 tensor of shape.
func (a *Arena) buffer(t **tensor.Dense, shape ...int) *tensor.Dense {
	k := a.next
	a.next++
	if k == len(a.bufs) {
		a.bufs = append(a.bufs, arenaBuf{})
	}
	b := &a.bufs[k]
	size := tensor.Shape(shape).TotalSize()
	if len(b.mem) < size {
		for _, h := range b.holders {
			*h = nil
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
	known := false
	for _, h := range b.holders {
		known = known || h == t
	}
	if !known {
		b.holders = append(b.holders, t)
	}
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
	holders []*[]T
}

// get sets *p to n elements of the sequence's next memory.
func (s *arenaSeq[T]) get(p *[]T, n int) {
	k := s.next
	s.next++
	if k == len(s.vecs) {
		s.vecs = append(s.vecs, arenaVec[T]{})
	}
	v := &s.vecs[k]
	if len(v.mem) < n {
		for _, h := range v.holders {
			*h = nil
		}
		v.holders = v.holders[:0]
		v.mem = nil
		v.mem = make([]T, n)
	}
	known := false
	for _, h := range v.holders {
		known = known || h == p
	}
	if !known {
		v.holders = append(v.holders, p)
	}
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
type arenaUser interface{ setArena(*Arena) }

func (o *opBase) setArena(a *Arena) { o.arena = a }

// buffer returns *t reshaped or reallocated to shape with dtype dt, from
// the op's arena when it has one (float32 only). Its contents are
// unspecified.
func (o *opBase) buffer(t **tensor.Dense, dt tensor.Dtype, shape ...int) *tensor.Dense {
	if o.arena == nil || dt != tensor.Float32 {
		return buffer(t, dt, shape...)
	}
	return o.arena.buffer(t, shape...)
}
