package gpu

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ebitengine/purego"
)

// cuDNN 9's legacy API (cudnn_graph.h, cudnn_ops.h, cudnn_cnn.h), bound at
// run time. libcudnn.so.9 is a shim that exports the whole API and loads the
// sub-libraries (libcudnn_graph, libcudnn_ops, libcudnn_cnn, the engines)
// itself; a symbol the shim lacks is looked up in the sub-libraries.
var dnnLib struct {
	once    sync.Once
	err     error
	lib     *lib
	subs    []*lib
	version int

	cudnnGetVersion         func() uint64
	cudnnGetErrorString     func(status int32) string
	cudnnGetLastErrorString func(msg *byte, n uint64) // optional (cuDNN 9)

	cudnnCreate    func(h *uintptr) int32
	cudnnDestroy   func(h uintptr) int32
	cudnnSetStream func(h uintptr, s uintptr) int32

	cudnnCreateTensorDescriptor  func(d *uintptr) int32
	cudnnSetTensor4dDescriptor   func(d uintptr, format, dtype int32, n, c, h, w int32) int32
	cudnnDestroyTensorDescriptor func(d uintptr) int32

	cudnnCreateFilterDescriptor  func(d *uintptr) int32
	cudnnSetFilter4dDescriptor   func(d uintptr, dtype, format int32, k, c, h, w int32) int32
	cudnnDestroyFilterDescriptor func(d uintptr) int32

	cudnnCreateConvolutionDescriptor      func(d *uintptr) int32
	cudnnSetConvolution2dDescriptor       func(d uintptr, padH, padW, u, v, dilH, dilW, mode, computeType int32) int32
	cudnnSetConvolutionGroupCount         func(d uintptr, groups int32) int32
	cudnnSetConvolutionMathType           func(d uintptr, mathType int32) int32
	cudnnDestroyConvolutionDescriptor     func(d uintptr) int32
	cudnnGetConvolution2dForwardOutputDim func(cd, xd, wd uintptr, n, c, h, w *int32) int32

	cudnnFindConvolutionForwardAlgorithmEx        func(h, xd, x, wd, w, cd, yd, y uintptr, req int32, ret *int32, perf *convPerf, ws uintptr, wsSize uint64) int32
	cudnnFindConvolutionBackwardDataAlgorithmEx   func(h, wd, w, dyd, dy, cd, dxd, dx uintptr, req int32, ret *int32, perf *convPerf, ws uintptr, wsSize uint64) int32
	cudnnFindConvolutionBackwardFilterAlgorithmEx func(h, xd, x, dyd, dy, cd, dwd, dw uintptr, req int32, ret *int32, perf *convPerf, ws uintptr, wsSize uint64) int32

	cudnnGetConvolutionForwardWorkspaceSize        func(h, xd, wd, cd, yd uintptr, algo int32, size *uint64) int32
	cudnnGetConvolutionBackwardDataWorkspaceSize   func(h, wd, dyd, cd, dxd uintptr, algo int32, size *uint64) int32
	cudnnGetConvolutionBackwardFilterWorkspaceSize func(h, xd, dyd, cd, dwd uintptr, algo int32, size *uint64) int32

	cudnnConvolutionForward        func(h uintptr, alpha *float32, xd, x, wd, w, cd uintptr, algo int32, ws uintptr, wsSize uint64, beta *float32, yd, y uintptr) int32
	cudnnConvolutionBackwardData   func(h uintptr, alpha *float32, wd, w, dyd, dy, cd uintptr, algo int32, ws uintptr, wsSize uint64, beta *float32, dxd, dx uintptr) int32
	cudnnConvolutionBackwardFilter func(h uintptr, alpha *float32, xd, x, dyd, dy, cd uintptr, algo int32, ws uintptr, wsSize uint64, beta *float32, dwd, dw uintptr) int32

	cudnnDeriveBNTensorDescriptor           func(derived, xd uintptr, mode int32) int32
	cudnnBatchNormalizationForwardTraining  func(h uintptr, mode int32, alpha, beta *float32, xd, x, yd, y, bnd, scale, bias uintptr, factor float64, runMean, runVar uintptr, eps float64, saveMean, saveInvVar uintptr) int32
	cudnnBatchNormalizationForwardInference func(h uintptr, mode int32, alpha, beta *float32, xd, x, yd, y, bnd, scale, bias, mean, variance uintptr, eps float64) int32
	cudnnBatchNormalizationBackward         func(h uintptr, mode int32, alphaData, betaData, alphaParam, betaParam *float32, xd, x, dyd, dy, dxd, dx, bnd, scale, dScale, dBias uintptr, eps float64, saveMean, saveInvVar uintptr) int32

	cudnnCreatePoolingDescriptor      func(d *uintptr) int32
	cudnnSetPooling2dDescriptor       func(d uintptr, mode, nanOpt, winH, winW, padV, padH, strideV, strideH int32) int32
	cudnnGetPooling2dForwardOutputDim func(d, xd uintptr, n, c, h, w *int32) int32
	cudnnDestroyPoolingDescriptor     func(d uintptr) int32
	cudnnPoolingForward               func(h, pd uintptr, alpha *float32, xd, x uintptr, beta *float32, yd, y uintptr) int32
	cudnnPoolingBackward              func(h, pd uintptr, alpha *float32, yd, y, dyd, dy, xd, x uintptr, beta *float32, dxd, dx uintptr) int32

	cudnnCreateActivationDescriptor       func(d *uintptr) int32
	cudnnSetActivationDescriptor          func(d uintptr, mode, nanOpt int32, coef float64) int32
	cudnnSetActivationDescriptorSwishBeta func(d uintptr, beta float64) int32 // optional
	cudnnDestroyActivationDescriptor      func(d uintptr) int32
	cudnnActivationForward                func(h, ad uintptr, alpha *float32, xd, x uintptr, beta *float32, yd, y uintptr) int32
	cudnnActivationBackward               func(h, ad uintptr, alpha *float32, yd, y, dyd, dy, xd, x uintptr, beta *float32, dxd, dx uintptr) int32
}

