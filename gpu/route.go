package gpu

// Route (channel concatenation, with groups) and shortcut (model/route.go):
// the [route] and [shortcut] layers and the wrappers of kernels/route.cu.

import (
	"fmt"

	"github.com/dettrain/dettrain/model"
)

// routeOp runs a [route] layer (model/route.go's RouteGroups): each input's
// channel group GroupID copied into its slot of the output. A single input
// without groups is an alias of that input (no copy, no backward).
type routeOp struct {
	noAlloc
	l *model.RouteLayer
}

func (routeOp) name() string { return "route" }

func (o routeOp) plan(nt *Net, ly *layer) (*buffer, error) {
	l := o.l
	for _, f := range l.From {
		ly.in = append(ly.in, f+1)
	}
	if len(l.From) == 1 && l.Groups <= 1 {
		ly.out = l.From[0] + 1
		return nil, nil
	}
	first := nt.bufs[ly.in[0]]
	out := &buffer{h: first.h, w: first.w}
	g := max(l.Groups, 1)
	for _, s := range ly.in {
		b := nt.bufs[s]
		if b.h != first.h || b.w != first.w || b.c%g != 0 {
			return nil, nt.layerErr(l, fmt.Errorf("route inputs must have the same size and channels divisible by %d", g))
		}
		out.c += b.c / g
	}
	return out, nil
}

func (o routeOp) forward(nt *Net, ly *layer) error {
	l, k, s, n := o.l, nt.k, nt.s, nt.N
	out := nt.bufs[ly.out]
	if nt.isAlias(ly) {
		return nil
	}
	g := max(l.Groups, 1)
	off := 0
	for _, sl := range ly.in {
		b := nt.bufs[sl]
		cnt := b.c / g
		if err := k.CopyChannels(s, out.y, b.y, n, out.h*out.w, out.c, off, b.c, l.GroupID*cnt, cnt, false); err != nil {
			return err
		}
		off += cnt
	}
	return nil
}

func (o routeOp) backward(nt *Net, ly *layer) error {
	l, k, s, n := o.l, nt.k, nt.s, nt.N
	out := nt.bufs[ly.out]
	hw := out.h * out.w
	if nt.isAlias(ly) {
		return nil
	}
	g := max(l.Groups, 1)
	off := 0
	for j, sl := range ly.in {
		b := nt.bufs[sl]
		cnt := b.c / g
		if sl != 0 {
			if err := k.CopyChannels(s, b.dy, out.dy, n, hw, b.c, l.GroupID*cnt, out.c, off, cnt, ly.acc[j]); err != nil {
				return err
			}
			if g > 1 && !ly.acc[j] {
				// Only group GroupID of the input gets a gradient: the
				// other channels of an overwritten buffer must be zero.
				for gi := 0; gi < g; gi++ {
					if gi == l.GroupID {
						continue
					}
					if err := nt.zeroChannels(b, gi*cnt, cnt); err != nil {
						return err
					}
				}
			}
		}
		off += cnt
	}
	return nil
}

// zeroChannels zeroes count channels from off of every image of b's gradient.
func (nt *Net) zeroChannels(b *buffer, off, count int) error {
	hw := b.h * b.w
	for i := 0; i < nt.N; i++ {
		p := b.dy.Add(nt.es * (i*b.c + off) * hw)
		var err error
		if nt.es == 2 {
			err = nt.s.Zero16(p, count*hw)
		} else {
			err = nt.s.Zero(p, count*hw)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// shortcutOp runs a [shortcut] layer (model/route.go's shortcut): the sum of
// the previous layer's output and the From layers', then the activation
// (ly.z keeps the sum for the backward pass when the activation is not
// linear).
type shortcutOp struct{ l *model.ShortcutLayer }

func (shortcutOp) name() string { return "shortcut" }

func (o shortcutOp) plan(nt *Net, ly *layer) (*buffer, error) {
	l, cur := o.l, ly.i
	in := nt.bufs[cur]
	ly.in = []int{cur}
	for _, f := range l.From {
		b := nt.bufs[f+1]
		if b.c != in.c || b.h != in.h || b.w != in.w {
			return nil, nt.layerErr(l, fmt.Errorf("shortcut from layer %d: %dx%dx%d, previous %dx%dx%d", f, b.c, b.h, b.w, in.c, in.h, in.w))
		}
		ly.in = append(ly.in, f+1)
	}
	return &buffer{c: in.c, h: in.h, w: in.w}, nil
}

func (o shortcutOp) alloc(nt *Net, ly *layer, _ int) error {
	var err error
	if nt.Training && o.l.Act != model.Linear {
		ly.z, err = nt.allocAct(nt.bufs[ly.out].size(nt.N))
	}
	return err
}

func (o shortcutOp) forward(nt *Net, ly *layer) error {
	l, k, s, n := o.l, nt.k, nt.s, nt.N
	out := nt.bufs[ly.out]
	in := nt.bufs[ly.in[0]]
	z := out.y
	if ly.z != 0 {
		z = ly.z
	}
	if err := k.Add(s, z, in.y, nt.bufs[ly.in[1]].y, out.size(n)); err != nil {
		return err
	}
	for _, sl := range ly.in[2:] {
		if err := k.Accumulate(s, z, nt.bufs[sl].y, out.size(n), true); err != nil {
			return err
		}
	}
	if l.Act != model.Linear || z != out.y {
		return k.ActForward(s, out.y, z, out.size(n), l.Act)
	}
	return nil
}

func (o shortcutOp) backward(nt *Net, ly *layer) error {
	l, k, s, n := o.l, nt.k, nt.s, nt.N
	out := nt.bufs[ly.out]
	dz := out.dy
	if l.Act != model.Linear {
		if err := k.ActBackward(s, out.dy, out.dy, ly.z, out.size(n), l.Act, false); err != nil {
			return err
		}
	}
	for j, sl := range ly.in {
		if sl == 0 {
			continue
		}
		if err := k.Accumulate(s, nt.bufs[sl].dy, dz, out.size(n), ly.acc[j]); err != nil {
			return err
		}
	}
	return nil
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
