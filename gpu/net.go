package gpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"

	"github.com/dettrain/dettrain/model"
)

// Net is a model.Network unrolled on one device for batches of N images of
// Size x Size pixels: every layer's forward and backward as cuDNN calls and
// dettrain's kernels over device buffers, in layer order (forward) and
// reverse layer order (backward). It is darknet's executor, not a gorgonia
// graph: the ops a step runs are exactly the ones listed in docs/GPU.md.
//
// Gradient accumulation at fan-out points (a layer read by several later
// layers: route, shortcut, scale_channels) is decided once, when the Net is
// built: walking the layers backwards, the first contribution to a gradient
// buffer overwrites it and later ones add to it (the kernels' acc flag, cuDNN's
// beta = 1), so no gradient buffer is ever cleared.
type Net struct {
	N        int
	Size     model.Size // input width x height
	Training bool

	dev *Device
	s   *Stream
	k   *Kernels
	dnn *DNN
	net *model.Network
	st  *State
	tf  bool // TF32 convolutions
	// bf16: mixed precision. Activations, their gradients and the conv
	// weights cuDNN reads are bfloat16 (es = 2 bytes an element); the
	// parameters, their gradients, BN statistics and every sum stay float32.
	bf16 bool
	es   int
	in   Ptr // the float32 input image on the device (bf16: converted into bufs[0].y)

	bufs   []*buffer // slot 0 is the input image, slot i+1 layer i's output
	layers []*layer
	heads  []*head

	ws      Ptr
	wsBytes int
	dummy   Ptr // a gradient sink for the first conv's search (its dx is never computed)
	scratch Ptr
	scrN    int
	loss    Ptr // double[5] per step: obj, xy, wh, cls, positives
	flag    Ptr // int32: set when a gradient or the loss is not finite
	host    *HostBuffer
	hostIn  int // byte offset of the input image in host
	hostTg  int // byte offset of the targets
	tgDev   Ptr // targets on the device
	tgBytes int

	// Smooth0 and Smooth1 are the class targets for t = 0 and t = 1 (label smoothing).
	Smooth0, Smooth1 float64

	// BNMomentum etc. come from the layers' BNState.
	sync *SyncBN

	allocs      []alloc
	steps       int // Steps run, for dropout masks
	keepOutputs bool
	// KeepInput (benchmarks) uploads the input image once and reuses it, as
	// a peer whose input tensor already lives on the device does.
	KeepInput bool
	uploaded  bool
	stage     *stager
	// Graphs replays each pass as a CUDA graph after the first two (see
	// run); set before the first pass.
	Graphs   bool
	graphs   map[Ptr]*[2]*Graph
	graphErr error
	passes   int // forward passes run
	// prof, while profiling (Profile), holds an event recorded after each
	// group of ops.
	prof []profMark
}

type alloc struct {
	p     Ptr
	bytes int
}

// buffer is one activation tensor (N, C, H, W) and its gradient.
type buffer struct {
	c, h, w int
	y       Ptr // values
	dy      Ptr // gradient (training)
	// written is used while planning the backward pass.
	written bool
}

func (b *buffer) size(n int) int { return n * b.c * b.h * b.w }

// layer is one network layer on the device.
type layer struct {
	i    int
	l    model.Layer
	op   layerOp // l's device code (newLayerOp)
	in   []int   // input slots
	out  int     // output slot (an alias of an input for yolo, inference dropout and single route)
	conv *Conv
	pre  Ptr // conv output before BN/bias + activation (training)
	z    Ptr // pre-activation of shortcut/scale_channels with a non-linear activation (training)
	// BN (per channel)
	mean, invstd, sumG, sumGX Ptr
	arg                       Ptr // maxpool argmax
	seed                      uint32
	// acc[k]: the backward contribution to input k's gradient adds (true) or overwrites.
	acc  []bool
	skip bool // no gradient reaches this layer's output: backward does nothing but zero its parameter gradients
	pidx []int
}

