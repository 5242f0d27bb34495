package model

import (
	"fmt"
	"slices"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/dettrain/dettrain/blas"
)

// Conv2D is a grouped 2-D convolution without bias, as darknet's
// [convolutional] computes it before batch norm:
//
//	y[n,f,i,j] = sum_{c in group(f), u, v} w[f,c,u,v] * x[n,c, i*stride+u-pad, j*stride+v-pad]
//
// out = (in + 2*pad - size)/stride + 1. Each image and group is one im2col and
// one GEMM that writes NCHW directly (no transpose copy).
type convGeom struct {
	size, stride, pad, groups int
}

func (g convGeom) out(in int) int { return (in+2*g.pad-g.size)/g.stride + 1 }

type convState struct {
	y, dx, dw *tensor.Dense
}

type convOp struct {
	opBase
	convGeom
	st *convState
	// noDX: x is the network's input, whose gradient nobody reads; the
	// backward pass computes dW only.
	noDX bool
}

// Conv2D applies the convolution to x (N,C,H,W) with w (F, C/groups, size, size).
func Conv2D(x, w *G.Node, size, stride, pad, groups int) (*G.Node, error) {
	return conv2D(x, w, size, stride, pad, groups, false)
}

func conv2D(x, w *G.Node, size, stride, pad, groups int, noDX bool) (*G.Node, error) {
	op := &convOp{newOpBase("conv", 4, 4, 4), convGeom{size, stride, pad, groups}, &convState{}, noDX}
	return G.ApplyOp(op, x, w)
}

func (o *convOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	ss, err := shapes(in)
	if err != nil {
		return nil, err
	}
	xs, ws := ss[0], ss[1]
	if len(xs) != 4 || len(ws) != 4 {
		return nil, fmt.Errorf("conv: want 4-D input and weights, got %v and %v", xs, ws)
	}
	if xs[1] != ws[1]*o.groups || ws[0]%o.groups != 0 || ws[2] != o.size || ws[3] != o.size {
		return nil, fmt.Errorf("conv: input %v does not fit weights %v with %d groups", xs, ws, o.groups)
	}
	ho, wo := o.out(xs[2]), o.out(xs[3])
	if ho < 1 || wo < 1 {
		return nil, fmt.Errorf("conv: input %v too small for size %d stride %d", xs, o.size, o.stride)
	}
	return tensor.Shape{xs[0], ws[0], ho, wo}, nil
}

func (o *convOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *convOp) forward(t []*tensor.Dense) (G.Value, error) {
	x, w := t[0], t[1]
	n, _, h, wd := dims4(x.Shape())
	f := w.Shape()[0]
	y := o.buffer(&o.st.y, x.Dtype(), n, f, o.out(h), o.out(wd))
	switch x.Dtype() {
	case tensor.Float32:
		convForward(o.convGeom, x.Shape(), w.Shape(), f32s(x), f32s(w), f32s(y))
	case tensor.Float64:
		convForward(o.convGeom, x.Shape(), w.Shape(), x.Float64s(), w.Float64s(), y.Float64s())
	default:
		return nil, fmt.Errorf("conv: unsupported dtype %v", x.Dtype())
	}
	return y, nil
}

func (o *convOp) DiffWRT(int) []bool { return []bool{!o.noDX, true} }

func (o *convOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	ins := G.Nodes{in[0], in[1], grad} // x, w, dy
	var dx *G.Node
	if !o.noDX {
		var err error
		if dx, err = newBack("convdx", convBackX{o}, 0, ins...); err != nil {
			return nil, err
		}
	}
	// dW is a parameter's gradient: its own buffer, no gradient slot.
	dw, err := G.ApplyOp(backOpFor("convdw", convBackW{o}, 1, true, ins), ins...)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw}, nil
}

// convBackX computes dL/dx from (x, w, dy): per image, dcol = w^T dy, then col2im.
type convBackX struct{ fw *convOp }

func (k convBackX) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	x, w, dy := t[0], t[1], t[2]
	dx := o.grad(&k.fw.st.dx, x)
	switch x.Dtype() {
	case tensor.Float32:
		convBackData(k.fw.convGeom, x.Shape(), w.Shape(), f32s(w), f32s(dy), f32s(dx))
	case tensor.Float64:
		convBackData(k.fw.convGeom, x.Shape(), w.Shape(), w.Float64s(), dy.Float64s(), dx.Float64s())
	}
	return dx, nil
}

// convBackW computes dL/dw from (x, w, dy): sum over images of dy col^T.
type convBackW struct{ fw *convOp }

