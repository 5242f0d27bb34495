package gpu

// Dropout (model/dropout.go): the [dropout] layer and the wrappers of
// kernels/dropout.cu.

import (
	"fmt"
	"math"

	"github.com/dettrain/dettrain/model"
)

// dropoutOp runs a [dropout] layer (model/dropout.go) with the kernels'
// counter-based masks (DropoutKeep); an inference dropout is an alias of its
// input.
type dropoutOp struct {
	noAlloc
	l *model.DropoutLayer
}

func (dropoutOp) name() string { return "dropout" }

func (dropoutOp) plan(nt *Net, ly *layer) (*buffer, error) {
	cur := ly.i
	in := nt.bufs[cur]
	ly.in = []int{cur}
	if !nt.Training {
		ly.out = cur
		return nil, nil
	}
	ly.seed = uint32(int64(ly.i)*1_000_003 + 17)
	return &buffer{c: in.c, h: in.h, w: in.w}, nil
}

func (o dropoutOp) forward(nt *Net, ly *layer) error {
	out, in := nt.bufs[ly.out], nt.bufs[ly.in[0]]
	if nt.isAlias(ly) {
		return nil
	}
	return nt.k.DropoutForward(nt.s, out.y, in.y, out.size(nt.N), o.l.P, nt.dropoutSeed(ly))
}

func (o dropoutOp) backward(nt *Net, ly *layer) error {
	out, in := nt.bufs[ly.out], nt.bufs[ly.in[0]]
	if nt.isAlias(ly) {
		return nil
	}
	return nt.k.DropoutBackward(nt.s, in.dy, out.dy, out.size(nt.N), o.l.P, nt.dropoutSeed(ly), ly.acc[0])
}

// dropoutSeed is a dropout layer's mask seed for the current step (the
// forward and backward passes of one step use the same mask).
func (nt *Net) dropoutSeed(ly *layer) uint32 { return ly.seed + uint32(nt.steps)*2654435761 }

// dropoutThresh is the 24-bit threshold and the scale of a drop
// probability p.
func dropoutThresh(op string, p float64) (uint32, float32, error) {
	if !(p >= 0 && p < 1) {
		return 0, 0, fmt.Errorf("gpu %s: drop probability %v, want 0 <= p < 1", op, p)
	}
	return uint32(math.Ceil(p * (1 << 24))), float32(1 / (1 - p)), nil
}

// dropoutHash24 is kernels/dropout.cu's op_keep24: the top 24 bits of
// splitmix64's finalizer of seed<<32 | i.
func dropoutHash24(seed, i uint32) uint32 {
	z := (uint64(seed)<<32 | uint64(i)) + 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return uint32(z >> 40)
}

// DropoutKeep reports whether DropoutForward with drop probability p and
// seed keeps element i: when hash(seed, i), a uniform in [0, 1) with 24
// bits, is >= p.
func DropoutKeep(seed uint32, i int, p float64) bool {
	t, _, err := dropoutThresh("DropoutKeep", p)
	return err == nil && dropoutHash24(seed, uint32(i)) >= t
}

// DropoutForward: y = x/(1-p) where DropoutKeep(seed, i, p), else 0. The
// mask is a counter-based hash of (seed, i): no state, the same seed gives
// the same mask (DropoutBackward recomputes it), so a new mask needs a new
// seed. The CPU op (model/dropout.go) draws its masks from math/rand, so the
// GPU's masks differ from the CPU's for any seed (the distribution is the
// same). y may equal x.
func (k *Kernels) DropoutForward(s *Stream, y, x Ptr, n int, p float64, seed uint32) error {
	if err := checkSize("DropoutForward", n); err != nil {
		return err
	}
	t, sc, err := dropoutThresh("DropoutForward", p)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return k.launchEW(s, "op_dropout", n, y, x, n, t, sc, seed, 0)
}

// DropoutBackward: dx (+)= dy/(1-p) where DropoutKeep(seed, i, p), else 0:
// the forward pass's mask, given its seed.
func (k *Kernels) DropoutBackward(s *Stream, dx, dy Ptr, n int, p float64, seed uint32, acc bool) error {
	if err := checkSize("DropoutBackward", n); err != nil {
		return err
	}
	t, sc, err := dropoutThresh("DropoutBackward", p)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return k.launchEW(s, "op_dropout", n, dx, dy, n, t, sc, seed, b2i(acc))
}
