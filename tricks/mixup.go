package tricks

import (
	"math"
	"math/rand/v2"
)

// The random draws of visually coherent mixup (docs/FREEBIES.md "Visually coherent mixup";
// Zhang et al. 2019, "Bag of Freebies for Training Object Detection Neural
// Networks", section 3.1; GluonCV's MixupDetection): the mixing factor
// lambda ~ Beta(alpha, beta) and the partner image. The mixing itself is
// data.Mixup.

// MixupDraw is one image's mixup draw, as GluonCV's MixupDetection makes
// it: lambda = clamp(Beta(r, alpha, beta), 0, 1); when lambda < 1 the
// partner is MixPartner(r, self, n), else (lambda >= 1 leaves the image
// alone) partner is -1 and nothing more is drawn. n must be at least 2.
func MixupDraw(r *rand.Rand, alpha, beta float64, self, n int) (lambda float64, partner int) {
	lambda = min(1, max(0, Beta(r, alpha, beta)))
	if lambda >= 1 {
		return lambda, -1
	}
	return lambda, MixPartner(r, self, n)
}

// MixPartner draws the partner of image self uniformly from the n-1 other
// images 0..n-1 (GluonCV: np.random.choice(np.delete(np.arange(n), idx))):
// j = r.IntN(n-1), plus one when j >= self. Mixup and mosaic use it. n must
// be at least 2.
func MixPartner(r *rand.Rand, self, n int) int {
	j := r.IntN(n - 1)
	if j >= self {
		j++
	}
	return j
}

// Beta draws from the Beta(a, b) distribution as X/(X+Y) with X ~ Gamma(a)
// and Y ~ Gamma(b), both of scale 1 (a, b > 0), X drawn first.
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