func (k convBackW) backward(o *backBase, t []*tensor.Dense) (*tensor.Dense, error) {
	x, w, dy := t[0], t[1], t[2]
	dw := o.buffer(&k.fw.st.dw, x.Dtype(), w.Shape()...)
	switch x.Dtype() {
	case tensor.Float32:
		convBackFilter(k.fw.convGeom, x.Shape(), w.Shape(), f32s(x), f32s(dy), f32s(dw))
	case tensor.Float64:
		convBackFilter(k.fw.convGeom, x.Shape(), w.Shape(), x.Float64s(), dy.Float64s(), dw.Float64s())
	}
	return dw, nil
}

// pointwise reports a 1x1, stride 1, unpadded conv: its im2col is the input itself.
func (g convGeom) pointwise() bool { return g.size == 1 && g.stride == 1 && g.pad == 0 }

// scratch holds the im2col buffers and partial dW sums of every conv op in
// the process: they are needed only while one op runs, so each op takes them
// for the call and gives them back, instead of keeping its own (which summed
// over YOLOv3's 75 convs and the workers came to hundreds of MB). A mutex
// keeps it safe for replicas that run graphs on goroutines.
var scratch struct {
	sync.Mutex
	f32 [][]float32
	f64 [][]float64
}

func scratchList[T float]() *[][]T {
	var z T
	if _, ok := any(z).(float32); ok {
		return any(&scratch.f32).(*[][]T)
	}
	return any(&scratch.f64).(*[][]T)
}

// getScratch returns k buffers of at least size elements (contents
// unspecified): the smallest free ones that fit; when none fits, the largest
// free one is dropped and a new one made, so the pool grows to a few buffers
// of the largest size in use.
func getScratch[T float](k, size int) [][]T {
	scratch.Lock()
	defer scratch.Unlock()
	l := scratchList[T]()
	out := make([][]T, k)
	for q := range out {
		best := -1
		for i, b := range *l {
			if len(b) >= size && (best < 0 || len(b) < len((*l)[best])) {
				best = i
			}
		}
		if best < 0 {
			if len(*l) > 0 { // drop the largest (too small) one
				big := 0
				for i, b := range *l {
					if len(b) > len((*l)[big]) {
						big = i
					}
				}
				*l = append((*l)[:big], (*l)[big+1:]...)
			}
			out[q] = make([]T, size)
			continue
		}
		out[q] = (*l)[best]
		*l = append((*l)[:best], (*l)[best+1:]...)
	}
	return out
}

func putScratch[T float](bs [][]T) {
	scratch.Lock()
	defer scratch.Unlock()
	l := scratchList[T]()
	*l = append(*l, bs...)
}

// imageWorkers is the number of goroutines that split a batch of n images
// (parallelFor(n, 1, ...)): blas.Threads(), at most n. GEMMs inside are
// single-threaded (blas.SetThreads), so im2col, col2im and the GEMMs of the
// workers run side by side on the cores.
func imageWorkers(n int) int { return workers(n, 1) }

