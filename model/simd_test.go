package model

import (
	"math"
	"math/rand"
	"testing"
)

// TestSIMDKernels checks the float32 kernels of simd.go (AVX2 where the CPU
// has it) against plain loops: element-wise ones bit for bit, sums to 1e-6
// relative, on every length up to 70 and a long one, with misaligned starts.
func TestSIMDKernels(t *testing.T) {
	t.Logf("AVX2 kernels: %v", useAVX2)
	r := rand.New(rand.NewSource(5))
	vec := func(n int) []float32 {
		v := make([]float32, n+1)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		if n%5 == 0 && n > 0 {
			v[1] = 0 // exact zeros: the leaky slope's edge
		}
		return v[1:] // start off 32-byte alignment
	}
	for _, n := range append(seq(71), 4099) {
		x, y, dy := vec(n), vec(n), vec(n)
		a, b, c := float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
		for _, leaky := range []bool{false, true} {
			got := make([]float32, n)
			affine32(x, got, a, b, leaky)
			for j := range x {
				z := a*x[j] + b
				if leaky {
					z = max(z, 0.1*z)
				}
				if got[j] != z {
					t.Fatalf("affine32 n=%d leaky=%v [%d]: %v, want %v", n, leaky, j, got[j], z)
				}
			}
		}
		g := append([]float32(nil), y...)
		axpbyc32(g, x, a, b, c)
		for j := range g {
			if want := a*y[j] + b*x[j] + c; g[j] != want {
				t.Fatalf("axpbyc32 n=%d [%d]: %v, want %v", n, j, g[j], want)
			}
		}
		d := append([]float32(nil), y...)
		addTo32(d, x)
		for j := range d {
			if want := y[j] + x[j]; d[j] != want {
				t.Fatalf("addTo32 n=%d [%d]: %v, want %v", n, j, d[j], want)
			}
		}
		var s, ss, s1, s2 float64
		for j := range x {
			s += float64(x[j])
		}
		mean := s / math.Max(1, float64(n))
		for j := range x {
			ss += (float64(x[j]) - mean) * (float64(x[j]) - mean)
		}
		gs := make([]float32, n)
		g1, g2 := leakyGradSums32(x, y, dy, gs)
		for j := range y {
			want := dy[j]
			if y[j] <= 0 {
				want *= 0.1
			}
			if gs[j] != want {
				t.Fatalf("leakyGradSums32 n=%d g[%d] = %v, want %v (y %v)", n, j, gs[j], want, y[j])
			}
			s1 += float64(want)
			s2 += float64(want) * float64(x[j])
		}
		near := func(name string, got, want, scale float64) {
			if math.Abs(got-want) > 1e-6*math.Max(1, scale) {
				t.Fatalf("%s n=%d: %v, want %v", name, n, got, want)
			}
		}
		near("sum32", sum32(x), s, float64(n))
		near("sqDev32", sqDev32(x, mean), ss, ss)
		near("leakyGradSums32 s1", float64(g1), s1, float64(n))
		near("leakyGradSums32 s2", float64(g2), s2, float64(n))
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
