package data

import (
	"fmt"
	"math/rand/v2"

	"github.com/dettrain/dettrain/tricks"
)

// mixes reports whether images of epoch e are mixed.
func (l *Loader) mixes(e int) bool {
	return l.o.Mixup != nil && e < l.o.Mixup.OffFromEpoch && len(l.ds.Samples) >= 2
}

// mosaics reports whether epoch e's images are mosaics.
func (l *Loader) mosaics(e int) bool {
	return l.o.Mosaic != nil && e < l.o.Mosaic.OffFromEpoch
}

// fillTrain makes image j.n of its batch through the full-size path: decode,
// mosaic (in epochs that mosaic: the image is then already the batch's
// size, and of the training transform only the colour jitter and the flip
// apply), mixup (in epochs that mix), then with Augment GluonCV's YOLOv3
// training transform, else a plain bilinear resize. r is the image's SampleRand with
// the flip already drawn (flipDraw).
//
// Expand, crop, resize and flip are done in one resampling pass: the crop
// is a window of the expanded canvas, which is a window of the image with
// fill colour around it (resample reads outside pixels as ExpandFill), and
// the flip mirrors the output columns. That gives the same floats as
// materialising each step (TestTrainTransformMatchesSteps) without
// allocating canvases up to 4x4 times the image.
func (l *Loader) fillTrain(j job, e int, r *rand.Rand, flipDraw bool) error {
	fd, ok := l.dec.(FullDecoder)
	if !ok {
		return fmt.Errorf("decoder %T has no Decode method: Augment and Mixup need a data.FullDecoder", l.dec)
	}
	b := j.p.b
	idx := b.Index[j.n]
	sm := &l.ds.Samples[idx]
	img, err := decodeFull(fd, sm.ImagePath)
	if err != nil {
		return err
	}
	b.OrigW[j.n], b.OrigH[j.n] = img.W, img.H
	ts := objectTargets(sm.Objects)
	mosaic := l.mosaics(e)
	if mosaic {
		d := DrawMosaic(r, idx, len(l.ds.Samples), b.W, b.H)
		imgs, tss := [4]*Image{img}, [4][]Target{ts}
		for k, pi := range d.Partners {
			p := &l.ds.Samples[pi]
			if imgs[k+1], err = decodeFull(fd, p.ImagePath); err != nil {
				return fmt.Errorf("mosaic partner: %w", err)
			}
			tss[k+1] = objectTargets(p.Objects)
		}
		img, ts = Mosaic(imgs, tss, b.W, b.H, d.XC, d.YC)
	}
	if l.mixes(e) {
		m := l.o.Mixup
		if lambda, pi := tricks.MixupDraw(r, m.Alpha, m.Beta, idx, len(l.ds.Samples)); pi >= 0 {
			p := &l.ds.Samples[pi]
			img2, err := decodeFull(fd, p.ImagePath)
			if err != nil {
				return fmt.Errorf("mixup partner: %w", err)
			}
			img, ts = mixup(img, ts, img2, objectTargets(p.Objects), lambda, true)
		}
	}
	t := TrainTransform{Crop: Rect{W: img.W, H: img.H}, Expand: Expansion{W: img.W, H: img.H}, Interp: InterpBilinear}
	if l.o.Augment {
		t = DrawTrainTransform(r, ts, img.W, img.H)
		if mosaic { // already cropped and at the batch's size
			t.Expand, t.Crop = Expansion{W: img.W, H: img.H}, Rect{W: img.W, H: img.H}
		}
	}
	t.Flip = flipDraw && (l.o.Flip || l.o.Augment)
	plane := 3 * b.W * b.H
	b.Targets[j.n] = t.Apply(img, ts, b.W, b.H, b.Images[j.n*plane:(j.n+1)*plane])
	return nil
}

func decodeFull(fd FullDecoder, path string) (*Image, error) {
	img, err := fd.Decode(path)
	if err != nil {
		return nil, err
	}
	if err := img.check(); err != nil {
		return nil, fmt.Errorf("decoder returned %w", err)
	}
	return img, nil
}

// objectTargets returns the objects as targets of weight 1, in the image's
// pixels, difficult ones left out.
func objectTargets(objs []Object) []Target {
	return targets(objs, 1, 1, 0, false)
}

// TrainTransform is one draw of GluonCV's YOLOv3 training transform
// (gluoncv/data/transforms/presets/yolo.py, YOLO3DefaultTrainTransform) for
// one image: colour jitter, expand, crop, resize with Interp, flip, applied
// in that order.
type TrainTransform struct {
	Color  ColorJitter
	Expand Expansion // canvas and the image's place on it
	Crop   Rect      // in canvas pixels
	Interp Interp
	Flip   bool
}

// DrawTrainTransform draws the transform of a w x h image holding the boxes
// ts (in its pixels) from r: RandomColorJitter, RandomExpand, RandomCrop of
// the expanded boxes, and the interpolation r.IntN(NumInterps). The flip is
// left false: the Loader draws it first from the same r (see SampleRand).
func DrawTrainTransform(r *rand.Rand, ts []Target, w, h int) TrainTransform {
	var t TrainTransform
	t.Color = RandomColorJitter(r)
	t.Expand = RandomExpand(r, w, h)
	t.Crop, _ = RandomCrop(r, ExpandTargets(ts, t.Expand), t.Expand.W, t.Expand.H)
	t.Interp = Interp(r.IntN(NumInterps))
	return t
}

// Apply transforms img (changed in place by the colour jitter) into dst,
// w x h RGB/255 in CHW order (dst[c*w*h + y*w + x]), and returns the boxes
// ts in the pixels of dst: expanded, cropped (CropTargets: a box whose
// centre leaves the crop is dropped), scaled by w/Crop.W and h/Crop.H and
// flipped.
func (t TrainTransform) Apply(img *Image, ts []Target, w, h int, dst []float32) []Target {
	t.Color.Apply(img)
	win := Rect{X: t.Crop.X - t.Expand.X, Y: t.Crop.Y - t.Expand.Y, W: t.Crop.W, H: t.Crop.H}
	plane := w * h
	resample(img, win, ExpandFill, w, h, t.Interp, func(y int, row []float32) {
		r, g, b := dst[y*w:(y+1)*w], dst[plane+y*w:plane+(y+1)*w], dst[2*plane+y*w:2*plane+(y+1)*w]
		for x := range w {
			ox := x
			if t.Flip {
				ox = w - 1 - x
			}
			r[ox], g[ox], b[ox] = row[3*x]/255, row[3*x+1]/255, row[3*x+2]/255
		}
	})
	ts = CropTargets(ExpandTargets(ts, t.Expand), t.Crop)
	ts = ScaleTargets(ts, float64(w)/float64(t.Crop.W), float64(h)/float64(t.Crop.H))
	if t.Flip {
		ts = FlipTargets(ts, float64(w))
	}
	return ts
}