// gemmRows is blas.Gemm with the m rows of C split over the threads when a
// batch is too small to split by image (one image, or one image per thread
// short). Each row of C is computed by one single-threaded GEMM.
func gemmRows[T float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int, split bool) {
	if !split {
		blas.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	parallelFor(m, 16, func(_, m0, m1 int) {
		ao := m0 * lda
		if transA {
			ao = m0
		}
		blas.Gemm(transA, transB, m1-m0, n, k, alpha, a[ao:], lda, b, ldb, beta, c[m0*ldc:], ldc)
	})
}

// convTileElems is the size of an im2col tile (elements) in the per-image
// path: a large image's column matrix (K x H*W: 144 x 16384 floats, 9 MB, for
// a 3x3 conv of 16 channels at 128x128) is built and multiplied a band of
// output rows at a time, so that the band stays in the core's cache between
// im2col (or the GEMM that writes it) and its reader, instead of going
// through memory. Bands are at least convTileMinCols columns wide (narrower
// GEMMs lose more than the cache gains). On yolov3-tiny train at 256, batch 8
// (bench --op-times), the ops of the first three convs took about 120 ms per
// step with whole images and 87 ms with bands of 16K elements (32K and 64K:
// the same within noise), and their column buffers shrank from up to 9 MB
// per worker to 64 KB.
var (
	convTileElems   = 16 << 10
	convTileMinCols = 512
)

// tileRows is the number of output rows per im2col band for a column matrix
// of kk rows and wo columns per output row.
func tileRows(kk, ho, wo int) int {
	r := convTileElems / max(kk*wo, 1)
	if r*wo < convTileMinCols {
		r = (convTileMinCols + wo - 1) / wo
	}
	return max(1, min(r, ho))
}

// imageCols is the per-image path's setup for a conv of sizes d: whether its
// GEMMs split rows (one worker), the output rows per im2col band and one
// band buffer per worker (none for pointwise convs), to give back with
// putScratch.
func imageCols[T float](g convGeom, d convDims) (split bool, rows int, cols [][]T) {
	nw := imageWorkers(d.n)
	rows = tileRows(d.kk, d.ho, d.wo)
	if !g.pointwise() {
		cols = getScratch[T](nw, d.kk*rows*d.wo)
	}
	return nw == 1, rows, cols
}

func convForward[T float](g convGeom, xs, ws tensor.Shape, x, w, y []T) {
	d := newConvDims(g, xs, ws)
	if g.depthwise(d.c, d.f) {
		dwConv(g, d.n, d.c, d.h, d.wd, w, x, y, false)
		return
	}
	if q := chunkImages(g, d.n, d.hw); q > 1 {
		chunkedForward(g, d, q, x, w, y)
		return
	}
	split, rows, cols := imageCols[T](g, d)
	defer putScratch(cols)
	n, c, h, wd, f, cg, fg, ho, wo, hw, kk := d.n, d.c, d.h, d.wd, d.f, d.cg, d.fg, d.ho, d.wo, d.hw, d.kk
	parallelFor(n, 1, func(k, lo, hi int) {
		for i := lo; i < hi; i++ {
			for gi := 0; gi < g.groups; gi++ {
				xin := x[(i*c+gi*cg)*h*wd : (i*c+(gi+1)*cg)*h*wd]
				wg := w[gi*fg*kk : (gi+1)*fg*kk]
				out := y[(i*f+gi*fg)*hw : (i*f+(gi+1)*fg)*hw]
				if g.pointwise() {
					gemmRows(false, false, fg, hw, kk, 1, wg, kk, xin, hw, 0, out, hw, split)
					continue
				}
				for i0 := 0; i0 < ho; i0 += rows {
					i1 := min(i0+rows, ho)
					nc := (i1 - i0) * wo
					col := cols[k][:kk*nc]
					im2col(xin, cg, h, wd, g, wo, i0, i1, col, nc)
					gemmRows(false, false, fg, nc, kk, 1, wg, kk, col, nc, 0, out[i0*wo:], hw, split)
				}
			}
		}
	})
}

func convBackData[T float](g convGeom, xs, ws tensor.Shape, w, dy, dx []T) {
	d := newConvDims(g, xs, ws)
	if g.depthwise(d.c, d.f) {
		dwConv(g, d.n, d.c, d.h, d.wd, w, dy, dx, true)
		return
	}
	if q := chunkImages(g, d.n, d.hw); q > 1 {
		chunkedBackData(g, d, q, w, dy, dx)
		return
	}
	split, rows, cols := imageCols[T](g, d)
	defer putScratch(cols)
	n, c, h, wd, f, cg, fg, ho, wo, hw, kk := d.n, d.c, d.h, d.wd, d.f, d.cg, d.fg, d.ho, d.wo, d.hw, d.kk
	parallelFor(n, 1, func(k, lo, hi int) {
		for i := lo; i < hi; i++ {
			for gi := 0; gi < g.groups; gi++ {
				dxo := dx[(i*c+gi*cg)*h*wd : (i*c+(gi+1)*cg)*h*wd]
				d := dy[(i*f+gi*fg)*hw : (i*f+(gi+1)*fg)*hw]
				wg := w[gi*fg*kk : (gi+1)*fg*kk]
				if g.pointwise() {
					gemmRows(true, false, kk, hw, fg, 1, wg, kk, d, hw, 0, dxo, hw, split)
					continue
				}
				clear(dxo)
				for i0 := 0; i0 < ho; i0 += rows {
					i1 := min(i0+rows, ho)
					nc := (i1 - i0) * wo
					col := cols[k][:kk*nc]
					gemmRows(true, false, kk, nc, fg, 1, wg, kk, d[i0*wo:], hw, 0, col, nc, split)
					col2im(col, cg, h, wd, g, wo, i0, i1, dxo, nc)
				}
			}
		}
	})
}

func convBackFilter[T float](g convGeom, xs, ws tensor.Shape, x, dy, dw []T) {
	d := newConvDims(g, xs, ws)
	if g.depthwise(d.c, d.f) {
		dwBackFilter(g, d.n, d.c, d.h, d.wd, x, dy, dw)
		return
	}
	if q := chunkImages(g, d.n, d.hw); q > 1 {
		chunkedBackFilter(g, d, q, x, dy, dw)
		return
	}
	split, rows, cols := imageCols[T](g, d)
	defer putScratch(cols)
	n, c, h, wd, f, cg, fg, ho, wo, hw, kk := d.n, d.c, d.h, d.wd, d.f, d.cg, d.fg, d.ho, d.wo, d.hw, d.kk
	// Worker 0 sums its images into dw, worker k > 0 into its own partial
	// buffer; the partials are added in worker order afterwards (a fixed
	// order: the same sums every run).
	var ps [][]T
	if nw := imageWorkers(n); nw > 1 {
		ps = getScratch[T](nw-1, len(dw))
		defer putScratch(ps)
	}
	parallelFor(n, 1, func(k, lo, hi int) {
		acc := dw
		if k > 0 {
			acc = ps[k-1][:len(dw)]
		}
		clear(acc)
		for i := lo; i < hi; i++ {
			for gi := 0; gi < g.groups; gi++ {
				xin := x[(i*c+gi*cg)*h*wd : (i*c+(gi+1)*cg)*h*wd]
				d := dy[(i*f+gi*fg)*hw : (i*f+(gi+1)*fg)*hw]
				ag := acc[gi*fg*kk : (gi+1)*fg*kk]
				if g.pointwise() {
					gemmRows(false, true, fg, kk, hw, 1, d, hw, xin, hw, 1, ag, kk, split)
					continue
				}
				for i0 := 0; i0 < ho; i0 += rows {
					i1 := min(i0+rows, ho)
					nc := (i1 - i0) * wo
					col := cols[k][:kk*nc]
					im2col(xin, cg, h, wd, g, wo, i0, i1, col, nc)
					gemmRows(false, true, fg, kk, nc, 1, d[i0*wo:], hw, col, nc, 1, ag, kk, split)
				}
			}
		}
	})
	addPartials(dw, ps)
}

// im2col lays out output rows [i0, i1) of x (c,h,w) as columns: row (ch,u,v),
// column (i-i0)*wo+j holds x[ch, i*stride+u-pad, j*stride+v-pad] (0 outside
// the image), with rows ld elements apart (ld = (i1-i0)*wo for a band of one
// image; a batched convolution puts the images' columns side by side). The
// columns j whose input lies inside the row are found once per (u,v)
// (dwSpan): a stride-1 row is then one copy and two short clears.
func im2col[T float](x []T, c, h, w int, g convGeom, wo, i0, i1 int, col []T, ld int) {
	if g.smallS1(h, w) {
		im2colSmall(x, c, h, w, g, wo, i0, i1, col, ld)
		return
	}
	for ch := 0; ch < c; ch++ {
		xc := x[ch*h*w : (ch+1)*h*w]
		for u := 0; u < g.size; u++ {
			for v := 0; v < g.size; v++ {
				row := col[((ch*g.size+u)*g.size+v)*ld:][:(i1-i0)*wo]
				lo, hi := g.dwSpan(v, w, wo)
				for i := i0; i < i1; i++ {
					yy := i*g.stride + u - g.pad
					r := row[(i-i0)*wo : (i-i0+1)*wo]
					if yy < 0 || yy >= h {
						clear(r)
						continue
					}
					xr := xc[yy*w : (yy+1)*w]
					clear(r[:lo])
					clear(r[hi:])
					if g.stride == 1 {
						copy(r[lo:hi], xr[lo+v-g.pad:hi+v-g.pad])
						continue
					}
					if g.stride == 2 && hi > lo {
						src := xr[2*lo+v-g.pad:]
						dst := r[lo:hi]
						src = src[:2*len(dst)-1]
						for j := range dst {
							dst[j] = src[2*j]
						}
						continue
					}
					for j := lo; j < hi; j++ {
						r[j] = xr[j*g.stride+v-g.pad]
					}
				}
			}
		}
	}
}

// col2im is the adjoint of im2col for output rows [i0, i1) (rows ld elements
// apart): it adds to x the columns that read each pixel. The caller clears x
// before the first band.
func col2im[T float](col []T, c, h, w int, g convGeom, wo, i0, i1 int, x []T, ld int) {
	if g.smallS1(h, w) {
		col2imSmall(col, c, h, w, g, wo, i0, i1, x, ld)
		return
	}
	for ch := 0; ch < c; ch++ {
		xc := x[ch*h*w : (ch+1)*h*w]
		for u := 0; u < g.size; u++ {
			for v := 0; v < g.size; v++ {
				row := col[((ch*g.size+u)*g.size+v)*ld:][:(i1-i0)*wo]
				lo, hi := g.dwSpan(v, w, wo)
				for i := i0; i < i1; i++ {
					yy := i*g.stride + u - g.pad
					if yy < 0 || yy >= h {
						continue
					}
					xr := xc[yy*w : (yy+1)*w]
					r := row[(i-i0)*wo : (i-i0+1)*wo]
					if g.stride == 1 {
						addTo(xr[lo+v-g.pad:hi+v-g.pad], r[lo:hi])
						continue
					}
					for j := lo; j < hi; j++ {
						xr[j*g.stride+v-g.pad] += r[j]
					}
				}
			}
		}
	}
}

// smallPlane is the largest zero-padded input plane (elements) that
// im2colSmall and col2imSmall keep on the stack.
const smallPlane = 4096

// smallS1 reports a stride-1 conv whose zero-padded input plane fits in
// smallPlane: im2col and col2im then go through the padded plane, where
// every row of every tap is one plain copy (or add) of wo elements with no
// bounds to work out. Small images (8x8 .. 32x32) have short rows, where the
// general loop's spans, clears and calls cost more than the data.
func (g convGeom) smallS1(h, w int) bool {
	return g.stride == 1 && (h+2*g.pad)*(w+2*g.pad) <= convSmallPlane
}

// convSmallPlane is smallPlane, or 0 to test the general loops.
var convSmallPlane = smallPlane

// im2colSmall is im2col for smallS1 geometries.
func im2colSmall[T float](x []T, c, h, w int, g convGeom, wo, i0, i1 int, col []T, ld int) {
	pw := w + 2*g.pad
	var pb [smallPlane]T
	p := pb[:(h+2*g.pad)*pw] // borders stay zero; the interior is each channel's plane
	n := (i1 - i0) * wo
	for ch := 0; ch < c; ch++ {
		xc := x[ch*h*w : (ch+1)*h*w]
		for yy := 0; yy < h; yy++ {
			copy(p[(yy+g.pad)*pw+g.pad:][:w], xc[yy*w:(yy+1)*w])
		}
		for u := 0; u < g.size; u++ {
			for v := 0; v < g.size; v++ {
				row := col[((ch*g.size+u)*g.size+v)*ld:][:n]
				src := p[(i0+u)*pw+v:]
				switch wo {
				case 8:
					for i := 0; i < i1-i0; i++ {
						*(*[8]T)(row[i*8:]) = *(*[8]T)(src[i*pw:])
					}
				case 16:
					for i := 0; i < i1-i0; i++ {
						*(*[16]T)(row[i*16:]) = *(*[16]T)(src[i*pw:])
					}
				default:
					for i := 0; i < i1-i0; i++ {
						copy(row[i*wo:(i+1)*wo], src[i*pw:i*pw+wo])
					}
				}
			}
		}
	}
}

// col2imSmall is col2im for smallS1 geometries: the columns are summed
// into a zero-padded plane, whose interior is then added to x.
func col2imSmall[T float](col []T, c, h, w int, g convGeom, wo, i0, i1 int, x []T, ld int) {
	pw := w + 2*g.pad
	var pb [smallPlane]T
	p := pb[:(h+2*g.pad)*pw]
	n := (i1 - i0) * wo
	for ch := 0; ch < c; ch++ {
		clear(p)
		for u := 0; u < g.size; u++ {
			for v := 0; v < g.size; v++ {
				row := col[((ch*g.size+u)*g.size+v)*ld:][:n]
				dst := p[(i0+u)*pw+v:]
				switch wo {
				case 8:
					for i := 0; i < i1-i0; i++ {
						d, s := (*[8]T)(dst[i*pw:]), (*[8]T)(row[i*8:])
						for j := range d {
							d[j] += s[j]
						}
					}
				default:
					for i := 0; i < i1-i0; i++ {
						d, s := dst[i*pw:i*pw+wo], row[i*wo:(i+1)*wo]
						for j := range d {
							d[j] += s[j]
						}
					}
				}
			}
		}
		xc := x[ch*h*w : (ch+1)*h*w]
		for yy := 0; yy < h; yy++ {
			addTo(xc[yy*w:(yy+1)*w], p[(yy+g.pad)*pw+g.pad:][:w])
		}
	}
}

// depthwise reports a convolution with one input and one output channel per
// group (groups = C = F, MobileNet's depthwise conv): it is computed directly,
// without im2col and its C tiny GEMMs per image.
func (g convGeom) depthwise(c, f int) bool { return g.groups > 1 && g.groups == c && g.groups == f }

// dwSpan returns the output columns j in [lo, hi) whose input column
// j*stride+v-pad lies inside [0, w).
func (g convGeom) dwSpan(v, w, wo int) (lo, hi int) {
	// j*stride >= pad-v  and  j*stride <= w-1+pad-v
	lo = 0
	if d := g.pad - v; d > 0 {
		lo = (d + g.stride - 1) / g.stride
	}
	hi = 0
	if d := w - 1 + g.pad - v; d >= 0 {
		hi = min(d/g.stride+1, wo)
	}
	return lo, max(hi, lo)
}

// dwConv computes the depthwise convolution or its adjoint, one loop for
// both: with adjoint false src is x and dst y,
//
//	y[n,c,i,j] = sum_{u,v} w[c,0,u,v] * x[n,c,i*stride+u-pad, j*stride+v-pad]
//
// with adjoint true src is dy and dst dx, the gradient with respect to x:
// dx[n,c,yy,xx] = sum over (i,j,u,v) reading it of w[c,0,u,v]*dy[n,c,i,j].
// Channels are split between goroutines.
func dwConv[T float](g convGeom, n, c, h, w int, wt, src, dst []T, adjoint bool) {
	ho, wo := g.out(h), g.out(w)
	k := g.size
	if g.dw3(w) {
		parallelFor(c, 4, func(_, c0, c1 int) {
			zero := make([]T, w)
			for ch := c0; ch < c1; ch++ {
				kk := *(*[9]T)(wt[ch*9 : ch*9+9])
				if adjoint { // the kernel turned by 180 degrees
					slices.Reverse(kk[:])
				}
				for i := 0; i < n; i++ {
					off := (i*c + ch) * h * w
					dw3Plane(src[off:off+h*w], dst[off:off+h*w], h, w, &kk, zero)
				}
			}
		})
		return
	}
	xs, ys := src, dst // the x side (h x w planes) and the y side (ho x wo)
	if adjoint {
		xs, ys = dst, src
	}
	parallelFor(c, 4, func(_, c0, c1 int) {
		for i := 0; i < n; i++ {
			for ch := c0; ch < c1; ch++ {
				xp := xs[(i*c+ch)*h*w:][:h*w]
				yp := ys[(i*c+ch)*ho*wo:][:ho*wo]
				kw := wt[ch*k*k:][:k*k]
				if adjoint {
					clear(xp)
				} else {
					clear(yp)
				}
				for u := 0; u < k; u++ {
					for v := 0; v < k; v++ {
						wv := kw[u*k+v]
						lo, hi := g.dwSpan(v, w, wo)
						for oi := 0; oi < ho; oi++ {
							yy := oi*g.stride + u - g.pad
							if yy < 0 || yy >= h {
								continue
							}
							xr := xp[yy*w : (yy+1)*w]
							yr := yp[oi*wo : (oi+1)*wo]
							if g.stride == 1 {
								a, b := xr[lo+v-g.pad:hi+v-g.pad], yr[lo:hi]
								if adjoint {
									a, b = b, a
								}
								b = b[:len(a)]
								for j, s := range a {
									b[j] += wv * s
								}
								continue
							}
							if adjoint {
								for j := lo; j < hi; j++ {
									xr[j*g.stride+v-g.pad] += wv * yr[j]
								}
								continue
							}
							for j := lo; j < hi; j++ {
								yr[j] += wv * xr[j*g.stride+v-g.pad]
							}
						}
					}
				}
			}
		}
	})
}

// dwBackFilter: dw[c,0,u,v] = sum_{n,i,j} dy[n,c,i,j] * x[n,c,i*stride+u-pad, j*stride+v-pad].
func dwBackFilter[T float](g convGeom, n, c, h, w int, x, dy, dw []T) {
	ho, wo := g.out(h), g.out(w)
	k := g.size
	if g.dw3(w) {
		parallelFor(c, 4, func(_, c0, c1 int) {
			zero := make([]T, w)
			for ch := c0; ch < c1; ch++ {
				var s [9]float64
				for i := 0; i < n; i++ {
					off := (i*c + ch) * h * w
					dw3Filter(x[off:off+h*w], dy[off:off+h*w], h, w, &s, zero)
				}
				for q, v := range s {
					dw[ch*9+q] = T(v)
				}
			}
		})
		return
	}
	parallelFor(c, 4, func(_, c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			kw := dw[ch*k*k:][:k*k]
			for u := 0; u < k; u++ {
				for v := 0; v < k; v++ {
					lo, hi := g.dwSpan(v, w, wo)
					var sum float64
					for i := 0; i < n; i++ {
						xp := x[(i*c+ch)*h*w:][:h*w]
						dyp := dy[(i*c+ch)*ho*wo:][:ho*wo]
						var s T
						for oi := 0; oi < ho; oi++ {
							yy := oi*g.stride + u - g.pad
							if yy < 0 || yy >= h {
								continue
							}
							xr := xp[yy*w : (yy+1)*w]
							yr := dyp[oi*wo : (oi+1)*wo]
							if g.stride == 1 {
								a := xr[lo+v-g.pad : hi+v-g.pad]
								b := yr[lo:hi]
								for j := range b {
									s += a[j] * b[j]
								}
								continue
							}
							for j := lo; j < hi; j++ {
								s += xr[j*g.stride+v-g.pad] * yr[j]
							}
						}
						sum += float64(s)
					}
					kw[u*k+v] = T(sum)
				}
			}
		}
	})
}