var cudnnSearch = libSearch{
	what:  "cuDNN 9 (libcudnn.so.9)",
	names: []string{"libcudnn.so.9", "libcudnn.so"},
	hint:  "Install cuDNN 9 (pip: nvidia-cudnn-cu13; apt: libcudnn9-cuda-13 from NVIDIA's CUDA repository) and point DETTRAIN_CUDA_PATH at it (or its lib folder) if it is not on the loader's path.",
}

// cudnnSubLibs are cuDNN 9's sub-libraries, which the shim loads by soname.
var cudnnSubLibs = []string{
	"libcudnn_graph.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9",
	"libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9", "libcudnn_heuristic.so.9",
}

// cuDNN enums (cudnn_graph.h, cudnn_ops.h, cudnn_cnn.h of cuDNN 9).
const (
	cudnnTensorNCHW   = 0
	cudnnDataFloat    = 0
	cudnnDataBFloat16 = 9

	cudnnCrossCorrelation = 1

	cudnnDefaultMath                 = 0
	cudnnTensorOpMath                = 1
	cudnnTensorOpMathAllowConversion = 2
	cudnnFMAMath                     = 3

	cudnnNonDeterministic = 0
	cudnnDeterministic    = 1

	cudnnPropagateNaN = 1

	cudnnBatchNormSpatial = 1

	cudnnStatusSublibraryLoadingFailed = 1008
	cudnnStatusSublibraryUnavailable   = 3009
)

func loadCUDNN() error {
	dnnLib.once.Do(func() {
		dnnLib.err = bindCUDNN()
	})
	return dnnLib.err
}

