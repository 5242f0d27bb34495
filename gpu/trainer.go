package gpu

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dettrain/dettrain/model"
)

// TrainerOptions configure a Trainer.
type TrainerOptions struct {
	// Devices lists the device of each replica (cuda ordinals); two replicas
	// may share a device. Empty: one replica on device 0.
	Devices  []int
	SyncBN   bool
	TF32     bool
	EMA      bool
	Momentum float64
	Decay    float64
	// ClassTarget maps class targets (label smoothing); nil: identity.
	ClassTarget func(float64) float64
	// MaxNets bounds the input sizes whose Nets (activation buffers) are
	// kept at once (random shapes); the least recently used is freed. Default 2.
	MaxNets int
}

// Trainer trains a model.Network on one or more GPU replicas: each replica
// holds the whole state (weights, BN statistics, velocity, EMA) and a Net per
// input size; a step runs every replica's shard, averages the gradients over
// the replicas through host memory (when there are several) and updates each
// replica identically. Replica 0's state is the one Store reads.
type Trainer struct {
	net  *model.Network
	o    TrainerOptions
	reps []*gpuReplica
	grp  *model.SyncGroup
	// Steps counts the steps run.
	Steps int
	// KeepInput (benchmarks) uploads each input size's first batch once and
	// trains on it again and again (see Net.KeepInput).
	KeepInput bool
}

type gpuReplica struct {
	dev   *Device
	s     *Stream
	k     *Kernels
	dnn   *DNN
	st    *State
	nets  map[int]*Net
	sizes []int // most recently used last
	sync  *SyncBN
}

// NewTrainer opens the devices, compiles the kernels and allocates each
// replica's state (the weights are uploaded by Load).
func NewTrainer(net *model.Network, o TrainerOptions) (*Trainer, error) {
	if len(o.Devices) == 0 {
		o.Devices = []int{0}
	}
	if o.MaxNets <= 0 {
		o.MaxNets = 2
	}
	t := &Trainer{net: net, o: o}
	if o.SyncBN && len(o.Devices) > 1 {
		t.grp = model.NewSyncGroup(len(o.Devices))
	}
	for i, ord := range o.Devices {
		d, err := Open(ord)
		if err != nil {
			t.Close()
			return nil, err
		}
		r := &gpuReplica{dev: d, nets: map[int]*Net{}}
		if t.grp != nil {
			r.sync = NewSyncBN(t.grp.Member(i))
		}
		err = d.Do(func() error {
			var err error
			if r.s, err = d.NewStream(); err != nil {
				return err
			}
			if r.k, err = LoadKernels(d); err != nil {
				return err
			}
			if r.dnn, err = NewDNN(r.s); err != nil {
				return err
			}
			r.st, err = NewState(d, net, true, o.EMA)
			return err
		})
		t.reps = append(t.reps, r)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("cuda:%d: %w", ord, err)
		}
	}
	return t, nil
}

// Describe names the devices, e.g. "cuda:0 NVIDIA H100 ... x2 replicas".
func (t *Trainer) Describe() string {
	var parts []string
	for i, r := range t.reps {
		parts = append(parts, fmt.Sprintf("replica %d on %s", i, r.dev))
	}
	return strings.Join(parts, "; ")
}

// Close frees everything on the devices.
func (t *Trainer) Close() {
	for _, r := range t.reps {
		if r != nil {
			r.free()
		}
	}
	t.reps = nil
}

// free releases a replica's Nets, state, cuDNN handle and stream.
func (r *gpuReplica) free() {
	if r.dev == nil {
		return
	}
	r.dev.Do(func() error {
		for _, n := range r.nets {
			n.Free()
		}
		r.nets = nil
		if r.st != nil {
			r.st.Free()
		}
		if r.dnn != nil {
			r.dnn.Close()
		}
		if r.s != nil {
			r.s.Destroy()
		}
		return nil
	})
}

// Load copies the host state to every replica: the network's weights and BN
// statistics, the SGD velocity (per model.Param; nil: zeros) and the EMA
// values (train's EMA order; nil: the weights).
func (t *Trainer) Load(velocity, ema [][]float32) error {
	for _, r := range t.reps {
		if err := r.dev.Do(func() error { return r.st.Upload(r.s, velocity, ema) }); err != nil {
			return err
		}
	}
	return nil
}

// Store copies replica 0's state back to the host network, velocity and EMA
// values (nil to skip).
func (t *Trainer) Store(velocity, ema [][]float32) error {
	r := t.reps[0]
	return r.dev.Do(func() error { return r.st.Download(r.s, velocity, ema) })
}

