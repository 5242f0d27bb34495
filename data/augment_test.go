package data

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/tricks"
)

// TestTrainTransformMatchesSteps: TrainTransform.Apply, which expands,
// crops, resizes and flips in one resampling pass, gives bit for bit the
// image and exactly the boxes of doing each step on its own: ColorJitter,
// Expand, Crop, Resize, FlipImage, then /255 in CHW order; ExpandTargets,
// CropTargets, ScaleTargets, FlipTargets.
func TestTrainTransformMatchesSteps(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const s = 24
	for trial := range 200 {
		w, h := 10+r.IntN(30), 10+r.IntN(30)
		img := randomImage(r, w, h)
		var ts []Target
		for range r.IntN(4) {
			x1, y1 := r.Float64()*float64(w-2), r.Float64()*float64(h-2)
			ts = append(ts, tgt(r.IntN(3), x1, y1, x1+1+r.Float64()*(float64(w)-x1-1), y1+1+r.Float64()*(float64(h)-y1-1)))
		}
		tr := DrawTrainTransform(r, ts, w, h)
		tr.Flip = r.IntN(2) == 0

		got := make([]float32, 3*s*s)
		gotTs := tr.Apply(img.Clone(), ts, s, s, got)

		m := img.Clone()
		tr.Color.Apply(m)
		m = Expand(m, tr.Expand, ExpandFill)
		m = Crop(m, tr.Crop)
		m = Resize(m, s, s, tr.Interp)
		wantTs := CropTargets(ExpandTargets(ts, tr.Expand), tr.Crop)
		wantTs = ScaleTargets(wantTs, float64(s)/float64(tr.Crop.W), float64(s)/float64(tr.Crop.H))
		if tr.Flip {
			FlipImage(m)
			wantTs = FlipTargets(wantTs, s)
		}
		for y := range s {
			for x := range s {
				for c := range 3 {
					if g, w := got[(c*s+y)*s+x], m.At(x, y, c)/255; g != w {
						t.Fatalf("trial %d %+v: pixel (%d,%d,%d) = %v, want %v", trial, tr, x, y, c, g, w)
					}
				}
			}
		}
		if len(gotTs) != len(wantTs) || (len(wantTs) > 0 && !reflect.DeepEqual(gotTs, wantTs)) {
			t.Fatalf("trial %d: targets %v, want %v", trial, gotTs, wantTs)
		}
		for _, tg := range gotTs {
			b := tg.Box
			if b.X1 < 0 || b.Y1 < 0 || b.X2 > s || b.Y2 > s || b.X1 >= b.X2 || b.Y1 >= b.Y2 {
				t.Fatalf("trial %d: box %v outside the %dx%d input", trial, b, s, s)
			}
		}
	}
}

func augOptions(workers int) LoaderOptions {
	return LoaderOptions{
		Batch: 4, W: 32, Workers: workers, Prefetch: 2, Shuffle: true, Seed: 7,
		Augment: true, Mixup: &MixupOptions{OffFromEpoch: 2},
		SizeAt: func(e, k int) (int, int) { s := 16 + 8*((e*7+k)%3); return s, s },
	}
}

// TestLoaderAugmentDeterminism: with augmentation, mixup and random shapes,
// 1 and 3 workers (with random delays) give the same batches; each batch
// has SizeAt's size; mixup weights appear in the mixing epochs only.
func TestLoaderAugmentDeterminism(t *testing.T) {
	ds := testDataset(23)
	run := func(workers int) [][]*Batch {
		l := NewLoader(ds, &fakeDecoder{w: 60, h: 40, jitter: true}, augOptions(workers))
		defer l.Close()
		return allBatches(t, l, 3)
	}
	one, three := run(1), run(3)
	if !reflect.DeepEqual(one, three) {
		t.Fatal("batches differ between 1 and 3 workers")
	}
	for e, bs := range one {
		mixed := 0
		for k, b := range bs {
			if want := 16 + 8*((e*7+k)%3); b.H != want || b.W != want || len(b.Images) != b.N*3*want*want {
				t.Errorf("epoch %d batch %d: %dx%d, %d floats; want %d", e, k, b.W, b.H, len(b.Images), want)
			}
			for _, ts := range b.Targets {
				for _, tg := range ts {
					if tg.Weight != 1 {
						mixed++
					}
					if tg.Box.X1 < 0 || tg.Box.Y1 < 0 || tg.Box.X2 > float64(b.W) || tg.Box.Y2 > float64(b.H) {
						t.Errorf("epoch %d batch %d: box %v outside %dx%d", e, k, tg.Box, b.W, b.H)
					}
				}
			}
		}
		if (e < 2) != (mixed > 0) {
			t.Errorf("epoch %d: %d targets with a mixup weight (mixup off from epoch 2)", e, mixed)
		}
	}
	if reflect.DeepEqual(one[0][0].Images, one[1][0].Images) {
		t.Error("epochs 0 and 1 give the same first batch")
	}
}