func bindCUDNN() error {
	preloadBeside(cudnnSearch, func(dir, _ string) { openCUDNNSubs(dir) })
	l, err := openLib(cudnnSearch)
	if err != nil {
		return err
	}
	dnnLib.lib = l
	// When the shim was found in a folder the dynamic loader does not search,
	// its own dlopen of the sub-libraries by soname would fail: load them
	// from that folder first (a library already loaded is found by soname).
	if filepath.IsAbs(l.path) {
		dnnLib.subs = openCUDNNSubs(filepath.Dir(l.path))
	}
	b := &dnnBinder{libs: []*lib{l}}
	b.bind(&dnnLib.cudnnGetVersion, "cudnnGetVersion")
	if b.err != nil {
		return b.err
	}
	v := int(dnnLib.cudnnGetVersion())
	dnnLib.version = v
	if v < 90000 {
		return fmt.Errorf("%s is cuDNN %s; dettrain needs cuDNN 9. %s", l.path, cudnnVersionString(v), cudnnSearch.hint)
	}
	b.bind(&dnnLib.cudnnGetErrorString, "cudnnGetErrorString")
	b.optional(&dnnLib.cudnnGetLastErrorString, "cudnnGetLastErrorString")
	b.bind(&dnnLib.cudnnCreate, "cudnnCreate")
	b.bind(&dnnLib.cudnnDestroy, "cudnnDestroy")
	b.bind(&dnnLib.cudnnSetStream, "cudnnSetStream")
	b.bind(&dnnLib.cudnnCreateTensorDescriptor, "cudnnCreateTensorDescriptor")
	b.bind(&dnnLib.cudnnSetTensor4dDescriptor, "cudnnSetTensor4dDescriptor")
	b.bind(&dnnLib.cudnnDestroyTensorDescriptor, "cudnnDestroyTensorDescriptor")
	b.bind(&dnnLib.cudnnCreateFilterDescriptor, "cudnnCreateFilterDescriptor")
	b.bind(&dnnLib.cudnnSetFilter4dDescriptor, "cudnnSetFilter4dDescriptor")
	b.bind(&dnnLib.cudnnDestroyFilterDescriptor, "cudnnDestroyFilterDescriptor")
	b.bind(&dnnLib.cudnnCreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor")
	b.bind(&dnnLib.cudnnSetConvolution2dDescriptor, "cudnnSetConvolution2dDescriptor")
	b.bind(&dnnLib.cudnnSetConvolutionGroupCount, "cudnnSetConvolutionGroupCount")
	b.bind(&dnnLib.cudnnSetConvolutionMathType, "cudnnSetConvolutionMathType")
	b.bind(&dnnLib.cudnnDestroyConvolutionDescriptor, "cudnnDestroyConvolutionDescriptor")
	b.bind(&dnnLib.cudnnGetConvolution2dForwardOutputDim, "cudnnGetConvolution2dForwardOutputDim")
	b.bind(&dnnLib.cudnnFindConvolutionForwardAlgorithmEx, "cudnnFindConvolutionForwardAlgorithmEx")
	b.bind(&dnnLib.cudnnFindConvolutionBackwardDataAlgorithmEx, "cudnnFindConvolutionBackwardDataAlgorithmEx")
	b.bind(&dnnLib.cudnnFindConvolutionBackwardFilterAlgorithmEx, "cudnnFindConvolutionBackwardFilterAlgorithmEx")
	b.bind(&dnnLib.cudnnGetConvolutionForwardWorkspaceSize, "cudnnGetConvolutionForwardWorkspaceSize")
	b.bind(&dnnLib.cudnnGetConvolutionBackwardDataWorkspaceSize, "cudnnGetConvolutionBackwardDataWorkspaceSize")
	b.bind(&dnnLib.cudnnGetConvolutionBackwardFilterWorkspaceSize, "cudnnGetConvolutionBackwardFilterWorkspaceSize")
	b.bind(&dnnLib.cudnnConvolutionForward, "cudnnConvolutionForward")
	b.bind(&dnnLib.cudnnConvolutionBackwardData, "cudnnConvolutionBackwardData")
	b.bind(&dnnLib.cudnnConvolutionBackwardFilter, "cudnnConvolutionBackwardFilter")
	b.bind(&dnnLib.cudnnDeriveBNTensorDescriptor, "cudnnDeriveBNTensorDescriptor")
	b.bind(&dnnLib.cudnnBatchNormalizationForwardTraining, "cudnnBatchNormalizationForwardTraining")
	b.bind(&dnnLib.cudnnBatchNormalizationForwardInference, "cudnnBatchNormalizationForwardInference")
	b.bind(&dnnLib.cudnnBatchNormalizationBackward, "cudnnBatchNormalizationBackward")
	b.bind(&dnnLib.cudnnCreatePoolingDescriptor, "cudnnCreatePoolingDescriptor")
	b.bind(&dnnLib.cudnnSetPooling2dDescriptor, "cudnnSetPooling2dDescriptor")
	b.bind(&dnnLib.cudnnGetPooling2dForwardOutputDim, "cudnnGetPooling2dForwardOutputDim")
	b.bind(&dnnLib.cudnnDestroyPoolingDescriptor, "cudnnDestroyPoolingDescriptor")
	b.bind(&dnnLib.cudnnPoolingForward, "cudnnPoolingForward")
	b.bind(&dnnLib.cudnnPoolingBackward, "cudnnPoolingBackward")
	b.bind(&dnnLib.cudnnCreateActivationDescriptor, "cudnnCreateActivationDescriptor")
	b.bind(&dnnLib.cudnnSetActivationDescriptor, "cudnnSetActivationDescriptor")
	b.optional(&dnnLib.cudnnSetActivationDescriptorSwishBeta, "cudnnSetActivationDescriptorSwishBeta")
	b.bind(&dnnLib.cudnnDestroyActivationDescriptor, "cudnnDestroyActivationDescriptor")
	b.bind(&dnnLib.cudnnActivationForward, "cudnnActivationForward")
	b.bind(&dnnLib.cudnnActivationBackward, "cudnnActivationBackward")
	return b.err
}

// preloadBeside prepares for openLib(s) finding s's library in a folder
// the dynamic loader does not search (DETTRAIN_CUDA_PATH): there, the
// libraries it needs by soname would not be found either, and the dlopen
// would fail. When the loader cannot find the library itself, load(dir,
// name) is called for the first folder of searchDirs that holds it (the one
// openLib will take), to load its dependencies from there first.
func preloadBeside(s libSearch, load func(dir, name string)) {
	for _, name := range s.names {
		if _, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
			return // openLib will take this one (left loaded: it is needed anyway)
		}
	}
	for _, dir := range searchDirs() {
		for _, name := range s.names {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				load(dir, name)
				return
			}
		}
	}
}

