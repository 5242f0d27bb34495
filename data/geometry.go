package data

import (
	"math"
	"math/rand/v2"

	"github.com/dettrain/dettrain/box"
)

// Rect is a rectangle of whole pixels: columns X..X+W-1 and rows Y..Y+H-1,
// the box.Box{X1: X, Y1: Y, X2: X+W, Y2: Y+H}.
type Rect struct{ X, Y, W, H int }

// Box returns r as a box.Box.
func (r Rect) Box() box.Box {
	return box.Box{X1: float64(r.X), Y1: float64(r.Y), X2: float64(r.X + r.W), Y2: float64(r.Y + r.H)}
}

// Expansion places an image on a larger canvas of W x H pixels with its
// top-left corner at (X, Y): GluonCV's random_expand
// (gluoncv/data/transforms/image.py). Expansion{W: w, H: h} for a w x h
// image is no expansion.
type Expansion struct{ X, Y, W, H int }

// ExpandMaxRatio is random_expand's max_ratio in the YOLOv3 transform.
const ExpandMaxRatio = 4

// ExpandFill is the colour random expand fills the canvas with: GluonCV
// fills with its normalisation mean times 255, the ImageNet mean
// (0.485, 0.456, 0.406) * 255.
var ExpandFill = [3]float32{0.485 * 255, 0.456 * 255, 0.406 * 255}

// RandomExpand draws the expansion of a w x h image as GluonCV's YOLOv3
// training transform does: with probability 0.5 none (u = r.Float64() <=
// 0.5); otherwise ratio ~ U(1, 4), canvas int(w*ratio) x int(h*ratio),
// offsets Y then X uniform in 0..canvas-size (inclusive, Python's
// random.randint).
func RandomExpand(r *rand.Rand, w, h int) Expansion {
	if r.Float64() <= 0.5 {
		return Expansion{W: w, H: h}
	}
	ratio := 1 + (ExpandMaxRatio-1)*r.Float64()
	ow, oh := int(float64(w)*ratio), int(float64(h)*ratio)
	y := r.IntN(oh - h + 1)
	x := r.IntN(ow - w + 1)
	return Expansion{X: x, Y: y, W: ow, H: oh}
}

// Expand returns the canvas of e filled with fill and img pasted at (e.X,
// e.Y).
func Expand(img *Image, e Expansion, fill [3]float32) *Image {
	dst := NewImage(e.W, e.H)
	fillRGB(dst.Pix, fill)
	for y := range img.H {
		copy(dst.Pix[((e.Y+y)*e.W+e.X)*3:], img.Pix[y*img.W*3:(y+1)*img.W*3])
	}
	return dst
}

// ExpandTargets moves the boxes with the image: x += e.X, y += e.Y.
func ExpandTargets(ts []Target, e Expansion) []Target {
	out := make([]Target, len(ts))
	for i, t := range ts {
		t.Box = box.Box{X1: t.Box.X1 + float64(e.X), Y1: t.Box.Y1 + float64(e.Y), X2: t.Box.X2 + float64(e.X), Y2: t.Box.Y2 + float64(e.Y)}
		out[i] = t
	}
	return out
}

// Crop returns the pixels of img inside c, which must lie inside img.
func Crop(img *Image, c Rect) *Image {
	dst := NewImage(c.W, c.H)
	for y := range c.H {
		s := ((c.Y+y)*img.W + c.X) * 3
		copy(dst.Pix[y*c.W*3:(y+1)*c.W*3], img.Pix[s:s+c.W*3])
	}
	return dst
}

// CropTargets maps boxes into the crop c as GluonCV's bbox.crop with
// allow_outside_center=False: a box is kept only if its centre (cx, cy)
// lies in the crop, c.X <= cx < c.X+c.W and c.Y <= cy < c.Y+c.H; a kept box
// is clipped to the crop and shifted by (-c.X, -c.Y), and dropped if
// clipping left it empty.
func CropTargets(ts []Target, c Rect) []Target {
	cb := c.Box()
	out := make([]Target, 0, len(ts))
	for _, t := range ts {
		cx, cy := t.Box.Center()
		if cx < cb.X1 || cx >= cb.X2 || cy < cb.Y1 || cy >= cb.Y2 {
			continue
		}
		b := box.Box{
			X1: math.Max(t.Box.X1, cb.X1) - cb.X1, Y1: math.Max(t.Box.Y1, cb.Y1) - cb.Y1,
			X2: math.Min(t.Box.X2, cb.X2) - cb.X1, Y2: math.Min(t.Box.Y2, cb.Y2) - cb.Y1,
		}
		if b.X1 >= b.X2 || b.Y1 >= b.Y2 {
			continue
		}
		t.Box = b
		out = append(out, t)
	}
	return out
}

