package image

import (
	"image"
	"math"
	"math/rand"
	"path/filepath"
	"testing"
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/dettrain/dettrain/data"
)

// TestDecode: Decode gives the full-size RGB values 0..255 that Load gives
// /255 at the original size, and Decode + data.Resize(bilinear) is within
// 1/255 of Load's 8-bit OpenCV resize (which rounds in fixed point).
func TestDecode(t *testing.T) {
	p := writeFile(t, filepath.Join(t.TempDir(), "n.png"), encode(t, noise(37, 23), "png"))
	var dec OpenCV
	img, err := dec.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	if img.W != 37 || img.H != 23 || len(img.Pix) != 3*37*23 {
		t.Fatalf("decoded %dx%d with %d values", img.W, img.H, len(img.Pix))
	}
	full := make([]float32, 3*37*23)
	if _, _, err := dec.Load(p, 37, 23, full); err != nil {
		t.Fatal(err)
	}
	src := noise(37, 23)
	for y := range 23 {
		for x := range 37 {
			for c := range 3 {
				v := img.At(x, y, c)
				if v != float32(src.Pix[(y*37+x)*4+c]) || full[(c*23+y)*37+x] != v/255 {
					t.Fatalf("(%d,%d,%d): Decode %v, PNG %v, Load %v", x, y, c, v, src.Pix[(y*37+x)*4+c], full[(c*23+y)*37+x]*255)
				}
			}
		}
	}
	for _, sz := range [][2]int{{16, 16}, {50, 40}} {
		w, h := sz[0], sz[1]
		small := make([]float32, 3*w*h)
		if _, _, err := dec.Load(p, w, h, small); err != nil {
			t.Fatal(err)
		}
		r := data.Resize(img, w, h, data.InterpBilinear)
		for y := range h {
			for x := range w {
				for c := range 3 {
					if d := math.Abs(float64(r.At(x, y, c)/255 - small[(c*h+y)*w+x])); d > 1.01/255 {
						t.Fatalf("%dx%d (%d,%d,%d): Resize %v, Load %v", w, h, x, y, c, r.At(x, y, c)/255, small[(c*h+y)*w+x])
					}
				}
			}
		}
	}
	if _, err := dec.Decode(filepath.Join(t.TempDir(), "none.jpg")); err == nil {
		t.Error("Decode of a missing file: no error")
	}
}

// TestResizeMatchesOpenCV compares data.Resize, pure Go, with cv::resize on
// the same float32 image for every method, shrinking, enlarging and mixed.
// Tolerance 1e-4 on values 0..255 (measured: 0 for nearest and area, up to 1.5e-5 bilinear, 6.1e-5 bicubic) (float32 sums in another order; OpenCV
// may use SIMD).
func TestResizeMatchesOpenCV(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	const w, h = 61, 47
	img := data.NewImage(w, h)
	for i := range img.Pix {
		img.Pix[i] = float32(r.Intn(256))
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&img.Pix[0])), len(img.Pix)*4)
	m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV32FC3, buf)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cv := map[data.Interp]gocv.InterpolationFlags{
		data.InterpNearest: gocv.InterpolationNearestNeighbor, data.InterpBilinear: gocv.InterpolationLinear,
		data.InterpArea: gocv.InterpolationArea, data.InterpBicubic: gocv.InterpolationCubic,
	}
	for _, sz := range [][2]int{{20, 15}, {32, 32}, {13, 40}, {100, 90}, {122, 94}, {61, 47}, {30, 47}, {200, 20}} {
		for interp, flag := range cv {
			out := gocv.NewMat()
			gocv.Resize(m, &out, image.Pt(sz[0], sz[1]), 0, 0, flag)
			want, err := out.DataPtrFloat32()
			if err != nil {
				t.Fatal(err)
			}
			got := data.Resize(img, sz[0], sz[1], interp)
			worst := 0.0
			for i := range want {
				worst = math.Max(worst, math.Abs(float64(got.Pix[i]-want[i])))
			}
			t.Logf("%v to %dx%d: max difference from OpenCV %.2g", interp, sz[0], sz[1], worst)
			if worst > 1e-4 {
				t.Errorf("%v to %dx%d: max difference from OpenCV %v", interp, sz[0], sz[1], worst)
			}
			out.Close()
		}
	}
}