// openCUDNNSubs loads whichever of cuDNN's sub-libraries dir holds.
func openCUDNNSubs(dir string) []*lib {
	var out []*lib
	for _, name := range cudnnSubLibs {
		p := filepath.Join(dir, name)
		if h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
			out = append(out, &lib{handle: h, path: p})
		}
	}
	return out
}

// openCUDNNSubsBySoname loads the API sub-libraries through the dynamic
// loader's search (for a symbol the shim lacks).
func openCUDNNSubsBySoname() []*lib {
	var out []*lib
	for _, name := range cudnnSubLibs[:3] {
		if h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
			out = append(out, &lib{handle: h, path: name})
		}
	}
	return out
}

// dnnBinder binds each symbol from the shim, or else from a sub-library.
type dnnBinder struct {
	libs      []*lib
	triedSubs bool
	err       error
}

func (b *dnnBinder) find(name string) *lib {
	for _, l := range b.libs {
		if l.has(name) {
			return l
		}
	}
	if !b.triedSubs {
		b.triedSubs = true
		b.libs = append(b.libs, dnnLib.subs...)
		b.libs = append(b.libs, openCUDNNSubsBySoname()...)
		for _, l := range b.libs[1:] {
			if l.has(name) {
				return l
			}
		}
	}
	return nil
}

func (b *dnnBinder) bind(fn any, name string) {
	if b.err != nil {
		return
	}
	l := b.find(name)
	if l == nil {
		var where []string
		for _, l := range b.libs {
			where = append(where, l.path)
		}
		b.err = fmt.Errorf("cuDNN: no symbol %s in %s (cuDNN %s; dettrain needs cuDNN 9's legacy API)",
			name, strings.Join(where, ", "), cudnnVersionString(dnnLib.version))
		return
	}
	b.err = l.bind(fn, name)
}

func (b *dnnBinder) optional(fn any, name string) {
	if b.err != nil {
		return
	}
	if l := b.find(name); l != nil {
		purego.RegisterLibFunc(fn, l.handle, name)
	}
}

// cudnnVersionString formats cudnnGetVersion's number: cuDNN 9 counts
// major*10000 + minor*100 + patch, cuDNN 8 and older major*1000 + minor*100 + patch.
func cudnnVersionString(v int) string {
	if v >= 90000 {
		return fmt.Sprintf("%d.%d.%d", v/10000, v%10000/100, v%100)
	}
	return fmt.Sprintf("%d.%d.%d", v/1000, v%1000/100, v%100)
}

// DNNVersion returns the loaded cuDNN's version, e.g. "9.6.0", and where it
// was found.
func DNNVersion() (version, path string, err error) {
	if err := loadCUDNN(); err != nil {
		return "", "", err
	}
	return cudnnVersionString(dnnLib.version), dnnLib.lib.path, nil
}

