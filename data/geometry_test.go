package data

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/dettrain/dettrain/box"
)

func tgt(class int, x1, y1, x2, y2 float64) Target {
	return Target{Class: class, Box: box.Box{X1: x1, Y1: y1, X2: x2, Y2: y2}, Weight: 1}
}

// TestExpand: the image lands at (X, Y) of a canvas of fill colour and the
// boxes move with it.
func TestExpand(t *testing.T) {
	img := randomImage(rand.New(rand.NewPCG(1, 1)), 4, 3)
	fill := [3]float32{1, 2, 3}
	e := Expansion{X: 2, Y: 1, W: 8, H: 6}
	out := Expand(img, e, fill)
	if out.W != 8 || out.H != 6 {
		t.Fatalf("canvas %dx%d", out.W, out.H)
	}
	for y := range 6 {
		for x := range 8 {
			for c := range 3 {
				want := fill[c]
				if x >= 2 && x < 6 && y >= 1 && y < 4 {
					want = img.At(x-2, y-1, c)
				}
				if got := out.At(x, y, c); got != want {
					t.Fatalf("(%d,%d,%d) = %v, want %v", x, y, c, got, want)
				}
			}
		}
	}
	got := ExpandTargets([]Target{tgt(1, 0, 0, 4, 3), tgt(0, 1, 1, 2, 2)}, e)
	want := []Target{tgt(1, 2, 1, 6, 4), tgt(0, 3, 2, 4, 3)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("boxes %v, want %v", got, want)
	}
}

// TestRandomExpand: half the draws expand; the canvas keeps the aspect
// ratio within int truncation, its ratio is in [1, 4] and the image fits.
func TestRandomExpand(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	const n = 10000
	none := 0
	for range n {
		e := RandomExpand(r, 640, 480)
		if e == (Expansion{W: 640, H: 480}) {
			none++
			continue
		}
		ratio := float64(e.W) / 640
		if ratio < 1 || ratio > 4 || math.Abs(float64(e.H)/480-ratio) > 1.0/480+1.0/640 {
			t.Fatalf("expansion %+v", e)
		}
		if e.X < 0 || e.Y < 0 || e.X+640 > e.W || e.Y+480 > e.H {
			t.Fatalf("image outside the canvas: %+v", e)
		}
	}
	if f := float64(none) / n; math.Abs(f-0.5) > 0.03 {
		t.Errorf("no expansion in %.3f of the draws, want 0.5", f)
	}
}