type head struct {
	layer   int
	slot    int // the head's input slot
	h       *model.Head
	targets YOLOTargets
	off     int // byte offset of the marshalled targets in the host and device buffers
}

// NetOptions configure a Net.
type NetOptions struct {
	TF32 bool
	// Sync, when set, synchronises the BN statistics with other replicas through the host.
	Sync *SyncBN
	// WorkspaceLimit bounds cuDNN's workspace (bytes; 0: 1 GiB).
	WorkspaceLimit int
	// BF16 runs the Net in mixed precision (k must be LoadKernelsAct's
	// bf16 module; the State gets its bfloat16 weights).
	BF16 bool
	// KeepOutputs gives every layer's output of an inference Net its own
	// memory (for LayerOutput in tests); by default outputs share memory
	// by liveness and only the heads' outputs survive Forward.
	KeepOutputs bool
}

// NewNet builds net on the device for batches of n images of size x size,
// over the state st (weights shared by every Net of st). A training Net also
// holds gradient buffers. Call inside d.Do.
func NewNet(d *Device, s *Stream, k *Kernels, dnn *DNN, net *model.Network, st *State, n int, size model.Size, training bool, o NetOptions) (nt *Net, err error) {
	if nt, err = planNet(net, n, size, training); err != nil {
		return nil, err
	}
	nt.dev, nt.s, nt.k, nt.dnn, nt.st = d, s, k, dnn, st
	nt.tf, nt.sync, nt.keepOutputs = o.TF32, o.Sync, o.KeepOutputs
	nt.bf16, nt.es = o.BF16, 4
	if o.BF16 {
		if !k.BF16 {
			return nil, fmt.Errorf("a mixed-precision Net needs the bfloat16 kernels (LoadKernelsAct)")
		}
		if err := st.EnableBF16(); err != nil {
			return nil, err
		}
		nt.es = 2
	} else if k.BF16 {
		return nil, fmt.Errorf("a float32 Net needs the float32 kernels (LoadKernels)")
	}
	if o.WorkspaceLimit <= 0 {
		o.WorkspaceLimit = 1 << 30
	}
	if err := nt.allocate(o.WorkspaceLimit); err != nil {
		nt.Free()
		return nil, err
	}
	return nt, nil
}

// planNet lays the network out for batches of n images of size x size
// without touching a device: every layer's input and output buffers and
// their shapes, the aliases, the heads and (training) the backward plan.
func planNet(net *model.Network, n int, size model.Size, training bool) (*Net, error) {
	if err := size.CheckStride(8); err != nil {
		return nil, fmt.Errorf("%w (32 for YOLOv3's strides)", err)
	}
	nt := &Net{N: n, Size: size, Training: training, net: net, Smooth1: 1}
	nt.bufs = append(nt.bufs, &buffer{c: net.Channels, h: size.H, w: size.W})
	for i, l := range net.Layers {
		// Slot i is layer i-1's output (slot 0 the input): ly.i is also the
		// previous layer's slot, the input of most layers.
		ly := &layer{i: i, l: l}
		if ly.op = newLayerOp(l); ly.op == nil {
			return nil, nt.layerErr(l, fmt.Errorf("layer type %T is not supported on the GPU", l))
		}
		out, err := ly.op.plan(nt, ly)
		if err != nil {
			return nil, err
		}
		if out != nil {
			ly.out = len(nt.bufs)
			nt.bufs = append(nt.bufs, out)
		} else {
			// An alias: the output is an input's buffer. Keep slot numbering
			// (slot i+1 = layer i) with a pointer to the same buffer.
			nt.bufs = append(nt.bufs, nt.bufs[ly.out])
			ly.out = len(nt.bufs) - 1
		}
		nt.layers = append(nt.layers, ly)
	}
	if training && len(nt.heads) == 0 {
		return nil, fmt.Errorf("the network has no [yolo] layer: nothing to train")
	}
	if training {
		nt.planBackward()
	}
	return nt, nil
}