// dnnCheck turns a cudnnStatus_t into an error naming the call, with
// cuDNN's own explanation where it gives one.
func dnnCheck(call string, code int32) error {
	if code == 0 {
		return nil
	}
	name := ""
	if dnnLib.cudnnGetErrorString != nil {
		name = dnnLib.cudnnGetErrorString(code)
	}
	if name == "" {
		name = "CUDNN_STATUS_UNKNOWN"
	}
	if dnnLib.cudnnGetLastErrorString != nil {
		buf := make([]byte, 1024)
		dnnLib.cudnnGetLastErrorString(&buf[0], uint64(len(buf)))
		if msg := strings.TrimSpace(cString(&buf[0])); msg != "" {
			name += " [" + msg + "]"
		}
	}
	if code == cudnnStatusSublibraryLoadingFailed || code == cudnnStatusSublibraryUnavailable {
		where := "libcudnn.so.9"
		if dnnLib.lib != nil {
			where = dnnLib.lib.path
		}
		name += fmt.Sprintf(" (cuDNN could not load one of its sub-libraries libcudnn_*.so.9 that belong beside %s, of the same version: put that folder on LD_LIBRARY_PATH)", where)
	}
	return &Error{Call: call, Code: int(code), Name: name}
}

// clearLastError discards cuDNN's message about the last failure (of a
// call whose failure was expected), so that it is not reported with a
// later one.
func clearLastError() {
	if dnnLib.cudnnGetLastErrorString != nil {
		var buf [256]byte
		dnnLib.cudnnGetLastErrorString(&buf[0], uint64(len(buf)))
	}
}

// DNN is one cuDNN handle bound to a stream, plus a cache of the
// convolution algorithms chosen by measurement. Its calls are asynchronous
// on that stream; call them inside Device.Do.
type DNN struct {
	h uintptr
	s *Stream

	mu       sync.Mutex
	cache    map[convKey]*convChoice
	searches int // algorithm searches run (for tests)
}

// NewDNN creates a cuDNN handle whose work goes to s. Call inside Device.Do.
func NewDNN(s *Stream) (*DNN, error) {
	if err := loadCUDNN(); err != nil {
		return nil, err
	}
	d := &DNN{s: s, cache: map[convKey]*convChoice{}}
	if err := dnnCheck("cudnnCreate", dnnLib.cudnnCreate(&d.h)); err != nil {
		return nil, err
	}
	var hs uintptr
	if s != nil {
		hs = s.h
	}
	if err := dnnCheck("cudnnSetStream", dnnLib.cudnnSetStream(d.h, hs)); err != nil {
		dnnLib.cudnnDestroy(d.h)
		return nil, err
	}
	return d, nil
}

// Close destroys the handle. Call inside Device.Do.
func (d *DNN) Close() error {
	if d == nil || d.h == 0 {
		return nil
	}
	err := dnnCheck("cudnnDestroy", dnnLib.cudnnDestroy(d.h))
	d.h = 0
	return err
}

// toC32 checks that each value fits in a C int.
func toC32(what string, vs ...int) ([]int32, error) {
	out := make([]int32, len(vs))
	for i, v := range vs {
		if v < math.MinInt32 || v > math.MaxInt32 {
			return nil, fmt.Errorf("%s: %d does not fit in a C int", what, v)
		}
		out[i] = int32(v)
	}
	return out, nil
}

// newTensor4d creates an NCHW float32 tensor descriptor.
func newTensor4d(n, c, h, w int) (uintptr, error) { return newTensor4dT(cudnnDataFloat, n, c, h, w) }

// newTensor4dT creates an NCHW tensor descriptor of data type dtype.
func newTensor4dT(dtype int32, n, c, h, w int) (uintptr, error) {
	v, err := toC32("tensor descriptor", n, c, h, w)
	if err != nil {
		return 0, err
	}
	var d uintptr
	if err := dnnCheck("cudnnCreateTensorDescriptor", dnnLib.cudnnCreateTensorDescriptor(&d)); err != nil {
		return 0, err
	}
	if err := dnnCheck("cudnnSetTensor4dDescriptor", dnnLib.cudnnSetTensor4dDescriptor(d, cudnnTensorNCHW, dtype, v[0], v[1], v[2], v[3])); err != nil {
		dnnLib.cudnnDestroyTensorDescriptor(d)
		return 0, fmt.Errorf("tensor %dx%dx%dx%d: %w", n, c, h, w, err)
	}
	return d, nil
}

