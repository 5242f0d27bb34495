package synth

import (
	"image"
	"image/color"
	"math"
	"math/rand"

	"github.com/dettrain/dettrain/box"
)

// Shape classes, in the order of Classes.
const (
	circle = iota
	square
	triangle
	cross
)

// Limits of the random scene, for the default 160-pixel image; lengths scale
// with Options.Size/160.
const (
	minSide, maxSide = 18.0, 70.0 // longer side of a shape, pixels
	minAspect        = 0.6        // width/height of circle, square, cross, triangle
	maxAspect        = 1.6
	maxIoU           = 0.3  // between the boxes of any two objects
	minVisible       = 0.6  // fraction of each shape's pixels left uncovered by later ones
	outside          = 0.15 // fraction of a shape's width or height that may lie outside
	pEmpty           = 0.08 // images with no object
	maxObjects       = 4
	minContrast      = 120.0 // RGB distance between a shape and the background's base colour
	minApart         = 80.0  // RGB distance between shapes whose boxes overlap
	placeTries       = 60
	minPixels        = 40.0 // pixels a shape must cover inside the image
)

// shape is one object's geometry: its class, the rectangle (x0,y0)-(x0+w,
// y0+h) it is inscribed in, and its colour.
type shape struct {
	class      int
	x0, y0     float64
	w, h       float64
	arm        float64 // cross: bar thickness as a fraction of w (vertical) and h (horizontal)
	col        color.RGBA
	minX, minY int // tight extent of the shape's visible pixels, inclusive, 0-based
	maxX, maxY int
	truncated  bool // the shape runs over the image border
}

// contains reports whether the pixel whose centre is (px, py) is inside the
// shape. The explicit float64 conversions keep the compiler from fusing
// multiply-adds, which would change boundary pixels between architectures.
func (s *shape) contains(px, py float64) bool {
	cx, cy := s.x0+s.w/2, s.y0+s.h/2
	switch s.class {
	case circle: // ((x-cx)/(w/2))^2 + ((y-cy)/(h/2))^2 <= 1
		u, v := float64((px-cx)/(s.w/2)), float64((py-cy)/(s.h/2))
		return float64(u*u)+float64(v*v) <= 1
	case square:
		return px >= s.x0 && px < s.x0+s.w && py >= s.y0 && py < s.y0+s.h
	case triangle: // apex (cx, y0), base from (x0, y0+h) to (x0+w, y0+h)
		if py < s.y0 || py >= s.y0+s.h {
			return false
		}
		return math.Abs(px-cx) <= float64(s.w/2)*float64((py-s.y0)/s.h)
	case cross:
		inX := px >= s.x0 && px < s.x0+s.w
		inY := py >= s.y0 && py < s.y0+s.h
		return (inY && math.Abs(px-cx) <= float64(s.w*s.arm)/2) || (inX && math.Abs(py-cy) <= float64(s.h*s.arm)/2)
	}
	return false
}

// pixels calls f for every pixel of the image (size x size) inside s.
func (s *shape) pixels(size int, f func(x, y int)) {
	x0 := max(0, int(math.Floor(s.x0)))
	x1 := min(size-1, int(math.Ceil(s.x0+s.w)))
	y0 := max(0, int(math.Floor(s.y0)))
	y1 := min(size-1, int(math.Ceil(s.y0+s.h)))
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			if s.contains(float64(x)+0.5, float64(y)+0.5) {
				f(x, y)
			}
		}
	}
}

// rect is the continuous rectangle a shape is inscribed in.
func (s *shape) rect() box.Box { return box.Box{X1: s.x0, Y1: s.y0, X2: s.x0 + s.w, Y2: s.y0 + s.h} }

func colourDist(a, b color.RGBA) float64 {
	dr, dg, db := float64(a.R)-float64(b.R), float64(a.G)-float64(b.G), float64(a.B)-float64(b.B)
	return math.Sqrt(dr*dr + dg*dg + db*db)
}

// scene is one rendered image: its pixels, which shape owns each pixel (-1
// for the background) and the shapes with their visible extents.
type scene struct {
	img    *image.RGBA
	owner  []int8
	shapes []shape
}