// dw3 reports the depthwise case that MobileNet-style models use most: 3x3,
// stride 1, padding 1 ("same" output), on planes at least 3 pixels wide. It
// has its own kernels below, which read each input row once per output row
// instead of once per tap.
func (g convGeom) dw3(w int) bool { return g.size == 3 && g.stride == 1 && g.pad == 1 && w >= 3 }

// dw3Plane computes y = sum_{u,v} k[u*3+v] * x[i+u-1, j+v-1] on one h x w
// plane (zero outside). With k rotated by 180 degrees it is the adjoint, the
// gradient with respect to x. zero is a zeroed row of length w.
func dw3Plane[T float](x, y []T, h, w int, k *[9]T, zero []T) {
	for i := 0; i < h; i++ {
		r0, r1, r2 := zero, x[i*w:(i+1)*w], zero
		if i > 0 {
			r0 = x[(i-1)*w : i*w]
		}
		if i+1 < h {
			r2 = x[(i+1)*w : (i+2)*w]
		}
		yr := y[i*w : (i+1)*w]
		yr[0] = k[1]*r0[0] + k[2]*r0[1] + k[4]*r1[0] + k[5]*r1[1] + k[7]*r2[0] + k[8]*r2[1]
		e := w - 1
		yr[e] = k[0]*r0[e-1] + k[1]*r0[e] + k[3]*r1[e-1] + k[4]*r1[e] + k[6]*r2[e-1] + k[7]*r2[e]
		a, b, c := r0[:w], r1[:w], r2[:w]
		for j := 1; j < e; j++ {
			yr[j] = k[0]*a[j-1] + k[1]*a[j] + k[2]*a[j+1] +
				k[3]*b[j-1] + k[4]*b[j] + k[5]*b[j+1] +
				k[6]*c[j-1] + k[7]*c[j] + k[8]*c[j+1]
		}
	}
}