func (nt *Net) layerErr(l model.Layer, err error) error {
	s := l.Section()
	return fmt.Errorf("%s:%d: layer [%s]: %w", s.File, s.Line, s.Type, err)
}

func (nt *Net) alloc(n int) (Ptr, error) {
	p, err := nt.dev.AllocF32(n)
	if err == nil {
		nt.allocs = append(nt.allocs, alloc{p, 4 * max(n, 1)})
	}
	return p, err
}

// allocAct allocates n activation elements (nt.es bytes each).
func (nt *Net) allocAct(n int) (Ptr, error) {
	if nt.es == 4 {
		return nt.alloc(n)
	}
	return nt.alloc((n + 1) / 2)
}

// inPtr is where the float32 input image lives on the device.
func (nt *Net) inPtr() *Ptr {
	if nt.bf16 {
		return &nt.in
	}
	return &nt.bufs[0].y
}

// allocate makes every buffer, the cuDNN convolutions and the workspace.
func (nt *Net) allocate(wsLimit int) error {
	n := nt.N
	seen := map[*buffer]bool{}
	if !nt.Training && !nt.keepOutputs {
		if err := nt.allocateShared(); err != nil {
			return err
		}
	}
	for _, b := range nt.bufs {
		if b.y != 0 {
			continue // shared (inference)
		}
		if seen[b] {
			continue
		}
		seen[b] = true
		var err error
		if b.y, err = nt.allocAct(b.size(n)); err != nil {
			return err
		}
		if nt.Training {
			if b.dy, err = nt.allocAct(b.size(n)); err != nil {
				return err
			}
		}
	}
	if nt.bf16 {
		var err error
		if nt.in, err = nt.alloc(nt.bufs[0].size(n)); err != nil {
			return err
		}
	}
	for _, ly := range nt.layers {
		if err := ly.op.alloc(nt, ly, wsLimit); err != nil {
			return err
		}
	}
	var err error
	if nt.wsBytes > 0 {
		if nt.ws, err = nt.alloc((nt.wsBytes + 3) / 4); err != nil {
			return err
		}
	}
	if nt.scratch, err = nt.alloc(max(nt.scrN, 1)); err != nil {
		return err
	}
	if nt.loss, err = nt.alloc(10); err != nil { // 5 doubles
		return err
	}
	if nt.flag, err = nt.alloc(1); err != nil {
		return err
	}
	// Host staging: the input image, then (training) every head's targets.
	inBytes := 4 * nt.bufs[0].size(n)
	nt.hostIn = 0
	nt.hostTg = (inBytes + 255) &^ 255
	hostBytes := nt.hostTg + 64
	if nt.host, err = nt.dev.AllocHost(hostBytes); err != nil {
		return err
	}
	return nil
}

// allocateShared gives the activations of an inference Net device memory
// shared by liveness: a buffer lives from the layer that writes it to the
// last layer that reads it (the heads' inputs and the input image to the
// end), and buffers whose lives do not overlap share memory (planSlots).
func (nt *Net) allocateShared() error {
	var bufs []*buffer
	index := map[*buffer]int{}
	def, last := []int{}, []int{}
	end := len(nt.layers)
	add := func(b *buffer, at int) {
		if _, ok := index[b]; !ok {
			index[b] = len(bufs)
			bufs = append(bufs, b)
			def = append(def, at)
			last = append(last, at)
		}
	}
	add(nt.bufs[0], -1)
	last[0] = end // the input stays (KeepInput)
	for i, ly := range nt.layers {
		for _, s := range ly.in {
			k := index[nt.bufs[s]]
			last[k] = max(last[k], i)
		}
		add(nt.bufs[ly.out], i)
	}
	for _, h := range nt.heads {
		last[index[nt.bufs[h.slot]]] = end
	}
	sizes := make([]int, len(bufs))
	for i, b := range bufs {
		sizes[i] = b.size(nt.N)
	}
	slotOf, slotSize := planSlots(sizes, def, last)
	ptrs := make([]Ptr, len(slotSize))
	for i, sz := range slotSize {
		var err error
		if ptrs[i], err = nt.allocAct(sz); err != nil {
			return err
		}
	}
	for i, b := range bufs {
		b.y = ptrs[slotOf[i]]
	}
	return nil
}

