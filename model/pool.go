package model

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// maxPoolOp is darknet's [maxpool]: with padding p (default size-1),
//
//	out = (in + p - size)/stride + 1,  y[i,j] = max over x[i*stride-p/2+u, j*stride-p/2+v], 0 <= u,v < size
//
// taken over positions inside the image only. For size 2 stride 1 this pads
// one row/column at the bottom/right (gorgonia's MaxPool2D, given the
// padding {0,1,0,1}, pads the top/left instead). The backward pass routes each output
// gradient to the input that held the maximum (the first one on ties).
type maxPoolOp struct {
	opBase
	size, stride, pad int
	st                *poolState
}

type poolState struct {
	y, dx *tensor.Dense
	arg   []int32 // per output element: flat index in the input plane
}

// MaxPool applies darknet's max pooling.
func MaxPool(x *G.Node, size, stride, pad int) (*G.Node, error) {
	return G.ApplyOp(&maxPoolOp{newOpBase("maxpool", 4, 4), size, stride, pad, &poolState{}}, x)
}

func (o *maxPoolOp) outDim(in int) int { return (in+o.pad-o.size)/o.stride + 1 }

func (o *maxPoolOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	if len(s) != 4 {
		return nil, fmt.Errorf("maxpool: want 4-D input, got %v", s)
	}
	h, w := o.outDim(s[2]), o.outDim(s[3])
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("maxpool: input %v too small for size %d", s, o.size)
	}
	return tensor.Shape{s[0], s[1], h, w}, nil
}

func (o *maxPoolOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *maxPoolOp) forward(t []*tensor.Dense) (G.Value, error) {
	x := t[0]
	n, c, h, w := dims4(x.Shape())
	ho, wo := o.outDim(h), o.outDim(w)
	y := o.buffer(&o.st.y, x.Dtype(), n, c, ho, wo)
	switch {
	case o.arena != nil:
		o.arena.ints.get(o.arena.graph, &o.st.arg, n*c*ho*wo)
	case len(o.st.arg) != n*c*ho*wo:
		o.st.arg = make([]int32, n*c*ho*wo)
	}
	switch x.Dtype() {
	case tensor.Float32:
		poolForward(o, n*c, h, w, ho, wo, f32s(x), f32s(y))
	case tensor.Float64:
		poolForward(o, n*c, h, w, ho, wo, x.Float64s(), y.Float64s())
	}
	return y, nil
}

func poolForward[T float](o *maxPoolOp, planes, h, w, ho, wo int, x, y []T) {
	off := -o.pad / 2
	fast := o.size == 2 && o.stride == 2 && off == 0 && 2*ho <= h && 2*wo <= w
	parallelFor(planes, 4, func(_, p0, p1 int) {
		for p := p0; p < p1; p++ {
			xp := x[p*h*w : (p+1)*h*w]
			if fast {
				pool2x2(xp, y[p*ho*wo:(p+1)*ho*wo], o.st.arg[p*ho*wo:(p+1)*ho*wo], w, ho, wo)
				continue
			}
			for i := 0; i < ho; i++ {
				for j := 0; j < wo; j++ {
					best, arg := T(math.Inf(-1)), int32(-1)
					for u := 0; u < o.size; u++ {
						yy := i*o.stride + off + u
						if yy < 0 || yy >= h {
							continue
						}
						for v := 0; v < o.size; v++ {
							xx := j*o.stride + off + v
							if xx < 0 || xx >= w {
								continue
							}
							if val := xp[yy*w+xx]; arg < 0 || val > best {
								best, arg = val, int32(yy*w+xx)
							}
						}
					}
					k := (p*ho+i)*wo + j
					y[k], o.st.arg[k] = best, arg
				}
			}
		}
	})
}

