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
	Devices []int
	SyncBN  bool
	TF32    bool
	// AMP trains in mixed precision: bfloat16 activations, gradients and
	// conv weights for cuDNN, float32 master weights, gradients, BN
	// statistics and sums (see docs/GPU.md). bfloat16 keeps float32's
	// exponent range, so no loss scaling is needed.
	AMP      bool
	EMA      bool
	Momentum float64
	Decay    float64
	// ClassTarget maps class targets (label smoothing); nil: identity.
	ClassTarget func(float64) float64
	// Collective chooses how replicas all-reduce gradients and SyncBN
	// statistics: "" (auto: NCCL when the replicas are on distinct GPUs and
	// libnccl is found, else through host memory), "host", or "nccl"
	// (required; also with one replica, which tests use to run the NCCL
	// path on one GPU). NCCL refuses two ranks on one GPU, so replicas
	// sharing a GPU always go through the host.
	Collective string
	// Graphs replays each training step's forward and backward passes as
	// CUDA graphs (see Net.Graphs).
	Graphs bool
	// MaxNets bounds the input sizes whose Nets (activation buffers) are
	// kept at once (random shapes); the least recently used is freed. Default 2.
	MaxNets int
	// Group, when set, makes this Trainer one rank of a data-parallel job
	// of several processes (see ProcessGroup): Devices then has one device
	// (empty: device 0) and Collective is "" or "nccl". nil: one process.
	Group *ProcessGroup
}

// ProcessGroup is this process's place in a data-parallel job of Size
// processes, one GPU each, joined through NCCL's multi-process bootstrap:
// every process calls NewTrainer with the same ID (made once, by one
// process, with NewNCCLUniqueID, and handed to the others out of band: a
// file, an environment variable, a socket) and its own Rank, and
// NewTrainer's ncclCommInitRank(comm, Size, ID, Rank) blocks until all Size
// processes have joined. Each step, every process trains on its own shard
// of the global batch; the gradients are summed over the processes and
// scaled to their mean, the loss terms are summed, SyncBN statistics are
// all-reduced over the processes, and every rank skips the update when any
// rank's loss or gradient was not finite, so the replicas stay identical.
// A rank that fails should call Trainer.Abort on the others' behalf (or
// they on theirs: a timeout), so that no rank waits forever in a
// collective.
//
// This path has been compiled and its argument checks tested, but it has
// not yet run on a device: no multi-process run on GPUs has been made.
type ProcessGroup struct {
	Rank, Size int
	ID         NCCLUniqueID
}

// checkGroup refuses a ProcessGroup configuration NewTrainer cannot run,
// before any device or library is touched.
func checkGroup(o TrainerOptions) error {
	g := o.Group
	if g == nil {
		return nil
	}
	if g.Size < 1 || g.Rank < 0 || g.Rank >= g.Size {
		return fmt.Errorf("process group: rank %d of %d is out of range (want 0 <= Rank < Size)", g.Rank, g.Size)
	}
	if len(o.Devices) > 1 {
		return fmt.Errorf("process group rank %d of %d: %d devices %v, but a rank of a process group drives one device "+
			"(run one process per GPU, or one process with Devices and no Group)", g.Rank, g.Size, len(o.Devices), o.Devices)
	}
	if o.Collective != "" && o.Collective != "nccl" {
		return fmt.Errorf("process group rank %d of %d: collective %q: the processes of a group reduce through NCCL (\"\" or \"nccl\")",
			g.Rank, g.Size, o.Collective)
	}
	return nil
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
	// comms (NCCL), one rank per replica, or nil: through the host.
	comms []*Comm
	// collective describes how replicas are reduced (Describe).
	collective string
	// Steps counts the steps run.
	Steps int
	// KeepInput (benchmarks) uploads each input size's first batch once and
	// trains on it again and again (see Net.KeepInput).
	KeepInput bool
	pending   *launched
}

