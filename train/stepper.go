package train

import (
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/model"
)

// Stepper is one backend's training step: the CPU replicas (replica.go) or
// the GPUs (gpu.go). The loop in train.go sees only this interface.
//
// The host model (net, SGD velocity, EMA) is the one the checkpoints,
// weights and evaluations read. A backend that keeps its own copy (the GPU)
// copies it back in Store and takes the host's in Load; the CPU backend
// trains the host model itself and both are no-ops.
type Stepper interface {
	// Step trains on b at iteration iter with learning rate lr: forward
	// and backward on every replica's shard, the mean of the gradients
	// over the replicas, and, when the loss and every gradient are finite,
	// the SGD update and the EMA. bad names the first non-finite value, or
	// is ""; a bad step changes no weights. next, when it gives a batch,
	// may be called while the step runs (the GPU sends that batch's images
	// meanwhile); a backend without overlap ignores it.
	Step(b *data.Batch, iter int, lr float64, next func() *data.Batch) (loss model.LossParts, bad string, err error)
	// Load copies the host model, velocity and EMA to the backend (after a
	// rollback).
	Load() error
	// Store copies the backend's model, velocity and EMA to the host
	// (before a checkpoint, an evaluation or writing weights).
	Store() error
	// Describe says where training runs, for the log.
	Describe() string
	Close()
}

// seams are a run's test hooks; production runs have none.
type seams struct {
	// fault may poison a CPU step before its finite check (tests inject
	// NaN, or cancel the run at an iteration).
	fault func(iter int, loss *model.LossParts, grads [][]float32)
	// built, when set, receives the number of graph constructions.
	built *int
}

// newStepper picks the backend for o: the GPU when o.GPU is set, else the
// CPU replicas.
func newStepper(net *model.Network, o Options, opt *SGD, ema *EMA, s seams) (Stepper, error) {
	if o.GPU != nil {
		return newGPUStepper(net, o, opt, ema)
	}
	return newCPUStepper(net, o, opt, ema, s)
}