// planSlots assigns buffers (sizes in elements, each live from def[i] to
// last[i] inclusive, in layer steps) to memory slots so that buffers whose
// lives overlap never share a slot, reusing the smallest free slot that
// fits (or growing the largest free one). It returns each buffer's slot and
// each slot's size.
func planSlots(sizes, def, last []int) (slotOf, slotSize []int) {
	slotOf = make([]int, len(sizes))
	order := make([]int, len(sizes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return def[order[a]] < def[order[b]] })
	busyUntil := []int{} // per slot: the last step of its current buffer
	for _, i := range order {
		best := -1
		for s, until := range busyUntil {
			if until >= def[i] { // still live when buffer i is written
				continue
			}
			switch {
			case best < 0:
				best = s
			case slotSize[s] >= sizes[i] && (slotSize[best] < sizes[i] || slotSize[s] < slotSize[best]):
				best = s // the smallest free slot that fits
			case slotSize[best] < sizes[i] && slotSize[s] > slotSize[best]:
				best = s // none fits yet: the largest
			}
		}
		if best < 0 {
			best = len(slotSize)
			slotSize = append(slotSize, 0)
			busyUntil = append(busyUntil, 0)
		}
		slotSize[best] = max(slotSize[best], sizes[i])
		busyUntil[best] = last[i]
		slotOf[i] = best
	}
	return slotOf, slotSize
}

// planBackward decides, for each layer's backward contribution to each
// input, whether it overwrites or accumulates, and which layers get no
// gradient at all.
func (nt *Net) planBackward() {
	for _, b := range nt.bufs {
		b.written = false
	}
	for li := len(nt.layers) - 1; li >= 0; li-- {
		ly := nt.layers[li]
		out := nt.bufs[ly.out]
		_, isYOLO := ly.l.(*model.YOLOLayer)
		if !isYOLO && !out.written {
			ly.skip = true
			ly.acc = make([]bool, len(ly.in))
			continue
		}
		if nt.isAlias(ly) && !isYOLO {
			// single-input route or inference dropout: the gradient is
			// already in the input's buffer.
			ly.acc = make([]bool, len(ly.in))
			continue
		}
		ly.acc = make([]bool, len(ly.in))
		for k, s := range ly.in {
			if s == 0 { // the input image needs no gradient
				continue
			}
			b := nt.bufs[s]
			ly.acc[k] = b.written
			b.written = true
		}
	}
}

func (nt *Net) isAlias(ly *layer) bool {
	return nt.bufs[ly.out] == nt.bufs[ly.in[0]]
}

// Free releases the Net's device and pinned memory (not the State's). Call inside Do.
func (nt *Net) Free() {
	nt.dropGraphs()
	if st := nt.stage; st != nil {
		// The copy stream may still be writing st.dev (freed below with allocs).
		if st.cs != nil {
			st.cs.Sync()
			st.cs.Destroy()
		}
		if st.done != nil {
			st.done.Destroy()
		}
		if st.host != nil {
			st.host.Free()
		}
		nt.stage = nil
	}
	for _, ly := range nt.layers {
		if ly.conv != nil {
			ly.conv.Close()
		}
	}
	for _, a := range nt.allocs {
		nt.dev.Free(a.p, a.bytes)
	}
	nt.allocs = nil
	if nt.tgDev != 0 {
		nt.dev.Free(nt.tgDev, nt.tgBytes)
		nt.tgDev = 0
	}
	if nt.host != nil {
		nt.host.Free()
		nt.host = nil
	}
}