// render draws one image of size x size pixels from r: a textured
// background, then 0..4 shapes placed one after the other, each rejected
// and redrawn when its rectangle overlaps an earlier one's with IoU > 0.3 or
// when it would hide more than 40% of an earlier shape.
func render(r *rand.Rand, size int) *scene {
	sc := &scene{img: image.NewRGBA(image.Rect(0, 0, size, size)), owner: make([]int8, size*size)}
	for i := range sc.owner {
		sc.owner[i] = -1
	}
	base := background(r, sc.img)

	n := 0
	if r.Float64() >= pEmpty {
		n = 1 + r.Intn(maxObjects)
	}
	scale := float64(size) / 160
	area := make([]int, 0, n)  // full pixel count of each placed shape
	owned := make([]int, 0, n) // pixels each placed shape still shows
	for range n {
		for range placeTries {
			s := randomShape(r, size, scale)
			ok := true
			for i := range sc.shapes {
				if box.IoU(s.rect(), sc.shapes[i].rect()) > maxIoU {
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
			s.col = randomColour(r, base, &s, sc.shapes)
			// Count what s would cover: its own pixels and those it
			// takes from each earlier shape.
			own, taken := 0, make([]int, len(sc.shapes))
			s.pixels(size, func(x, y int) {
				own++
				if o := sc.owner[y*size+x]; o >= 0 {
					taken[o]++
				}
			})
			if float64(own) < minPixels*scale*scale {
				continue // a sliver: mostly outside the image
			}
			for i := range sc.shapes {
				if owned[i]-taken[i] < int(minVisible*float64(area[i])) {
					ok = false
				}
			}
			if !ok {
				continue
			}
			k := int8(len(sc.shapes))
			s.pixels(size, func(x, y int) { sc.owner[y*size+x] = k })
			for i := range taken {
				owned[i] -= taken[i]
			}
			s.truncated = s.x0 < 0 || s.y0 < 0 || s.x0+s.w > float64(size) || s.y0+s.h > float64(size)
			sc.shapes = append(sc.shapes, s)
			area = append(area, own)
			owned = append(owned, own)
			break
		}
	}

	// Paint the shapes and take each box from the pixels it owns.
	for i := range sc.shapes {
		s := &sc.shapes[i]
		s.minX, s.minY, s.maxX, s.maxY = size, size, -1, -1
	}
	for y := range size {
		for x := range size {
			o := sc.owner[y*size+x]
			if o < 0 {
				continue
			}
			s := &sc.shapes[o]
			sc.img.SetRGBA(x, y, s.col)
			s.minX, s.maxX = min(s.minX, x), max(s.maxX, x)
			s.minY, s.maxY = min(s.minY, y), max(s.maxY, y)
		}
	}
	return sc
}

func randomShape(r *rand.Rand, size int, scale float64) shape {
	s := shape{class: r.Intn(len(Classes))}
	long := (minSide + r.Float64()*(maxSide-minSide)) * scale
	aspect := minAspect + r.Float64()*(maxAspect-minAspect) // w/h
	if aspect >= 1 {
		s.w, s.h = long, long/aspect
	} else {
		s.w, s.h = long*aspect, long
	}
	s.arm = 0.28 + r.Float64()*0.12
	s.x0 = -outside*s.w + r.Float64()*(float64(size)-(1-2*outside)*s.w)
	s.y0 = -outside*s.h + r.Float64()*(float64(size)-(1-2*outside)*s.h)
	return s
}

// randomColour draws a colour at least minContrast from the background and
// minApart from the earlier shapes whose rectangles touch s's.
func randomColour(r *rand.Rand, base color.RGBA, s *shape, earlier []shape) color.RGBA {
	var c color.RGBA
	for try := 0; ; try++ {
		c = color.RGBA{uint8(r.Intn(256)), uint8(r.Intn(256)), uint8(r.Intn(256)), 255}
		ok := colourDist(c, base) > minContrast
		for i := range earlier {
			if ok && box.IoU(s.rect(), earlier[i].rect()) > 0 && colourDist(c, earlier[i].col) <= minApart {
				ok = false
			}
		}
		if ok || try > 1000 {
			return c
		}
	}
}

// background fills img with a random base colour, a few low-contrast stripes
// or blobs, and per-pixel noise; it returns the base colour.
func background(r *rand.Rand, img *image.RGBA) color.RGBA {
	size := img.Rect.Dx()
	base := color.RGBA{uint8(40 + r.Intn(176)), uint8(40 + r.Intn(176)), uint8(40 + r.Intn(176)), 255}
	// delta[i] is a per-pixel offset added to all three channels.
	delta := make([]int, size*size)
	if r.Intn(2) == 0 { // stripes
		for range 1 + r.Intn(3) {
			theta := r.Float64() * math.Pi
			period := 8 + r.Float64()*24
			width := period * (0.2 + r.Float64()*0.4)
			d := 6 + r.Intn(14)
			if r.Intn(2) == 0 {
				d = -d
			}
			cs, sn := math.Cos(theta), math.Sin(theta)
			for y := range size {
				for x := range size {
					t := float64(float64(x)*cs) + float64(float64(y)*sn)
					if math.Mod(t+4*float64(size), period) < width {
						delta[y*size+x] += d
					}
				}
			}
		}
	} else { // blobs
		for range 2 + r.Intn(4) {
			cx, cy := r.Float64()*float64(size), r.Float64()*float64(size)
			rx, ry := (8+r.Float64()*40)*float64(size)/160, (8+r.Float64()*40)*float64(size)/160
			d := 6 + r.Intn(14)
			if r.Intn(2) == 0 {
				d = -d
			}
			for y := range size {
				for x := range size {
					u, v := float64((float64(x)+0.5-cx)/rx), float64((float64(y)+0.5-cy)/ry)
					if float64(u*u)+float64(v*v) <= 1 {
						delta[y*size+x] += d
					}
				}
			}
		}
	}
	for y := range size {
		for x := range size {
			d := delta[y*size+x] + r.Intn(25) - 12
			img.SetRGBA(x, y, color.RGBA{clamp(int(base.R) + d), clamp(int(base.G) + d), clamp(int(base.B) + d), 255})
		}
	}
	return base
}

func clamp(v int) uint8 { return uint8(max(0, min(255, v))) }