// pool2x2 is the size 2, stride 2 case whose windows all lie inside the
// plane (YOLOv3-tiny's downsampling pools): two input rows per output row,
// the same first-maximum rule as the general loop.
func pool2x2[T float](xp, yp []T, arg []int32, w, ho, wo int) {
	for i := 0; i < ho; i++ {
		r0 := xp[2*i*w : 2*i*w+2*wo]
		r1 := xp[(2*i+1)*w : (2*i+1)*w+2*wo]
		yr := yp[i*wo : (i+1)*wo]
		ar := arg[i*wo : (i+1)*wo]
		base := int32(2 * i * w)
		for j := range yr {
			a0, a1, b0, b1 := r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1]
			// max and the index of its first occurrence, without branches
			// on the data (which a branch predictor cannot learn).
			best := max(max(a0, a1), max(b0, b1))
			a := base + int32(w+2*j+1)
			if b0 == best {
				a = base + int32(w+2*j)
			}
			if a1 == best {
				a = base + int32(2*j+1)
			}
			if a0 == best {
				a = base + int32(2*j)
			}
			yr[j], ar[j] = best, a
		}
	}
}

func (o *maxPoolOp) DiffWRT(int) []bool { return []bool{true} }
func (o *maxPoolOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return gradOf(newBack("maxpoolgrad", maxPoolBack{o}, 0, in[0], grad))
}

// maxPoolBack takes (x, dy) and scatters dy to the argmax positions.
type maxPoolBack struct{ fw *maxPoolOp }

func (k maxPoolBack) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	x, dy := t[0], t[1]
	n, c, h, w := dims4(x.Shape())
	ho, wo := dy.Shape()[2], dy.Shape()[3]
	dx := o.grad(&k.fw.st.dx, x)
	switch x.Dtype() {
	case tensor.Float32:
		poolBackward(k.fw.st.arg, n*c, h*w, ho*wo, f32s(dy), f32s(dx))
	case tensor.Float64:
		poolBackward(k.fw.st.arg, n*c, h*w, ho*wo, dy.Float64s(), dx.Float64s())
	}
	return dx, nil
}

func poolBackward[T float](arg []int32, planes, in, out int, dy, dx []T) {
	parallelFor(planes, 4, func(_, p0, p1 int) {
		clear(dx[p0*in : p1*in])
		for p := p0; p < p1; p++ {
			d := dx[p*in : (p+1)*in]
			g := dy[p*out : (p+1)*out]
			for k, a := range arg[p*out : (p+1)*out] {
				if a >= 0 {
					d[a] += g[k]
				}
			}
		}
	})
}

// upsampleOp is darknet's [upsample]: nearest neighbour by an integer stride,
// y[i,j] = x[i/stride, j/stride]. Its gradient sums each stride x stride block.
type upsampleOp struct {
	opBase
	stride int
	st     *poolState
}

// Upsample repeats every pixel stride x stride times.
func Upsample(x *G.Node, stride int) (*G.Node, error) {
	return G.ApplyOp(&upsampleOp{newOpBase("upsample", 4, 4), stride, &poolState{}}, x)
}

func (o *upsampleOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0], s[1], s[2] * o.stride, s[3] * o.stride}, nil
}

func (o *upsampleOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *upsampleOp) forward(t []*tensor.Dense) (G.Value, error) {
	x := t[0]
	n, c, h, w := dims4(x.Shape())
	y := o.buffer(&o.st.y, x.Dtype(), n, c, h*o.stride, w*o.stride)
	switch x.Dtype() {
	case tensor.Float32:
		upForward(o.stride, n*c, h, w, f32s(x), f32s(y))
	case tensor.Float64:
		upForward(o.stride, n*c, h, w, x.Float64s(), y.Float64s())
	}
	return y, nil
}

