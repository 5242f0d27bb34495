package data

import (
	"fmt"
	"math"
)

// Interp is a resize interpolation method, numbered as OpenCV numbers them
// (and so as mxnet's imresize interp argument, from which GluonCV's YOLOv3
// training transform draws one at random per image: np.random.randint(0, 5)
// over nearest, bilinear, area, bicubic and Lanczos; dettrain has the first
// four).
type Interp int

const (
	InterpNearest  Interp = 0 // cv::INTER_NEAREST
	InterpBilinear Interp = 1 // cv::INTER_LINEAR
	InterpArea     Interp = 2 // cv::INTER_AREA
	InterpBicubic  Interp = 3 // cv::INTER_CUBIC

	// NumInterps is the number of methods: the random one is
	// Interp(r.IntN(NumInterps)).
	NumInterps = 4
)

func (m Interp) String() string {
	switch m {
	case InterpNearest:
		return "nearest"
	case InterpBilinear:
		return "bilinear"
	case InterpArea:
		return "area"
	case InterpBicubic:
		return "bicubic"
	}
	return fmt.Sprintf("Interp(%d)", int(m))
}

// Resize returns src resized to w x h with method m. The methods reproduce
// OpenCV's cv::resize on float images (pixel centres at +0.5, borders
// replicated), in pure Go:
//
//   - nearest: dst(x) = src(floor(x*n/dn)), the index capped at n-1;
//   - bilinear: fx = (x+0.5)*n/dn - 0.5, sx = floor(fx), weights 1-(fx-sx)
//     and fx-sx on sx and sx+1 (fx-sx = 0 left of the first and right of the
//     last source centre);
//   - bicubic: the same fx, four taps sx-1..sx+2 with Keys' kernel, A = -0.75
//     (OpenCV's interpolateCubic), indices clamped to the image;
//   - area: when neither axis is enlarged, each output pixel is the mean of
//     the source area it covers, partial pixels weighted by the part covered
//     (OpenCV's computeResizeAreaTab); otherwise OpenCV's INTER_AREA
//     enlargement rule on both axes: sx = floor(x*n/dn),
//     f = (x+1) - (sx+1)*dn/n, weight frac(f) (0 when f <= 0) on sx+1, like
//     nearest with a linear seam.
//
// Every method is separable: the rows are resampled first, then the columns,
// summing in float32.
func Resize(src *Image, w, h int, m Interp) *Image {
	dst := NewImage(w, h)
	resample(src, Rect{W: src.W, H: src.H}, [3]float32{}, w, h, m, func(y int, row []float32) {
		copy(dst.Pix[y*w*3:(y+1)*w*3], row)
	})
	return dst
}

// taps holds, for each output index d of one axis, the source indices and
// weights idx[start[d]:start[d+1]], w[start[d]:start[d+1]].
type taps struct {
	start []int32
	idx   []int32
	w     []float32
}

// axisTaps computes the taps that resize an axis of n pixels to dn pixels,
// with OpenCV's arithmetic (cv::resize, imgproc/src/resize.cpp, 4.x): scale
// = 1/(dn/n) in double, positions and linear/cubic weights in float. areaDown
// selects area averaging for InterpArea (neither axis enlarged); otherwise
// InterpArea uses OpenCV's enlargement rule.
func axisTaps(n, dn int, m Interp, areaDown bool) taps {
	inv := float64(dn) / float64(n)
	scale := 1 / inv
	t := taps{start: make([]int32, dn+1)}
	t.idx = make([]int32, 0, 4*dn)
	t.w = make([]float32, 0, 4*dn)
	add := func(i int, w float32) {
		t.idx = append(t.idx, int32(min(max(i, 0), n-1)))
		t.w = append(t.w, w)
	}
	// linear adds the two taps of a linear interpolation at sx + fx, with
	// OpenCV's clamping of positions left of the first and right of the last
	// pixel centre.
	linear := func(sx int, fx float32) {
		if sx < 0 {
			sx, fx = 0, 0
		}
		if sx >= n-1 {
			sx, fx = n-1, 0
		}
		add(sx, 1-fx)
		add(sx+1, fx)
	}
	for d := range dn {
		switch {
		case m == InterpNearest:
			add(int(math.Floor(float64(d)*scale)), 1)
		case m == InterpBilinear:
			f := float32((float64(d)+0.5)*scale - 0.5)
			sx := floor32(f)
			linear(sx, f-float32(sx))
		case m == InterpBicubic:
			f := float32((float64(d)+0.5)*scale - 0.5)
			sx := floor32(f)
			c := cubicCoeffs(f - float32(sx))
			for k := range 4 {
				add(sx-1+k, c[k])
			}
		case m == InterpArea && areaDown:
			// computeResizeAreaTab.
			fsx1 := float64(d) * scale
			fsx2 := fsx1 + scale
			cell := math.Min(scale, float64(n)-fsx1)
			sx1, sx2 := int(math.Ceil(fsx1)), int(math.Floor(fsx2))
			sx2 = min(sx2, n-1)
			sx1 = min(sx1, sx2)
			if float64(sx1)-fsx1 > 1e-3 {
				add(sx1-1, float32((float64(sx1)-fsx1)/cell))
			}
			for sx := sx1; sx < sx2; sx++ {
				add(sx, float32(1/cell))
			}
			if fsx2-float64(sx2) > 1e-3 {
				add(sx2, float32(math.Min(math.Min(fsx2-float64(sx2), 1), cell)/cell))
			}
		case m == InterpArea:
			// INTER_AREA when enlarging.
			sx := int(math.Floor(float64(d) * scale))
			fx := float32(float64(d+1) - float64(sx+1)*inv)
			if fx <= 0 {
				fx = 0
			} else {
				fx -= float32(floor32(fx))
			}
			linear(sx, fx)
		default:
			panic(fmt.Sprintf("data: unknown interpolation %v", m))
		}
		t.start[d+1] = int32(len(t.idx))
	}
	return t
}

