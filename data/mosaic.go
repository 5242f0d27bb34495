package data

import (
	"math"
	"math/rand/v2"

	"github.com/dettrain/dettrain/box"
	"github.com/dettrain/dettrain/tricks"
)

// MosaicOptions turn on mosaic augmentation (Bochkovskiy et al., YOLOv4,
// 2020, section 3.3; the rule of Ultralytics' load_mosaic, described at
// Mosaic): every training image becomes a mosaic of itself and three
// images drawn uniformly from the data set.
type MosaicOptions struct {
	// OffFromEpoch is the first epoch without mosaic: images are mosaicked
	// in epochs e < OffFromEpoch (Ultralytics' close_mosaic = 10 is
	// OffFromEpoch = epochs - 10). Zero or less: never.
	OffFromEpoch int
}

// MosaicFill is the grey of the canvas where no image lands (Ultralytics'
// 114, in the 0..255 range of Image).
const MosaicFill = 114

// MosaicDraw is one draw of the mosaic for an output of w x h: the centre
// (XC, YC) on the 2w x 2h canvas, uniform in [w/2, 3w/2) x [h/2, 3h/2)
// (Ultralytics: mosaic_border = -s/2), and the three partners, drawn
// uniformly from the other images.
type MosaicDraw struct {
	XC, YC   int
	Partners [3]int
}

// DrawMosaic draws a mosaic for image self of n, for an output of w x h.
func DrawMosaic(r *rand.Rand, self, n, w, h int) MosaicDraw {
	d := MosaicDraw{XC: w/2 + r.IntN(w), YC: h/2 + r.IntN(h)}
	for k := range d.Partners {
		if n > 1 {
			d.Partners[k] = tricks.MixPartner(r, self, n)
		} else {
			d.Partners[k] = self
		}
	}
	return d
}

// Mosaic composes four images into one w x h image, the rule of
// Ultralytics' load_mosaic followed by its random_perspective without
// rotation, shear, scale or translation (a centre crop):
//
//   - each image is resized (bilinear) by r = min(w/W, h/H), keeping its
//     aspect, so that it fits the w x h output;
//   - on a 2w x 2h canvas of MosaicFill, image 0 is placed with its
//     bottom-right corner at the centre (xc, yc), image 1 with its
//     bottom-left, image 2 with its top-right, image 3 with its top-left
//     corner there, each cut by the canvas edges;
//   - the output is the canvas window [w/2, 3w/2) x [h/2, 3h/2);
//   - boxes are scaled by r, moved with their image, clipped to the canvas
//     and then to the window, and kept when the clipped box is wider and
//     taller than 2 pixels and keeps more than 10% of its area on the
//     canvas (Ultralytics' box_candidates, wh_thr = 2, area_thr = 0.1).
//
// Target weights are kept (mixup after mosaic weights them again).
func Mosaic(imgs [4]*Image, ts [4][]Target, w, h, xc, yc int) (*Image, []Target) {
	out := NewImage(w, h)
	for i := range out.Pix {
		out.Pix[i] = MosaicFill
	}
	ox, oy := w/2, h/2 // the window's origin on the canvas
	var kept []Target
	for i, img := range imgs {
		r := math.Min(float64(w)/float64(img.W), float64(h)/float64(img.H))
		iw, ih := max(1, int(math.Round(float64(img.W)*r))), max(1, int(math.Round(float64(img.H)*r)))
		// Where image i lands on the canvas (x1a..x2a) and which part of
		// the resized image shows there (from x1b), as load_mosaic.
		var x1a, y1a, x2a, y2a, x1b, y1b int
		switch i {
		case 0: // top left
			x1a, y1a, x2a, y2a = max(xc-iw, 0), max(yc-ih, 0), xc, yc
			x1b, y1b = iw-(x2a-x1a), ih-(y2a-y1a)
		case 1: // top right
			x1a, y1a, x2a, y2a = xc, max(yc-ih, 0), min(xc+iw, 2*w), yc
			x1b, y1b = 0, ih-(y2a-y1a)
		case 2: // bottom left
			x1a, y1a, x2a, y2a = max(xc-iw, 0), yc, xc, min(2*h, yc+ih)
			x1b, y1b = iw-(x2a-x1a), 0
		default: // bottom right
			x1a, y1a, x2a, y2a = xc, yc, min(xc+iw, 2*w), min(2*h, yc+ih)
			x1b, y1b = 0, 0
		}
		padw, padh := x1a-x1b, y1a-y1b
		// Paste the part of [x1a, x2a) x [y1a, y2a) inside the window.
		wx1, wy1 := max(x1a, ox), max(y1a, oy)
		wx2, wy2 := min(x2a, ox+w), min(y2a, oy+h)
		if wx1 < wx2 && wy1 < wy2 {
			resample(img, Rect{W: img.W, H: img.H}, [3]float32{}, iw, ih, InterpBilinear, func(y int, row []float32) {
				cy := y + padh
				if cy < wy1 || cy >= wy2 {
					return
				}
				dst := out.Pix[((cy-oy)*w+(wx1-ox))*3 : ((cy-oy)*w+(wx2-ox))*3]
				copy(dst, row[(wx1-padw)*3:(wx2-padw)*3])
			})
		}
		canvas := box.Box{X2: float64(2 * w), Y2: float64(2 * h)}
		window := box.Box{X1: float64(ox), Y1: float64(oy), X2: float64(ox + w), Y2: float64(oy + h)}
		for _, t := range ts[i] {
			b := t.Box.Scale(r, r)
			b = box.Box{X1: b.X1 + float64(padw), Y1: b.Y1 + float64(padh), X2: b.X2 + float64(padw), Y2: b.Y2 + float64(padh)}
			b = clipTo(b, canvas)
			c := clipTo(b, window)
			if c.W() <= 2 || c.H() <= 2 || c.Area() <= 0.1*b.Area() {
				continue
			}
			t.Box = box.Box{X1: c.X1 - float64(ox), Y1: c.Y1 - float64(oy), X2: c.X2 - float64(ox), Y2: c.Y2 - float64(oy)}
			kept = append(kept, t)
		}
	}
	return out, kept
}

// clipTo clips b to the box c (an empty box where they do not meet).
func clipTo(b, c box.Box) box.Box {
	b.X1, b.X2 = math.Min(math.Max(b.X1, c.X1), c.X2), math.Min(math.Max(b.X2, c.X1), c.X2)
	b.Y1, b.Y2 = math.Min(math.Max(b.Y1, c.Y1), c.Y2), math.Min(math.Max(b.Y2, c.Y1), c.Y2)
	return b
}
