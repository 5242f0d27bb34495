package data

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/dettrain/dettrain/box"
)

func solid(w, h int, rgb [3]float32) *Image {
	m := NewImage(w, h)
	for i := 0; i < w*h; i++ {
		copy(m.Pix[3*i:3*i+3], rgb[:])
	}
	return m
}

// TestMosaicKnownBoxes works one mosaic out by hand: output 64x64 (canvas
// 128x128, window [32,96)^2), centre (60, 70), four solid images:
//
//	0: 100x50 red    r = min(64/100, 64/50) = 0.64 -> 64x32, top left:
//	   canvas [0,60)x[38,70), shows from (4,0): pad (-4, 38); output x<28, 6<=y<38
//	1: 50x100 green  r = 0.64 -> 32x64, top right: canvas [60,92)x[6,70), pad (60, 6);
//	   output 28<=x<60, y<38 (x 60..63 stays grey: the image ends at canvas x 92)
//	2: 64x64 blue    r = 1, bottom left: canvas [0,60)x[70,128), pad (-4, 70); output x<28, y>=38
//	3: 32x16 white   r = 2 -> 64x32, bottom right: canvas [60,124)x[70,102), pad (60, 70); output x>=28, y>=38
//
// Boxes (in each image's pixels) and what becomes of them:
//
//	0 (60,10)-(100,40): x0.64 (38.4,6.4)-(64,25.6), +pad (34.4,44.4)-(60,63.6), -32: (2.4,12.4)-(28,31.6)
//	0 (0,0)-(20,20):    canvas (0,38)-(8.8,50.8), left of the window: dropped
//	1 (10,90)-(40,100): (6.4,57.6)-(25.6,64) +(60,6) (66.4,63.6)-(85.6,70) -> (34.4,31.6)-(53.6,38)
//	1 (0,0)-(50,42):    (60,6)-(92,32.88): 0.88 px tall in the window: dropped (wh_thr 2)
//	1 (0,0)-(50,45):    (60,6)-(92,34.8): 32x2.8 in the window = 89.6 of 921.6 px², 9.7% <= 10%: dropped (area_thr)
//	1 (0,0)-(50,46):    (60,6)-(92,35.44): 110.08 of 942.08 = 11.7%: kept, (28,0)-(60,3.44)
//	3 (0,0)-(32,16):    x2 (0,0)-(64,32) +(60,70) (60,70)-(124,102), window (60,70)-(96,96) -> (28,38)-(64,64)
//	2 (0,0)-(10,10):    canvas (0,70)-(6,80): dropped
func TestMosaicKnownBoxes(t *testing.T) {
	red, green, blue, white := [3]float32{255, 0, 0}, [3]float32{0, 255, 0}, [3]float32{0, 0, 255}, [3]float32{255, 255, 255}
	imgs := [4]*Image{solid(100, 50, red), solid(50, 100, green), solid(64, 64, blue), solid(32, 16, white)}
	tb := func(c int, x1, y1, x2, y2 float64) Target {
		return Target{Class: c, Box: box.Box{X1: x1, Y1: y1, X2: x2, Y2: y2}, Weight: 1}
	}
	ts := [4][]Target{
		{tb(0, 60, 10, 100, 40), tb(1, 0, 0, 20, 20)},
		{tb(2, 10, 90, 40, 100), tb(3, 0, 0, 50, 42), tb(4, 0, 0, 50, 45), tb(5, 0, 0, 50, 46)},
		{tb(6, 0, 0, 10, 10)},
		{tb(7, 0, 0, 32, 16)},
	}
	out, got := Mosaic(imgs, ts, 64, 64, 60, 70)
	want := []Target{tb(0, 2.4, 12.4, 28, 31.6), tb(2, 34.4, 31.6, 53.6, 38), tb(5, 28, 0, 60, 3.44), tb(7, 28, 38, 64, 64)}
	if len(got) != len(want) {
		t.Fatalf("kept %d boxes %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i].Box, want[i].Box
		// 1e-9: products of 0.64 and the shifts in float64, nothing else.
		if got[i].Class != want[i].Class || math.Abs(g.X1-w.X1) > 1e-9 || math.Abs(g.Y1-w.Y1) > 1e-9 || math.Abs(g.X2-w.X2) > 1e-9 || math.Abs(g.Y2-w.Y2) > 1e-9 {
			t.Errorf("box %d: class %d %+v, want class %d %+v", i, got[i].Class, g, want[i].Class, w)
		}
	}
	for _, p := range []struct {
		x, y int
		rgb  [3]float32
	}{{10, 20, red}, {27, 6, red}, {40, 10, green}, {59, 37, green}, {10, 50, blue}, {27, 38, blue}, {40, 50, white}, {63, 63, white},
		{62, 10, [3]float32{MosaicFill, MosaicFill, MosaicFill}}, {10, 2, [3]float32{MosaicFill, MosaicFill, MosaicFill}}} {
		for c := 0; c < 3; c++ {
			// A bilinear resize of a solid image is that colour up to
			// float32 rounding of weights summing to 1 (255 * 2^-23 * a few).
			if v := out.At(p.x, p.y, c); math.Abs(float64(v-p.rgb[c])) > 1e-3 {
				t.Errorf("pixel (%d,%d) channel %d = %v, want %v", p.x, p.y, c, v, p.rgb[c])
			}
		}
	}
}

// TestDrawMosaic: the centre is uniform in [w/2, 3w/2) x [h/2, 3h/2) and the
// partners are other images, a pure function of the generator's state.
func TestDrawMosaic(t *testing.T) {
	seen := map[int]bool{}
	for k := 0; k < 2000; k++ {
		d := DrawMosaic(rand.New(rand.NewPCG(uint64(k), 1)), 3, 10, 64, 32)
		if d.XC < 32 || d.XC >= 96 || d.YC < 16 || d.YC >= 48 {
			t.Fatalf("centre (%d,%d) outside [32,96)x[16,48)", d.XC, d.YC)
		}
		for _, p := range d.Partners {
			if p == 3 || p < 0 || p >= 10 {
				t.Fatalf("partner %d of image 3 of 10", p)
			}
			seen[p] = true
		}
		if e := DrawMosaic(rand.New(rand.NewPCG(uint64(k), 1)), 3, 10, 64, 32); e != d {
			t.Fatalf("the same generator state drew %+v then %+v", d, e)
		}
	}
	if len(seen) != 9 {
		t.Errorf("partners drawn from %d of the 9 other images", len(seen))
	}
}

// TestLoaderMosaic follows images through a loader with mosaic: in epochs
// before OffFromEpoch each is Mosaic of itself and the partners
// DrawMosaic picks from its SampleRand (after the flip draw), with only the
// colour jitter and flip of the training transform after it (here with
// Augment off: the identity, so the pixels are the mosaic's / 255); from
// OffFromEpoch on the loader is the plain one again (close_mosaic).
func TestLoaderMosaic(t *testing.T) {
	ds := testDataset(6)
	dec := &fakeDecoder{w: 80, h: 60}
	const w, h, off = 64, 32, 3
	l := NewLoader(ds, dec, LoaderOptions{Batch: 2, W: w, H: h, Workers: 2, Seed: 4, Mosaic: &MosaicOptions{OffFromEpoch: off}})
	defer l.Close()
	plain := NewLoader(ds, dec, LoaderOptions{Batch: 2, W: w, H: h, Workers: 2, Seed: 4})
	defer plain.Close()
	for e := 0; e < off+2; e++ {
		l.Epoch(e)
		plain.Epoch(e)
		for pos := 0; pos < len(ds.Samples); pos += 2 {
			b, err := l.Next()
			if err != nil {
				t.Fatal(err)
			}
			pb, err := plain.Next()
			if err != nil {
				t.Fatal(err)
			}
			if e >= off {
				if !reflect.DeepEqual(b.Images, pb.Images) || !reflect.DeepEqual(b.Targets, pb.Targets) {
					t.Fatalf("epoch %d (mosaic closed): not the plain loader's batch", e)
				}
				continue
			}
			for n := 0; n < b.N; n++ {
				idx := b.Index[n]
				r := SampleRand(4, e, pos+n)
				r.Float64() // the flip draw, unused without Flip or Augment
				d := DrawMosaic(r, idx, len(ds.Samples), w, h)
				var imgs [4]*Image
				var tss [4][]Target
				for k, s := range append([]int{idx}, d.Partners[:]...) {
					imgs[k], _ = dec.Decode(ds.Samples[s].ImagePath)
					tss[k] = objectTargets(ds.Samples[s].Objects)
				}
				img, ts := Mosaic(imgs, tss, w, h, d.XC, d.YC)
				want := make([]float32, 3*w*h)
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						for c := 0; c < 3; c++ {
							want[(c*h+y)*w+x] = img.At(x, y, c) / 255
						}
					}
				}
				got := b.Images[n*3*w*h : (n+1)*3*w*h]
				if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(b.Targets[n], ts) {
					t.Fatalf("epoch %d image %d: not the mosaic of %d and %v at (%d,%d): targets %v, want %v", e, idx, idx, d.Partners, d.XC, d.YC, b.Targets[n], ts)
				}
			}
		}
	}
}