// dw3Filter adds to s[u*3+v] the sums over one plane of dy[i,j] * x[i+u-1, j+v-1].
func dw3Filter[T float](x, dy []T, h, w int, s *[9]float64, zero []T) {
	for i := 0; i < h; i++ {
		r0, r1, r2 := zero, x[i*w:(i+1)*w], zero
		if i > 0 {
			r0 = x[(i-1)*w : i*w]
		}
		if i+1 < h {
			r2 = x[(i+1)*w : (i+2)*w]
		}
		d := dy[i*w : (i+1)*w]
		e := w - 1
		var t [9]T
		// Column 0 has no left neighbour, column e no right one.
		t[1], t[2] = d[0]*r0[0], d[0]*r0[1]
		t[4], t[5] = d[0]*r1[0], d[0]*r1[1]
		t[7], t[8] = d[0]*r2[0], d[0]*r2[1]
		t[0] += d[e] * r0[e-1]
		t[1] += d[e] * r0[e]
		t[3] += d[e] * r1[e-1]
		t[4] += d[e] * r1[e]
		t[6] += d[e] * r2[e-1]
		t[7] += d[e] * r2[e]
		a, b, c := r0[:w], r1[:w], r2[:w]
		for j := 1; j < e; j++ {
			dj := d[j]
			t[0] += dj * a[j-1]
			t[1] += dj * a[j]
			t[2] += dj * a[j+1]
			t[3] += dj * b[j-1]
			t[4] += dj * b[j]
			t[5] += dj * b[j+1]
			t[6] += dj * c[j-1]
			t[7] += dj * c[j]
			t[8] += dj * c[j+1]
		}
		for q := range t {
			s[q] += float64(t[q])
		}
	}
}