// net returns replica r's Net for size, building it (and freeing the least
// recently used one beyond MaxNets).
func (t *Trainer) netFor(r *gpuReplica, n, size int) (*Net, error) {
	if nt, ok := r.nets[size]; ok {
		for i, s := range r.sizes {
			if s == size {
				r.sizes = append(append(r.sizes[:i:i], r.sizes[i+1:]...), size)
				break
			}
		}
		return nt, nil
	}
	if len(r.sizes) >= t.o.MaxNets {
		old := r.sizes[0]
		r.nets[old].Free()
		delete(r.nets, old)
		r.sizes = r.sizes[1:]
	}
	nt, err := NewNet(r.dev, r.s, r.k, r.dnn, t.net, r.st, n, size, true, NetOptions{TF32: t.o.TF32, Sync: r.sync})
	if err != nil {
		return nil, fmt.Errorf("building the network for input size %d on %s: %w", size, r.dev, err)
	}
	if f := t.o.ClassTarget; f != nil {
		nt.Smooth0, nt.Smooth1 = f(0), f(1)
	}
	r.nets[size] = nt
	r.sizes = append(r.sizes, size)
	return nt, nil
}

// Step trains on one batch: images (n, C, size, size) with their truths,
// split evenly over the replicas. lr is the learning rate; emaA and emaB the
// EMA coefficients of this update (ignored without EMA). It returns the loss
// (averaged over replicas) and whether the step was skipped because a loss or
// gradient was not finite (the weights are then unchanged).
func (t *Trainer) Step(images []float32, size int, truths [][]model.Truth, lr float64, emaA, emaB float32) (model.LossParts, bool, error) {
	R := len(t.reps)
	n := len(truths)
	if n%R != 0 {
		return model.LossParts{}, false, fmt.Errorf("batch of %d images is not divisible by %d replicas", n, R)
	}
	per := n / R
	plane := len(images) / n
	t.Steps++
	nets := make([]*Net, R)
	errs := make([]error, R)
	run := func(i int) {
		r := t.reps[i]
		errs[i] = r.dev.Do(func() error {
			nt, err := t.netFor(r, per, size)
			if err != nil {
				return err
			}
			nets[i] = nt
			nt.KeepInput = t.KeepInput
			nt.SetInput(images[i*per*plane : (i+1)*per*plane])
			if err := nt.SetTruths(truths[i*per : (i+1)*per]); err != nil {
				return err
			}
			if err := nt.Step(); err != nil {
				return err
			}
			if R == 1 {
				// One replica: the update is skipped on the device when the
				// step was not finite, without waiting for the host.
				return r.st.Update(r.s, r.k, lr, t.o.Momentum, t.o.Decay, emaA, emaB, nt.Flag())
			}
			return nil
		})
		if errs[i] != nil && t.grp != nil {
			t.grp.Abort()
		}
	}
	if R == 1 {
		run(0)
	} else {
		var wg sync.WaitGroup
		for i := range t.reps {
			wg.Add(1)
			go func(i int) { defer wg.Done(); run(i) }(i)
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, model.ErrAborted) {
			if t.grp != nil {
				t.grp.Reset()
			}
			return model.LossParts{}, false, err
		}
	}
	var loss model.LossParts
	bad := false
	for i, r := range t.reps {
		var l model.LossParts
		var b bool
		err := r.dev.Do(func() error {
			var err error
			l, b, err = nets[i].LossResult()
			return err
		})
		if err != nil {
			return model.LossParts{}, false, err
		}
		loss.Add(l)
		bad = bad || b
	}
	if R == 1 {
		return loss, bad, nil
	}
	f := 1 / float64(R)
	loss.Obj, loss.XY, loss.WH, loss.Cls = loss.Obj*f, loss.XY*f, loss.WH*f, loss.Cls*f
	if bad {
		return loss, true, nil
	}
	// Average the gradients over the replicas through the host, in replica
	// order (deterministic), then update every replica identically.
	sum := make([]float32, t.reps[0].st.paramsN)
	tmp := make([]float32, len(sum))
	for i, r := range t.reps {
		dst := sum
		if i > 0 {
			dst = tmp
		}
		if err := r.dev.Do(func() error { return r.s.Download(dst, r.st.G) }); err != nil {
			return loss, false, err
		}
		if i > 0 {
			for j, v := range tmp {
				sum[j] += v
			}
		}
	}
	for j := range sum {
		sum[j] *= float32(f)
	}
	for _, r := range t.reps {
		err := r.dev.Do(func() error {
			if err := r.s.Upload(r.st.G, sum); err != nil {
				return err
			}
			return r.st.Update(r.s, r.k, lr, t.o.Momentum, t.o.Decay, emaA, emaB, 0)
		})
		if err != nil {
			return loss, false, err
		}
	}
	return loss, false, nil
}

// Grads downloads replica 0's gradients of the last step (tests).
func (t *Trainer) Grads() ([][]float32, error) {
	r := t.reps[0]
	var g [][]float32
	err := r.dev.Do(func() error {
		var err error
		g, err = r.st.Grads(r.s)
		return err
	})
	return g, err
}

// Memory returns the device bytes held by dettrain on replica 0's device, now and at the peak.
func (t *Trainer) Memory() (now, peak int64) { return t.reps[0].dev.Allocated() }