func floor32(f float32) int { return int(math.Floor(float64(f))) }

// cubicCoeffs is OpenCV's interpolateCubic: Keys' cubic convolution kernel
// with A = -0.75 at the distances 1+x, x, 1-x, 2-x of the four taps.
func cubicCoeffs(x float32) [4]float32 {
	const A = -0.75
	var c [4]float32
	c[0] = ((A*(x+1)-5*A)*(x+1)+8*A)*(x+1) - 4*A
	c[1] = ((A+2)*x-(A+3))*x*x + 1
	c[2] = ((A+2)*(1-x)-(A+3))*(1-x)*(1-x) + 1
	c[3] = 1 - c[0] - c[1] - c[2]
	return c
}

// resample resizes the window win of src to dw x dh with method m and hands
// each output row (dw RGB triples) to emit, top to bottom; emit must not keep
// the row. The window may reach outside src: pixels there read as fill, so
// that resampling a window of an image expanded on a canvas of fill colour
// and then cropped gives the same floats, bit for bit, as materialising the
// canvas and the crop first (the training transform relies on it to skip
// both copies).
func resample(src *Image, win Rect, fill [3]float32, dw, dh int, m Interp, emit func(y int, row []float32)) {
	areaDown := m == InterpArea && win.W >= dw && win.H >= dh
	tx := axisTaps(win.W, dw, m, areaDown)
	ty := axisTaps(win.H, dh, m, areaDown)

	// Horizontally resampled rows are kept in a ring of span slots, span
	// being the most rows one output row reads: the source rows of
	// successive output rows never go backwards, so a row is computed once
	// and the rows of one output row never share a slot.
	span := 1
	for d := range dh {
		lo, hi := ty.idx[ty.start[d]], ty.idx[ty.start[d]]
		for _, i := range ty.idx[ty.start[d]:ty.start[d+1]] {
			lo, hi = min(lo, i), max(hi, i)
		}
		span = max(span, int(hi-lo)+1)
	}
	rowLen := dw * 3
	ring := make([]float32, span*rowLen)
	have := make([]int, span)
	for i := range have {
		have[i] = -1
	}
	padded := make([]float32, win.W*3)
	out := make([]float32, rowLen)

	// Columns of the window that lie inside src: [in0, in1).
	in0 := min(max(0, -win.X), win.W)
	in1 := max(in0, min(win.W, src.W-win.X))

	// Rows wholly outside src are all fill: they resample to the same row,
	// computed once (an expanded canvas is mostly such rows).
	var fillRow []float32
	hpass := func(r int, dst []float32) {
		sy := win.Y + r
		if sy < 0 || sy >= src.H || in0 == in1 {
			if fillRow != nil {
				copy(dst, fillRow)
				return
			}
			fillRGB(padded, fill)
			defer func() { fillRow = append([]float32(nil), dst...) }()
		} else {
			fillRGB(padded[:in0*3], fill)
			s := (sy*src.W + win.X + in0) * 3
			copy(padded[in0*3:in1*3], src.Pix[s:s+(in1-in0)*3])
			fillRGB(padded[in1*3:], fill)
		}
		for d := range dw {
			var r, g, b float32
			for k := tx.start[d]; k < tx.start[d+1]; k++ {
				w := tx.w[k]
				p := padded[tx.idx[k]*3 : tx.idx[k]*3+3]
				r += w * p[0]
				g += w * p[1]
				b += w * p[2]
			}
			dst[d*3], dst[d*3+1], dst[d*3+2] = r, g, b
		}
	}

	for y := range dh {
		for k := ty.start[y]; k < ty.start[y+1]; k++ {
			r := int(ty.idx[k])
			if s := r % span; have[s] != r {
				hpass(r, ring[s*rowLen:(s+1)*rowLen])
				have[s] = r
			}
		}
		clear(out)
		for k := ty.start[y]; k < ty.start[y+1]; k++ {
			w := ty.w[k]
			s := int(ty.idx[k]) % span
			row := ring[s*rowLen : (s+1)*rowLen]
			for i, v := range row {
				out[i] += w * v
			}
		}
		emit(y, out)
	}
}

func fillRGB(dst []float32, c [3]float32) {
	for i := 0; i+2 < len(dst); i += 3 {
		dst[i], dst[i+1], dst[i+2] = c[0], c[1], c[2]
	}
}