func upForward[T float](s, planes, h, w int, x, y []T) {
	wo := w * s
	parallelFor(planes, 4, func(_, p0, p1 int) {
		for p := p0; p < p1; p++ {
			xp := x[p*h*w : (p+1)*h*w]
			yp := y[p*h*s*wo : (p+1)*h*s*wo]
			for i := 0; i < h; i++ {
				// Build the first of the s equal output rows, copy it s-1 times.
				row := yp[i*s*wo : (i*s+1)*wo]
				src := xp[i*w : (i+1)*w]
				if s == 2 {
					for j, v := range src {
						row[2*j], row[2*j+1] = v, v
					}
				} else {
					for j := range row {
						row[j] = src[j/s]
					}
				}
				for r := 1; r < s; r++ {
					copy(yp[(i*s+r)*wo:(i*s+r+1)*wo], row)
				}
			}
		}
	})
}

func (o *upsampleOp) DiffWRT(int) []bool { return []bool{true} }
func (o *upsampleOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return gradOf(newBack("upsamplegrad", upsampleBack{o}, 0, in[0], grad))
}

// upsampleBack takes (x, dy) and sums each stride x stride block of dy.
type upsampleBack struct{ fw *upsampleOp }

func (k upsampleBack) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	x, dy := t[0], t[1]
	n, c, h, w := dims4(x.Shape())
	dx := o.grad(&k.fw.st.dx, x)
	switch x.Dtype() {
	case tensor.Float32:
		upBackward(k.fw.stride, n*c, h, w, f32s(dy), f32s(dx))
	case tensor.Float64:
		upBackward(k.fw.stride, n*c, h, w, dy.Float64s(), dx.Float64s())
	}
	return dx, nil
}

func upBackward[T float](s, planes, h, w int, dy, dx []T) {
	wo := w * s
	parallelFor(planes, 4, func(_, p0, p1 int) {
		clear(dx[p0*h*w : p1*h*w])
		for p := p0; p < p1; p++ {
			dp := dx[p*h*w : (p+1)*h*w]
			yp := dy[p*h*s*wo : (p+1)*h*s*wo]
			for i := 0; i < h*s; i++ {
				row := yp[i*wo : (i+1)*wo]
				dst := dp[(i/s)*w : (i/s+1)*w]
				for j, v := range row {
					dst[j/s] += v
				}
			}
		}
	})
}

// avgPoolOp is darknet's [avgpool]: global average pooling (avgpool_layer.c),
//
//	y[n,c,0,0] = (1/(H*W)) sum_ij x[n,c,i,j],  dx[n,c,i,j] = dy[n,c,0,0]/(H*W).
type avgPoolOp struct {
	opBase
	st *poolState
}

// GlobalAvgPool averages each channel of x over its H x W positions.
func GlobalAvgPool(x *G.Node) (*G.Node, error) {
	return G.ApplyOp(&avgPoolOp{newOpBase("avgpool", 4, 4), &poolState{}}, x)
}

func (o *avgPoolOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	if len(s) != 4 {
		return nil, fmt.Errorf("avgpool: want 4-D input, got %v", s)
	}
	return tensor.Shape{s[0], s[1], 1, 1}, nil
}

func (o *avgPoolOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *avgPoolOp) forward(t []*tensor.Dense) (G.Value, error) {
	x := t[0]
	n, c, h, w := dims4(x.Shape())
	y := o.buffer(&o.st.y, x.Dtype(), n, c, 1, 1)
	switch x.Dtype() {
	case tensor.Float32:
		avgForward(n*c, h*w, f32s(x), f32s(y))
	case tensor.Float64:
		avgForward(n*c, h*w, x.Float64s(), y.Float64s())
	}
	return y, nil
}

func avgForward[T float](planes, hw int, x, y []T) {
	for p := 0; p < planes; p++ {
		var s float64
		for _, v := range x[p*hw : (p+1)*hw] {
			s += float64(v)
		}
		y[p] = T(s / float64(hw))
	}
}

func (o *avgPoolOp) DiffWRT(int) []bool { return []bool{true} }
func (o *avgPoolOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return gradOf(newBack("avgpoolgrad", avgPoolBack{o}, 0, in[0], grad))
}

// avgPoolBack takes (x, dy) and spreads dy/(H*W) over each plane.
type avgPoolBack struct{ fw *avgPoolOp }