// The SSD crop constraints of GluonCV's random_crop_with_constraints: one
// candidate is searched for each minimum IoU (the last, NaN, has none: any
// crop whose IoUs are at most 1), up to CropTrials trials each.
var cropMinIoU = []float64{0.1, 0.3, 0.5, 0.7, 0.9, math.NaN()}

const (
	CropMinScale = 0.3 // crop side scale from U(0.3, 1)
	CropMaxScale = 1.0
	CropMaxRatio = 2.0 // aspect ratio within [1/2, 2]
	CropTrials   = 50  // trials per constraint
)

// RandomCrop draws a crop of a w x h image holding the boxes ts as GluonCV's
// random_crop_with_constraints (SSD, Liu et al. 2016, section 2.2) with its
// default arguments, and returns the crop and CropTargets(ts, crop).
//
// Without boxes the crop is the whole image and nothing is drawn. Otherwise
// the whole image is the first candidate, and for each constraint min IoU in
// {0.1, 0.3, 0.5, 0.7, 0.9, none} up to 50 trials draw
//
//	scale  ~ U(0.3, 1)
//	aspect ~ U(max(1/2, scale^2), min(2, 1/scale^2))
//	ch = int(h*scale/sqrt(aspect)), cw = int(w*scale*sqrt(aspect))
//	top ~ randrange(h-ch), left ~ randrange(w-cw)
//
// and the first crop whose IoU with every box is at least the minimum (for
// "none": at most 1) is a candidate. Then candidates are drawn uniformly,
// without replacement, until one keeps a box (CropTargets); if none does,
// the whole image. Python's randrange(0) raises; here it gives 0, and
// cw, ch are at least 1.
func RandomCrop(r *rand.Rand, ts []Target, w, h int) (Rect, []Target) {
	whole := Rect{W: w, H: h}
	if len(ts) == 0 {
		return whole, nil
	}
	uniform := func(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }
	randrange := func(n int) int {
		if n <= 0 {
			return 0
		}
		return r.IntN(n)
	}
	cands := []Rect{whole}
	for _, minIoU := range cropMinIoU {
		for range CropTrials {
			scale := uniform(CropMinScale, CropMaxScale)
			aspect := uniform(math.Max(1/CropMaxRatio, scale*scale), math.Min(CropMaxRatio, 1/(scale*scale)))
			ch := max(1, int(float64(h)*scale/math.Sqrt(aspect)))
			cw := max(1, int(float64(w)*scale*math.Sqrt(aspect)))
			top := randrange(h - ch)
			left := randrange(w - cw)
			c := Rect{X: left, Y: top, W: cw, H: ch}
			if cropOK(ts, c.Box(), minIoU) {
				cands = append(cands, c)
				break
			}
		}
	}
	for len(cands) > 0 {
		i := r.IntN(len(cands))
		c := cands[i]
		cands = append(cands[:i], cands[i+1:]...)
		if kept := CropTargets(ts, c); len(kept) > 0 {
			return c, kept
		}
	}
	return whole, CropTargets(ts, whole)
}

// cropOK: min IoU >= minIoU and max IoU <= maxIoU over the boxes, with
// (minIoU, maxIoU) = (m, +inf), or (-inf, 1) when m is NaN.
func cropOK(ts []Target, c box.Box, m float64) bool {
	for _, t := range ts {
		iou := box.IoU(t.Box, c)
		if math.IsNaN(m) {
			if iou > 1 {
				return false
			}
		} else if iou < m {
			return false
		}
	}
	return true
}

// FlipImage mirrors img left to right in place.
func FlipImage(img *Image) {
	for y := range img.H {
		row := img.Pix[y*img.W*3 : (y+1)*img.W*3]
		for i, j := 0, img.W-1; i < j; i, j = i+1, j-1 {
			a, b := row[i*3:i*3+3], row[j*3:j*3+3]
			a[0], a[1], a[2], b[0], b[1], b[2] = b[0], b[1], b[2], a[0], a[1], a[2]
		}
	}
}

// FlipTargets mirrors the boxes in an image of width w: x -> w - x, the
// corners swapping (GluonCV's bbox.flip).
func FlipTargets(ts []Target, w float64) []Target {
	out := make([]Target, len(ts))
	for i, t := range ts {
		t.Box.X1, t.Box.X2 = w-t.Box.X2, w-t.Box.X1
		out[i] = t
	}
	return out
}

// ScaleTargets scales the boxes by (sx, sy), as a resize of the image by the
// same factors scales them (GluonCV's bbox.resize).
func ScaleTargets(ts []Target, sx, sy float64) []Target {
	out := make([]Target, len(ts))
	for i, t := range ts {
		t.Box = t.Box.Scale(sx, sy)
		out[i] = t
	}
	return out
}