// TestEpochFromAugment: EpochFrom(e, k) with augmentation, mixup and random
// shapes gives the batches Epoch(e) gives from its batch k on.
func TestEpochFromAugment(t *testing.T) {
	ds := testDataset(14)
	full := NewLoader(ds, &fakeDecoder{w: 50, h: 30}, augOptions(2))
	defer full.Close()
	want := allBatches(t, full, 2)[1]
	part := NewLoader(ds, &fakeDecoder{w: 50, h: 30}, augOptions(3))
	defer part.Close()
	resumeEqual(t, part, 1, 2, want)
}

// TestLoaderMixupTargets follows one image through the loader with mixup
// and no augmentation: the draws come from SampleRand in the documented
// order (flip, lambda, partner), the partner is another image, the boxes of
// both are scaled to the input with weights lambda and 1-lambda, and the
// pixels are the bilinear resize of the mixed canvas.
func TestLoaderMixupTargets(t *testing.T) {
	ds := testDataset(5)
	dec := &fakeDecoder{w: 80, h: 40}
	const size = 20
	o := LoaderOptions{Batch: 1, W: size, Workers: 2, Flip: true, Seed: 5, Mixup: &MixupOptions{Alpha: 1.5, Beta: 1.5, OffFromEpoch: 100}}
	l := NewLoader(ds, dec, o)
	defer l.Close()
	partners := map[int]bool{}
	for e := range 3 {
		bs := allBatches(t, l, e+1)[e]
		for pos, b := range bs {
			r := SampleRand(5, e, pos)
			flip := r.Float64() < 0.5
			lambda := tricks.Beta(r, 1.5, 1.5)
			p := tricks.MixPartner(r, pos, len(ds.Samples))
			if p == pos {
				t.Fatalf("image %d mixed with itself", pos)
			}
			partners[p] = true
			a, _ := dec.Decode(ds.Samples[pos].ImagePath)
			bb, _ := dec.Decode(ds.Samples[p].ImagePath)
			mixed, ts := Mixup(a, objectTargets(ds.Samples[pos].Objects), bb, objectTargets(ds.Samples[p].Objects), lambda)
			ts = ScaleTargets(ts, size/80.0, size/40.0)
			img := Resize(mixed, size, size, InterpBilinear)
			if flip {
				ts = FlipTargets(ts, size)
				FlipImage(img)
			}
			if !reflect.DeepEqual(b.Targets[0], ts) {
				t.Errorf("epoch %d image %d: targets %v, want %v", e, pos, b.Targets[0], ts)
			}
			for _, tg := range ts {
				if tg.Weight != float32(lambda) && tg.Weight != float32(1-lambda) {
					t.Errorf("weight %v, lambda %v", tg.Weight, lambda)
				}
			}
			for i := 0; i < size*size; i += 37 {
				y, x := i/size, i%size
				for c := range 3 {
					if g, w := b.Images[(c*size+y)*size+x], img.At(x, y, c)/255; g != w {
						t.Fatalf("epoch %d image %d: pixel (%d,%d,%d) = %v, want %v", e, pos, x, y, c, g, w)
					}
				}
			}
		}
	}
	if len(partners) < 3 {
		t.Errorf("partners %v", partners)
	}
}

