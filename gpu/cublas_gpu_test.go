package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// devBufs tracks device buffers made by a test, to free them at its end
// (inside Device.Do).
type devBufs struct {
	d     *Device
	ptrs  []Ptr
	bytes []int
}

func (b *devBufs) add(p Ptr, n int) Ptr {
	b.ptrs = append(b.ptrs, p)
	b.bytes = append(b.bytes, 4*max(n, 1))
	return p
}

// up uploads v; nan allocates n NaNs (see poisoned); alloc allocates bytes.
func (b *devBufs) up(t testing.TB, s *Stream, v []float32) Ptr {
	return b.add(upload(t, b.d, s, v), len(v))
}

func (b *devBufs) nan(t testing.TB, s *Stream, n int) Ptr {
	return b.add(poisoned(t, b.d, s, n), n)
}

func (b *devBufs) alloc(t testing.TB, bytes int) Ptr {
	t.Helper()
	if bytes <= 0 {
		return 0
	}
	p, err := b.d.Alloc(bytes)
	if err != nil {
		t.Fatal(err)
	}
	b.ptrs = append(b.ptrs, p)
	b.bytes = append(b.bytes, bytes)
	return p
}

func (b *devBufs) free() {
	for i, p := range b.ptrs {
		b.d.Free(p, b.bytes[i])
	}
	b.ptrs, b.bytes = nil, nil
}

// randF32 returns n values uniform in [-1, 1).
func randF32(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(2*rng.Float64() - 1)
	}
	return v
}

// refGemm is the row-major C = alpha*op(A)*op(B) + beta*C in float64 over
// the m×n block of C (the rest of c is copied), with each element's sum of
// the absolute values of its terms, the scale of float32's rounding error.
func refGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, scale []float64) {
	want = make([]float64, len(c))
	scale = make([]float64, len(c))
	for i := range c {
		want[i] = float64(c[i])
	}
	for i := range m {
		for j := range n {
			var sum, abs float64
			for p := range k {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				t := float64(alpha) * float64(av) * float64(bv)
				sum += t
				abs += math.Abs(t)
			}
			if beta != 0 {
				t := float64(beta) * float64(c[i*ldc+j])
				sum += t
				abs += math.Abs(t)
			}
			want[i*ldc+j] = sum
			scale[i*ldc+j] = abs
		}
	}
	return want, scale
}

// compareScaled checks |got-want| <= rel*scale elementwise (NaN fails: a
// poisoned element was not written) and reports the worst elements with
// their positions as pos(i) writes them.
func compareScaled(t testing.TB, what string, got []float32, want, scale []float64, rel float64, pos func(i int) string) {
	t.Helper()
	type bad struct {
		i        int
		got      float32
		want     float64
		err, tol float64
	}
	var bads []bad
	nans := 0
	worst := 0.0
	for i := range got {
		g := float64(got[i])
		tol := rel * scale[i]
		if math.IsNaN(g) || math.IsInf(g, 0) {
			nans++
			bads = append(bads, bad{i, got[i], want[i], math.Inf(1), tol})
			continue
		}
		e := math.Abs(g - want[i])
		if scale[i] > 0 {
			worst = max(worst, e/scale[i])
		}
		if e > tol {
			bads = append(bads, bad{i, got[i], want[i], e, tol})
		}
	}
	if len(bads) == 0 {
		t.Logf("%s: %d values, worst |error|/scale %.2g (limit %.0g)", what, len(got), worst, rel)
		return
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: %d of %d values off (%d NaN/Inf: never written, or computed as such), limit |got-want| <= %.0g * sum|terms|; first ones:",
		what, len(bads), len(got), nans, rel)
	for _, b := range bads[:min(len(bads), 8)] {
		fmt.Fprintf(&sb, "\n  %s: got %.9g, want %.9g, |error| %.3g > tolerance %.3g", pos(b.i), b.got, b.want, b.err, b.tol)
	}
	t.Error(sb.String())
}