// destroyTensors destroys the non-zero tensor descriptors, returning the
// first error.
func destroyTensors(ds ...*uintptr) error {
	var first error
	for _, d := range ds {
		if *d != 0 {
			if err := dnnCheck("cudnnDestroyTensorDescriptor", dnnLib.cudnnDestroyTensorDescriptor(*d)); err != nil && first == nil {
				first = err
			}
			*d = 0
		}
	}
	return first
}

// blend returns alpha 1 and beta (1 when acc, else 0), as host float32s
// for cuDNN's scaling parameters (float data).
func blend(acc bool) (alpha, beta *float32) {
	a, b := float32(1), float32(0)
	if acc {
		b = 1
	}
	return &a, &b
}

// BatchNorm is cuDNN's spatial batch normalization (one mean and variance
// per channel, over N, H and W) of NCHW float32 tensors of one shape. The
// per-channel tensors (scale, bias, means, variances) hold C float32s.
type BatchNorm struct {
	d          *DNN
	N, C, H, W int
	x, p       uintptr // data and per-channel descriptors
}

// NewBatchNorm makes the descriptors for input shape (n, c, h, w). Call inside Device.Do.
func (d *DNN) NewBatchNorm(n, c, h, w int) (*BatchNorm, error) {
	b := &BatchNorm{d: d, N: n, C: c, H: h, W: w}
	var err error
	if b.x, err = newTensor4d(n, c, h, w); err != nil {
		return nil, err
	}
	if err = dnnCheck("cudnnCreateTensorDescriptor", dnnLib.cudnnCreateTensorDescriptor(&b.p)); err != nil {
		b.Close()
		return nil, err
	}
	if err = dnnCheck("cudnnDeriveBNTensorDescriptor", dnnLib.cudnnDeriveBNTensorDescriptor(b.p, b.x, cudnnBatchNormSpatial)); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *BatchNorm) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("batch norm %dx%dx%dx%d: %w", b.N, b.C, b.H, b.W, err)
}

// ForwardTraining normalizes x with its batch statistics:
// y = scale*(x-mean)/sqrt(var+eps) + bias (y is overwritten). It updates
// the running statistics, run = (1-factor)*run + factor*batch (cuDNN's
// running variance uses the unbiased batch variance), and stores the batch
// mean and 1/sqrt(var+eps) in saveMean and saveInvStd for Backward (both may
// be 0 to skip).
func (b *BatchNorm) ForwardTraining(x, y, scale, bias Ptr, factor float64, runMean, runVar Ptr, eps float64, saveMean, saveInvStd Ptr) error {
	al, be := blend(false)
	return b.wrap(dnnCheck("cudnnBatchNormalizationForwardTraining", dnnLib.cudnnBatchNormalizationForwardTraining(b.d.h, cudnnBatchNormSpatial, al, be,
		b.x, uintptr(x), b.x, uintptr(y), b.p, uintptr(scale), uintptr(bias), factor, uintptr(runMean), uintptr(runVar), eps,
		uintptr(saveMean), uintptr(saveInvStd))))
}

// ForwardInference normalizes x with given statistics:
// y = scale*(x-mean)/sqrt(variance+eps) + bias (y is overwritten).
func (b *BatchNorm) ForwardInference(x, y, scale, bias, mean, variance Ptr, eps float64) error {
	al, be := blend(false)
	return b.wrap(dnnCheck("cudnnBatchNormalizationForwardInference", dnnLib.cudnnBatchNormalizationForwardInference(b.d.h, cudnnBatchNormSpatial, al, be,
		b.x, uintptr(x), b.x, uintptr(y), b.p, uintptr(scale), uintptr(bias), uintptr(mean), uintptr(variance), eps)))
}

