package gpu

// The optimizer updates (kernels/sgd.cu): train/sgd.go's SGD step and
// train/ema.go's weight average, over the State's flat parameter arrays.

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
