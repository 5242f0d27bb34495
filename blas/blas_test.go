package blas

import (
	"math"
	"math/rand"
	"testing"
)

// naive is the textbook triple loop, the reference for every case below.
func naive(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				av := a[i*lda+p]
				if transA {
					av = a[p*lda+i]
				}
				bv := b[p*ldb+j]
				if transB {
					bv = b[j*ldb+p]
				}
				s += av * bv
			}
			c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
		}
	}
}

func TestGemmMatchesNaive(t *testing.T) {
	t.Logf("backend: %s", Backend())
	r := rand.New(rand.NewSource(1))
	for _, tc := range []struct {
		m, n, k int
		ta, tb  bool
	}{{3, 4, 5, false, false}, {7, 2, 9, true, false}, {5, 6, 3, false, true}, {8, 8, 8, true, true}, {33, 65, 17, false, false}} {
		lda, ldb := tc.k, tc.n
		if tc.ta {
			lda = tc.m
		}
		if tc.tb {
			ldb = tc.k
		}
		a := make([]float64, tc.m*tc.k)
		b := make([]float64, tc.k*tc.n)
		c := make([]float64, tc.m*tc.n)
		for i := range a {
			a[i] = r.NormFloat64()
		}
		for i := range b {
			b[i] = r.NormFloat64()
		}
		for i := range c {
			c[i] = r.NormFloat64()
		}
		want := append([]float64(nil), c...)
		naive(tc.ta, tc.tb, tc.m, tc.n, tc.k, 0.7, a, lda, b, ldb, 0.3, want, tc.n)
		got := append([]float64(nil), c...)
		Gemm(tc.ta, tc.tb, tc.m, tc.n, tc.k, 0.7, a, lda, b, ldb, 0.3, got, tc.n)
		a32, b32, c32 := f32(a), f32(b), f32(c)
		Gemm(tc.ta, tc.tb, tc.m, tc.n, tc.k, float32(0.7), a32, lda, b32, ldb, float32(0.3), c32, tc.n)
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
				t.Fatalf("%+v dgemm[%d] = %v, want %v", tc, i, got[i], want[i])
			}
			if math.Abs(float64(c32[i])-want[i]) > 1e-4*(1+math.Abs(want[i])) {
				t.Fatalf("%+v sgemm[%d] = %v, want %v", tc, i, c32[i], want[i])
			}
		}
	}
}

func f32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

// TestGemmNoProduct: with k = 0 there is no product and C becomes beta*C.
func TestGemmNoProduct(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	Gemm(false, false, 2, 2, 0, float32(5), []float32{}, 1, []float32{}, 2, float32(0.5), c, 2)
	for i, want := range []float32{0.5, 1, 1.5, 2} {
		if c[i] != want {
			t.Fatalf("c = %v, want beta*c", c)
		}
	}
}
