package gpu

import (
	"fmt"
	"sort"
	"strings"

	"github.com/dettrain/dettrain/model"
)

// ConvShape describes one convolution: input (N,C,H,W), K filters of Size x
// Size over C/Groups channels, stride, symmetric padding Pad. BF16: input,
// filters and output are bfloat16 (accumulation in float32).
type ConvShape struct {
	N, C, H, W, K, Size, Stride, Pad, Groups int
	BF16                                     bool
}

// dtype is the cuDNN data type of the convolution's tensors.
func (c ConvShape) dtype() int32 {
	if c.BF16 {
		return cudnnDataBFloat16
	}
	return cudnnDataFloat
}

// Out returns the output's height and width: (H + 2*Pad - Size)/Stride + 1.
func (c ConvShape) Out() (oh, ow int) {
	if c.Stride <= 0 {
		return 0, 0
	}
	return (c.H+2*c.Pad-c.Size)/c.Stride + 1, (c.W+2*c.Pad-c.Size)/c.Stride + 1
}

func (c ConvShape) String() string {
	t := ""
	if c.BF16 {
		t = " bf16"
	}
	return fmt.Sprintf("conv%s %dx%dx%dx%d -> K=%d %dx%d/%d pad %d groups %d", t, c.N, c.C, c.H, c.W, c.K, c.Size, c.Size, c.Stride, c.Pad, c.Groups)
}

func (c ConvShape) validate() error {
	if c.N < 1 || c.C < 1 || c.H < 1 || c.W < 1 || c.K < 1 || c.Size < 1 || c.Stride < 1 || c.Pad < 0 || c.Groups < 1 {
		return fmt.Errorf("%v: sizes must be positive (Pad non-negative)", c)
	}
	if c.C%c.Groups != 0 || c.K%c.Groups != 0 {
		return fmt.Errorf("%v: Groups must divide C and K", c)
	}
	if oh, ow := c.Out(); oh < 1 || ow < 1 {
		return fmt.Errorf("%v: the %dx%d window does not fit the padded %dx%d input", c, c.Size, c.Size, c.H+2*c.Pad, c.W+2*c.Pad)
	}
	oh, ow := c.Out()
	for _, n := range []int{c.N * c.C * c.H * c.W, c.N * c.K * oh * ow, c.K * c.C / c.Groups * c.Size * c.Size} {
		if n > 1<<31-1 {
			return fmt.Errorf("%v: a tensor of %d elements is too large for cuDNN's 4-D descriptors", c, n)
		}
	}
	return nil
}

// convPerf is cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionBwdDataAlgoPerf_t
// and cudnnConvolutionBwdFilterAlgoPerf_t of cuDNN 9 (cudnn_cnn.h), which
// share one layout: 48 bytes, memory at offset 16.
type convPerf struct {
	Algo        int32
	Status      int32
	Time        float32 // milliseconds
	Memory      uint64  // size_t: workspace bytes
	Determinism int32
	MathType    int32
	Reserved    [3]int32
}

// Convolution directions.
const (
	dirFwd = iota
	dirBwdData
	dirBwdFilter
)

var dirNames = [3]string{"fwd", "bwd-data", "bwd-filter"}

// algoNames are the algorithm enums' names (cudnn_ops.h), per direction.
var algoNames = [3][]string{
	{"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"},
	{"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"},
	{"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"},
}

func algoName(dir int, algo int32) string {
	if algo >= 0 && int(algo) < len(algoNames[dir]) {
		return algoNames[dir][algo]
	}
	return fmt.Sprintf("algo %d", algo)
}

var mathNames = []string{"DEFAULT_MATH", "TENSOR_OP_MATH", "TENSOR_OP_MATH_ALLOW_CONVERSION", "FMA_MATH"}

func mathName(m int32) string {
	if m >= 0 && int(m) < len(mathNames) {
		return mathNames[m]
	}
	return fmt.Sprintf("math type %d", m)
}