func (k avgPoolBack) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	x, dy := t[0], t[1]
	n, c, h, w := dims4(x.Shape())
	dx := o.grad(&k.fw.st.dx, x)
	switch x.Dtype() {
	case tensor.Float32:
		avgBackward(n*c, h*w, f32s(dy), f32s(dx))
	case tensor.Float64:
		avgBackward(n*c, h*w, dy.Float64s(), dx.Float64s())
	}
	return dx, nil
}

func avgBackward[T float](planes, hw int, dy, dx []T) {
	for p := 0; p < planes; p++ {
		g := dy[p] / T(hw)
		for j := p * hw; j < (p+1)*hw; j++ {
			dx[j] = g
		}
	}
}

// The layer: its type, its parser (network.go's layerTypes), the node it
// adds to a graph and darknet's size rule along one axis (extent).

// MaxPoolLayer is [maxpool].
type MaxPoolLayer struct {
	sec                      *Section
	C, Size, Stride, Padding int
}

// AvgPoolLayer is [avgpool]: darknet's global average pooling, (N,C,H,W) -> (N,C,1,1).
type AvgPoolLayer struct {
	sec *Section
	C   int
}

// UpsampleLayer is [upsample].
type UpsampleLayer struct {
	sec       *Section
	C, Stride int
}

func (l *MaxPoolLayer) Section() *Section { return l.sec }

func (l *AvgPoolLayer) Section() *Section { return l.sec }

func (l *UpsampleLayer) Section() *Section { return l.sec }

func (l *MaxPoolLayer) OutChannels() int { return l.C }

func (l *AvgPoolLayer) OutChannels() int { return l.C }

func (l *UpsampleLayer) OutChannels() int { return l.C }

func newMaxPool(sec *Section, in int) (*MaxPoolLayer, error) {
	// darknet's parse_maxpool: stride 1 by default, size = stride, padding = size-1.
	r := &ints{sec: sec}
	stride := r.get("stride", 1)
	size := r.get("size", stride)
	pad := r.get("padding", size-1)
	if r.err != nil {
		return nil, r.err
	}
	if size < 1 || stride < 1 || pad < 0 || size > maxKernel || stride > maxKernel || pad > maxKernel {
		return nil, sec.errf(0, "size=%d stride=%d padding=%d: size and stride must be between 1 and %d, padding between 0 and %[4]d", size, stride, pad, maxKernel)
	}
	return &MaxPoolLayer{sec: sec, C: in, Size: size, Stride: stride, Padding: pad}, nil
}

func (l *MaxPoolLayer) node(b *builder, i int) (*G.Node, error) {
	return MaxPool(b.cur, l.Size, l.Stride, l.Padding)
}

func (l *MaxPoolLayer) extent(cur int, out []int) int { return (cur+l.Padding-l.Size)/l.Stride + 1 }

func (l *AvgPoolLayer) node(b *builder, i int) (*G.Node, error) {
	return GlobalAvgPool(b.cur)
}

func (l *AvgPoolLayer) extent(cur int, out []int) int { return 1 }

func (l *UpsampleLayer) node(b *builder, i int) (*G.Node, error) {
	return Upsample(b.cur, l.Stride)
}

func (l *UpsampleLayer) extent(cur int, out []int) int { return cur * l.Stride }

func parseMaxPool(c layerCtx) (Layer, error) { return newMaxPool(c.sec, c.in) }

func parseAvgPool(c layerCtx) (Layer, error) { return &AvgPoolLayer{sec: c.sec, C: c.in}, nil }

func parseUpsample(c layerCtx) (Layer, error) {
	sec := c.sec
	st, err := sec.Int("stride", 2)
	if err == nil && (st < 1 || st > 64) {
		err = sec.errf(sec.opts["stride"].line, "stride=%d must be between 1 and 64 (darknet's negative stride, downsampling, is not supported)", st)
	}
	if err != nil {
		return nil, err
	}
	return &UpsampleLayer{sec: sec, C: c.in, Stride: st}, nil
}
