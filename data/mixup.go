package data

import (
	"math"
	"math/rand/v2"
)

// MixupOptions turn on visually coherent mixup (Zhang et al. 2019, "Bag of
// Freebies for Training Object Detection Neural Networks", section 3.1;
// GluonCV's MixupDetection): every training image is mixed with a partner
// drawn uniformly from the other images of the data set, with
// lambda ~ Beta(Alpha, Beta), before the other augmentations. See Mixup.
type MixupOptions struct {
	Alpha, Beta float64 // Beta distribution parameters (default 1.5 and 1.5)
	// OffFromEpoch is the first epoch without mixup: images are mixed in
	// epochs e < OffFromEpoch (GluonCV turns mixup off for the last 20
	// epochs: OffFromEpoch = epochs - 20). Zero or less: never mixed.
	OffFromEpoch int
}

func (o MixupOptions) withDefaults() MixupOptions {
	if o.Alpha <= 0 {
		o.Alpha = 1.5
	}
	if o.Beta <= 0 {
		o.Beta = 1.5
	}
	return o
}

// Mixup mixes two images as GluonCV's MixupDetection: the canvas is
// max(a.W, b.W) x max(a.H, b.H), zero-filled; a is pasted at the top-left
// corner times lambda, and b, also at the top-left corner, times 1-lambda is
// added:
//
//	out(x, y) = lambda*a(x, y) [inside a] + (1-lambda)*b(x, y) [inside b]
//
// in float32 (GluonCV rounds the result to uint8; dettrain keeps the
// floats). The boxes of both images are kept, in the same pixel coordinates
// (no resizing: "geometry preserved"), a's with their Weight times lambda,
// b's times 1-lambda; that weight multiplies each object's loss terms.
// Neither input is modified.
func Mixup(a *Image, ta []Target, b *Image, tb []Target, lambda float64) (*Image, []Target) {
	return mixup(a, ta, b, tb, lambda, false)
}

// mixup is Mixup; with reuse, a's pixels are overwritten by the canvas when
// it has a's size (the loader owns a and saves a copy).
func mixup(a *Image, ta []Target, b *Image, tb []Target, lambda float64, reuse bool) (*Image, []Target) {
	w, h := max(a.W, b.W), max(a.H, b.H)
	var out *Image
	if reuse && w == a.W && h == a.H {
		out = a
	} else {
		out = NewImage(w, h)
	}
	la, lb := float32(lambda), float32(1-lambda)
	for y := range a.H {
		src := a.Pix[y*a.W*3 : (y+1)*a.W*3]
		dst := out.Pix[y*w*3 : y*w*3+len(src)]
		for i, v := range src {
			dst[i] = v * la
		}
	}
	for y := range b.H {
		src := b.Pix[y*b.W*3 : (y+1)*b.W*3]
		dst := out.Pix[y*w*3 : y*w*3+len(src)]
		for i, v := range src {
			dst[i] += v * lb
		}
	}
	ts := make([]Target, 0, len(ta)+len(tb))
	for _, t := range ta {
		t.Weight *= la
		ts = append(ts, t)
	}
	for _, t := range tb {
		t.Weight *= lb
		ts = append(ts, t)
	}
	return out, ts
}

// MixPartner draws the partner of image self uniformly from the n-1 other
// images 0..n-1 (GluonCV: np.random.choice(np.delete(np.arange(n), idx))).
// n must be at least 2.
func MixPartner(r *rand.Rand, self, n int) int {
	j := r.IntN(n - 1)
	if j >= self {
		j++
	}
	return j
}

// Beta draws from the Beta(a, b) distribution as X/(X+Y) with X ~ Gamma(a)
// and Y ~ Gamma(b), both of scale 1 (a, b > 0).
func Beta(r *rand.Rand, a, b float64) float64 {
	x := Gamma(r, a)
	y := Gamma(r, b)
	if x+y == 0 {
		return 0.5 // both underflowed (a, b << 1): the two are equally likely
	}
	return x / (x + y)
}

// Gamma draws from the Gamma(k, 1) distribution (k > 0) by Marsaglia and
// Tsang's method ("A simple method for generating gamma variables", ACM
// TOMS 26(3), 2000): d = k - 1/3, c = 1/sqrt(9d); repeat x ~ N(0,1),
// v = (1+cx)^3 until v > 0 and, with u ~ U(0,1), u < 1 - 0.0331x^4 or
// log u < x^2/2 + d(1 - v + log v); return d*v. For k < 1,
// Gamma(k) = Gamma(k+1) * u^(1/k).
func Gamma(r *rand.Rand, k float64) float64 {
	if k < 1 {
		g := Gamma(r, k+1)
		return g * math.Pow(r.Float64(), 1/k)
	}
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