// algoChoice is the algorithm chosen for one direction.
type algoChoice struct {
	ok   bool
	algo int32
	math int32 // the math type cuDNN measured it with
	ws   int   // workspace bytes
	det  bool
	ms   float32
}

// convChoice is the cached choice for one (shape, tf32).
type convChoice struct{ dir [3]algoChoice }

type convKey struct {
	sh   ConvShape
	tf32 bool
}

// Conv is one convolution's descriptors and chosen algorithms.
type Conv struct {
	d      *DNN
	sh     ConvShape
	tf32   bool
	needDx bool
	x, y   uintptr    // tensor descriptors
	w      uintptr    // filter descriptor
	cd     [3]uintptr // convolution descriptors, one per direction (each with its algorithm's math type)
	ch     convChoice
}

// NewConv makes the descriptors and picks, by measurement
// (cudnnFind...AlgorithmEx on the given buffers, which it may overwrite),
// the fastest algorithm of each direction whose workspace fits wsLimit
// bytes, preferring deterministic ones (CUDNN_DETERMINISTIC) among those
// within 5% (or 2 µs) of the fastest. With tf32 false the convolutions
// compute in full FP32 (CUDNN_FMA_MATH: cuDNN 9 otherwise may use TF32
// tensor cores for FP32 data); with tf32 true cuDNN may use TF32. Results
// are cached in d by (shape, tf32), so a second NewConv of the same shape
// does no search. needDx false skips the backward-data search (first
// layer) and dw = 0 the backward-filter one (inference); x, w, y (dw, and
// dx when needDx) are buffers of the shape's sizes.
// Call inside Device.Do.
func (d *DNN) NewConv(sh ConvShape, tf32 bool, x, w, y, dx, dw Ptr, needDx bool, wsLimit int) (*Conv, error) {
	if err := sh.validate(); err != nil {
		return nil, err
	}
	if wsLimit < 0 {
		wsLimit = 0
	}
	c := &Conv{d: d, sh: sh, tf32: tf32, needDx: needDx}
	if err := c.describe(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%v: %w", sh, err)
	}

	key := convKey{sh, tf32}
	d.mu.Lock()
	if d.cache == nil {
		d.cache = map[convKey]*convChoice{}
	}
	cached := d.cache[key]
	d.mu.Unlock()
	var need [3]bool
	for dir := range 3 {
		if dir == dirBwdData && !needDx {
			continue
		}
		if dir == dirBwdFilter && dw == 0 { // inference: forward only
			continue
		}
		if cached != nil && cached.dir[dir].ok && cached.dir[dir].ws <= wsLimit {
			c.ch.dir[dir] = cached.dir[dir]
		} else {
			need[dir] = true
		}
	}
	if need[0] || need[1] || need[2] {
		if err := c.search(need, x, w, y, dx, dw, wsLimit); err != nil {
			c.Close()
			return nil, err
		}
		d.mu.Lock()
		d.searches++
		e := d.cache[key]
		if e == nil {
			e = &convChoice{}
			d.cache[key] = e
		}
		for dir := range 3 {
			if need[dir] {
				e.dir[dir] = c.ch.dir[dir]
			}
		}
		d.mu.Unlock()
	}
	// Each direction runs with the math type its algorithm was measured with
	// (cuDNN needs both); FP32 proper when tf32 is off.
	for dir := range 3 {
		if !c.ch.dir[dir].ok {
			continue
		}
		m := c.ch.dir[dir].math
		if !tf32 {
			m = cudnnFMAMath
		}
		if err := dnnCheck("cudnnSetConvolutionMathType", dnnLib.cudnnSetConvolutionMathType(c.cd[dir], m)); err != nil {
			c.Close()
			return nil, fmt.Errorf("%v: %w", sh, err)
		}
	}
	return c, nil
}

// bf16ConvMath is the math type of bfloat16 convolutions' search (a
// variable for the profile test's comparison only).
var bf16ConvMath int32 = cudnnTensorOpMath

