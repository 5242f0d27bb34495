// Package blas is dettrain's matrix multiply: OpenBLAS's cblas_sgemm and
// cblas_dgemm, loaded at run time with purego (no cgo, no headers), falling
// back to gonum's pure-Go BLAS with a warning when libopenblas is missing.
//
// All matrices are row-major. Gemm computes C = alpha*op(A)*op(B) + beta*C
// where op(X) is X or its transpose, op(A) is m x k, op(B) is k x n and C is
// m x n, exactly as cblas_?gemm with CblasRowMajor.
package blas

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ebitengine/purego"
	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

var (
	once       sync.Once
	backend    string
	loadErr    error
	cSgemm     func(order, ta, tb, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
	cDgemm     func(order, ta, tb, m, n, k int32, alpha float64, a *float64, lda int32, b *float64, ldb int32, beta float64, c *float64, ldc int32)
	cSetThread func(n int32)
	cGetThread func() int32
	pureGo     gonum.Implementation
)

// libraryNames are tried in order with dlopen.
var libraryNames = []string{"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libopenblas64_.so.0"}

func load() {
	once.Do(func() {
		var errs []string
		for _, name := range libraryNames {
			h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			purego.RegisterLibFunc(&cSgemm, h, "cblas_sgemm")
			purego.RegisterLibFunc(&cDgemm, h, "cblas_dgemm")
			if _, err := purego.Dlsym(h, "openblas_set_num_threads"); err == nil {
				purego.RegisterLibFunc(&cSetThread, h, "openblas_set_num_threads")
				purego.RegisterLibFunc(&cGetThread, h, "openblas_get_num_threads")
			}
			backend = "openblas (" + name + ")"
			if cSetThread != nil {
				// dettrain parallelises itself (Threads goroutines, each
				// calling a single-threaded GEMM on its own images or rows),
				// so OpenBLAS's own threads would only oversubscribe the cores.
				cSetThread(1)
			}
			return
		}
		loadErr = fmt.Errorf("libopenblas not found (%v)", errs)
		backend = "gonum (pure Go, about 8x slower)"
		if os.Getenv("DETTRAIN_QUIET_BLAS") == "" {
			fmt.Fprintf(os.Stderr, "dettrain: warning: %v; using gonum's pure-Go BLAS: install libopenblas0 (Debian/Ubuntu: apt-get install libopenblas0) for speed\n", loadErr)
		}
	})
}

// Backend names the implementation in use, e.g. "openblas (libopenblas.so.0)".
func Backend() string { load(); return backend }

// workers is the number of goroutines dettrain computes with (SetThreads).
var workers atomic.Int32

// SetThreads sets the number of threads dettrain computes with (n <= 0:
// number of CPUs). OpenBLAS itself stays single-threaded: the model's ops
// split their images (or GEMM rows) over this many goroutines, each calling
// Gemm, so GEMMs and the Go work between them use the same cores without
// competing, and every split is fixed by n (results are deterministic for a
// given n).
func SetThreads(n int) {
	load()
	if n <= 0 {
		n = runtime.NumCPU()
	}
	workers.Store(int32(n))
}

// Threads reports the number of threads set by SetThreads (the number of
// CPUs until it is called).
func Threads() int {
	load()
	if w := workers.Load(); w > 0 {
		return int(w)
	}
	return runtime.NumCPU()
}

func check(transA, transB bool, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) {
	ra, ca := m, k
	if transA {
		ra, ca = k, m
	}
	rb, cb := k, n
	if transB {
		rb, cb = n, k
	}
	if m < 0 || n < 0 || k < 0 || lda < max(1, ca) || ldb < max(1, cb) || ldc < max(1, n) {
		panic(fmt.Sprintf("blas: bad gemm dims m=%d n=%d k=%d lda=%d ldb=%d ldc=%d", m, n, k, lda, ldb, ldc))
	}
	if (ra > 0 && ca > 0 && lenA < (ra-1)*lda+ca) || (rb > 0 && cb > 0 && lenB < (rb-1)*ldb+cb) || (m > 0 && lenC < (m-1)*ldc+n) {
		panic(fmt.Sprintf("blas: gemm slice too short: A %d B %d C %d for m=%d n=%d k=%d", lenA, lenB, lenC, m, n, k))
	}
}

func tr(t bool) int32 {
	if t {
		return cblasTrans
	}
	return cblasNoTrans
}

func gtr(t bool) gblas.Transpose {
	if t {
		return gblas.Trans
	}
	return gblas.NoTrans
}

// trivial checks the arguments (panicking on a programming error, as BLAS
// does), loads the library, and handles the cases with no product: an empty
// C, or k = 0 where C = beta*C. It reports whether the call is done.
func trivial[T Float](transA, transB bool, m, n, k, lenA, lda, lenB, ldb int, beta T, c []T, ldc int) bool {
	if m == 0 || n == 0 {
		return true
	}
	check(transA, transB, m, n, k, lenA, lda, lenB, ldb, len(c), ldc)
	load()
	if k != 0 {
		return false
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			row[j] *= beta
		}
	}
	return true
}

// Sgemm is C = alpha*op(A)*op(B) + beta*C in float32, row-major.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if trivial(transA, transB, m, n, k, len(a), lda, len(b), ldb, beta, c, ldc) {
		return
	}
	if cSgemm != nil {
		cSgemm(cblasRowMajor, tr(transA), tr(transB), int32(m), int32(n), int32(k), alpha, &a[0], int32(lda), &b[0], int32(ldb), beta, &c[0], int32(ldc))
		runtime.KeepAlive(a)
		runtime.KeepAlive(b)
		runtime.KeepAlive(c)
		return
	}
	pureGo.Sgemm(gtr(transA), gtr(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dgemm is C = alpha*op(A)*op(B) + beta*C in float64, row-major.
func Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if trivial(transA, transB, m, n, k, len(a), lda, len(b), ldb, beta, c, ldc) {
		return
	}
	if cDgemm != nil {
		cDgemm(cblasRowMajor, tr(transA), tr(transB), int32(m), int32(n), int32(k), alpha, &a[0], int32(lda), &b[0], int32(ldb), beta, &c[0], int32(ldc))
		runtime.KeepAlive(a)
		runtime.KeepAlive(b)
		runtime.KeepAlive(c)
		return
	}
	pureGo.Dgemm(gtr(transA), gtr(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Float is the element type of dettrain's tensors: float32 for training,
// float64 for gradient checks.
type Float interface{ ~float32 | ~float64 }

// Gemm dispatches to Sgemm or Dgemm by element type.
func Gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch a := any(a).(type) {
	case []float32:
		Sgemm(transA, transB, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		Dgemm(transA, transB, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}