// TestCropTargets on known boxes: crop (10,10)-(60,50).
func TestCropTargets(t *testing.T) {
	c := Rect{X: 10, Y: 10, W: 50, H: 40}
	in := []Target{
		tgt(0, 20, 20, 30, 40),  // inside: shifted by (-10,-10)
		tgt(1, 0, 0, 30, 30),    // centre (15,15) inside: clipped to (10,10)-(30,30)
		tgt(2, 0, 0, 18, 100),   // centre (9,50) outside: dropped
		tgt(3, 50, 40, 90, 80),  // centre (70,60) outside: dropped though it overlaps
		tgt(4, 0, 20, 20, 30),   // centre x = 10 = left edge: kept (half-open)
		tgt(5, 40, 20, 80, 30),  // centre x = 60 = right edge: dropped
		tgt(6, 10, 49, 20, 51),  // centre y = 50 = bottom edge: dropped
		tgt(7, 55, 45, 65, 55),  // centre (60,50): dropped
		tgt(8, 59, 49, 60, 50),  // centre (59.5,49.5): kept, 0.5x0.5... clipped stays (49,39)-(50,40)
		tgt(9, -5, 15, 100, 20), // centre (47.5,17.5): kept, clipped to the full width
	}
	in[1].Weight = 0.25
	got := CropTargets(in, c)
	want := []Target{
		tgt(0, 10, 10, 20, 30),
		{Class: 1, Box: box.Box{X1: 0, Y1: 0, X2: 20, Y2: 20}, Weight: 0.25},
		tgt(4, 0, 10, 10, 20),
		tgt(8, 49, 39, 50, 40),
		tgt(9, 0, 5, 50, 10),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestRandomCrop checks the drawn crops: inside the image, scale and aspect
// ratio within SSD's limits (up to int truncation), boxes from CropTargets
// and never all dropped; without boxes, the whole image and no draw.
func TestRandomCrop(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	const w, h = 400, 300
	three := []Target{tgt(0, 50, 40, 120, 140), tgt(1, 200, 100, 260, 150), tgt(2, 300, 200, 390, 290)}
	one := []Target{tgt(0, 100, 75, 300, 225)} // IoU 0.25 with the whole image
	for _, ts := range [][]Target{three, one} {
		whole := 0
		ious := map[float64]int{}
		for range 3000 {
			c, kept := RandomCrop(r, ts, w, h)
			if c.X < 0 || c.Y < 0 || c.X+c.W > w || c.Y+c.H > h || c.W < 1 || c.H < 1 {
				t.Fatalf("crop %+v outside %dx%d", c, w, h)
			}
			if c == (Rect{W: w, H: h}) {
				whole++
			}
			sx, sy := float64(c.W)/w, float64(c.H)/h
			scale := math.Sqrt(sx * sy)
			if scale < 0.3-0.01 || scale > 1 || sx/sy < 0.5-0.01 || sx/sy > 2+0.01 {
				t.Fatalf("crop %+v: scale %v, aspect %v", c, scale, sx/sy)
			}
			if len(kept) == 0 || !reflect.DeepEqual(kept, CropTargets(ts, c)) {
				t.Fatalf("crop %+v kept %v", c, kept)
			}
			m := 1.0
			for _, t := range ts {
				m = math.Min(m, box.IoU(t.Box, c.Box()))
			}
			for _, th := range []float64{0.1, 0.3, 0.5, 0.7, 0.9} {
				if m >= th {
					ious[th]++
				}
			}
		}
		// Up to 7 candidates: the whole image is picked about 1/7 of the
		// time or more (when a drawn candidate keeps no box).
		if whole < 3000/10 {
			t.Errorf("%d boxes: whole image %d times in 3000", len(ts), whole)
		}
		if len(ts) == 1 {
			// The constraints up to 0.7 are met easily with one box: each
			// min IoU shows up, from the candidate searched for it (0.9
			// needs a crop within a few pixels of the box: 50 trials
			// rarely find one).
			t.Logf("one box: crops by min IoU %v, whole image %d", ious, whole)
			for _, th := range []float64{0.1, 0.3, 0.5, 0.7} {
				if ious[th] < 3000/20 {
					t.Errorf("one box: IoU >= %v in %d crops of 3000", th, ious[th])
				}
			}
		}
	}
	r1, r2 := rand.New(rand.NewPCG(4, 4)), rand.New(rand.NewPCG(4, 4))
	if c, kept := RandomCrop(r1, nil, w, h); c != (Rect{W: w, H: h}) || kept != nil {
		t.Errorf("no boxes: crop %+v, %v", c, kept)
	}
	if r1.Uint64() != r2.Uint64() {
		t.Error("no boxes: RandomCrop drew numbers")
	}
}

// TestFlip: pixels mirror, boxes map x -> w - x with corners swapped.
func TestFlip(t *testing.T) {
	img := randomImage(rand.New(rand.NewPCG(5, 5)), 5, 2)
	orig := img.Clone()
	FlipImage(img)
	for y := range 2 {
		for x := range 5 {
			for c := range 3 {
				if img.At(x, y, c) != orig.At(4-x, y, c) {
					t.Fatalf("(%d,%d,%d) = %v, want %v", x, y, c, img.At(x, y, c), orig.At(4-x, y, c))
				}
			}
		}
	}
	got := FlipTargets([]Target{tgt(1, 20, 10, 60, 30)}, 100)
	if want := []Target{tgt(1, 40, 10, 80, 30)}; !reflect.DeepEqual(got, want) {
		t.Errorf("flipped %v, want %v", got, want)
	}
	if got := ScaleTargets([]Target{tgt(1, 20, 10, 60, 30)}, 0.5, 2); !reflect.DeepEqual(got, []Target{tgt(1, 10, 20, 30, 60)}) {
		t.Errorf("scaled %v", got)
	}
}