// describe creates the descriptors.
func (c *Conv) describe() error {
	sh := c.sh
	oh, ow := sh.Out()
	var err error
	if c.x, err = newTensor4dT(sh.dtype(), sh.N, sh.C, sh.H, sh.W); err != nil {
		return err
	}
	if c.y, err = newTensor4dT(sh.dtype(), sh.N, sh.K, oh, ow); err != nil {
		return err
	}
	if err = dnnCheck("cudnnCreateFilterDescriptor", dnnLib.cudnnCreateFilterDescriptor(&c.w)); err != nil {
		return err
	}
	if err = dnnCheck("cudnnSetFilter4dDescriptor", dnnLib.cudnnSetFilter4dDescriptor(c.w, sh.dtype(), cudnnTensorNCHW,
		int32(sh.K), int32(sh.C/sh.Groups), int32(sh.Size), int32(sh.Size))); err != nil {
		return err
	}
	// The math type the search may use: FP32 proper; TF32 allowed
	// (default math, on Ampere and newer); for bfloat16, tensor cores
	// (with default math cuDNN's search offers bfloat16 convolutions only
	// their non-tensor-core kernels).
	math := int32(cudnnFMAMath)
	switch {
	case sh.BF16:
		math = bf16ConvMath
	case c.tf32:
		math = cudnnDefaultMath
	}
	for dir := range 3 {
		if err = dnnCheck("cudnnCreateConvolutionDescriptor", dnnLib.cudnnCreateConvolutionDescriptor(&c.cd[dir])); err != nil {
			return err
		}
		if err = dnnCheck("cudnnSetConvolution2dDescriptor", dnnLib.cudnnSetConvolution2dDescriptor(c.cd[dir], int32(sh.Pad), int32(sh.Pad),
			int32(sh.Stride), int32(sh.Stride), 1, 1, cudnnCrossCorrelation, cudnnDataFloat)); err != nil {
			return err
		}
		if err = dnnCheck("cudnnSetConvolutionGroupCount", dnnLib.cudnnSetConvolutionGroupCount(c.cd[dir], int32(sh.Groups))); err != nil {
			return err
		}
		if err = dnnCheck("cudnnSetConvolutionMathType", dnnLib.cudnnSetConvolutionMathType(c.cd[dir], math)); err != nil {
			return err
		}
	}
	var n, k, h, w int32
	if err = dnnCheck("cudnnGetConvolution2dForwardOutputDim", dnnLib.cudnnGetConvolution2dForwardOutputDim(c.cd[0], c.x, c.w, &n, &k, &h, &w)); err != nil {
		return err
	}
	if int(n) != sh.N || int(k) != sh.K || int(h) != oh || int(w) != ow {
		return fmt.Errorf("cuDNN's output is %dx%dx%dx%d, ConvShape.Out says %dx%dx%dx%d", n, k, h, w, sh.N, sh.K, oh, ow)
	}
	return nil
}

// workspaceSize returns the workspace one algorithm of dir needs, or
// false where cuDNN does not support it for this shape.
func (c *Conv) workspaceSize(dir int, algo int32) (int, bool) {
	var n uint64
	var code int32
	h := c.d.h
	switch dir {
	case dirFwd:
		code = dnnLib.cudnnGetConvolutionForwardWorkspaceSize(h, c.x, c.w, c.cd[dir], c.y, algo, &n)
	case dirBwdData:
		code = dnnLib.cudnnGetConvolutionBackwardDataWorkspaceSize(h, c.w, c.y, c.cd[dir], c.x, algo, &n)
	default:
		code = dnnLib.cudnnGetConvolutionBackwardFilterWorkspaceSize(h, c.x, c.y, c.cd[dir], c.w, algo, &n)
	}
	return int(n), code == 0
}