// Backward computes dx from dy, and the gradients of scale and bias.
// saveMean and saveInvStd are ForwardTraining's (or both 0, to recompute
// them from x); eps must be ForwardTraining's. accDx adds to dx instead of
// overwriting it; accParams adds to dScale and dBias.
func (b *BatchNorm) Backward(x, dy, dx, scale, dScale, dBias Ptr, eps float64, saveMean, saveInvStd Ptr, accDx, accParams bool) error {
	ad, bd := blend(accDx)
	ap, bp := blend(accParams)
	return b.wrap(dnnCheck("cudnnBatchNormalizationBackward", dnnLib.cudnnBatchNormalizationBackward(b.d.h, cudnnBatchNormSpatial, ad, bd, ap, bp,
		b.x, uintptr(x), b.x, uintptr(dy), b.x, uintptr(dx), b.p, uintptr(scale), uintptr(dScale), uintptr(dBias), eps,
		uintptr(saveMean), uintptr(saveInvStd))))
}

// Close destroys the descriptors.
func (b *BatchNorm) Close() error {
	if b == nil {
		return nil
	}
	return destroyTensors(&b.x, &b.p)
}

// PoolMode is cudnnPoolingMode_t.
type PoolMode int32

const (
	PoolMax              PoolMode = 0 // max; cuDNN does not promise a deterministic backward
	PoolAvgIncludePad    PoolMode = 1 // average, padding counted as zeros
	PoolAvgExcludePad    PoolMode = 2 // average over the window's inside part
	PoolMaxDeterministic PoolMode = 3 // max with a deterministic backward
)

// Pooling is a 2-D pooling of NCHW float32 tensors of one shape, with a
// square window.
type Pooling struct {
	d                         *DNN
	Mode                      PoolMode
	N, C, H, W                int
	Size, Stride, Pad, OH, OW int
	pd, x, y                  uintptr
}

// NewPooling makes the descriptors of a pooling of input (n, c, h, w) with
// a size×size window, stride and symmetric padding pad; NaNs propagate.
// Call inside Device.Do.
func (d *DNN) NewPooling(mode PoolMode, n, c, h, w, size, stride, pad int) (*Pooling, error) {
	p := &Pooling{d: d, Mode: mode, N: n, C: c, H: h, W: w, Size: size, Stride: stride, Pad: pad}
	v, err := toC32("pooling", size, pad, stride)
	if err != nil {
		return nil, err
	}
	if p.x, err = newTensor4d(n, c, h, w); err != nil {
		return nil, err
	}
	if err = dnnCheck("cudnnCreatePoolingDescriptor", dnnLib.cudnnCreatePoolingDescriptor(&p.pd)); err != nil {
		p.Close()
		return nil, err
	}
	if err = dnnCheck("cudnnSetPooling2dDescriptor", dnnLib.cudnnSetPooling2dDescriptor(p.pd, int32(mode), cudnnPropagateNaN,
		v[0], v[0], v[1], v[1], v[2], v[2])); err != nil {
		p.Close()
		return nil, p.wrap(err)
	}
	var on, oc, oh, ow int32
	if err = dnnCheck("cudnnGetPooling2dForwardOutputDim", dnnLib.cudnnGetPooling2dForwardOutputDim(p.pd, p.x, &on, &oc, &oh, &ow)); err != nil {
		p.Close()
		return nil, p.wrap(err)
	}
	p.OH, p.OW = int(oh), int(ow)
	if p.y, err = newTensor4d(int(on), int(oc), p.OH, p.OW); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Pooling) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("pooling (mode %d) %dx%d/%d pad %d of %dx%dx%dx%d: %w", p.Mode, p.Size, p.Size, p.Stride, p.Pad, p.N, p.C, p.H, p.W, err)
}

// Out returns the output's height and width (cuDNN's).
func (p *Pooling) Out() (oh, ow int) { return p.OH, p.OW }

// Forward computes y = pool(x) (y is overwritten).
func (p *Pooling) Forward(x, y Ptr) error {
	al, be := blend(false)
	return p.wrap(dnnCheck("cudnnPoolingForward", dnnLib.cudnnPoolingForward(p.d.h, p.pd, al, p.x, uintptr(x), be, p.y, uintptr(y))))
}

// Backward computes dx from dy, given Forward's x and y; acc adds to dx.
func (p *Pooling) Backward(y, dy, x, dx Ptr, acc bool) error {
	al, be := blend(acc)
	return p.wrap(dnnCheck("cudnnPoolingBackward", dnnLib.cudnnPoolingBackward(p.d.h, p.pd, al, p.y, uintptr(y), p.y, uintptr(dy),
		p.x, uintptr(x), be, p.x, uintptr(dx))))
}

