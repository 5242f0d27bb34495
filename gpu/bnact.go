package gpu

// Bias + activation and batch norm + activation (model/bnact.go), the
// second half of a [convolutional] layer (conv.go), and batch norm's
// per-channel statistics (synchronized over replicas through syncbn.go):
// the wrappers of kernels/bnact.cu.

import (
	"fmt"

	"github.com/dettrain/dettrain/model"
)

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

// bnStats computes the batch mean and inverse deviation of a training BN
// layer (synchronised over replicas when the Net has a SyncBN) and updates
// the running statistics.
func (nt *Net) bnStats(ly *layer, l *model.ConvLayer, out *buffer, rm, rv Ptr) error {
	k, s, n := nt.k, nt.s, nt.N
	hw := out.h * out.w
	m := float64(n * hw)
	if err := k.ChannelSum(s, ly.sumG, ly.pre, n, out.c, hw, nt.scratch); err != nil {
		return err
	}
	if nt.sync != nil {
		var err error
		if m, err = nt.sync.reduce(nt, ly.sumG, out.c, m); err != nil {
			return err
		}
	}
	if err := k.BNMean(s, ly.mean, ly.sumG, out.c, m); err != nil {
		return err
	}
	if err := k.ChannelSqDev(s, ly.sumGX, ly.pre, ly.mean, n, out.c, hw, nt.scratch); err != nil {
		return err
	}
	if nt.sync != nil {
		if _, err := nt.sync.reduce(nt, ly.sumGX, out.c, m); err != nil {
			return err
		}
	}
	return k.BNFinalize(s, ly.invstd, rm, rv, ly.mean, ly.sumGX, out.c, m, l.BN.Momentum, l.BN.Eps, true)
}