// search measures the algorithms of the directions in need and keeps the
// choice of each in c.ch.
func (c *Conv) search(need [3]bool, x, w, y, dx, dw Ptr, wsLimit int) error {
	// The workspace for the measurement: the most any algorithm needs,
	// within wsLimit.
	size := 0
	for dir := range 3 {
		if !need[dir] {
			continue
		}
		for a := range len(algoNames[dir]) {
			if n, ok := c.workspaceSize(dir, int32(a)); ok && n <= wsLimit && n > size {
				size = n
			}
		}
	}
	clearLastError()
	var ws uint64
	for size > 0 {
		if drv.cuMemAlloc(&ws, uint64(size)) == 0 {
			break
		}
		ws = 0
		if size < 1<<20 {
			size = 0
		} else {
			size /= 2
		}
	}
	defer func() {
		if ws != 0 {
			if c.d.s != nil {
				c.d.s.Sync()
			}
			drv.cuMemFree(ws)
		}
	}()
	for dir := range 3 {
		if !need[dir] {
			continue
		}
		perfs := make([]convPerf, 16)
		var n int32
		var code int32
		var call string
		h := c.d.h
		switch dir {
		case dirFwd:
			call = "cudnnFindConvolutionForwardAlgorithmEx"
			code = dnnLib.cudnnFindConvolutionForwardAlgorithmEx(h, c.x, uintptr(x), c.w, uintptr(w), c.cd[dir], c.y, uintptr(y),
				int32(len(perfs)), &n, &perfs[0], uintptr(ws), uint64(size))
		case dirBwdData:
			call = "cudnnFindConvolutionBackwardDataAlgorithmEx"
			code = dnnLib.cudnnFindConvolutionBackwardDataAlgorithmEx(h, c.w, uintptr(w), c.y, uintptr(y), c.cd[dir], c.x, uintptr(dx),
				int32(len(perfs)), &n, &perfs[0], uintptr(ws), uint64(size))
		default:
			call = "cudnnFindConvolutionBackwardFilterAlgorithmEx"
			code = dnnLib.cudnnFindConvolutionBackwardFilterAlgorithmEx(h, c.x, uintptr(x), c.y, uintptr(y), c.cd[dir], c.w, uintptr(dw),
				int32(len(perfs)), &n, &perfs[0], uintptr(ws), uint64(size))
		}
		if err := dnnCheck(call, code); err != nil {
			return fmt.Errorf("%v: %w", c.sh, err)
		}
		clearLastError() // the algorithms that failed inside the search leave messages
		perfs = perfs[:max(0, min(int(n), len(perfs)))]
		ch, ok := pickAlgo(perfs, wsLimit, c.tf32)
		if !ok {
			return fmt.Errorf("%v: %s found no usable %s algorithm within a %d-byte workspace (tf32 %v): %s",
				c.sh, call, dirNames[dir], wsLimit, c.tf32, describePerfs(dir, perfs))
		}
		c.ch.dir[dir] = ch
	}
	return nil
}

// pickAlgo chooses among measured algorithms: those that ran, fit wsLimit
// and (without tf32) do not use tensor-op math; the fastest deterministic
// one within 5% (or 2 µs) of the fastest, else the fastest.
func pickAlgo(perfs []convPerf, wsLimit int, tf32 bool) (algoChoice, bool) {
	var ok []convPerf
	for _, p := range perfs {
		if p.Status != 0 || p.Time < 0 || p.Memory > uint64(wsLimit) {
			continue
		}
		if !tf32 && (p.MathType == cudnnTensorOpMath || p.MathType == cudnnTensorOpMathAllowConversion) {
			continue
		}
		ok = append(ok, p)
	}
	if len(ok) == 0 {
		return algoChoice{}, false
	}
	sort.SliceStable(ok, func(i, j int) bool { return ok[i].Time < ok[j].Time })
	best := ok[0]
	slack := max(0.05*best.Time, 0.002)
	for _, p := range ok {
		if p.Time > best.Time+slack {
			break
		}
		if p.Determinism == cudnnDeterministic {
			best = p
			break
		}
	}
	return algoChoice{ok: true, algo: best.Algo, math: best.MathType, ws: int(best.Memory), det: best.Determinism == cudnnDeterministic, ms: best.Time}, true
}

