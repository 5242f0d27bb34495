package gpu

// Typed wrappers of the layer-op kernels of kernels/ops.cu: the forward and
// backward passes of a darknet network's layers (model/act.go, bnact.go,
// syncbn.go, pool.go, route.go, scale.go, dropout.go) and the optimizer
// updates (train/sgd.go, train/ema.go), on float32 NCHW contiguous tensors.
//
// Conventions: every wrapper only enqueues work on s (asynchronous, no
// allocation) and must be called inside Device.Do. n, c, hw are the batch,
// the channels and H*W; every tensor has fewer than 2^31 elements. An acc
// flag makes the op add to its output (gradient accumulation at fan-out
// points) instead of overwriting it; without acc the output's old contents
// (possibly NaN) are never read. Activation derivatives are taken at the
// activation's input, as the CPU backward passes do.
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

// launchEW runs an element-wise kernel (kernels/ops.cu's op_ew) over n > 0
// elements.
func (k *Kernels) launchEW(s *Stream, name string, n int, args ...any) error {
	g := min(max((n+255)/256, 1), ewMaxBlocks)
	return k.launch(s, name, D1(g), D1(256), 0, args...)
}

// fastDiv returns (m, sh) such that x/d == (x*m) >> sh (64-bit product) for
// every 0 <= x < 2^31 and 1 <= d < 2^31: kernels/ops.cu's op_div, integer
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

