package gpu

// Darknet's maxpool, nearest upsampling and global average pooling
// (model/pool.go): the [maxpool], [upsample] and [avgpool] layers and the
// wrappers of kernels/pool.cu.

import (
	"fmt"

	"github.com/dettrain/dettrain/model"
)

// maxPoolOp runs a [maxpool] layer (model/pool.go's MaxPool); ly.arg keeps
// the forward pass's argmax for the backward pass.
type maxPoolOp struct{ l *model.MaxPoolLayer }

func (maxPoolOp) name() string { return "maxpool" }

func (o maxPoolOp) plan(nt *Net, ly *layer) (*buffer, error) {
	l, in := o.l, nt.bufs[ly.i]
	ly.in = []int{ly.i}
	return &buffer{c: in.c, h: PoolOutDim(in.h, l.Size, l.Stride, l.Padding), w: PoolOutDim(in.w, l.Size, l.Stride, l.Padding)}, nil
}

func (o maxPoolOp) alloc(nt *Net, ly *layer, _ int) error {
	var err error
	ly.arg, err = nt.alloc(nt.bufs[ly.out].size(nt.N))
	return err
}

func (o maxPoolOp) forward(nt *Net, ly *layer) error {
	l, out, in := o.l, nt.bufs[ly.out], nt.bufs[ly.in[0]]
	return nt.k.MaxPoolForward(nt.s, out.y, ly.arg, in.y, nt.N, in.c, in.h, in.w, l.Size, l.Stride, l.Padding)
}

func (o maxPoolOp) backward(nt *Net, ly *layer) error {
	l, out, in := o.l, nt.bufs[ly.out], nt.bufs[ly.in[0]]
	return nt.k.MaxPoolBackward(nt.s, in.dy, out.dy, ly.arg, nt.N, in.c, in.h, in.w, l.Size, l.Stride, l.Padding, ly.acc[0])
}

// avgPoolOp runs an [avgpool] layer (model/pool.go's GlobalAvgPool).
type avgPoolOp struct {
	noAlloc
	l *model.AvgPoolLayer
}

func (avgPoolOp) name() string { return "avgpool" }

func (avgPoolOp) plan(nt *Net, ly *layer) (*buffer, error) {
	ly.in = []int{ly.i}
	return &buffer{c: nt.bufs[ly.i].c, h: 1, w: 1}, nil
}

func (avgPoolOp) forward(nt *Net, ly *layer) error {
	out, in := nt.bufs[ly.out], nt.bufs[ly.in[0]]
	return nt.k.GlobalAvgForward(nt.s, out.y, in.y, nt.N, in.c, in.h*in.w)
}

func (avgPoolOp) backward(nt *Net, ly *layer) error {
	out, in := nt.bufs[ly.out], nt.bufs[ly.in[0]]
	return nt.k.GlobalAvgBackward(nt.s, in.dy, out.dy, nt.N, in.c, in.h*in.w, ly.acc[0])
}

// upsampleOp runs an [upsample] layer (model/pool.go's Upsample).
type upsampleOp struct {
	noAlloc
	l *model.UpsampleLayer
}

func (upsampleOp) name() string { return "upsample" }

func (o upsampleOp) plan(nt *Net, ly *layer) (*buffer, error) {
	in := nt.bufs[ly.i]
	ly.in = []int{ly.i}
	return &buffer{c: in.c, h: in.h * o.l.Stride, w: in.w * o.l.Stride}, nil
}

func (o upsampleOp) forward(nt *Net, ly *layer) error {
	out, in := nt.bufs[ly.out], nt.bufs[ly.in[0]]
	return nt.k.UpsampleForward(nt.s, out.y, in.y, nt.N, in.c, in.h, in.w, o.l.Stride)
}

func (o upsampleOp) backward(nt *Net, ly *layer) error {
	out, in := nt.bufs[ly.out], nt.bufs[ly.in[0]]
	return nt.k.UpsampleBackward(nt.s, in.dy, out.dy, nt.N, in.c, in.h, in.w, o.l.Stride, ly.acc[0])
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

// poolArgs are the kernels' OP_POOL_PARAMS.
func poolArgs(h, w, ho, wo, size, stride, off int) []any {
	wm, ws := fastDiv(w)
	hm, hs := fastDiv(h)
	wom, wos := fastDiv(wo)
	hom, hos := fastDiv(ho)
	sm, ss := fastDiv(stride)
	return []any{h, w, ho, wo, size, stride, off, wm, ws, hm, hs, wom, wos, hom, hos, sm, ss}
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