// describePerfs lists what each measured algorithm reported, for errors.
func describePerfs(dir int, perfs []convPerf) string {
	if len(perfs) == 0 {
		return "cuDNN returned no algorithm"
	}
	var s []string
	for _, p := range perfs {
		st := "ok"
		if p.Status != 0 {
			st = fmt.Sprintf("status %d", p.Status)
			if dnnLib.cudnnGetErrorString != nil {
				st = dnnLib.cudnnGetErrorString(p.Status)
			}
		}
		s = append(s, fmt.Sprintf("%s %s, %.3f ms, %d B workspace, %s", algoName(dir, p.Algo), st, p.Time, p.Memory, mathName(p.MathType)))
	}
	return strings.Join(s, "; ")
}

// Shape returns the convolution's shape.
func (c *Conv) Shape() ConvShape { return c.sh }

// Workspace returns the bytes of workspace needed (the most of the three
// directions); Forward and the backward passes take a buffer at least that
// large.
func (c *Conv) Workspace() int {
	n := 0
	for _, a := range c.ch.dir {
		if a.ok && a.ws > n {
			n = a.ws
		}
	}
	return n
}

// Algos describes the chosen algorithms, e.g. "fwd IMPLICIT_PRECOMP_GEMM,
// bwd-data ALGO_1, bwd-filter ALGO_1", marking non-deterministic ones and,
// with tf32, those that use tensor-op math.
func (c *Conv) Algos() string {
	var s []string
	for dir, a := range c.ch.dir {
		if !a.ok {
			s = append(s, dirNames[dir]+" skipped")
			continue
		}
		t := dirNames[dir] + " " + algoName(dir, a.algo)
		if !a.det {
			t += " (non-deterministic)"
		}
		if c.tf32 && a.math != cudnnFMAMath && a.math != cudnnDefaultMath {
			t += " (" + mathName(a.math) + ")"
		}
		s = append(s, t)
	}
	return strings.Join(s, ", ")
}

func (c *Conv) wrap(dir int, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%v, %s %s: %w", c.sh, dirNames[dir], algoName(dir, c.ch.dir[dir].algo), err)
}

func (c *Conv) checkWS(dir int, ws Ptr) error {
	if c.ch.dir[dir].ws > 0 && ws == 0 {
		return c.wrap(dir, fmt.Errorf("needs a %d-byte workspace, got none", c.ch.dir[dir].ws))
	}
	return nil
}

// Forward computes y = conv(x, w) (y is overwritten). ws is a workspace of
// at least Workspace() bytes.
func (c *Conv) Forward(x, w, y, ws Ptr) error {
	a := c.ch.dir[dirFwd]
	if err := c.checkWS(dirFwd, ws); err != nil {
		return err
	}
	al, be := blend(false)
	return c.wrap(dirFwd, dnnCheck("cudnnConvolutionForward", dnnLib.cudnnConvolutionForward(c.d.h, al, c.x, uintptr(x), c.w, uintptr(w),
		c.cd[dirFwd], a.algo, uintptr(ws), uint64(a.ws), be, c.y, uintptr(y))))
}

// BackwardData computes the input's gradient dx from dy: dx = convT(dy, w),
// or dx += convT(dy, w) when acc.
func (c *Conv) BackwardData(w, dy, dx, ws Ptr, acc bool) error {
	a := c.ch.dir[dirBwdData]
	if !a.ok {
		return fmt.Errorf("%v: BackwardData on a Conv made with needDx false", c.sh)
	}
	if err := c.checkWS(dirBwdData, ws); err != nil {
		return err
	}
	al, be := blend(acc)
	return c.wrap(dirBwdData, dnnCheck("cudnnConvolutionBackwardData", dnnLib.cudnnConvolutionBackwardData(c.d.h, al, c.w, uintptr(w), c.y, uintptr(dy),
		c.cd[dirBwdData], a.algo, uintptr(ws), uint64(a.ws), be, c.x, uintptr(dx))))
}