// TestSgemmGPU checks BLAS.Sgemm, row-major, in the four transpose
// combinations, with padded leading dimensions, beta 0 (C poisoned with
// NaN: not read) and beta 0.5, against a float64 GEMM; in full FP32 and
// with TF32.
func TestSgemmGPU(t *testing.T) {
	d, s, _ := testGPU(t)
	for _, tf32 := range []bool{false, true} {
		rel := 1e-5
		if tf32 {
			rel = 1e-3 // the bound; 1.7e-4 at most seen on an H200 (docs/GPU.md)
		}
		t.Run(fmt.Sprintf("tf32=%v", tf32), func(t *testing.T) {
			err := d.Do(func() error {
				bufs := &devBufs{d: d}
				defer bufs.free()
				b, err := NewBLAS(s, tf32)
				if err != nil {
					return err
				}
				defer b.Close()
				rng := rand.New(rand.NewPCG(1, 2))
				const m, n, k = 37, 23, 53
				for _, ta := range []bool{false, true} {
					for _, tb := range []bool{false, true} {
						for _, beta := range []float32{0, 0.5} {
							rowsA, colsA := m, k
							if ta {
								rowsA, colsA = k, m
							}
							rowsB, colsB := k, n
							if tb {
								rowsB, colsB = n, k
							}
							lda, ldb, ldc := colsA+3, colsB+5, n+2
							a := randF32(rng, rowsA*lda)
							bb := randF32(rng, rowsB*ldb)
							c := randF32(rng, m*ldc)
							var cp Ptr
							if beta == 0 {
								for i := range c {
									c[i] = float32(math.NaN())
								}
								cp = bufs.nan(t, s, len(c))
							} else {
								cp = bufs.up(t, s, c)
							}
							const alpha = 1.5
							want, scale := refGemm(ta, tb, m, n, k, alpha, a, lda, bb, ldb, beta, c, ldc)
							if err := b.Sgemm(ta, tb, m, n, k, alpha, bufs.up(t, s, a), lda, bufs.up(t, s, bb), ldb, beta, cp, ldc); err != nil {
								return err
							}
							got := download(t, s, cp, len(c))
							what := fmt.Sprintf("Sgemm(transA=%v, transB=%v, m=%d, n=%d, k=%d, lda=%d, ldb=%d, beta=%g, ldc=%d, tf32=%v)", ta, tb, m, n, k, lda, ldb, beta, ldc, tf32)
							checkGemmResult(t, what, got, want, scale, rel, ldc, n)
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkGemmResult compares C (m rows of ldc) with the reference; padding
// columns (j >= n) must keep their values (a NaN there must stay NaN).
func checkGemmResult(t testing.TB, what string, got []float32, want, scale []float64, rel float64, ldc, n int) {
	t.Helper()
	g := append([]float32(nil), got...)
	w := append([]float64(nil), want...)
	for i := range g {
		if i%ldc >= n {
			if math.IsNaN(w[i]) {
				if !math.IsNaN(float64(g[i])) {
					t.Errorf("%s: wrote %g into C's padding at row %d column %d (ldc %d, n %d)", what, g[i], i/ldc, i%ldc, ldc, n)
				}
				g[i], w[i] = 0, 0
			} else if float64(g[i]) != w[i] {
				t.Errorf("%s: changed C's padding at row %d column %d from %g to %g", what, i/ldc, i%ldc, w[i], g[i])
				g[i] = float32(w[i])
			}
		}
	}
	compareScaled(t, what, g, w, scale, rel, func(i int) string { return fmt.Sprintf("C[%d][%d]", i/ldc, i%ldc) })
}

// TestSgemmStridedBatchedGPU checks SgemmStridedBatched (row-major) on 3
// matrices with gaps between them, against float64 GEMMs.
func TestSgemmStridedBatchedGPU(t *testing.T) {
	d, s, _ := testGPU(t)
	err := d.Do(func() error {
		bufs := &devBufs{d: d}
		defer bufs.free()
		b, err := NewBLAS(s, false)
		if err != nil {
			return err
		}
		defer b.Close()
		rng := rand.New(rand.NewPCG(3, 4))
		const m, n, k, batch = 5, 7, 9, 3
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				rowsA, colsA := m, k
				if ta {
					rowsA, colsA = k, m
				}
				rowsB, colsB := k, n
				if tb {
					rowsB, colsB = n, k
				}
				lda, ldb, ldc := colsA+1, colsB+2, n+1
				sa, sb, sc := rowsA*lda+7, rowsB*ldb+3, m*ldc+5
				a := randF32(rng, batch*sa)
				bb := randF32(rng, batch*sb)
				c := randF32(rng, batch*sc)
				const alpha, beta = 0.75, -1.25
				want := make([]float64, len(c))
				scale := make([]float64, len(c))
				for i := range c {
					want[i] = float64(c[i]) // gaps and padding: unchanged
				}
				for i := range batch {
					w, sc1 := refGemm(ta, tb, m, n, k, alpha, a[i*sa:], lda, bb[i*sb:], ldb, beta, c[i*sc:i*sc+m*ldc], ldc)
					for r := range m {
						for j := range n {
							want[i*sc+r*ldc+j] = w[r*ldc+j]
							scale[i*sc+r*ldc+j] = sc1[r*ldc+j]
						}
					}
				}
				cp := bufs.up(t, s, c)
				if err := b.SgemmStridedBatched(ta, tb, m, n, k, alpha, bufs.up(t, s, a), lda, sa, bufs.up(t, s, bb), ldb, sb, beta, cp, ldc, sc, batch); err != nil {
					return err
				}
				got := download(t, s, cp, len(c))
				what := fmt.Sprintf("SgemmStridedBatched(transA=%v, transB=%v, m=%d, n=%d, k=%d, lda=%d, ldb=%d, ldc=%d, strides %d/%d/%d, batch %d)",
					ta, tb, m, n, k, lda, ldb, ldc, sa, sb, sc, batch)
				compareScaled(t, what, got, want, scale, 1e-5, func(i int) string {
					return fmt.Sprintf("batch %d C[%d][%d] (element %d of the matrix's stride)", i/sc, i%sc/ldc, i%sc%ldc, i%sc)
				})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRowMajorToColMajor runs the operand mapping of Sgemm through a
// column-major GEMM written like cuBLAS's reference (no GPU needed).
func TestRowMajorToColMajor(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const m, n, k = 4, 3, 5
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			rowsA, colsA := m, k
			if ta {
				rowsA, colsA = k, m
			}
			rowsB, colsB := k, n
			if tb {
				rowsB, colsB = n, k
			}
			lda, ldb, ldc := colsA+1, colsB+2, n+1
			a := randF32(rng, rowsA*lda)
			b := randF32(rng, rowsB*ldb)
			c := make([]float32, m*ldc)
			const pa, pb = Ptr(0x1000), Ptr(0x2000)
			g := rowMajorToColMajor(ta, tb, m, n, k, pa, lda, pb, ldb)
			mat := map[Ptr][]float32{pa: a, pb: b}
			colMajorGemmRef(g.opA == cublasOpT, g.opB == cublasOpT, g.m, g.n, g.k, mat[g.a], g.lda, mat[g.b], g.ldb, c, ldc)
			want, scale := refGemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, make([]float32, m*ldc), ldc)
			compareScaled(t, fmt.Sprintf("transA=%v transB=%v", ta, tb), c, want, scale, 1e-6, func(i int) string {
				return fmt.Sprintf("C[%d][%d]", i/ldc, i%ldc)
			})
		}
	}
}

// colMajorGemmRef is C = op(A) op(B) with column-major storage (element
// (i, j) of a matrix with leading dimension ld at j*ld + i), as cuBLAS
// defines it.
func colMajorGemmRef(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	for j := range n {
		for i := range m {
			var sum float64
			for p := range k {
				var av, bv float32
				if ta {
					av = a[i*lda+p]
				} else {
					av = a[p*lda+i]
				}
				if tb {
					bv = b[p*ldb+j]
				} else {
					bv = b[j*ldb+p]
				}
				sum += float64(av) * float64(bv)
			}
			c[j*ldc+i] = float32(sum)
		}
	}
}

func TestCheckGemmArgs(t *testing.T) {
	for _, c := range []struct {
		ta, tb        bool
		m, n, k       int
		lda, ldb, ldc int
		bad           string
	}{
		{false, false, 4, 3, 5, 5, 3, 3, ""},
		{true, true, 4, 3, 5, 4, 5, 3, ""},
		{false, false, 4, 3, 5, 4, 3, 3, "lda=4"},
		{true, false, 4, 3, 5, 3, 3, 3, "lda=3"},
		{false, true, 4, 3, 5, 5, 4, 3, "ldb=4"},
		{false, false, 4, 3, 5, 5, 3, 2, "ldc=2"},
		{false, false, -1, 3, 5, 5, 3, 3, "negative"},
	} {
		err := checkGemm("Sgemm", c.ta, c.tb, c.m, c.n, c.k, c.lda, c.ldb, c.ldc)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", c, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%+v: error %v, want one about %q", c, err, c.bad)
		}
	}
}

func TestBLASStatusError(t *testing.T) {
	err := blasCheck("cublasSgemm_v2", 7)
	if err == nil || !strings.Contains(err.Error(), "cublasSgemm_v2") || !strings.Contains(err.Error(), "CUBLAS_STATUS_INVALID_VALUE") {
		t.Errorf("got %v", err)
	}
	if blasCheck("x", 0) != nil {
		t.Error("status 0 is an error")
	}
}
