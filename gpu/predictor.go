package gpu

import (
	"fmt"

	"github.com/dettrain/dettrain/model"
)

// Predictor runs a network's forward pass on one GPU (inference and eval):
// weights and BN statistics uploaded once, batches of N images in, the YOLO
// heads' raw outputs out.
type Predictor struct {
	r  *gpuReplica
	nt *Net
	// KeepInput (benchmarks): see Net.KeepInput.
	KeepInput bool
	// Graphs replays the forward pass as a CUDA graph (see Net.Graphs);
	// set before the first batch.
	Graphs bool
}

// NewPredictor uploads net to device dev for batches of n images of size x size.
func NewPredictor(net *model.Network, dev, n int, size model.Size, tf32 bool) (*Predictor, error) {
	d, err := Open(dev)
	if err != nil {
		return nil, err
	}
	p := &Predictor{r: &gpuReplica{dev: d}}
	err = d.Do(func() error {
		r := p.r
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
		if r.st, err = NewState(d, net, false, false); err != nil {
			return err
		}
		if err := r.st.Upload(r.s, nil, nil); err != nil {
			return err
		}
		p.nt, err = NewNet(d, r.s, r.k, r.dnn, net, r.st, n, size, false, NetOptions{TF32: tf32})
		return err
	})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("cuda:%d: %w", dev, err)
	}
	return p, nil
}

// Forward runs the network on images (N, C, size, size) and waits for the device.
func (p *Predictor) Forward(images []float32) error {
	if err := p.Launch(images); err != nil {
		return err
	}
	return p.Sync()
}

// Launch starts the network on images without waiting; Sync waits. Between
// the two, Stage can send the next batch (its copy overlaps this one's
// forward pass).
func (p *Predictor) Launch(images []float32) error {
	return p.r.dev.Do(func() error {
		p.nt.KeepInput, p.nt.Graphs = p.KeepInput, p.Graphs
		p.nt.SetInput(images)
		return p.nt.Forward()
	})
}

// Stage sends images, a later batch, to the device on a copy stream (see Net.Stage).
func (p *Predictor) Stage(images []float32) error {
	return p.r.dev.Do(func() error { return p.nt.Stage(images) })
}

// Sync waits for the device.
func (p *Predictor) Sync() error {
	return p.r.dev.Do(func() error { return p.r.s.Sync() })
}

// Heads runs the network on images and returns the heads' raw outputs.
func (p *Predictor) Heads(images []float32) ([]model.HeadOutput, error) {
	var out []model.HeadOutput
	err := p.r.dev.Do(func() error {
		p.nt.Graphs = p.Graphs
		p.nt.SetInput(images)
		if err := p.nt.Forward(); err != nil {
			return err
		}
		var err error
		out, err = p.nt.Heads()
		return err
	})
	return out, err
}

// Describe names the device.
func (p *Predictor) Describe() string { return p.r.dev.String() }

// Memory returns the device bytes held by dettrain, now and at the peak.
func (p *Predictor) Memory() (now, peak int64) { return p.r.dev.Allocated() }

// Close frees the device memory.
func (p *Predictor) Close() {
	if p.nt != nil {
		p.r.nets = map[model.Size]*Net{p.nt.Size: p.nt}
	}
	p.r.free()
}
