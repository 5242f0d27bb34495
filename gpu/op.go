package gpu

// This file holds what the layer ops share (as model/op.go does for the CPU
// ops): the layerOp interface that net.go walks, and the helpers of the
// typed kernel wrappers. Each op lives in the file named after its CPU op in
// model/ (act.go, bnact.go, conv.go, pool.go, route.go, scale.go,
// dropout.go, yolo.go; sgd.go for train/sgd.go and train/ema.go), its
// kernels in kernels/ under the same name (.cu), so that a new layer is
// model/X.go + gpu/X.go + gpu/kernels/X.cu and a line in newLayerOp.
//
// The kernel wrappers are the forward and backward passes of a darknet
// network's layers and the optimizer updates, on float32 NCHW contiguous
// tensors. Conventions: every wrapper only enqueues work on s (asynchronous,
// no allocation) and must be called inside Device.Do. n, c, hw are the
// batch, the channels and H*W; every tensor has fewer than 2^31 elements.
// An acc flag makes the op add to its output (gradient accumulation at
// fan-out points) instead of overwriting it; without acc the output's old
// contents (possibly NaN) are never read. Activation derivatives are taken
// at the activation's input, as the CPU backward passes do.
//
// The per-channel reductions (ChannelSum, ChannelSqDev, the bias and
// batch-norm backward sums) are deterministic: each channel's n*hw elements
// are cut into a fixed number of contiguous parts (redSplits, a function of
// the shape alone), each part is summed by one block in a fixed order with
// double accumulators into a float partial in scratch, and a second kernel
// sums each channel's partials in double in a fixed order. The same inputs
// give bit-identical outputs on every run, and no float atomics are used.

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/dettrain/dettrain/model"
)

// layerOp is one layer type's device code, in the file named after the
// layer's model/ file. net.go's generic walk calls plan while laying the
// network out (planNet), alloc once the activation buffers exist
// (allocate), then forward in layer order and backward in reverse order
// (each only enqueues work on nt's stream, inside Device.Do).
type layerOp interface {
	// name names the op in profiles, e.g. "maxpool".
	name() string
	// plan sets ly.in (the input slots) and returns the output buffer's
	// shape, or nil with ly.out set to the input slot it aliases.
	plan(nt *Net, ly *layer) (*buffer, error)
	// alloc allocates the layer's own device memory (wsLimit: cuDNN's
	// workspace bound, for convolutions).
	alloc(nt *Net, ly *layer, wsLimit int) error
	forward(nt *Net, ly *layer) error
	backward(nt *Net, ly *layer) error
}

// newLayerOp is l's device code, or nil for a layer type the GPU does not run.
func newLayerOp(l model.Layer) layerOp {
	switch l := l.(type) {
	case *model.ConvLayer:
		return convOp{l}
	case *model.MaxPoolLayer:
		return maxPoolOp{l: l}
	case *model.AvgPoolLayer:
		return avgPoolOp{l: l}
	case *model.UpsampleLayer:
		return upsampleOp{l: l}
	case *model.DropoutLayer:
		return dropoutOp{l: l}
	case *model.RouteLayer:
		return routeOp{l: l}
	case *model.ShortcutLayer:
		return shortcutOp{l: l}
	case *model.ScaleChannelsLayer:
		return scaleChannelsOp{l: l}
	case *model.YOLOLayer:
		return yoloOp{l: l}
	}
	return nil
}

// noAlloc is the alloc of a layerOp that needs no memory of its own.
type noAlloc struct{}

func (noAlloc) alloc(*Net, *layer, int) error { return nil }

const (
	// redThreads is the block size of the reduction kernels (OP_RED_THREADS).
	redThreads = 256
	// redMinChunk is the fewest elements one reduction block sums (8 per
	// thread) before the channel is split further.
	redMinChunk = 2048
	// redTargetBlocks is how many reduction blocks a big tensor is cut into
	// at least (about 2 waves of 132 SMs x 8 resident 256-thread blocks), so
	// that few, long channels still fill an H100/H200.
	redTargetBlocks = 2 * 132 * 8
	// ewMaxBlocks caps the grid of the element-wise kernels (256 threads, 4
	// elements in flight per thread per step): about two full waves of an
	// H100/H200, enough loads in flight to saturate its memory.
	ewMaxBlocks = 2 * 132 * 8
)

// launchEW runs an element-wise kernel (kernels/common.h's op_ew) over n > 0
// elements.
func (k *Kernels) launchEW(s *Stream, name string, n int, args ...any) error {
	g := min(max((n+255)/256, 1), ewMaxBlocks)
	return k.launch(s, name, D1(g), D1(256), 0, args...)
}

// fastDiv returns (m, sh) such that x/d == (x*m) >> sh (64-bit product) for
// every 0 <= x < 2^31 and 1 <= d < 2^31: kernels/common.h's op_div, integer
// division without a divide (Granlund and Montgomery, 1994: with
// 2^(l-1) < d <= 2^l, m = ceil(2^(31+l)/d) < 2^32 and sh = 31+l).
func fastDiv(d int) (uint32, int) {
	if d < 1 {
		d = 1 // unused divisor (an empty tensor)
	}
	l := bits.Len(uint(d - 1))
	m := (uint64(1)<<(31+l) + uint64(d) - 1) / uint64(d)
	return uint32(m), 31 + l
}

// chanArgs are the kernels' channel divisors (OpChan): c, fastDiv(hw),
// fastDiv(c).
func chanArgs(c, hw int) []any {
	hm, hs := fastDiv(hw)
	cm, cs := fastDiv(c)
	return []any{c, hm, hs, cm, cs}
}

