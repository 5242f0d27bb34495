// Package infer runs a trained network over images: batches in, detections
// in original-image pixels out, after confidence threshold and per-class NMS.
// Training's periodic evaluation, `dettrain eval` and `dettrain predict` all
// go through it.
package infer

import (
	"errors"
	"fmt"
	"io"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/gpu"
	"github.com/dettrain/dettrain/model"
)

// Options are the post-processing settings.
type Options struct {
	Conf    float64 // minimum score obj*cls
	NMS     float64 // IoU above which a lower-scored box of the same class is dropped
	MaxDets int     // per image, after NMS
	// BestClass keeps only each box's best class (OpenCV's DNN
	// post-processing) instead of every class above Conf (darknet's).
	BestClass bool
	// GPU, when set, runs the network on an NVIDIA GPU (package gpu); the
	// decoding, thresholds and NMS stay on the host.
	GPU *GPU
}

// GPU selects the device of a GPU Predictor.
type GPU struct {
	Device int  // cuda ordinal
	TF32   bool // TF32 convolutions
}

// Predictor holds an inference graph for one batch size and input size.
type Predictor struct {
	net  *model.Network
	fwd  forward
	n    int
	size model.Size
	opts Options
}

// forward is one backend's inference: the YOLO heads' raw outputs of a
// batch (short batches padded with zero images).
type forward interface {
	heads(images []float32) ([]model.HeadOutput, error)
	close()
}

// cpuForward is the CPU backend: a model.Graph.
type cpuForward struct{ g *model.Graph }

func (f cpuForward) heads(images []float32) ([]model.HeadOutput, error) {
	in := f.g.Input()
	copy(in, images)
	clear(in[len(images):])
	if err := f.g.Run(); err != nil {
		return nil, err
	}
	return f.g.Heads(), nil
}

func (f cpuForward) close() { f.g.Close() }

// gpuForward is the GPU backend (package gpu).
type gpuForward struct {
	p  *gpu.Predictor
	in []float32 // a full batch, for short ones
}

func (f gpuForward) heads(images []float32) ([]model.HeadOutput, error) {
	in := images
	if len(in) < len(f.in) {
		copy(f.in, images)
		clear(f.in[len(images):])
		in = f.in
	}
	return f.p.Heads(in)
}

func (f gpuForward) close() { f.p.Close() }

// New builds an inference graph for batches of n images of size.W x size.H
// (on the GPU when o.GPU is set: the network's current weights are uploaded).
func New(net *model.Network, n int, size model.Size, o Options) (*Predictor, error) {
	if o.GPU != nil {
		gp, err := gpu.NewPredictor(net, o.GPU.Device, n, size, o.GPU.TF32)
		if err != nil {
			return nil, err
		}
		gp.Graphs = true
		fwd := gpuForward{p: gp, in: make([]float32, n*net.Channels*size.W*size.H)}
		return &Predictor{net: net, fwd: fwd, n: n, size: size, opts: o}, nil
	}
	g, err := net.NewGraph(n, size, false)
	if err != nil {
		return nil, err
	}
	return &Predictor{net: net, fwd: cpuForward{g}, n: n, size: size, opts: o}, nil
}

// Close releases the graph (or the device memory).
func (p *Predictor) Close() { p.fwd.close() }

// Batch predicts a batch (b.N <= the graph's batch size; missing images are
// zero). Detection.Image is the batch's Index of the image, and boxes are
// scaled to the original image size and clipped to it.
func (p *Predictor) Batch(b *data.Batch) ([]eval.Detection, error) {
	if b.N > p.n || b.H != p.size.H || b.W != p.size.W {
		return nil, fmt.Errorf("batch of %d images %dx%d does not fit the graph of %d images %dx%d", b.N, b.W, b.H, p.n, p.size.W, p.size.H)
	}
	heads, err := p.fwd.heads(b.Images)
	if err != nil {
		return nil, err
	}
	var out []eval.Detection
	for i := 0; i < b.N; i++ {
		sx := float64(b.OrigW[i]) / float64(p.size.W)
		sy := float64(b.OrigH[i]) / float64(p.size.H)
		var dets []eval.Detection
		decode := p.net.Decode
		if p.opts.BestClass {
			decode = p.net.DecodeBest
		}
		for _, d := range decode(heads, i, p.size, p.opts.Conf) {
			bb := d.Box.Scale(sx, sy).Clip(float64(b.OrigW[i]), float64(b.OrigH[i]))
			if bb.Area() <= 0 {
				continue
			}
			dets = append(dets, eval.Detection{Image: b.Index[i], Class: d.Class, Score: d.Score, Box: bb})
		}
		out = append(out, eval.NMS(dets, p.opts.NMS, p.opts.MaxDets)...)
	}
	return out, nil
}

// Batches is what a data.Loader provides.
type Batches interface {
	Epoch(e int)
	Next() (*data.Batch, error)
}

// Dataset predicts every batch of one pass of src (a non-shuffled loader).
func (p *Predictor) Dataset(src Batches) ([]eval.Detection, error) {
	src.Epoch(0)
	var all []eval.Detection
	for {
		b, err := src.Next()
		if errors.Is(err, io.EOF) {
			return all, nil
		}
		if err != nil {
			return nil, err
		}
		dets, err := p.Batch(b)
		if err != nil {
			return nil, err
		}
		all = append(all, dets...)
	}
}

// GroundTruth lists a data set's objects for eval.VOC (difficult ones flagged).
func GroundTruth(ds *data.Dataset) []eval.GroundTruth {
	var gts []eval.GroundTruth
	for i, s := range ds.Samples {
		for _, o := range s.Objects {
			gts = append(gts, eval.GroundTruth{Image: i, Class: o.Class, Box: o.Box, Difficult: o.Difficult})
		}
	}
	return gts
}
