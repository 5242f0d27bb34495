package tricks

import "math"

// Shapes is multi-scale training (docs/FREEBIES.md "random shapes"): every Every
// iterations a new square input size is drawn from Sizes; all images of a
// batch share it. The draw for block b = iter/Every is a pure function of
// (Seed, b), so a resumed run draws the same sizes.
type Shapes struct {
	Sizes []int
	Every int
	Seed  int64
}

// DefaultSizes is {320, 352, ..., 608}: 10 sizes, step 32 (the paper's list).
func DefaultSizes() []int {
	var s []int
	for v := 320; v <= 608; v += 32 {
		s = append(s, v)
	}
	return s
}

// SizeAt returns the input size of iteration iter.
func (s Shapes) SizeAt(iter int) int {
	every := max(s.Every, 1)
	b := uint64(iter / every)
	return s.Sizes[splitmix(uint64(s.Seed)^(b*0x9e3779b97f4a7c15))%uint64(len(s.Sizes))]
}

// SizeAtAspect is SizeAt for a network made for w x h: the drawn size v
// becomes the longer side and the shorter one keeps the aspect, rounded to
// the nearest multiple of 32 (at least 32), so that both sides stay
// multiples of YOLOv3's largest stride:
//
//	w >= h: (v, max(32, 32*round(v*h/(32*w))))   and symmetrically for h > w.
//
// A square network gets (v, v), as SizeAt. For 352x288 and v = 320 that is
// 320x256 (320*288/352 = 261.8 -> 256).
func (s Shapes) SizeAtAspect(iter, w, h int) (int, int) {
	v := s.SizeAt(iter)
	short := func(long, short int) int {
		return max(32, 32*int(math.Round(float64(v)*float64(short)/(32*float64(long)))))
	}
	switch {
	case w == h:
		return v, v
	case w > h:
		return v, short(w, h)
	default:
		return short(h, w), v
	}
}

// splitmix is SplitMix64's output function, a well-mixed hash of x.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
