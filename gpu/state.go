package gpu

import (
	"fmt"

	"github.com/dettrain/dettrain/model"
)

// State is a network's trainable state on one device, each kind in one flat
// buffer so that the optimizer, the EMA and the finiteness check are one
// kernel launch each:
//
//	[conv weights (decayed) | gammas and biases | BN running means | BN running variances]
//
// Weights, gradients, velocity and EMA share that layout (gradients and
// velocity over the first two regions only). Offsets are in float32 elements.
type State struct {
	dev *Device
	net *model.Network

	params  []model.Param
	off     []int // per Param, into the flat buffer
	decayN  int   // elements of the decayed region (conv weights)
	paramsN int   // elements of both parameter regions
	bnMean  []int // per BN layer (index into net.Layers order of BN convs), offset
	bnVar   []int
	bnLayer map[int]int // layer index -> BN ordinal
	total   int

	W, G, V, E Ptr // weights(+BN stats), gradients, velocity, EMA (0 when off)
	// Wh and Gh (mixed precision, EnableBF16): bfloat16 copies of the conv
	// weights (the decayed region) for cuDNN and their gradients from cuDNN;
	// W and G stay the float32 masters the update works on.
	Wh, Gh Ptr
}

// NewState allocates the flat buffers for net on d: gradients and velocity
// only for training, the EMA only when ema. Call inside d.Do.
func NewState(d *Device, net *model.Network, training, ema bool) (*State, error) {
	st := &State{dev: d, net: net, params: net.Params(), bnLayer: map[int]int{}}
	st.off = make([]int, len(st.params))
	o := 0
	for i, p := range st.params {
		if p.Decay {
			st.off[i] = o
			o += p.Value.Shape().TotalSize()
		}
	}
	st.decayN = o
	for i, p := range st.params {
		if !p.Decay {
			st.off[i] = o
			o += p.Value.Shape().TotalSize()
		}
	}
	st.paramsN = o
	for i, l := range net.Layers {
		if c, ok := l.(*model.ConvLayer); ok && c.BatchNorm {
			st.bnLayer[i] = len(st.bnMean)
			st.bnMean = append(st.bnMean, o)
			o += c.Filters
		}
	}
	for _, l := range net.Layers {
		if c, ok := l.(*model.ConvLayer); ok && c.BatchNorm {
			st.bnVar = append(st.bnVar, o)
			o += c.Filters
		}
	}
	st.total = o
	var err error
	if st.W, err = d.AllocF32(st.total); err != nil {
		return nil, err
	}
	if training {
		if st.G, err = d.AllocF32(st.paramsN); err != nil {
			return nil, err
		}
		if st.V, err = d.AllocF32(st.paramsN); err != nil {
			return nil, err
		}
	}
	if ema {
		if st.E, err = d.AllocF32(st.total); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// EnableBF16 allocates the bfloat16 conv weights Wh (and, with gradients,
// Gh) for mixed-precision Nets. Call inside Do.
func (st *State) EnableBF16() error {
	if st.Wh != 0 {
		return nil
	}
	var err error
	if st.Wh, err = st.dev.Alloc(2 * max(st.decayN, 1)); err != nil {
		return err
	}
	if st.G != 0 {
		if st.Gh, err = st.dev.Alloc(2 * max(st.decayN, 1)); err != nil {
			return err
		}
	}
	return nil
}

// ParamBF16 returns the bfloat16 weights and gradient of conv weight param i
// (EnableBF16; a decayed Param).
func (st *State) ParamBF16(i int) (w, g Ptr) {
	o := 2 * st.off[i]
	if st.Gh == 0 {
		return st.Wh.Add(o), 0
	}
	return st.Wh.Add(o), st.Gh.Add(o)
}

// Free releases the buffers. Call inside Do.
func (st *State) Free() {
	if st.Wh != 0 {
		st.dev.Free(st.Wh, 2*max(st.decayN, 1))
		if st.Gh != 0 {
			st.dev.Free(st.Gh, 2*max(st.decayN, 1))
		}
		st.Wh, st.Gh = 0, 0
	}
	st.dev.Free(st.W, 4*st.total)
	if st.G != 0 {
		st.dev.Free(st.G, 4*st.paramsN)
		st.dev.Free(st.V, 4*st.paramsN)
	}
	if st.E != 0 {
		st.dev.Free(st.E, 4*st.total)
	}
	st.W, st.G, st.V, st.E = 0, 0, 0, 0
}

// ParamsLen is the number of parameter elements (gradient length).
func (st *State) ParamsLen() int { return st.paramsN }

// Param returns the device address of the i-th model.Param's weights and
// gradient (0 in an inference State).
func (st *State) Param(i int) (w, g Ptr) {
	if st.G == 0 {
		return st.W.F32(st.off[i]), 0
	}
	return st.W.F32(st.off[i]), st.G.F32(st.off[i])
}

// BN returns the running mean and variance of layer li (a conv with batch norm).
func (st *State) BN(li int) (mean, vr Ptr) {
	k := st.bnLayer[li]
	return st.W.F32(st.bnMean[k]), st.W.F32(st.bnVar[k])
}

// HostTensors lists the host tensors of the flat layout in the order of
// emaTargets (train/ema.go): every Param in Params order, then every BN
// layer's running means, then its variances, each with its flat offset.
func (st *State) hostTensors() (vals [][]float32, offs []int) {
	for i, p := range st.params {
		vals = append(vals, p.Value.Float32s())
		offs = append(offs, st.off[i])
	}
	k := 0
	for _, l := range st.net.Layers {
		if c, ok := l.(*model.ConvLayer); ok && c.BatchNorm {
			vals = append(vals, c.BN.Mean)
			offs = append(offs, st.bnMean[k])
			k++
		}
	}
	k = 0
	for _, l := range st.net.Layers {
		if c, ok := l.(*model.ConvLayer); ok && c.BatchNorm {
			vals = append(vals, c.BN.Var)
			offs = append(offs, st.bnVar[k])
			k++
		}
	}
	return vals, offs
}

// Upload copies the host state to the device: the network's weights and BN
// statistics, the optimizer velocity (per Param, nil: zeros) and the EMA
// values (emaTargets order; nil: a copy of the weights). Call inside Do.
func (st *State) Upload(s *Stream, velocity, ema [][]float32) error {
	host := make([]float32, st.total)
	vals, offs := st.hostTensors()
	for i, v := range vals {
		copy(host[offs[i]:], v)
	}
	if err := s.Upload(st.W, host); err != nil {
		return err
	}
	if st.E != 0 {
		if ema != nil {
			if len(ema) != len(vals) {
				return fmt.Errorf("EMA state has %d tensors, the model %d", len(ema), len(vals))
			}
			for i, v := range ema {
				copy(host[offs[i]:offs[i]+len(vals[i])], v)
			}
		}
		if err := s.Upload(st.E, host); err != nil {
			return err
		}
	}
	if st.V == 0 {
		return nil
	}
	clear(host)
	if velocity != nil {
		if len(velocity) != len(st.params) {
			return fmt.Errorf("optimizer state has %d tensors, the model %d", len(velocity), len(st.params))
		}
		for i, v := range velocity {
			copy(host[st.off[i]:], v)
		}
	}
	if err := s.Upload(st.V, host[:st.paramsN]); err != nil {
		return err
	}
	return s.Zero(st.G, st.paramsN)
}

// Download copies the device state back into the host network, velocity and
// EMA values (each may be nil to skip it). Call inside Do.
func (st *State) Download(s *Stream, velocity, ema [][]float32) error {
	host := make([]float32, st.total)
	if err := s.Download(host, st.W); err != nil {
		return err
	}
	vals, offs := st.hostTensors()
	for i, v := range vals {
		copy(v, host[offs[i]:offs[i]+len(v)])
	}
	if ema != nil && st.E != 0 {
		if err := s.Download(host, st.E); err != nil {
			return err
		}
		for i, v := range ema {
			copy(v, host[offs[i]:offs[i]+len(v)])
		}
	}
	if velocity != nil && st.V != 0 {
		if err := s.Download(host[:st.paramsN], st.V); err != nil {
			return err
		}
		for i, v := range velocity {
			copy(v, host[st.off[i]:st.off[i]+len(v)])
		}
	}
	return nil
}

// Grads downloads the gradients, per Param. Call inside Do.
func (st *State) Grads(s *Stream) ([][]float32, error) {
	host := make([]float32, st.paramsN)
	if err := s.Download(host, st.G); err != nil {
		return nil, err
	}
	out := make([][]float32, len(st.params))
	for i, p := range st.params {
		n := p.Value.Shape().TotalSize()
		out[i] = host[st.off[i] : st.off[i]+n]
	}
	return out, nil
}

// Update runs the SGD step (train/sgd.go) over both parameter regions, then
// the EMA update (when on) over the whole state, all skipped on the device
// when *skip != 0. Call inside Do.
func (st *State) Update(s *Stream, k *Kernels, lr, momentum, decay float64, emaA, emaB float32, skip Ptr) error {
	if err := k.SGDStep(s, st.W, st.V, st.G, st.decayN, float32(lr), float32(momentum), float32(decay), skip); err != nil {
		return err
	}
	if n := st.paramsN - st.decayN; n > 0 {
		if err := k.SGDStep(s, st.W.F32(st.decayN), st.V.F32(st.decayN), st.G.F32(st.decayN), n, float32(lr), float32(momentum), 0, skip); err != nil {
			return err
		}
	}
	if st.E != 0 {
		return k.EMAUpdate(s, st.E, st.W, st.total, emaA, emaB, skip)
	}
	return nil
}
