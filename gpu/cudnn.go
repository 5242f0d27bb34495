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