// cat concatenates kernel argument lists.
func cat(lists ...[]any) []any {
	var out []any
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// redSplits is the number of parts each channel of an (n, c, hw) tensor is
// reduced in, and the elements per part (the last may be shorter).
func redSplits(n, c, hw int) (splits, chunk int) {
	l := n * hw
	if l <= 0 || c <= 0 {
		return 1, 0
	}
	splits = (l + redMinChunk - 1) / redMinChunk
	if t := (redTargetBlocks + c - 1) / c; splits > t {
		splits = t
	}
	splits = max(splits, 1)
	chunk = (l + splits - 1) / splits
	splits = (l + chunk - 1) / chunk // no empty parts
	return splits, chunk
}

// ReduceScratchFloats is the float32 scratch size the per-channel reductions
// need for c channels of n*hw elements (two sets of c*splits partials, for
// BNActBackwardReduce's two sums). It is 0 when every channel is summed by
// one block: the kernels then write their outputs directly and never touch
// scratch (which may be 0).
func ReduceScratchFloats(n, c, hw int) int {
	splits, _ := redSplits(n, c, hw)
	if splits <= 1 {
		return 0
	}
	return 2 * c * splits
}

// checkSize returns an error when a dimension is negative or the product
// of dims does not fit in a C int.
func checkSize(op string, dims ...int) error {
	p := int64(1)
	for _, d := range dims {
		if d < 0 {
			return fmt.Errorf("gpu %s: negative size in %v", op, dims)
		}
		p *= int64(d)
		if p > math.MaxInt32 {
			return fmt.Errorf("gpu %s: sizes %v make a tensor of 2^31 or more elements", op, dims)
		}
	}
	return nil
}

func checkAct(op string, a model.Activation) error {
	if a < model.Linear || a > model.Swish {
		return fmt.Errorf("gpu %s: unsupported activation %v", op, a)
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// chanReduce runs the reduction kernel part over grid (c, splits) with the
// arguments args(p0, p1) (p0, p1: where the partials go), n, c, hw, the
// part size and tail, then sums the
// partials into out0 (and out1 when two) unless one part per channel lets
// the first kernel write out0/out1 directly.
func (k *Kernels) chanReduce(s *Stream, op, part string, out0, out1 Ptr, two bool, n, c, hw int, scratch Ptr,
	args func(p0, p1 Ptr) []any, tail ...any) error {
	splits, chunk := redSplits(n, c, hw)
	p0, p1 := out0, out1
	if splits > 1 {
		if scratch == 0 {
			return fmt.Errorf("gpu %s: no scratch (%d floats needed, ReduceScratchFloats)", op, ReduceScratchFloats(n, c, hw))
		}
		p0 = scratch
		if two {
			p1 = scratch.F32(c * splits)
		}
	}
	a := append(append(args(p0, p1), n, c, hw, chunk), tail...)
	if err := k.launch(s, part, Dim3{c, splits, 1}, D1(redThreads), 0, a...); err != nil {
		return err
	}
	if splits == 1 {
		return nil
	}
	ny := 1
	if two {
		ny = 2
	}
	return k.launch(s, "op_reduce_finish", Dim3{(c + 7) / 8, ny, 1}, D1(256), 0, out0, out1, p0, p1, c, splits)
}

// planeThreads is the block size of the one-block-per-plane kernels: hw
// rounded up to whole warps, at most 256.
func planeThreads(hw int) int {
	t := (hw + 31) / 32 * 32
	return min(max(t, 32), 256)
}

// CheckFinite sets the device int32 *flag to 1 when any of x[0..n) is NaN or
// infinite; it never clears it.
func (k *Kernels) CheckFinite(s *Stream, x Ptr, n int, flag Ptr) error {
	if n < 0 {
		return fmt.Errorf("gpu CheckFinite: n = %d", n)
	}
	if n == 0 {
		return nil
	}
	return k.launch1(s, "check_finite", n, x, int64(n), flag)
}

// Scale: x *= alpha, n elements.
func (k *Kernels) Scale(s *Stream, x Ptr, n int, alpha float32) error {
	if n < 0 {
		return fmt.Errorf("gpu Scale: n = %d", n)
	}
	if n == 0 {
		return nil
	}
	return k.launch1(s, "scale_f32", n, x, int64(n), alpha)
}

// ToAct converts n float32s at x into the module's activation type at y
// (bfloat16, rounded to nearest even, with BF16; a copy otherwise).
func (k *Kernels) ToAct(s *Stream, y, x Ptr, n int) error {
	return k.convert(s, "ToAct", "op_to_act", y, x, n)
}

// FromAct converts n activations at x (bfloat16 with BF16) into float32s at y.
func (k *Kernels) FromAct(s *Stream, y, x Ptr, n int) error {
	return k.convert(s, "FromAct", "op_from_act", y, x, n)
}

// convert launches one of the conversion kernels over n elements.
func (k *Kernels) convert(s *Stream, what, kernel string, y, x Ptr, n int) error {
	if n < 0 {
		return fmt.Errorf("gpu %s: n = %d", what, n)
	}
	if n == 0 {
		return nil
	}
	return k.launchEW(s, kernel, n, y, x, int64(n))
}

// ActBytes is the size of one activation element: 2 with BF16, else 4.
func (k *Kernels) ActBytes() int {
	if k.BF16 {
		return 2
	}
	return 4
}
