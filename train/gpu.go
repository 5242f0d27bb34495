package train

import (
	"fmt"
	"math"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/gpu"
	"github.com/dettrain/dettrain/model"
)

// GPUOptions select GPU training (config train.device / train.devices).
type GPUOptions struct {
	// Devices lists the cuda ordinal of each replica; with Options.Replicas
	// > 1 and one device, every replica runs on that device.
	Devices []int
	// TF32 lets cuDNN's float32 convolutions use TF32 tensor cores (as
	// PyTorch does by default); off, they are exact float32.
	TF32 bool
	// AMP: mixed precision (bfloat16 activations; gpu.TrainerOptions.AMP).
	AMP bool
}

// gpuStepper is the GPU backend (package gpu): the whole step, the SGD and
// EMA updates included, runs on the devices; the host model is refreshed
// only by Store.
type gpuStepper struct {
	tr  *gpu.Trainer
	opt *SGD
	ema *EMA
}

func newGPUStepper(net *model.Network, o Options, opt *SGD, ema *EMA) (*gpuStepper, error) {
	devs := o.GPU.Devices
	if len(devs) == 0 {
		devs = []int{0}
	}
	if len(devs) == 1 && o.Replicas > 1 {
		for len(devs) < o.Replicas {
			devs = append(devs, devs[0])
		}
	}
	if o.Replicas > 1 && len(devs) != o.Replicas {
		return nil, fmt.Errorf("train.replicas is %d but train.devices lists %d devices", o.Replicas, len(devs))
	}
	to := gpu.TrainerOptions{Devices: devs, SyncBN: o.SyncBN, TF32: o.GPU.TF32, AMP: o.GPU.AMP, Graphs: true, EMA: ema != nil,
		Momentum: opt.Momentum, Decay: opt.Decay, ClassTarget: o.ClassTarget, MaxNets: o.MaxGraphs}
	if o.Ranks != nil {
		g, err := ncclGroup(o.Ranks)
		if err != nil {
			return nil, err
		}
		to.Group = g
	}
	tr, err := gpu.NewTrainer(net, to)
	if err != nil {
		return nil, err
	}
	g := &gpuStepper{tr: tr, opt: opt, ema: ema}
	if err := g.Load(); err != nil {
		tr.Close()
		return nil, err
	}
	return g, nil
}

// Step trains on b on the GPU. A non-finite step is skipped on the device.
// next's batch, when it gives one, is sent to the device while the step
// runs (the copy overlaps the step).
func (g *gpuStepper) Step(b *data.Batch, _ int, lr float64, next func() *data.Batch) (model.LossParts, string, error) {
	ema := g.ema
	var ea, eb float32
	if ema != nil {
		ea, eb = ema.next()
	}
	if err := g.tr.Launch(b.Images, model.Size{W: b.W, H: b.H}, truths(b, 0, b.N), lr, ea, eb); err != nil {
		return model.LossParts{}, "", err
	}
	if next != nil {
		if nb := next(); nb != nil {
			if err := g.tr.Stage(nb.Images, model.Size{W: nb.W, H: nb.H}, nb.N); err != nil {
				g.tr.Finish()
				return model.LossParts{}, "", err
			}
		}
	}
	loss, bad, err := g.tr.Finish()
	if err != nil {
		return loss, "", err
	}
	if bad {
		if ema != nil {
			ema.updates--
		}
		if v := loss.Total(); math.IsNaN(v) || math.IsInf(v, 0) {
			return loss, fmt.Sprintf("the loss is %v", v), nil
		}
		return loss, "a gradient is not finite", nil
	}
	return loss, "", nil
}

// Load copies the host model, velocity and EMA to the devices.
func (g *gpuStepper) Load() error { return g.tr.Load(g.opt.velocity, g.emaVals()) }

// Store copies the devices' model, velocity and EMA back to the host.
func (g *gpuStepper) Store() error { return g.tr.Store(g.opt.velocity, g.emaVals()) }

func (g *gpuStepper) emaVals() [][]float32 {
	if g.ema == nil {
		return nil
	}
	return g.ema.vals
}

func (g *gpuStepper) Describe() string { return g.tr.Describe() }
func (g *gpuStepper) Close()           { g.tr.Close() }

// ncclGroup is NCCL's documented bootstrap across processes: rank 0 makes
// the unique id (ncclGetUniqueId), MPI broadcasts it, and every rank joins
// with ncclCommInitRank (inside gpu.NewTrainer). Not yet run on GPUs.
func ncclGroup(r Ranks) (*gpu.ProcessGroup, error) {
	g := &gpu.ProcessGroup{Rank: r.Rank(), Size: r.Size()}
	if r.Rank() == 0 {
		id, err := gpu.NewNCCLUniqueID()
		if err != nil {
			return nil, err
		}
		g.ID = id
	}
	if err := r.Bcast(g.ID[:], 0); err != nil {
		return nil, fmt.Errorf("broadcasting NCCL's unique id: %w", err)
	}
	return g, nil
}