// BackwardFilter computes the filters' gradient dw from x and dy, or adds
// it to dw when acc.
func (c *Conv) BackwardFilter(x, dy, dw, ws Ptr, acc bool) error {
	a := c.ch.dir[dirBwdFilter]
	if err := c.checkWS(dirBwdFilter, ws); err != nil {
		return err
	}
	al, be := blend(acc)
	return c.wrap(dirBwdFilter, dnnCheck("cudnnConvolutionBackwardFilter", dnnLib.cudnnConvolutionBackwardFilter(c.d.h, al, c.x, uintptr(x), c.y, uintptr(dy),
		c.cd[dirBwdFilter], a.algo, uintptr(ws), uint64(a.ws), be, c.w, uintptr(dw))))
}

// Close destroys the descriptors.
func (c *Conv) Close() error {
	if c == nil {
		return nil
	}
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for dir := range c.cd {
		if c.cd[dir] != 0 {
			keep(dnnCheck("cudnnDestroyConvolutionDescriptor", dnnLib.cudnnDestroyConvolutionDescriptor(c.cd[dir])))
			c.cd[dir] = 0
		}
	}
	if c.w != 0 {
		keep(dnnCheck("cudnnDestroyFilterDescriptor", dnnLib.cudnnDestroyFilterDescriptor(c.w)))
		c.w = 0
	}
	keep(destroyTensors(&c.x, &c.y))
	return first
}

// convOp runs a [convolutional] layer (model/conv.go): cuDNN's convolution
// into ly.pre, then bias + activation or batch norm + activation
// (bnact.go) into the output; inference does the second half in place.
type convOp struct{ l *model.ConvLayer }

func (convOp) name() string { return "conv+bn+act" }

func (o convOp) plan(nt *Net, ly *layer) (*buffer, error) {
	l, in := o.l, nt.bufs[ly.i]
	if in.c != l.In {
		return nil, nt.layerErr(l, fmt.Errorf("input has %d channels, want %d", in.c, l.In))
	}
	sh := ConvShape{N: nt.N, C: l.In, H: in.h, W: in.w, K: l.Filters, Size: l.Size, Stride: l.Stride, Pad: l.Pad, Groups: l.G}
	oh, ow := sh.Out()
	ly.in = []int{ly.i}
	return &buffer{c: l.Filters, h: oh, w: ow}, nil
}

// alloc makes the pre-activation buffer, finds the layer's parameters, sets
// up its cuDNN convolution and its BN statistics.
func (o convOp) alloc(nt *Net, ly *layer, wsLimit int) error {
	l, n := o.l, nt.N
	in, out := nt.bufs[ly.in[0]], nt.bufs[ly.out]
	var err error
	if nt.Training {
		if ly.pre, err = nt.allocAct(out.size(n)); err != nil {
			return err
		}
	} else {
		ly.pre = out.y // inference: BN/bias + activation in place
	}
	for pi, p := range nt.st.params {
		if p.Name == fmt.Sprintf("%d.weight", ly.i) {
			ly.pidx = append(ly.pidx, pi)
		}
	}
	w, dw := nt.convW(ly)
	sh := ConvShape{N: n, C: l.In, H: in.h, W: in.w, K: l.Filters, Size: l.Size, Stride: l.Stride, Pad: l.Pad, Groups: l.G, BF16: nt.bf16}
	needDx := nt.Training && ly.in[0] != 0
	dx := in.dy
	if !needDx {
		if nt.dummy == 0 {
			if nt.dummy, err = nt.allocAct(1); err != nil {
				return err
			}
		}
		dx = nt.dummy
	}
	if ly.conv, err = nt.dnn.NewConv(sh, nt.tf || nt.bf16, in.y, w, ly.pre, dx, dw, needDx, wsLimit); err != nil {
		return nt.layerErr(l, err)
	}
	nt.wsBytes = max(nt.wsBytes, ly.conv.Workspace())
	if l.BatchNorm {
		for _, p := range []*Ptr{&ly.mean, &ly.invstd, &ly.sumG, &ly.sumGX} {
			if *p, err = nt.alloc(l.Filters); err != nil {
				return err
			}
		}
	}
	nt.scrN = max(nt.scrN, ReduceScratchFloats(n, out.c, out.h*out.w))
	return nil
}

