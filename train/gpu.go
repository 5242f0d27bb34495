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

// gpuRun is the GPU side of a training run.
type gpuRun struct {
	tr *gpu.Trainer
}

func newGPURun(net *model.Network, o Options, opt *SGD, ema *EMA) (*gpuRun, error) {
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
	tr, err := gpu.NewTrainer(net, gpu.TrainerOptions{Devices: devs, SyncBN: o.SyncBN, TF32: o.GPU.TF32, AMP: o.GPU.AMP, Graphs: true, EMA: ema != nil,
		Momentum: opt.Momentum, Decay: opt.Decay, ClassTarget: o.ClassTarget, MaxNets: o.MaxGraphs})
	if err != nil {
		return nil, err
	}
	g := &gpuRun{tr: tr}
	if err := g.load(opt, ema); err != nil {
		tr.Close()
		return nil, err
	}
	return g, nil
}

// step trains on b on the GPU, the SGD and EMA updates included. bad is
// non-empty when the loss or a gradient was not finite (the step was then
// skipped on the device). next, when it gives a batch, is called while the
// step runs and that batch's images are sent to the device meanwhile (the
// copy overlaps the step).
func (g *gpuRun) step(b *data.Batch, lr float64, ema *EMA, next func() *data.Batch) (model.LossParts, string, error) {
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

// load copies the host model, velocity and EMA to the devices (nil g: no-op).
func (g *gpuRun) load(opt *SGD, ema *EMA) error {
	if g == nil {
		return nil
	}
	var ev [][]float32
	if ema != nil {
		ev = ema.vals
	}
	return g.tr.Load(opt.velocity, ev)
}

// store copies the devices' model, velocity and EMA back to the host (nil g: no-op).
func (g *gpuRun) store(opt *SGD, ema *EMA) error {
	if g == nil {
		return nil
	}
	var ev [][]float32
	if ema != nil {
		ev = ema.vals
	}
	return g.tr.Store(opt.velocity, ev)
}

func (g *gpuRun) close() {
	if g != nil {
		g.tr.Close()
	}
}
