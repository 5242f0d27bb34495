package data

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMixup: a 4x3 and a 2x5 image mix on a 4x5 canvas; a pixel inside both
// is lambda*a + (1-lambda)*b, inside one only that image's term, inside
// neither 0; boxes keep their coordinates and get weights lambda, 1-lambda.
func TestMixup(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a, b := randomImage(r, 4, 3), randomImage(r, 2, 5)
	ac, bc := a.Clone(), b.Clone()
	const lambda = 0.3
	ta := []Target{tgt(0, 0, 0, 2, 2), tgt(1, 1, 1, 4, 3)}
	tb := []Target{tgt(2, 0, 1, 2, 5)}
	tb[0].Weight = 0.5 // an already weighted box keeps its factor
	out, ts := Mixup(a, ta, b, tb, lambda)
	if out.W != 4 || out.H != 5 {
		t.Fatalf("canvas %dx%d, want max(4,2) x max(3,5) = 4x5", out.W, out.H)
	}
	for y := range 5 {
		for x := range 4 {
			for c := range 3 {
				var want float64
				if x < 4 && y < 3 {
					want += lambda * float64(a.At(x, y, c))
				}
				if x < 2 && y < 5 {
					want += (1 - lambda) * float64(b.At(x, y, c))
				}
				if got := float64(out.At(x, y, c)); math.Abs(got-want) > 1e-4 {
					t.Errorf("(%d,%d,%d) = %v, want %v", x, y, c, got, want)
				}
			}
		}
	}
	want := []Target{ta[0], ta[1], tb[0]}
	ws := []float32{lambda, lambda, (1 - lambda) * 0.5}
	for i := range want {
		if ts[i].Box != want[i].Box || ts[i].Class != want[i].Class || math.Abs(float64(ts[i].Weight-ws[i])) > 1e-7 {
			t.Errorf("target %d = %+v, want box %v class %d weight %v", i, ts[i], want[i].Box, want[i].Class, ws[i])
		}
	}
	if len(ts) != 3 {
		t.Errorf("%d targets", len(ts))
	}
	for i := range a.Pix {
		if a.Pix[i] != ac.Pix[i] {
			t.Fatal("Mixup changed a")
		}
	}
	for i := range b.Pix {
		if b.Pix[i] != bc.Pix[i] {
			t.Fatal("Mixup changed b")
		}
	}
}

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