// poolArgs are the kernels' OP_POOL_PARAMS.
func poolArgs(h, w, ho, wo, size, stride, off int) []any {
	wm, ws := fastDiv(w)
	hm, hs := fastDiv(h)
	wom, wos := fastDiv(wo)
	hom, hos := fastDiv(ho)
	sm, ss := fastDiv(stride)
	return []any{h, w, ho, wo, size, stride, off, wm, ws, hm, hs, wom, wos, hom, hos, sm, ss}
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

// ActForward: y = act(x), n elements; y may equal x.
func (k *Kernels) ActForward(s *Stream, y, x Ptr, n int, act model.Activation) error {
	if err := checkSize("ActForward", n); err != nil {
		return err
	}
	if err := checkAct("ActForward", act); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return k.launchEW(s, "op_act_fwd", n, y, x, n, int(act))
}

// ActBackward: dx (+)= dy*act'(x), x the activation's input; dx may equal dy
// when !acc.
func (k *Kernels) ActBackward(s *Stream, dx, dy, x Ptr, n int, act model.Activation, acc bool) error {
	if err := checkSize("ActBackward", n); err != nil {
		return err
	}
	if err := checkAct("ActBackward", act); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return k.launchEW(s, "op_act_bwd", n, dx, dy, x, n, int(act), b2i(acc))
}

// BiasActForward: y = act(x + b[ch]) for n images of c channels of hw
// elements; y may equal x.
func (k *Kernels) BiasActForward(s *Stream, y, x, b Ptr, n, c, hw int, act model.Activation) error {
	if err := checkSize("BiasActForward", n, c, hw); err != nil {
		return err
	}
	if err := checkAct("BiasActForward", act); err != nil {
		return err
	}
	t := n * c * hw
	if t == 0 {
		return nil
	}
	return k.launchEW(s, "op_bias_act_fwd", t, cat([]any{y, x, b, t}, chanArgs(c, hw), []any{int(act)})...)
}

// BiasActBackward: du = dy*act'(x+b[ch]); dx = du (overwritten; dx may equal
// dy); db[ch] = the sum of du over the images and positions (overwritten).
// scratch: ReduceScratchFloats(n, c, hw) floats.
func (k *Kernels) BiasActBackward(s *Stream, dx, db, dy, x, b Ptr, n, c, hw int, act model.Activation, scratch Ptr) error {
	if err := checkSize("BiasActBackward", n, c, hw); err != nil {
		return err
	}
	if err := checkAct("BiasActBackward", act); err != nil {
		return err
	}
	if c == 0 {
		return nil
	}
	return k.chanReduce(s, "BiasActBackward", "op_bias_act_bwd_part", db, 0, false, n, c, hw, scratch,
		func(p0, _ Ptr) []any { return []any{p0, dx, dy, x, b} }, int(act))
}

// ChannelSum: out[ch] = the sum of channel ch of x (c floats).
func (k *Kernels) ChannelSum(s *Stream, out, x Ptr, n, c, hw int, scratch Ptr) error {
	if err := checkSize("ChannelSum", n, c, hw); err != nil {
		return err
	}
	if c == 0 {
		return nil
	}
	return k.chanReduce(s, "ChannelSum", "op_chan_sum_part", out, 0, false, n, c, hw, scratch,
		func(p0, _ Ptr) []any { return []any{p0, x} })
}

// ChannelSqDev: out[ch] = the sum over channel ch of (x - mean[ch])^2.
func (k *Kernels) ChannelSqDev(s *Stream, out, x, mean Ptr, n, c, hw int, scratch Ptr) error {
	if err := checkSize("ChannelSqDev", n, c, hw); err != nil {
		return err
	}
	if c == 0 {
		return nil
	}
	return k.chanReduce(s, "ChannelSqDev", "op_chan_sqdev_part", out, 0, false, n, c, hw, scratch,
		func(p0, _ Ptr) []any { return []any{p0, x, mean} })
}

// BNMean: mean = sum/m (c channels).
func (k *Kernels) BNMean(s *Stream, mean, sum Ptr, c int, m float64) error {
	if err := checkSize("BNMean", c); err != nil {
		return err
	}
	if !(m > 0) {
		return fmt.Errorf("gpu BNMean: element count %v, want > 0", m)
	}
	if c == 0 {
		return nil
	}
	return k.launch1(s, "op_bn_mean", c, mean, sum, c, m)
}

// BNFinalize: invstd = 1/sqrt(sqdev/m + eps); with update, runMean =
// (1-momentum)*runMean + momentum*mean and runVar = (1-momentum)*runVar +
// momentum*unbiased, unbiased = sqdev/(m-1) (sqdev/m when m <= 1), as
// model/bnact.go. Computed in double, stored as float.
func (k *Kernels) BNFinalize(s *Stream, invstd, runMean, runVar, mean, sqdev Ptr, c int, m, momentum, eps float64, update bool) error {
	if err := checkSize("BNFinalize", c); err != nil {
		return err
	}
	if !(m > 0) {
		return fmt.Errorf("gpu BNFinalize: element count %v, want > 0", m)
	}
	if c == 0 {
		return nil
	}
	return k.launch1(s, "op_bn_finalize", c, invstd, runMean, runVar, mean, sqdev, c, m, momentum, eps, b2i(update))
}

// BNInference: mean = runMean, invstd = 1/sqrt(runVar + eps).
func (k *Kernels) BNInference(s *Stream, mean, invstd, runMean, runVar Ptr, c int, eps float64) error {
	if err := checkSize("BNInference", c); err != nil {
		return err
	}
	if c == 0 {
		return nil
	}
	return k.launch1(s, "op_bn_inference", c, mean, invstd, runMean, runVar, c, eps)
}

// BNActForward: y = act(gamma*(x-mean)*invstd + beta), per channel; y may
// equal x.
func (k *Kernels) BNActForward(s *Stream, y, x, mean, invstd, gamma, beta Ptr, n, c, hw int, act model.Activation) error {
	if err := checkSize("BNActForward", n, c, hw); err != nil {
		return err
	}
	if err := checkAct("BNActForward", act); err != nil {
		return err
	}
	t := n * c * hw
	if t == 0 {
		return nil
	}
	return k.launchEW(s, "op_bn_act_fwd", t, cat([]any{y, x, mean, invstd, gamma, beta, t}, chanArgs(c, hw), []any{int(act)})...)
}

// BNActBackwardReduce: with xhat = (x-mean)*invstd, u = gamma*xhat + beta and
// g = dy*act'(u): sumG[ch] = sum g, sumGX[ch] = sum g*xhat (overwritten).
// scratch: ReduceScratchFloats(n, c, hw) floats.
func (k *Kernels) BNActBackwardReduce(s *Stream, sumG, sumGX, dy, x, mean, invstd, gamma, beta Ptr, n, c, hw int,
	act model.Activation, scratch Ptr) error {
	if err := checkSize("BNActBackwardReduce", n, c, hw); err != nil {
		return err
	}
	if err := checkAct("BNActBackwardReduce", act); err != nil {
		return err
	}
	if c == 0 {
		return nil
	}
	return k.chanReduce(s, "BNActBackwardReduce", "op_bn_act_bwd_part", sumG, sumGX, true, n, c, hw, scratch,
		func(p0, p1 Ptr) []any { return []any{p0, p1, dy, x, mean, invstd, gamma, beta} }, int(act))
}

// BNActBackwardDx: dx (+)= gamma*invstd/m * (m*g - sumG - xhat*sumGX), g as
// in BNActBackwardReduce, m the element count per channel (all replicas'
// together for synchronized BN); dx may equal dy when !acc.
func (k *Kernels) BNActBackwardDx(s *Stream, dx, dy, x, mean, invstd, gamma, beta, sumG, sumGX Ptr, n, c, hw int,
	act model.Activation, m float64, acc bool) error {
	if err := checkSize("BNActBackwardDx", n, c, hw); err != nil {
		return err
	}
	if err := checkAct("BNActBackwardDx", act); err != nil {
		return err
	}
	if !(m > 0) {
		return fmt.Errorf("gpu BNActBackwardDx: element count %v, want > 0", m)
	}
	t := n * c * hw
	if t == 0 {
		return nil
	}
	return k.launchEW(s, "op_bn_act_bwd_dx", t, cat([]any{dx, dy, x, mean, invstd, gamma, beta, sumG, sumGX, t},
		chanArgs(c, hw), []any{int(act), float32(1 / m), b2i(acc)})...)
}

// PoolOutDim is darknet's maxpool output size, (in + pad - size)/stride + 1
// (model/pool.go's outDim).
func PoolOutDim(in, size, stride, pad int) int { return (in+pad-size)/stride + 1 }

func checkPool(op string, n, c, h, w, size, stride, pad int) (ho, wo int, err error) {
	if err := checkSize(op, n, c, h, w); err != nil {
		return 0, 0, err
	}
	if size < 1 || stride < 1 || pad < 0 {
		return 0, 0, fmt.Errorf("gpu %s: size %d, stride %d, pad %d: want size, stride >= 1, pad >= 0", op, size, stride, pad)
	}
	ho, wo = PoolOutDim(h, size, stride, pad), PoolOutDim(w, size, stride, pad)
	if ho < 1 || wo < 1 {
		return 0, 0, fmt.Errorf("gpu %s: input %dx%d too small for size %d", op, w, h, size)
	}
	if err := checkSize(op, n, c, ho, wo); err != nil {
		return 0, 0, err
	}
	return ho, wo, nil
}

// MaxPoolForward is darknet's maxpool (model/pool.go) of x (n, c, h, w) into
// y (n, c, ho, wo), ho = PoolOutDim(h, size, stride, pad): windows start at
// i*stride - pad/2, positions outside the plane are skipped, the first
// maximum wins. arg (int32, like y) gets the argmax's index within its
// input plane (-1, and y = -Inf, for a window with no position inside).
func (k *Kernels) MaxPoolForward(s *Stream, y, arg, x Ptr, n, c, h, w, size, stride, pad int) error {
	ho, wo, err := checkPool("MaxPoolForward", n, c, h, w, size, stride, pad)
	if err != nil {
		return err
	}
	t := n * c * ho * wo
	if t == 0 {
		return nil
	}
	return k.launchEW(s, "op_maxpool_fwd", t, cat([]any{y, arg, x, t}, poolArgs(h, w, ho, wo, size, stride, -pad/2))...)
}

// MaxPoolBackward: dx (+)= for each input element, the sum of dy over the
// outputs whose argmax (arg from MaxPoolForward) it is, in output order
// (gather form, deterministic).
func (k *Kernels) MaxPoolBackward(s *Stream, dx, dy, arg Ptr, n, c, h, w, size, stride, pad int, acc bool) error {
	ho, wo, err := checkPool("MaxPoolBackward", n, c, h, w, size, stride, pad)
	if err != nil {
		return err
	}
	t := n * c * h * w
	if t == 0 {
		return nil
	}
	return k.launchEW(s, "op_maxpool_bwd", t, cat([]any{dx, dy, arg, t, b2i(acc)}, poolArgs(h, w, ho, wo, size, stride, -pad/2))...)
}

// UpsampleForward: nearest-neighbour upsampling of x (n, c, h, w) into y
// (n, c, h*stride, w*stride).
func (k *Kernels) UpsampleForward(s *Stream, y, x Ptr, n, c, h, w, stride int) error {
	if stride < 1 {
		return fmt.Errorf("gpu UpsampleForward: stride %d", stride)
	}
	if err := checkSize("UpsampleForward", n, c, h, w, stride, stride); err != nil {
		return err
	}
	t := n * c * h * w * stride * stride
	if t == 0 {
		return nil
	}
	return k.launchEW(s, "op_upsample_fwd", t, cat([]any{y, x, t}, poolArgs(h, w, h*stride, w*stride, stride, stride, 0))...)
}

// UpsampleBackward: dx (n, c, h, w) (+)= the sum of dy's stride x stride
// block over it.
func (k *Kernels) UpsampleBackward(s *Stream, dx, dy Ptr, n, c, h, w, stride int, acc bool) error {
	if stride < 1 {
		return fmt.Errorf("gpu UpsampleBackward: stride %d", stride)
	}
	if err := checkSize("UpsampleBackward", n, c, h, w, stride, stride); err != nil {
		return err
	}
	t := n * c * h * w
	if t == 0 {
		return nil
	}
	return k.launchEW(s, "op_upsample_bwd", t, cat([]any{dx, dy, t, b2i(acc)}, poolArgs(h, w, h*stride, w*stride, stride, stride, 0))...)
}

// GlobalAvgForward: y[b, ch] = the mean of x[b, ch, :] (hw elements, double
// sum), one block per plane.
func (k *Kernels) GlobalAvgForward(s *Stream, y, x Ptr, n, c, hw int) error {
	if err := checkSize("GlobalAvgForward", n, c, hw); err != nil {
		return err
	}
	if n*c == 0 {
		return nil
	}
	return k.launch(s, "op_global_avg_fwd", D1(n*c), D1(planeThreads(hw)), 0, y, x, hw)
}

// GlobalAvgBackward: dx[b, ch, :] (+)= dy[b, ch]/hw.
func (k *Kernels) GlobalAvgBackward(s *Stream, dx, dy Ptr, n, c, hw int, acc bool) error {
	if err := checkSize("GlobalAvgBackward", n, c, hw); err != nil {
		return err
	}
	t := n * c * hw
	if t == 0 {
		return nil
	}
	hm, hs := fastDiv(hw)
	return k.launchEW(s, "op_global_avg_bwd", t, dx, dy, t, hw, hm, hs, b2i(acc))
}

// CopyChannels: for each image b and k < count, dst[b, dstOff+k, :] (+)=
// src[b, srcOff+k, :], hw elements per channel, dst having dstC channels and
// src srcC. Route (with groups) forward, and its backward with the roles
// swapped.
func (k *Kernels) CopyChannels(s *Stream, dst, src Ptr, n, hw, dstC, dstOff, srcC, srcOff, count int, acc bool) error {
	if err := checkSize("CopyChannels", n, dstC, hw); err != nil {
		return err
	}
	if err := checkSize("CopyChannels", n, srcC, hw); err != nil {
		return err
	}
	if count < 0 || dstOff < 0 || srcOff < 0 || dstOff+count > dstC || srcOff+count > srcC {
		return fmt.Errorf("gpu CopyChannels: channels [%d,%d) of %d into [%d,%d) of %d", srcOff, srcOff+count, srcC,
			dstOff, dstOff+count, dstC)
	}
	per := count * hw
	t := n * per
	if t == 0 {
		return nil
	}
	pm, ps := fastDiv(per)
	return k.launchEW(s, "op_copy_channels", t, dst, src, t, pm, ps, per, dstC*hw, dstOff*hw, srcC*hw, srcOff*hw, b2i(acc))
}

// Add: y = a + b, n elements (y may equal a or b).
func (k *Kernels) Add(s *Stream, y, a, b Ptr, n int) error {
	if err := checkSize("Add", n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return k.launchEW(s, "op_add", n, y, a, b, n)
}

// Accumulate: dst (+)= src, n elements.
func (k *Kernels) Accumulate(s *Stream, dst, src Ptr, n int, acc bool) error {
	if err := checkSize("Accumulate", n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return k.launchEW(s, "op_accumulate", n, dst, src, n, b2i(acc))
}

// ScaleChannelsForward: y = x * sc[b, ch] (sc has n*c elements); y may equal x.
func (k *Kernels) ScaleChannelsForward(s *Stream, y, x, sc Ptr, n, c, hw int) error {
	if err := checkSize("ScaleChannelsForward", n, c, hw); err != nil {
		return err
	}
	t := n * c * hw
	if t == 0 {
		return nil
	}
	hm, hs := fastDiv(hw)
	return k.launchEW(s, "op_scale_ch_fwd", t, y, x, sc, t, hm, hs)
}

// ScaleChannelsBackward: dx (+)= dy*sc[b, ch] (accX); dsc[b, ch] (+)= the
// sum over the plane of dy*x (accS; float products, double sum, as
// model/scale.go). One block per plane. dx may equal dy when !accX.
func (k *Kernels) ScaleChannelsBackward(s *Stream, dx, dsc, dy, x, sc Ptr, n, c, hw int, accX, accS bool) error {
	if err := checkSize("ScaleChannelsBackward", n, c, hw); err != nil {
		return err
	}
	if n*c == 0 {
		return nil
	}
	return k.launch(s, "op_scale_ch_bwd", D1(n*c), D1(planeThreads(hw)), 0, dx, dsc, dy, x, sc, hw, b2i(accX), b2i(accS))
}

// dropoutThresh is the 24-bit threshold and the scale of a drop
// probability p.
func dropoutThresh(op string, p float64) (uint32, float32, error) {
	if !(p >= 0 && p < 1) {
		return 0, 0, fmt.Errorf("gpu %s: drop probability %v, want 0 <= p < 1", op, p)
	}
	return uint32(math.Ceil(p * (1 << 24))), float32(1 / (1 - p)), nil
}

// dropoutHash24 is kernels/ops.cu's op_keep24: the top 24 bits of
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

// SGDStep is train/sgd.go's update of n parameters w with velocity v and
// gradient g: v = momentum*v - lr*(g + decay*w); w += v. Nothing is written
// when the device int32 *skip is nonzero (skip 0: never skip).
func (k *Kernels) SGDStep(s *Stream, w, v, g Ptr, n int, lr, momentum, decay float32, skip Ptr) error {
	if err := checkSize("SGDStep", n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return k.launchEW(s, "op_sgd", n, w, v, g, n, lr, momentum, decay, skip)
}

// EMAUpdate: e = a*e + b*w (train/ema.go), n elements; nothing is written
// when the device int32 *skip is nonzero (skip 0: never skip).
func (k *Kernels) EMAUpdate(s *Stream, e, w Ptr, n int, a, b float32, skip Ptr) error {
	if err := checkSize("EMAUpdate", n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return k.launchEW(s, "op_ema", n, e, w, n, a, b, skip)
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
