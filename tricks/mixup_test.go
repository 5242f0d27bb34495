package tricks

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMixPartner: never the image itself, uniform over the others.
func TestMixPartner(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, self := range []int{0, 2, 4} {
		count := make([]int, 5)
		for range 20000 {
			count[MixPartner(r, self, 5)]++
		}
		if count[self] != 0 {
			t.Errorf("self %d drawn %d times", self, count[self])
		}
		for j, c := range count {
			if j != self && math.Abs(float64(c)/20000-0.25) > 0.015 {
				t.Errorf("self %d: partner %d in %d of 20000 draws, want 1/4", self, j, c)
			}
		}
	}
	if MixPartner(r, 0, 2) != 1 || MixPartner(r, 1, 2) != 0 {
		t.Error("two images: the partner is not the other one")
	}
}

// TestBetaGamma compares sample moments with Gamma(k): mean k, variance k;
// Beta(a, b): mean a/(a+b), variance ab/((a+b)^2 (a+b+1)). 200000 draws;
// tolerances are 5 standard errors.
func TestBetaGamma(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n = 200000
	moments := func(draw func() float64) (mean, vr float64) {
		var s, s2 float64
		for range n {
			x := draw()
			s += x
			s2 += x * x
		}
		mean = s / n
		return mean, s2/n - mean*mean
	}
	for _, k := range []float64{0.2, 1, 1.5, 4} {
		mean, vr := moments(func() float64 { return Gamma(r, k) })
		if se := math.Sqrt(k / n); math.Abs(mean-k) > 5*se || math.Abs(vr-k) > 0.05*k+5*math.Sqrt(6*k*k/n) {
			t.Errorf("Gamma(%v): mean %v var %v, want %v and %v", k, mean, vr, k, k)
		}
	}
	for _, ab := range [][2]float64{{1.5, 1.5}, {0.2, 0.2}, {1, 1}, {2, 5}} {
		a, b := ab[0], ab[1]
		wantMean := a / (a + b)
		wantVar := a * b / ((a + b) * (a + b) * (a + b + 1))
		lo, hi := 1.0, 0.0
		mean, vr := moments(func() float64 {
			x := Beta(r, a, b)
			lo, hi = math.Min(lo, x), math.Max(hi, x)
			return x
		})
		if math.Abs(mean-wantMean) > 5*math.Sqrt(wantVar/n) || math.Abs(vr-wantVar) > 0.03*wantVar {
			t.Errorf("Beta(%v,%v): mean %v var %v, want %v and %v", a, b, mean, vr, wantMean, wantVar)
		}
		if lo < 0 || hi > 1 {
			t.Errorf("Beta(%v,%v) outside [0,1]: %v..%v", a, b, lo, hi)
		}
	}
}