// SetInput copies the next batch's images, (N, C, Size, Size), into the
// pinned host buffer (in parallel: a batch is often over 100 MB). With
// KeepInput, only the first call copies.
func (nt *Net) SetInput(images []float32) {
	if nt.KeepInput && nt.uploaded {
		return
	}
	if st := nt.stage; st != nil && st.pending && len(images) > 0 && st.key == &images[0] && st.n == len(images) {
		st.use = true // Stage already sent these images
		return
	}
	parallelCopy(nt.Input(), images)
}

// SetTruths packs the ground truth of the next step for every head into the
// pinned host buffer (growing it when needed).
func (nt *Net) SetTruths(truths [][]model.Truth) error {
	total := 0
	for _, h := range nt.heads {
		b := nt.bufs[h.slot]
		if err := PackYOLOTargets(h.h, truths, nt.N, b.h, b.w, nt.Size.W, nt.Size.H, &h.targets); err != nil {
			return err
		}
		total += (h.targets.Bytes() + 255) &^ 255
	}
	if nt.hostTg+total > len(nt.host.Bytes()) {
		in := append([]float32(nil), nt.Input()...)
		nt.host.Free()
		var err error
		if nt.host, err = nt.dev.AllocHost(nt.hostTg + 2*total); err != nil {
			return err
		}
		copy(nt.Input(), in)
	}
	if total > nt.tgBytes {
		if nt.tgDev != 0 {
			nt.dev.Free(nt.tgDev, nt.tgBytes)
		}
		var err error
		if nt.tgDev, err = nt.dev.Alloc(2 * total); err != nil {
			nt.tgDev = 0
			return err
		}
		nt.tgBytes = 2 * total
	}
	off := 0
	hb := nt.host.Bytes()[nt.hostTg:]
	for _, h := range nt.heads {
		h.off = off
		h.targets.Marshal(hb[off:])
		off += (h.targets.Bytes() + 255) &^ 255
	}
	return nil
}

// upload sends the input (and, training, the targets) asynchronously.
func (nt *Net) upload() error {
	if st := nt.stage; st != nil && st.use {
		// The staged copy: wait for it on the compute stream (not the
		// host) and make its buffer the input.
		if err := nt.s.Wait(st.done); err != nil {
			return err
		}
		in := nt.inPtr()
		*in, st.dev = st.dev, *in
		st.use, st.pending = false, false
		st.used++
		nt.uploaded = true
		if err := nt.inputToAct(); err != nil {
			return err
		}
	} else if !nt.KeepInput || !nt.uploaded {
		if err := nt.s.UploadAsync(*nt.inPtr(), nt.host, nt.hostIn, 4*nt.bufs[0].size(nt.N)); err != nil {
			return err
		}
		nt.uploaded = true
		if err := nt.inputToAct(); err != nil {
			return err
		}
	}
	if !nt.Training {
		return nil
	}
	total := 0
	for _, h := range nt.heads {
		total += (h.targets.Bytes() + 255) &^ 255
	}
	if total == 0 {
		return nil
	}
	return nt.s.UploadAsync(nt.tgDev, nt.host, nt.hostTg, total)
}

// inputToAct converts the uploaded float32 image into the bfloat16 input
// (mixed precision; nothing otherwise).
func (nt *Net) inputToAct() error {
	if !nt.bf16 {
		return nil
	}
	return nt.k.ToAct(nt.s, nt.bufs[0].y, nt.in, nt.bufs[0].size(nt.N))
}

// Forward runs the forward pass (inference Nets: the whole job). Call inside Do.
func (nt *Net) Forward() error {
	if err := nt.upload(); err != nil {
		return err
	}
	nt.passes++
	return nt.run(0, nt.forwardLayers)
}