type gpuReplica struct {
	dev   *Device
	s     *Stream
	k     *Kernels
	dnn   *DNN
	st    *State
	nets  map[model.Size]*Net
	sizes []model.Size // most recently used last
	sync  *SyncBN
}

// NewTrainer opens the devices, compiles the kernels and allocates each
// replica's state (the weights are uploaded by Load).
func NewTrainer(net *model.Network, o TrainerOptions) (*Trainer, error) {
	if err := checkGroup(o); err != nil {
		return nil, err
	}
	if len(o.Devices) == 0 {
		o.Devices = []int{0}
	}
	if o.MaxNets <= 0 {
		o.MaxNets = 2
	}
	t := &Trainer{net: net, o: o}
	if err := t.chooseCollective(); err != nil {
		return nil, err
	}
	if o.SyncBN && len(o.Devices) > 1 && t.comms == nil {
		t.grp = model.NewSyncGroup(len(o.Devices))
	}
	for i, ord := range o.Devices {
		d, err := Open(ord)
		if err != nil {
			t.Close()
			return nil, err
		}
		r := &gpuReplica{dev: d, nets: map[model.Size]*Net{}}
		switch {
		case o.SyncBN && t.comms != nil:
			r.sync = &SyncBN{comm: t.comms[i]}
		case t.grp != nil:
			r.sync = NewSyncBN(t.grp.Member(i))
		}
		err = d.Do(func() error {
			var err error
			if r.s, err = d.NewStream(); err != nil {
				return err
			}
			if r.k, err = LoadKernelsAct(d, o.AMP); err != nil {
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

// chooseCollective sets up NCCL per o.Collective (see TrainerOptions).
func (t *Trainer) chooseCollective() error {
	devs := t.o.Devices
	if g := t.o.Group; g != nil {
		c, err := NewCommRank(devs[0], g.Size, g.Rank, g.ID)
		if err != nil {
			return fmt.Errorf("joining the process group: %w", err)
		}
		t.comms = []*Comm{c}
		v, _ := NCCLVersion()
		t.collective = fmt.Sprintf("by NCCL %s over %d processes (this one rank %d)", ncclVersionString(v), g.Size, g.Rank)
		return nil
	}
	distinct := map[int]bool{}
	for _, d := range devs {
		distinct[d] = true
	}
	switch t.o.Collective {
	case "host":
		t.collective = "through host memory (asked for)"
		return nil
	case "nccl":
		comms, err := NewComms(devs)
		if err != nil {
			return fmt.Errorf("NCCL required but unusable: %w", err)
		}
		t.comms = comms
	case "":
		if len(devs) < 2 {
			return nil
		}
		if len(distinct) < len(devs) {
			t.collective = "through host memory (replicas share a GPU: NCCL refuses two ranks on one device)"
			return nil
		}
		comms, err := NewComms(devs)
		if err != nil {
			t.collective = fmt.Sprintf("through host memory (NCCL not used: %v)", err)
			return nil
		}
		t.comms = comms
	default:
		return fmt.Errorf("collective %q: must be \"\", \"host\" or \"nccl\"", t.o.Collective)
	}
	v, _ := NCCLVersion()
	t.collective = fmt.Sprintf("by NCCL %s", ncclVersionString(v))
	return nil
}

// Describe names the devices, e.g. "replica 0 on cuda:0 (NVIDIA H100 ...)",
// and how the replicas' gradients are all-reduced.
func (t *Trainer) Describe() string {
	var parts []string
	for i, r := range t.reps {
		parts = append(parts, fmt.Sprintf("replica %d on %s", i, r.dev))
	}
	d := strings.Join(parts, "; ")
	if len(t.reps) > 1 || t.comms != nil {
		d += "; gradients and SyncBN statistics all-reduced " + t.collective
	}
	return d
}

// Close frees everything on the devices.
func (t *Trainer) Close() {
	for _, r := range t.reps {
		if r != nil && r.s != nil {
			r.dev.Do(func() error { return r.s.Sync() }) // NCCL's kernels done before Destroy
		}
	}
	for _, c := range t.comms {
		c.Destroy()
	}
	t.comms = nil
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
func (t *Trainer) netFor(r *gpuReplica, n int, size model.Size) (*Net, error) {
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
	nt, err := NewNet(r.dev, r.s, r.k, r.dnn, t.net, r.st, n, size, true, NetOptions{TF32: t.o.TF32, Sync: r.sync, BF16: t.o.AMP})
	if err != nil {
		return nil, fmt.Errorf("building the network for input size %s on %s: %w", size, r.dev, err)
	}
	nt.Graphs = t.o.Graphs
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
// gradient was not finite (the weights are then unchanged). Step is Launch
// then Finish.
func (t *Trainer) Step(images []float32, size model.Size, truths [][]model.Truth, lr float64, emaA, emaB float32) (model.LossParts, bool, error) {
	if err := t.Launch(images, size, truths, lr, emaA, emaB); err != nil {
		return model.LossParts{}, false, err
	}
	return t.Finish()
}

// Launch starts a step (see Step) on every replica and returns without
// waiting for the devices (with one replica, the update included); Finish
// waits and returns its result. Between the two, Stage can send the next
// batch's images, so that their copy overlaps this step.
func (t *Trainer) Launch(images []float32, size model.Size, truths [][]model.Truth, lr float64, emaA, emaB float32) error {
	if t.pending != nil {
		return errors.New("gpu.Trainer: Launch before the previous step's Finish")
	}
	R := len(t.reps)
	n := len(truths)
	if n%R != 0 {
		return fmt.Errorf("batch of %d images is not divisible by %d replicas", n, R)
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
				// step was not finite, without waiting for the host. (With
				// NCCL forced, the one-rank all-reduce runs too: tests.)
				if t.o.Group != nil {
					if err := t.reduceGroup(r, nt); err != nil {
						return err
					}
				} else if t.comms != nil {
					if err := t.comms[0].AllReduceSum(r.s, r.st.G, r.st.paramsN, false); err != nil {
						return err
					}
				}
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
			return err
		}
	}
	t.pending = &launched{nets: nets, lr: lr, emaA: emaA, emaB: emaB}
	return nil
}

// launched is a step started by Launch and not yet finished.
type launched struct {
	nets       []*Net
	lr         float64
	emaA, emaB float32
}

// Stage sends images, a later batch of the given input size (split over the
// replicas as Launch splits it), to the devices on copy streams; the Launch
// that gets the same slice uses them without copying again. It only stages
// for input sizes that already have their buffers (it never builds or frees a
// Net while a step runs). Errors are the copies' (the batch is still usable:
// Launch then copies it itself).
func (t *Trainer) Stage(images []float32, size model.Size, n int) error {
	R := len(t.reps)
	if t.KeepInput || n%R != 0 || n == 0 {
		return nil
	}
	per, plane := n/R, len(images)/n
	for i, r := range t.reps {
		nt, ok := r.nets[size]
		if !ok || nt.N != per {
			continue
		}
		if err := r.dev.Do(func() error { return nt.Stage(images[i*per*plane : (i+1)*per*plane]) }); err != nil {
			return err
		}
	}
	return nil
}

// Finish waits for the step started by Launch and returns its loss and
// whether it was skipped (see Step). With several replicas it averages the
// gradients and updates every replica.
func (t *Trainer) Finish() (model.LossParts, bool, error) {
	p := t.pending
	if p == nil {
		return model.LossParts{}, false, errors.New("gpu.Trainer: Finish without Launch")
	}
	t.pending = nil
	R := len(t.reps)
	var loss model.LossParts
	bad := false
	for i, r := range t.reps {
		var l model.LossParts
		var b bool
		err := r.dev.Do(func() error {
			var err error
			l, b, err = p.nets[i].LossResult()
			return err
		})
		if err != nil {
			return model.LossParts{}, false, err
		}
		loss.Add(l)
		bad = bad || b
	}
	if R == 1 {
		if g := t.o.Group; g != nil {
			// The loss terms are the group's sums (reduceGroup): their mean.
			f := 1 / float64(g.Size)
			loss.Obj, loss.XY, loss.WH, loss.Cls = loss.Obj*f, loss.XY*f, loss.WH*f, loss.Cls*f
		}
		return loss, bad, nil
	}
	f := 1 / float64(R)
	loss.Obj, loss.XY, loss.WH, loss.Cls = loss.Obj*f, loss.XY*f, loss.WH*f, loss.Cls*f
	if bad {
		return loss, true, nil
	}
	if t.comms != nil {
		return loss, false, t.allReduceNCCL(p)
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
			return r.st.Update(r.s, r.k, p.lr, t.o.Momentum, t.o.Decay, p.emaA, p.emaB, 0)
		})
		if err != nil {
			return loss, false, err
		}
	}
	return loss, false, nil
}

// allReduceNCCL sums the replicas' gradients with NCCL, scales them to the
// mean and updates every replica: one goroutine per replica, as NCCL needs
// every rank's call at once.
func (t *Trainer) allReduceNCCL(p *launched) error {
	R := len(t.reps)
	errs := make([]error, R)
	var wg sync.WaitGroup
	for i, r := range t.reps {
		wg.Add(1)
		go func(i int, r *gpuReplica) {
			defer wg.Done()
			errs[i] = r.dev.Do(func() error {
				if err := t.comms[i].AllReduceSum(r.s, r.st.G, r.st.paramsN, false); err != nil {
					return err
				}
				if err := r.k.Scale(r.s, r.st.G, r.st.paramsN, float32(1/float64(R))); err != nil {
					return err
				}
				return r.st.Update(r.s, r.k, p.lr, t.o.Momentum, t.o.Decay, p.emaA, p.emaB, 0)
			})
		}(i, r)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reduceGroup runs the collectives of a process group's step on r's stream,
// between the backward pass and the update: the gradients are summed over
// the group and scaled to their mean, the loss terms (double[5]) summed, and
// the step's flag recomputed from the sums (CheckFinite and loss_flag only
// ever set it): a NaN or Inf on any rank makes the sums non-finite on every
// rank, and NCCL gives every rank the same sums, so all ranks skip or apply
// the same update.
func (t *Trainer) reduceGroup(r *gpuReplica, nt *Net) error {
	c := t.comms[0]
	if err := c.AllReduceSum(r.s, r.st.G, r.st.paramsN, false); err != nil {
		return err
	}
	if err := c.AllReduceSum(r.s, nt.loss, 5, true); err != nil {
		return err
	}
	if err := r.k.Scale(r.s, r.st.G, r.st.paramsN, float32(1/float64(c.Ranks))); err != nil {
		return err
	}
	if err := r.k.CheckFinite(r.s, r.st.G, r.st.paramsN, nt.flag); err != nil {
		return err
	}
	return r.k.launch(r.s, "loss_flag", D1(1), D1(32), 0, nt.loss, nt.flag)
}

// Abort aborts the Trainer's NCCL communicators (ncclCommAbort, Comm.Abort)
// and its host sync group, so that a step blocked in a collective, waiting
// for a rank that failed, returns an error instead of hanging. Call it from
// another goroutine than the one running Launch or Finish (on a peer's
// failure, or a timeout); afterwards the Trainer can only be Closed.
func (t *Trainer) Abort() error {
	var errs []error
	for _, c := range t.comms {
		errs = append(errs, c.Abort())
	}
	if t.grp != nil {
		t.grp.Abort()
	}
	return errors.Join(errs...)
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
