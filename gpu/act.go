package gpu

// The activation kernels (kernels/act.cu) of model/act.go's op, used by
// shortcut and scale_channels for their activation (route.go, scale.go).

import (
	"github.com/dettrain/dettrain/model"
)

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
