package gpu

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ebitengine/purego"
)

// cuBLAS (cublas_api.h), bound at run time.
var blasLib struct {
	once sync.Once
	err  error
	lib  *lib

	cublasCreate              func(h *uintptr) int32
	cublasDestroy             func(h uintptr) int32
	cublasSetStream           func(h uintptr, s uintptr) int32
	cublasSetMathMode         func(h uintptr, mode int32) int32
	cublasGetStatusString     func(status int32) string // optional (cuBLAS 11.4+)
	cublasSgemm               func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uintptr, lda int32, b uintptr, ldb int32, beta *float32, c uintptr, ldc int32) int32
	cublasSgemmStridedBatched func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uintptr, lda int32, sa int64, b uintptr, ldb int32, sb int64, beta *float32, c uintptr, ldc int32, sc int64, batch int32) int32
}

var cublasSearch = libSearch{
	what:  "cuBLAS (libcublas)",
	names: []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so"},
	hint:  "Install cuBLAS (pip: nvidia-cublas-cu13 or nvidia-cublas; apt: libcublas-13-0 from NVIDIA's CUDA repository) and point DETTRAIN_CUDA_PATH at its folder if it is not on the loader's path.",
}

// cuBLAS enums (cublas_api.h).
const (
	cublasOpN = 0
	cublasOpT = 1

	cublasDefaultMath      = 0 // FP32 routines compute in FP32
	cublasTF32TensorOpMath = 3 // FP32 routines may round inputs to TF32 on tensor cores
)

// cublasStatusNames are cublasStatus_t's names.
var cublasStatusNames = map[int32]string{
	0:  "CUBLAS_STATUS_SUCCESS",
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func loadCUBLAS() error {
	blasLib.once.Do(func() {
		// libcublas needs libcublasLt of the same version, from its folder.
		preloadBeside(cublasSearch, func(dir, name string) {
			lt := strings.Replace(name, "libcublas.", "libcublasLt.", 1)
			purego.Dlopen(filepath.Join(dir, lt), purego.RTLD_NOW|purego.RTLD_GLOBAL)
		})
		l, err := openLib(cublasSearch)
		if err != nil {
			blasLib.err = err
			return
		}
		blasLib.lib = l
		b := &binder{l: l}
		b.bind(&blasLib.cublasCreate, "cublasCreate_v2")
		b.bind(&blasLib.cublasDestroy, "cublasDestroy_v2")
		b.bind(&blasLib.cublasSetStream, "cublasSetStream_v2")
		b.bind(&blasLib.cublasSetMathMode, "cublasSetMathMode")
		b.bind(&blasLib.cublasSgemm, "cublasSgemm_v2")
		b.bind(&blasLib.cublasSgemmStridedBatched, "cublasSgemmStridedBatched")
		if b.err == nil && l.has("cublasGetStatusString") {
			b.bind(&blasLib.cublasGetStatusString, "cublasGetStatusString")
		}
		blasLib.err = b.err
	})
	return blasLib.err
}

// blasCheck turns a cublasStatus_t into an error naming the call.
func blasCheck(call string, code int32) error {
	if code == 0 {
		return nil
	}
	name, ok := cublasStatusNames[code]
	if !ok {
		name = "CUBLAS_STATUS_UNKNOWN"
	}
	if blasLib.cublasGetStatusString != nil {
		if s := blasLib.cublasGetStatusString(code); s != "" && s != name {
			name += ": " + s
		}
	}
	return &Error{Call: call, Code: int(code), Name: name}
}

// BLAS is a cuBLAS handle bound to a stream. Its calls are asynchronous on
// that stream; call them inside Device.Do.
type BLAS struct {
	h    uintptr
	tf32 bool
}

// NewBLAS creates a cuBLAS handle whose work goes to s. With tf32 false,
// FP32 routines compute in full FP32 (CUBLAS_DEFAULT_MATH); with tf32 true
// they may round their inputs to TF32 on tensor cores
// (CUBLAS_TF32_TENSOR_OP_MATH). Call inside Device.Do.
func NewBLAS(s *Stream, tf32 bool) (*BLAS, error) {
	if err := loadCUBLAS(); err != nil {
		return nil, err
	}
	b := &BLAS{tf32: tf32}
	if err := blasCheck("cublasCreate_v2", blasLib.cublasCreate(&b.h)); err != nil {
		return nil, err
	}
	var hs uintptr
	if s != nil {
		hs = s.h
	}
	if err := blasCheck("cublasSetStream_v2", blasLib.cublasSetStream(b.h, hs)); err != nil {
		blasLib.cublasDestroy(b.h)
		return nil, err
	}
	mode := int32(cublasDefaultMath)
	if tf32 {
		mode = cublasTF32TensorOpMath
	}
	if err := blasCheck("cublasSetMathMode", blasLib.cublasSetMathMode(b.h, mode)); err != nil {
		blasLib.cublasDestroy(b.h)
		return nil, err
	}
	return b, nil
}

// TF32 reports whether the handle may use TF32 tensor cores.
func (b *BLAS) TF32() bool { return b.tf32 }

// Close destroys the handle. Call inside Device.Do.
func (b *BLAS) Close() error {
	if b == nil || b.h == 0 {
		return nil
	}
	err := blasCheck("cublasDestroy_v2", blasLib.cublasDestroy(b.h))
	b.h = 0
	return err
}

// colMajorGemm is one cuBLAS (column-major) GEMM call: C' = op(A') op(B').
type colMajorGemm struct {
	opA, opB int32
	m, n, k  int
	a        Ptr // the first operand (row-major B)
	lda      int
	b        Ptr // the second operand (row-major A)
	ldb      int
}

// rowMajorToColMajor maps the row-major C = op(A) op(B) (C m×n) onto
// cuBLAS's column-major convention. A row-major matrix with leading
// dimension ld is the column-major transpose with the same ld, so
// C^T = op(B)^T op(A)^T: the column-major call is n×m×k with the operands
// swapped and the same transpose flags.
func rowMajorToColMajor(transA, transB bool, m, n, k int, a Ptr, lda int, b Ptr, ldb int) colMajorGemm {
	op := func(t bool) int32 {
		if t {
			return cublasOpT
		}
		return cublasOpN
	}
	return colMajorGemm{opA: op(transB), opB: op(transA), m: n, n: m, k: k, a: b, lda: ldb, b: a, ldb: lda}
}

// checkGemm validates the row-major GEMM arguments, so that a mistake is
// reported with its meaning rather than as CUBLAS_STATUS_INVALID_VALUE.
func checkGemm(call string, transA, transB bool, m, n, k, lda, ldb, ldc int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("%s: negative size m=%d n=%d k=%d", call, m, n, k)
	}
	const maxInt32 = 1<<31 - 1
	for _, v := range []int{m, n, k, lda, ldb, ldc} {
		if v > maxInt32 {
			return fmt.Errorf("%s: size or leading dimension %d does not fit in a C int", call, v)
		}
	}
	// Row-major: op(A) is m×k, so A is m×k (k×m when transposed) and its
	// rows hold k (m) elements.
	colsA, colsB := k, n
	if transA {
		colsA = m
	}
	if transB {
		colsB = k
	}
	if lda < max(1, colsA) {
		return fmt.Errorf("%s: lda=%d is less than A's row length %d (transA=%v, m=%d, k=%d)", call, lda, colsA, transA, m, k)
	}
	if ldb < max(1, colsB) {
		return fmt.Errorf("%s: ldb=%d is less than B's row length %d (transB=%v, k=%d, n=%d)", call, ldb, colsB, transB, k, n)
	}
	if ldc < max(1, n) {
		return fmt.Errorf("%s: ldc=%d is less than C's row length n=%d", call, ldc, n)
	}
	return nil
}

