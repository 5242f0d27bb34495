package gpu

// scale_channels (model/scale.go): the [scale_channels] layer and the
// wrappers of kernels/scale.cu.

import (
	"fmt"

	"github.com/dettrain/dettrain/model"
)

// scaleChannelsOp runs a [scale_channels] layer (model/scale.go): the From
// layer's output times the previous layer's per-channel scales, then the
// activation (ly.z keeps the product when it is not linear).
type scaleChannelsOp struct{ l *model.ScaleChannelsLayer }

func (scaleChannelsOp) name() string { return "scale_channels" }

func (o scaleChannelsOp) plan(nt *Net, ly *layer) (*buffer, error) {
	l, cur := o.l, ly.i
	in := nt.bufs[cur]
	x := nt.bufs[l.From+1]
	if in.c != x.c || in.h != 1 || in.w != 1 {
		return nil, nt.layerErr(l, fmt.Errorf("scale_channels: scales %dx%dx%d do not fit %d channels", in.c, in.h, in.w, x.c))
	}
	ly.in = []int{l.From + 1, cur}
	return &buffer{c: x.c, h: x.h, w: x.w}, nil
}

func (o scaleChannelsOp) alloc(nt *Net, ly *layer, _ int) error {
	var err error
	if nt.Training && o.l.Act != model.Linear {
		ly.z, err = nt.allocAct(nt.bufs[ly.out].size(nt.N))
	}
	return err
}

func (o scaleChannelsOp) forward(nt *Net, ly *layer) error {
	l, k, s, n := o.l, nt.k, nt.s, nt.N
	out := nt.bufs[ly.out]
	hw := out.h * out.w
	x, sc := nt.bufs[ly.in[0]], nt.bufs[ly.in[1]]
	z := out.y
	if ly.z != 0 {
		z = ly.z
	}
	if err := k.ScaleChannelsForward(s, z, x.y, sc.y, n, out.c, hw); err != nil {
		return err
	}
	if l.Act != model.Linear || z != out.y {
		return k.ActForward(s, out.y, z, out.size(n), l.Act)
	}
	return nil
}

func (o scaleChannelsOp) backward(nt *Net, ly *layer) error {
	l, k, s, n := o.l, nt.k, nt.s, nt.N
	out := nt.bufs[ly.out]
	hw := out.h * out.w
	x, sc := nt.bufs[ly.in[0]], nt.bufs[ly.in[1]]
	z := out.y
	if ly.z != 0 {
		z = ly.z
	}
	if l.Act != model.Linear {
		if err := k.ActBackward(s, out.dy, out.dy, z, out.size(n), l.Act, false); err != nil {
			return err
		}
	}
	return k.ScaleChannelsBackward(s, x.dy, sc.dy, out.dy, x.y, sc.y, n, out.c, hw, ly.acc[0], ly.acc[1])
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