func (o convOp) forward(nt *Net, ly *layer) error {
	l, k, s, n := o.l, nt.k, nt.s, nt.N
	out := nt.bufs[ly.out]
	in := nt.bufs[ly.in[0]]
	hw := out.h * out.w
	w, _ := nt.convW(ly)
	if err := ly.conv.Forward(in.y, w, ly.pre, nt.ws); err != nil {
		return err
	}
	if err := nt.mark("fwd conv (cuDNN)"); err != nil {
		return err
	}
	if !l.BatchNorm {
		b, _ := nt.st.Param(ly.pidx[0] + 1)
		return k.BiasActForward(s, out.y, ly.pre, b, n, out.c, hw, l.Act)
	}
	gamma, _ := nt.st.Param(ly.pidx[0] + 1)
	beta, _ := nt.st.Param(ly.pidx[0] + 2)
	rm, rv := nt.st.BN(ly.i)
	if !nt.Training {
		if err := k.BNInference(s, ly.mean, ly.invstd, rm, rv, out.c, l.BN.Eps); err != nil {
			return err
		}
	} else if err := nt.bnStats(ly, l, out, rm, rv); err != nil {
		return err
	}
	return k.BNActForward(s, out.y, ly.pre, ly.mean, ly.invstd, gamma, beta, n, out.c, hw, l.Act)
}

func (o convOp) backward(nt *Net, ly *layer) error {
	l, k, s, n := o.l, nt.k, nt.s, nt.N
	out := nt.bufs[ly.out]
	in := nt.bufs[ly.in[0]]
	hw := out.h * out.w
	p := ly.pidx[0]
	w, dw := nt.convW(ly)
	// dz overwrites dy in place.
	if l.BatchNorm {
		gamma, dgamma := nt.st.Param(p + 1)
		beta, dbeta := nt.st.Param(p + 2)
		if err := k.BNActBackwardReduce(s, ly.sumG, ly.sumGX, out.dy, ly.pre, ly.mean, ly.invstd, gamma, beta, n, out.c, hw, l.Act, nt.scratch); err != nil {
			return err
		}
		// This replica's own sums are its gamma/beta gradients.
		if err := s.Copy(dbeta, ly.sumG, 4*out.c); err != nil {
			return err
		}
		if err := s.Copy(dgamma, ly.sumGX, 4*out.c); err != nil {
			return err
		}
		m := float64(n * hw)
		if nt.sync != nil {
			var err error
			if m, err = nt.sync.reduce2(nt, ly.sumG, ly.sumGX, out.c, m); err != nil {
				return err
			}
		}
		if err := k.BNActBackwardDx(s, out.dy, out.dy, ly.pre, ly.mean, ly.invstd, gamma, beta, ly.sumG, ly.sumGX, n, out.c, hw, l.Act, m, false); err != nil {
			return err
		}
	} else {
		b, db := nt.st.Param(p + 1)
		if err := k.BiasActBackward(s, out.dy, db, out.dy, ly.pre, b, n, out.c, hw, l.Act, nt.scratch); err != nil {
			return err
		}
	}
	if err := nt.mark("bwd bn+act"); err != nil {
		return err
	}
	if err := ly.conv.BackwardFilter(in.y, out.dy, dw, nt.ws, false); err != nil {
		return err
	}
	if err := nt.mark("bwd conv filter (cuDNN)"); err != nil {
		return err
	}
	if ly.in[0] != 0 {
		if err := ly.conv.BackwardData(w, out.dy, in.dy, nt.ws, ly.acc[0]); err != nil {
			return err
		}
		return nt.mark("bwd conv data (cuDNN)")
	}
	return nil
}

// convW returns the weights and gradient of a conv layer as cuDNN reads and
// writes them: the float32 Params, or their bfloat16 copies (mixed precision).
func (nt *Net) convW(ly *layer) (w, dw Ptr) {
	if nt.bf16 {
		return nt.st.ParamBF16(ly.pidx[0])
	}
	return nt.st.Param(ly.pidx[0])
}