// forwardLayers enqueues the forward pass after the upload.
func (nt *Net) forwardLayers() error {
	if nt.bf16 {
		// This step's bfloat16 conv weights, from the float32 masters.
		if err := nt.k.ToAct(nt.s, nt.st.Wh, nt.st.W, nt.st.decayN); err != nil {
			return err
		}
	}
	if err := nt.mark("upload+weights"); err != nil {
		return err
	}
	for _, ly := range nt.layers {
		if err := ly.op.forward(nt, ly); err != nil {
			return fmt.Errorf("forward, %w", nt.layerErr(ly.l, err))
		}
		if err := nt.mark(fmt.Sprintf("fwd %s", nt.opName(ly))); err != nil {
			return err
		}
	}
	return nil
}

// Loss runs every head's loss, writing the gradient of its input. It must
// run between Forward and Backward; Step does that.
func (nt *Net) lossHeads() error {
	k, s := nt.k, nt.s
	if err := s.Zero(nt.loss, 10); err != nil {
		return err
	}
	if err := s.Zero(nt.flag, 1); err != nil {
		return err
	}
	// Heads in reverse layer order, as the backward walk meets them: the
	// first contribution to a buffer overwrites it (planBackward).
	for hi := len(nt.heads) - 1; hi >= 0; hi-- {
		h := nt.heads[hi]
		ly := nt.layers[h.layer]
		b := nt.bufs[h.slot]
		if ly.acc[0] {
			return fmt.Errorf("layer %d: a YOLO head's input is read by a later layer too; not supported on the GPU", h.layer)
		}
		if err := k.YOLOLoss(s, b.dy, b.y, nt.tgDev.Add(h.off), &h.targets, h.h, nt.N, b.h, b.w, nt.Size.W, nt.Size.H, nt.Smooth0, nt.Smooth1, nt.loss); err != nil {
			return fmt.Errorf("yolo layer %d: %w", h.layer, err)
		}
	}
	return nil
}

func (nt *Net) zeroParamGrads(ly *layer) error {
	if _, ok := ly.l.(*model.ConvLayer); !ok {
		return nil
	}
	for j := ly.pidx[0]; j < ly.pidx[0]+nt.nParams(ly); j++ {
		_, g := nt.st.Param(j)
		if err := nt.s.Zero(g, nt.st.params[j].Value.Shape().TotalSize()); err != nil {
			return err
		}
	}
	if nt.bf16 {
		// Step converts Gh into G's weights region: zero the source too.
		_, gh := nt.convW(ly)
		return nt.s.Zero16(gh, nt.st.params[ly.pidx[0]].Value.Shape().TotalSize())
	}
	return nil
}

func (nt *Net) nParams(ly *layer) int {
	if c, ok := ly.l.(*model.ConvLayer); ok && c.BatchNorm {
		return 3
	}
	return 2
}

// Step runs one training step on the device: upload of the batch set with
// Input and SetTruths, forward, the heads' losses, backward, and the check of
// the gradients for NaN/Inf. It does not update the weights (Update does) and
// does not wait for the device. Call inside Do.
func (nt *Net) Step() error {
	if !nt.Training {
		return fmt.Errorf("Step on an inference Net")
	}
	nt.steps++
	if err := nt.Forward(); err != nil {
		return err
	}
	if err := nt.lossHeads(); err != nil {
		return err
	}
	if err := nt.mark("loss"); err != nil {
		return err
	}
	return nt.run(1, nt.backwardLayers)
}

// backwardLayers enqueues the backward pass after the loss, the gradients'
// conversion (mixed precision) and their finiteness check.
func (nt *Net) backwardLayers() error {
	for li := len(nt.layers) - 1; li >= 0; li-- {
		ly := nt.layers[li]
		if ly.skip {
			if err := nt.zeroParamGrads(ly); err != nil {
				return err
			}
			continue
		}
		if _, ok := ly.l.(*model.YOLOLayer); ok {
			continue
		}
		if err := ly.op.backward(nt, ly); err != nil {
			return fmt.Errorf("backward, %w", nt.layerErr(ly.l, err))
		}
		if _, ok := ly.l.(*model.ConvLayer); !ok {
			if err := nt.mark("bwd " + nt.opName(ly)); err != nil {
				return err
			}
		}
	}
	if nt.bf16 {
		// The conv weights' gradients, from cuDNN's bfloat16 into the float32 G.
		if err := nt.k.FromAct(nt.s, nt.st.G, nt.st.Gh, nt.st.decayN); err != nil {
			return err
		}
	}
	if err := nt.k.CheckFinite(nt.s, nt.st.G, nt.st.paramsN, nt.flag); err != nil {
		return err
	}
	if err := nt.k.launch(nt.s, "loss_flag", D1(1), D1(32), 0, nt.loss, nt.flag); err != nil {
		return err
	}
	return nt.mark("gradient check")
}