// TestLoaderMixupOff: from Mixup.OffFromEpoch on (and without Augment) the
// batches are bit-identical to those of a loader without mixup, which
// resizes with the Decoder's Load as eval and predict do.
func TestLoaderMixupOff(t *testing.T) {
	ds := testDataset(9)
	o := LoaderOptions{Batch: 4, W: 16, Workers: 2, Shuffle: true, Flip: true, Seed: 3}
	plain := NewLoader(ds, &fakeDecoder{w: 30, h: 20}, o)
	defer plain.Close()
	o.Mixup = &MixupOptions{OffFromEpoch: 1}
	mix := NewLoader(ds, &fakeDecoder{w: 30, h: 20}, o)
	defer mix.Close()
	pb, mb := allBatches(t, plain, 2), allBatches(t, mix, 2)
	if reflect.DeepEqual(pb[0], mb[0]) {
		t.Error("epoch 0 is not mixed")
	}
	if !reflect.DeepEqual(pb[1], mb[1]) {
		t.Error("epoch 1 (mixup off) differs from a loader without mixup")
	}
}

// TestLoaderNeedsFullDecoder: Augment with a Decoder that cannot Decode is
// an error naming the decoder; a SizeAt of 0 is an error too.
func TestLoaderNeedsFullDecoder(t *testing.T) {
	ds := testDataset(3)
	l := NewLoader(ds, loadOnly{&fakeDecoder{w: 30, h: 20}}, LoaderOptions{Batch: 3, W: 16, Workers: 1, Augment: true})
	defer l.Close()
	l.Epoch(0)
	if _, err := l.Next(); err == nil || !strings.Contains(err.Error(), "Decode") || !strings.Contains(err.Error(), "loadOnly") {
		t.Errorf("err = %v", err)
	}
	l2 := NewLoader(ds, &fakeDecoder{w: 30, h: 20}, LoaderOptions{Batch: 2, W: 16, Workers: 1, SizeAt: func(e, k int) (int, int) { return k * 32, k * 32 }})
	defer l2.Close()
	l2.Epoch(0)
	if _, err := l2.Next(); err == nil || !strings.Contains(err.Error(), "SizeAt(0, 0) = 0x0") {
		t.Errorf("SizeAt 0: err = %v", err)
	}
	if b, err := l2.Next(); err != nil || b.W != 32 {
		t.Errorf("second batch: %v, %v", b, err)
	}
}

// TestLoaderAugmentTargets follows one image through the augmented loader:
// the batch is what the draws from SampleRand say (the flip first, then
// DrawTrainTransform) applied with TrainTransform.Apply, pixels and boxes,
// and over the epochs every interpolation, expansion and flip occur.
func TestLoaderAugmentTargets(t *testing.T) {
	ds := testDataset(1)
	dec := &fakeDecoder{w: 200, h: 100}
	l := NewLoader(ds, dec, LoaderOptions{Batch: 1, W: 32, Workers: 2, Augment: true, Seed: 1})
	defer l.Close()
	const n = 200
	flips, expands, interps := 0, 0, map[Interp]int{}
	for e := range n {
		l.Epoch(e)
		b, err := l.Next()
		if err != nil {
			t.Fatal(err)
		}
		r := SampleRand(1, e, 0)
		flip := r.Float64() < 0.5
		ts := objectTargets(ds.Samples[0].Objects)
		tr := DrawTrainTransform(r, ts, 200, 100)
		tr.Flip = flip
		img, _ := dec.Decode(ds.Samples[0].ImagePath)
		want := make([]float32, 3*32*32)
		wantTs := tr.Apply(img, ts, 32, 32, want)
		if !reflect.DeepEqual(b.Targets[0], wantTs) || !reflect.DeepEqual(b.Images, want) {
			t.Fatalf("epoch %d: targets %v, want %v (or the pixels differ)", e, b.Targets[0], wantTs)
		}
		if b.OrigW[0] != 200 || b.OrigH[0] != 100 {
			t.Errorf("orig size %dx%d", b.OrigW[0], b.OrigH[0])
		}
		if flip {
			flips++
		}
		if tr.Expand.W > 200 {
			expands++
		}
		interps[tr.Interp]++
	}
	if math.Abs(float64(flips)/n-0.5) > 0.12 || math.Abs(float64(expands)/n-0.5) > 0.12 || len(interps) != NumInterps {
		t.Errorf("%d flips, %d expansions in %d; interpolations %v", flips, expands, n, interps)
	}
}