// Close destroys the descriptors.
func (p *Pooling) Close() error {
	if p == nil {
		return nil
	}
	var first error
	if p.pd != 0 {
		first = dnnCheck("cudnnDestroyPoolingDescriptor", dnnLib.cudnnDestroyPoolingDescriptor(p.pd))
		p.pd = 0
	}
	if err := destroyTensors(&p.x, &p.y); err != nil && first == nil {
		first = err
	}
	return first
}

// ActMode is cudnnActivationMode_t.
type ActMode int32

const (
	ActSigmoid     ActMode = 0
	ActReLU        ActMode = 1
	ActTanh        ActMode = 2
	ActClippedReLU ActMode = 3 // min(max(x, 0), coef)
	ActELU         ActMode = 4 // alpha = coef
	ActIdentity    ActMode = 5
	ActSwish       ActMode = 6 // x*sigmoid(coef*x): coef 1 is SiLU
)

// Activation is an element-wise activation of NCHW float32 tensors of one shape.
type Activation struct {
	d          *DNN
	Mode       ActMode
	N, C, H, W int
	ad, x      uintptr
}

// NewActivation makes the descriptors of activation mode over tensors of
// shape (n, c, h, w). coef is the clipped ReLU's ceiling, the ELU's alpha
// or the swish's beta (0 means 1), and is ignored by the other modes. NaNs
// propagate. Call inside Device.Do.
func (d *DNN) NewActivation(mode ActMode, coef float64, n, c, h, w int) (*Activation, error) {
	a := &Activation{d: d, Mode: mode, N: n, C: c, H: h, W: w}
	var err error
	if a.x, err = newTensor4d(n, c, h, w); err != nil {
		return nil, err
	}
	if err = dnnCheck("cudnnCreateActivationDescriptor", dnnLib.cudnnCreateActivationDescriptor(&a.ad)); err != nil {
		a.Close()
		return nil, err
	}
	if err = dnnCheck("cudnnSetActivationDescriptor", dnnLib.cudnnSetActivationDescriptor(a.ad, int32(mode), cudnnPropagateNaN, coef)); err != nil {
		a.Close()
		return nil, a.wrap(err)
	}
	if mode == ActSwish {
		beta := coef
		if beta == 0 {
			beta = 1
		}
		if dnnLib.cudnnSetActivationDescriptorSwishBeta == nil {
			a.Close()
			return nil, a.wrap(fmt.Errorf("this cuDNN has no cudnnSetActivationDescriptorSwishBeta"))
		}
		if err = dnnCheck("cudnnSetActivationDescriptorSwishBeta", dnnLib.cudnnSetActivationDescriptorSwishBeta(a.ad, beta)); err != nil {
			a.Close()
			return nil, a.wrap(err)
		}
	}
	return a, nil
}

func (a *Activation) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("activation (mode %d) of %dx%dx%dx%d: %w", a.Mode, a.N, a.C, a.H, a.W, err)
}

// Forward computes y = act(x) (y is overwritten; x and y may be the same).
func (a *Activation) Forward(x, y Ptr) error {
	al, be := blend(false)
	return a.wrap(dnnCheck("cudnnActivationForward", dnnLib.cudnnActivationForward(a.d.h, a.ad, al, a.x, uintptr(x), be, a.x, uintptr(y))))
}

// Backward computes dx = act'(x)*dy, given Forward's x and y; acc adds to dx.
func (a *Activation) Backward(y, dy, x, dx Ptr, acc bool) error {
	al, be := blend(acc)
	return a.wrap(dnnCheck("cudnnActivationBackward", dnnLib.cudnnActivationBackward(a.d.h, a.ad, al, a.x, uintptr(y), a.x, uintptr(dy),
		a.x, uintptr(x), be, a.x, uintptr(dx))))
}

// Close destroys the descriptors.
func (a *Activation) Close() error {
	if a == nil {
		return nil
	}
	var first error
	if a.ad != 0 {
		first = dnnCheck("cudnnDestroyActivationDescriptor", dnnLib.cudnnDestroyActivationDescriptor(a.ad))
		a.ad = 0
	}
	if err := destroyTensors(&a.x); err != nil && first == nil {
		first = err
	}
	return first
}
