package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var allInterps = []Interp{InterpNearest, InterpBilinear, InterpArea, InterpBicubic}

func randomImage(r *rand.Rand, w, h int) *Image {
	img := NewImage(w, h)
	for i := range img.Pix {
		img.Pix[i] = float32(r.IntN(256))
	}
	return img
}

// TestResizeSameSize: every method is the identity at the same size (the
// weights are exactly 1 and 0).
func TestResizeSameSize(t *testing.T) {
	img := randomImage(rand.New(rand.NewPCG(1, 2)), 7, 5)
	for _, m := range allInterps {
		got := Resize(img, 7, 5, m)
		for i := range got.Pix {
			if got.Pix[i] != img.Pix[i] {
				t.Fatalf("%v: value %d = %v, want %v", m, i, got.Pix[i], img.Pix[i])
			}
		}
	}
}

// TestResizeHalves: a 4x2 image of two uniform 2x2 blocks halved to 2x1.
// Bilinear samples at source x = 2x+0.5 (the mean of the block) and area
// averages the block, so both give the block colours exactly; nearest takes
// source pixel floor(2x) = 0 and 2.
func TestResizeHalves(t *testing.T) {
	img := NewImage(4, 2)
	for y := range 2 {
		for x := range 4 {
			c := [3]float32{200, 10, 20}
			if x >= 2 {
				c = [3]float32{0, 50, 250}
			}
			copy(img.Pix[(y*4+x)*3:], c[:])
		}
	}
	want := []float32{200, 10, 20, 0, 50, 250}
	for _, m := range []Interp{InterpNearest, InterpBilinear, InterpArea} {
		got := Resize(img, 2, 1, m)
		for i := range want {
			if math.Abs(float64(got.Pix[i]-want[i])) > 1e-4 {
				t.Errorf("%v: %v, want %v", m, got.Pix, want)
				break
			}
		}
	}
}

// slowResize is the obvious, non-separable float64 version of each method's
// formula (see Resize), for comparison with the separable float32 one.
func slowResize(src *Image, dw, dh int, m Interp) []float64 {
	n, nh := src.W, src.H
	clampi := func(i, n int) int { return min(max(i, 0), n-1) }
	px := func(x, y, c int) float64 { return float64(src.At(clampi(x, n), clampi(y, nh), c)) }
	sx, sy := float64(n)/float64(dw), float64(nh)/float64(dh)
	// linear position with OpenCV's clamping: index and fraction.
	lin := func(f float64, n int) (int, float64) {
		i := math.Floor(f)
		fr := f - i
		if i < 0 {
			return 0, 0
		}
		if int(i) >= n-1 {
			return n - 1, 0
		}
		return int(i), fr
	}
	cubic := func(d float64) float64 { // Keys, A = -0.75
		const A = -0.75
		d = math.Abs(d)
		switch {
		case d <= 1:
			return (A+2)*d*d*d - (A+3)*d*d + 1
		case d < 2:
			return A*d*d*d - 5*A*d*d + 8*A*d - 4*A
		}
		return 0
	}
	// overlap of [a, b) with pixel [i, i+1).
	overlap := func(a, b float64, i int) float64 {
		return math.Max(0, math.Min(b, float64(i+1))-math.Max(a, float64(i)))
	}
	areaDown := sx >= 1 && sy >= 1
	areaUp := func(d int, scale float64, n int) (int, float64) {
		s := int(math.Floor(float64(d) * scale))
		f := float64(d+1) - float64(s+1)/scale
		if f <= 0 {
			f = 0
		} else {
			f -= math.Floor(f)
		}
		if s < 0 {
			return 0, 0
		}
		if s >= n-1 {
			return n - 1, 0
		}
		return s, f
	}
	out := make([]float64, dw*dh*3)
	for y := range dh {
		for x := range dw {
			for c := range 3 {
				var v float64
				switch {
				case m == InterpNearest:
					v = px(int(float64(x)*sx), int(float64(y)*sy), c)
				case m == InterpBilinear:
					ix, fx := lin((float64(x)+0.5)*sx-0.5, n)
					iy, fy := lin((float64(y)+0.5)*sy-0.5, nh)
					v = (1-fy)*((1-fx)*px(ix, iy, c)+fx*px(ix+1, iy, c)) + fy*((1-fx)*px(ix, iy+1, c)+fx*px(ix+1, iy+1, c))
				case m == InterpBicubic:
					fx := (float64(x)+0.5)*sx - 0.5
					fy := (float64(y)+0.5)*sy - 0.5
					ix, iy := int(math.Floor(fx)), int(math.Floor(fy))
					for j := iy - 1; j <= iy+2; j++ {
						for i := ix - 1; i <= ix+2; i++ {
							v += cubic(fx-float64(i)) * cubic(fy-float64(j)) * px(i, j, c)
						}
					}
				case areaDown:
					x0, x1 := float64(x)*sx, math.Min(float64(x+1)*sx, float64(n))
					y0, y1 := float64(y)*sy, math.Min(float64(y+1)*sy, float64(nh))
					for j := range nh {
						for i := range n {
							v += overlap(x0, x1, i) * overlap(y0, y1, j) * px(i, j, c)
						}
					}
					v /= (x1 - x0) * (y1 - y0)
				default:
					ix, fx := areaUp(x, sx, n)
					iy, fy := areaUp(y, sy, nh)
					v = (1-fy)*((1-fx)*px(ix, iy, c)+fx*px(ix+1, iy, c)) + fy*((1-fx)*px(ix, iy+1, c)+fx*px(ix+1, iy+1, c))
				}
				out[(y*dw+x)*3+c] = v
			}
		}
	}
	return out
}

