// Package box holds the one box type used inside dettrain and its conversions
// to and from the formats found in data sets and model outputs.
//
// Inside dettrain a box is a pair of corners in continuous, 0-based pixel
// coordinates: a box covering the pixels with 0-based indices x0..x1
// (inclusive) has X1 = x0 and X2 = x1+1. With that convention the
// PASCAL VOC devkit's "+1" area and intersection formulas on 1-based inclusive
// integer corners become plain differences: VOC (xmin, xmax) maps to
// (X1 = xmin-1, X2 = xmax), and width = X2-X1 = xmax-xmin+1.
package box

import "math"

// Box is an axis-aligned box in absolute pixel coordinates, (X1,Y1) the
// top-left corner and (X2,Y2) the bottom-right corner, X2 >= X1, Y2 >= Y1.
type Box struct {
	X1, Y1, X2, Y2 float64
}

// W is the width X2-X1 (0 for an inverted box).
func (b Box) W() float64 { return math.Max(0, b.X2-b.X1) }

// H is the height Y2-Y1 (0 for an inverted box).
func (b Box) H() float64 { return math.Max(0, b.Y2-b.Y1) }

// Area is W*H.
func (b Box) Area() float64 { return b.W() * b.H() }

// Center returns the box centre.
func (b Box) Center() (cx, cy float64) { return (b.X1 + b.X2) / 2, (b.Y1 + b.Y2) / 2 }

// IoU is the intersection over union |a∩b| / |a∪b|; 0 when the union is empty.
func IoU(a, b Box) float64 {
	iw := math.Min(a.X2, b.X2) - math.Max(a.X1, b.X1)
	ih := math.Min(a.Y2, b.Y2) - math.Max(a.Y1, b.Y1)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := a.Area() + b.Area() - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// Clip returns b clipped to the image [0,w]x[0,h].
func (b Box) Clip(w, h float64) Box {
	return Box{
		X1: math.Min(math.Max(b.X1, 0), w), Y1: math.Min(math.Max(b.Y1, 0), h),
		X2: math.Min(math.Max(b.X2, 0), w), Y2: math.Min(math.Max(b.Y2, 0), h),
	}
}

// Scale multiplies the x coordinates by sx and the y coordinates by sy.
func (b Box) Scale(sx, sy float64) Box {
	return Box{X1: b.X1 * sx, Y1: b.Y1 * sy, X2: b.X2 * sx, Y2: b.Y2 * sy}
}

// FromVOC converts PASCAL VOC's 1-based inclusive corners (xmin, ymin, xmax, ymax).
func FromVOC(xmin, ymin, xmax, ymax float64) Box {
	return Box{X1: xmin - 1, Y1: ymin - 1, X2: xmax, Y2: ymax}
}

// VOC converts back to 1-based inclusive corners: the inverse of FromVOC.
func (b Box) VOC() (xmin, ymin, xmax, ymax float64) {
	return b.X1 + 1, b.Y1 + 1, b.X2, b.Y2
}

// FromXYWH converts COCO's [x, y, width, height] (x, y the top-left corner).
func FromXYWH(x, y, w, h float64) Box { return Box{X1: x, Y1: y, X2: x + w, Y2: y + h} }

// XYWH converts to COCO's [x, y, width, height].
func (b Box) XYWH() [4]float64 { return [4]float64{b.X1, b.Y1, b.X2 - b.X1, b.Y2 - b.Y1} }

// FromRelCXCYWH converts darknet's relative centre format (all four values
// divided by the image width or height) for an image of w x h pixels.
func FromRelCXCYWH(cx, cy, bw, bh, w, h float64) Box {
	return Box{X1: (cx - bw/2) * w, Y1: (cy - bh/2) * h, X2: (cx + bw/2) * w, Y2: (cy + bh/2) * h}
}

// RelCXCYWH converts to darknet's relative centre format for an image of w x h pixels.
func (b Box) RelCXCYWH(w, h float64) (cx, cy, bw, bh float64) {
	return (b.X1 + b.X2) / 2 / w, (b.Y1 + b.Y2) / 2 / h, (b.X2 - b.X1) / w, (b.Y2 - b.Y1) / h
}