// Sgemm is C = alpha*op(A)*op(B) + beta*C in float32 on the device,
// ROW-MAJOR like blas.Gemm: op(A) is m×k, op(B) is k×n, C is m×n, and
// lda, ldb, ldc are the row strides (in elements) of A, B and C as stored.
// When beta is 0, C is not read (NaNs in it do not propagate).
// Asynchronous on the handle's stream.
func (b *BLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda int, bp Ptr, ldb int, beta float32, c Ptr, ldc int) error {
	if err := checkGemm("Sgemm", transA, transB, m, n, k, lda, ldb, ldc); err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	g := rowMajorToColMajor(transA, transB, m, n, k, a, lda, bp, ldb)
	al, be := alpha, beta
	err := blasCheck("cublasSgemm_v2", blasLib.cublasSgemm(b.h, g.opA, g.opB, int32(g.m), int32(g.n), int32(g.k),
		&al, uintptr(g.a), int32(g.lda), uintptr(g.b), int32(g.ldb), &be, uintptr(c), int32(ldc)))
	if err != nil {
		return fmt.Errorf("Sgemm(transA=%v, transB=%v, m=%d, n=%d, k=%d, lda=%d, ldb=%d, ldc=%d): %w", transA, transB, m, n, k, lda, ldb, ldc, err)
	}
	return nil
}

// SgemmStridedBatched is batch independent Sgemms, ROW-MAJOR like Sgemm:
// C_i = alpha*op(A_i)*op(B_i) + beta*C_i where A_i starts strideA elements
// after A_{i-1} (likewise B and C; a stride may be 0 to share an operand).
// Asynchronous on the handle's stream.
func (b *BLAS) SgemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda, strideA int,
	bp Ptr, ldb, strideB int, beta float32, c Ptr, ldc, strideC int, batch int) error {
	if err := checkGemm("SgemmStridedBatched", transA, transB, m, n, k, lda, ldb, ldc); err != nil {
		return err
	}
	if batch < 0 || batch > 1<<31-1 {
		return fmt.Errorf("SgemmStridedBatched: batch count %d out of range", batch)
	}
	if strideA < 0 || strideB < 0 || strideC < 0 {
		return fmt.Errorf("SgemmStridedBatched: negative stride (A %d, B %d, C %d)", strideA, strideB, strideC)
	}
	if m == 0 || n == 0 || batch == 0 {
		return nil
	}
	g := rowMajorToColMajor(transA, transB, m, n, k, a, lda, bp, ldb)
	sa, sb := strideB, strideA // swapped with the operands
	al, be := alpha, beta
	err := blasCheck("cublasSgemmStridedBatched", blasLib.cublasSgemmStridedBatched(b.h, g.opA, g.opB, int32(g.m), int32(g.n), int32(g.k),
		&al, uintptr(g.a), int32(g.lda), int64(sa), uintptr(g.b), int32(g.ldb), int64(sb), &be, uintptr(c), int32(ldc), int64(strideC), int32(batch)))
	if err != nil {
		return fmt.Errorf("SgemmStridedBatched(transA=%v, transB=%v, m=%d, n=%d, k=%d, lda=%d, ldb=%d, ldc=%d, strides %d/%d/%d, batch=%d): %w",
			transA, transB, m, n, k, lda, ldb, ldc, strideA, strideB, strideC, batch, err)
	}
	return nil
}