// The layer: its type, its parser (network.go's layerTypes), the node it
// adds to a graph and darknet's size rule along one axis (extent).

// ConvLayer is [convolutional]: conv, then BN + activation or bias + activation.
type ConvLayer struct {
	sec                               *Section
	In, Filters, Size, Stride, Pad, G int
	BatchNorm                         bool
	Act                               Activation
	W                                 *tensor.Dense // (Filters, In/G, Size, Size)
	Bias                              *tensor.Dense // (Filters): beta with BN, else the bias
	Gamma                             *tensor.Dense // (Filters), BN only
	BN                                *BNState      // BN only
}

func (l *ConvLayer) Section() *Section { return l.sec }

func (l *ConvLayer) OutChannels() int { return l.Filters }

func newConv(sec *Section, in int) (*ConvLayer, error) {
	r := &ints{sec: sec}
	l := &ConvLayer{sec: sec, In: in, Filters: r.get("filters", 1), Size: r.get("size", 1), Stride: r.get("stride", 1), G: r.get("groups", 1)}
	l.BatchNorm = r.get("batch_normalize", 0) != 0
	l.Pad = r.get("padding", 0)
	if r.get("pad", 0) != 0 {
		l.Pad = l.Size / 2
	}
	if r.err != nil {
		return nil, r.err
	}
	a, err := activation(sec, "logistic") // darknet's default for [convolutional]
	if err != nil {
		return nil, err
	}
	l.Act = a
	switch {
	case l.Filters < 1 || l.Size < 1 || l.Stride < 1 || l.G < 1 || l.Pad < 0:
		return nil, sec.errf(0, "filters=%d size=%d stride=%d groups=%d padding=%d: must be positive", l.Filters, l.Size, l.Stride, l.G, l.Pad)
	case l.Filters > maxChannels || l.Size > maxKernel || l.Stride > maxKernel || l.Pad > maxKernel:
		return nil, sec.errf(0, "filters=%d size=%d stride=%d padding=%d: too large (at most %d filters, sizes up to %d)", l.Filters, l.Size, l.Stride, l.Pad, maxChannels, maxKernel)
	case in%l.G != 0 || l.Filters%l.G != 0:
		return nil, sec.errf(0, "groups=%d does not divide the %d input channels and %d filters", l.G, in, l.Filters)
	case l.Filters*(in/l.G)*l.Size*l.Size > maxLayerFloats:
		return nil, sec.errf(0, "%d filters of %dx%dx%d: more than %d weights in one layer", l.Filters, in/l.G, l.Size, l.Size, maxLayerFloats)
	}
	l.W = tensor.New(tensor.WithShape(l.Filters, in/l.G, l.Size, l.Size), tensor.Of(tensor.Float32))
	l.Bias = tensor.New(tensor.WithShape(l.Filters), tensor.Of(tensor.Float32))
	if l.BatchNorm {
		l.Gamma = tensor.New(tensor.WithShape(l.Filters), tensor.Of(tensor.Float32))
		l.BN = &BNState{Mean: make([]float32, l.Filters), Var: make([]float32, l.Filters), Momentum: 0.1, Eps: DefaultBNEps}
	}
	return l, nil
}

func (l *ConvLayer) node(b *builder, i int) (*G.Node, error) {
	w := b.param(fmt.Sprintf("%d.weight", i), l.W)
	// The input image needs no gradient: the first conv skips its dx.
	y, err := conv2D(b.cur, w, l.Size, l.Stride, l.Pad, l.G, b.cur == b.x)
	if err != nil {
		return nil, err
	}
	var gamma *G.Node
	if l.BatchNorm {
		gamma = b.param(fmt.Sprintf("%d.gamma", i), l.Gamma)
	}
	bias := b.param(fmt.Sprintf("%d.bias", i), l.Bias)
	if l.BatchNorm {
		b.gr.params = append(b.gr.params, w, gamma, bias)
		return BNActSync(y, gamma, bias, l.Act, l.BN, b.training, b.sync)
	}
	b.gr.params = append(b.gr.params, w, bias)
	return BiasAct(y, bias, l.Act)
}

func (l *ConvLayer) extent(cur int, out []int) int { return (cur+2*l.Pad-l.Size)/l.Stride + 1 }

func parseConv(c layerCtx) (Layer, error) { return newConv(c.sec, c.in) }