// LossResult reads the loss terms of the last Step (waits for the device)
// and whether a gradient or the loss was not finite. Call inside Do.
func (nt *Net) LossResult() (model.LossParts, bool, error) {
	var b [48]byte
	if err := nt.s.DownloadBytes(b[:40], nt.loss); err != nil {
		return model.LossParts{}, false, err
	}
	if err := nt.s.DownloadBytes(b[40:44], nt.flag); err != nil {
		return model.LossParts{}, false, err
	}
	f := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])) }
	p := model.LossParts{Obj: f(0), XY: f(1), WH: f(2), Cls: f(3), Positives: int(f(4))}
	bad := b[40] != 0 || b[41] != 0 || b[42] != 0 || b[43] != 0
	if v := p.Total(); math.IsNaN(v) || math.IsInf(v, 0) {
		bad = true
	}
	return p, bad, nil
}

// Flag is the device int32 set by Step when a gradient was not finite (for
// State.Update's skip).
func (nt *Net) Flag() Ptr { return nt.flag }

// Heads downloads the raw outputs of the YOLO heads of the last Forward. Call inside Do.
func (nt *Net) Heads() ([]model.HeadOutput, error) {
	out := make([]model.HeadOutput, len(nt.heads))
	for i, h := range nt.heads {
		b := nt.bufs[h.slot]
		d, err := nt.downloadAct(b.y, b.size(nt.N))
		if err != nil {
			return nil, err
		}
		out[i] = model.HeadOutput{Data: d, H: b.h, W: b.w}
	}
	return out, nil
}

// LayerOutput downloads layer i's output of the last Forward, (N,C,H,W), and
// its shape (an inference Net keeps them only with KeepOutputs). Call inside Do.
func (nt *Net) LayerOutput(i int) ([]float32, []int, error) {
	b := nt.bufs[i+1]
	d, err := nt.downloadAct(b.y, b.size(nt.N))
	return d, []int{nt.N, b.c, b.h, b.w}, err
}

// downloadAct copies n activations at p to the host as float32s (bfloat16
// widened exactly). Waits for the device.
func (nt *Net) downloadAct(p Ptr, n int) ([]float32, error) {
	d := make([]float32, n)
	if nt.es == 4 {
		return d, nt.s.Download(d, p)
	}
	raw := make([]byte, 2*n)
	if err := nt.s.DownloadBytes(raw, p); err != nil {
		return nil, err
	}
	for i := range d {
		d[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
	}
	return d, nil
}

// ConvAlgos describes the cuDNN algorithms chosen per conv layer.
func (nt *Net) ConvAlgos() []string {
	var out []string
	for _, ly := range nt.layers {
		if ly.conv != nil {
			out = append(out, fmt.Sprintf("layer %d: %s", ly.i, ly.conv.Algos()))
		}
	}
	return out
}

// parallelCopy is copy over several goroutines for large slices.
func parallelCopy(dst, src []float32) {
	n := min(len(dst), len(src))
	parts := min(runtime.NumCPU(), 8, n>>18)
	if parts <= 1 {
		copy(dst, src)
		return
	}
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		lo, hi := n*p/parts, n*(p+1)/parts
		wg.Add(1)
		go func() { defer wg.Done(); copy(dst[lo:hi], src[lo:hi]) }()
	}
	wg.Wait()
}