// TestResizeAgainstSlow compares every method with slowResize on shrinking,
// enlarging and mixed sizes. Tolerance 0.02 on values 0..255: the fast
// version sums in float32 and, as OpenCV, computes positions in float32.
func TestResizeAgainstSlow(t *testing.T) {
	img := randomImage(rand.New(rand.NewPCG(3, 4)), 13, 9)
	for _, sz := range [][2]int{{5, 4}, {4, 3}, {13, 9}, {20, 17}, {31, 9}, {6, 17}, {1, 1}} {
		for _, m := range allInterps {
			got := Resize(img, sz[0], sz[1], m)
			want := slowResize(img, sz[0], sz[1], m)
			for i := range want {
				if d := math.Abs(float64(got.Pix[i]) - want[i]); d > 0.02 {
					t.Errorf("%v to %dx%d: value %d = %v, want %v", m, sz[0], sz[1], i, got.Pix[i], want[i])
					break
				}
			}
		}
	}
}

// TestResampleWindow: resampling a window that reaches outside the image,
// with outside pixels read as fill, gives bit for bit what materialising the
// expanded canvas and the crop and then resizing gives.
func TestResampleWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	img := randomImage(r, 11, 7)
	fill := [3]float32{1.5, 100, 250}
	e := Expansion{X: 6, Y: 4, W: 30, H: 20}
	canvas := Expand(img, e, fill)
	for _, c := range []Rect{{0, 0, 30, 20}, {5, 3, 9, 6}, {0, 0, 5, 3}, {10, 8, 12, 12}, {7, 5, 2, 2}, {20, 2, 10, 18}} {
		for _, m := range allInterps {
			for _, sz := range []int{4, 9, 25} {
				t.Run(fmt.Sprintf("%v/%v/%d", c, m, sz), func(t *testing.T) {
					want := Resize(Crop(canvas, c), sz, sz, m)
					got := NewImage(sz, sz)
					win := Rect{X: c.X - e.X, Y: c.Y - e.Y, W: c.W, H: c.H}
					resample(img, win, fill, sz, sz, m, func(y int, row []float32) { copy(got.Pix[y*sz*3:], row) })
					for i := range want.Pix {
						if got.Pix[i] != want.Pix[i] {
							t.Fatalf("value %d = %v, want %v", i, got.Pix[i], want.Pix[i])
						}
					}
				})
			}
		}
	}
}
