package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"

	"github.com/dettrain/dettrain/blas"
	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/infer"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/tricks"
)

// This file turns a resolved config into the pieces the commands need. Each
// package gets only its own section's values.

func layout(c *config.Config) data.VOCLayout {
	return data.VOCLayout{Root: c.Data.Root, Images: c.Data.Images, Annotations: c.Data.Annotations, Splits: c.Data.Splits}
}

// loadSplit reads one split and the header of every image; with problems
// it refuses (unless data.skip_bad) and lists them.
func loadSplit(c *config.Config, split string, names []string, errw io.Writer) (*data.Dataset, error) {
	ds, rep, err := data.Check(layout(c), split, names, image.OpenCV{})
	if err != nil {
		return nil, err
	}
	if len(rep.Problems) > 0 {
		var b strings.Builder
		for i, p := range rep.Problems {
			if i == 20 {
				fmt.Fprintf(&b, "\n  ... and %d more", len(rep.Problems)-20)
				break
			}
			fmt.Fprintf(&b, "\n  %s", p)
		}
		if !c.Data.SkipBad {
			return nil, fmt.Errorf("split %q of %s has %d problems (set data.skip_bad: true to skip those images):%s", split, c.Data.Root, len(rep.Problems), b.String())
		}
		fmt.Fprintf(errw, "warning: skipping %d images of split %q with problems:%s\n", len(rep.Problems), split, b.String())
	}
	if len(ds.Samples) == 0 {
		return nil, fmt.Errorf("split %q of %s has no usable images", split, c.Data.Root)
	}
	return ds, nil
}

// buildNetwork reads the cfg, fits the heads to the class count and loads
// or initialises the weights.
func buildNetwork(cfgPath, weights string, classes int, seed int64) (*model.Network, error) {
	cfg, err := model.ReadCfg(cfgPath)
	if err != nil {
		return nil, err
	}
	net, err := model.NewNetwork(cfg, classes)
	if err != nil {
		return nil, err
	}
	net.Init(seed)
	if weights != "" {
		if _, err := net.LoadWeights(weights); err != nil {
			return nil, err
		}
	}
	return net, nil
}

func schedule(t config.Train, itersPerEpoch int) tricks.Schedule {
	total := t.Epochs * itersPerEpoch
	s := tricks.Schedule{Base: t.LR, Kind: t.Schedule, Total: total, Final: t.FinalLR, Factor: 0.1,
		Warmup: int(math.Round(t.WarmupEpochs * float64(itersPerEpoch)))}
	for _, f := range t.Steps {
		s.Steps = append(s.Steps, int(math.Round(f*float64(total))))
	}
	return s
}

// setThreads sets OpenBLAS's threads: train.threads, or the CPUs shared
// among the replicas (each replica's GEMMs then run side by side instead of
// fighting over the same cores).
func setThreads(t config.Train) {
	n := t.Threads
	if n == 0 && t.Replicas > 1 {
		n = max(1, runtime.NumCPU()/t.Replicas)
	}
	blas.SetThreads(n)
}

// evaluate scores the network on ds at the eval size and returns the VOC result.
func evaluate(net *model.Network, ds *data.Dataset, c *config.Config, names []string) (eval.Result, error) {
	const batch = 8
	p, err := infer.New(net, batch, c.Eval.Size, infer.Options{Conf: c.Eval.Conf, NMS: c.Eval.NMS, MaxDets: c.Eval.MaxDets})
	if err != nil {
		return eval.Result{}, err
	}
	defer p.Close()
	l := data.NewLoader(ds, image.OpenCV{}, data.LoaderOptions{Batch: batch, Size: c.Eval.Size, Workers: c.Data.Workers})
	defer l.Close()
	dets, err := p.Dataset(l)
	if err != nil {
		return eval.Result{}, err
	}
	return eval.VOC(dets, infer.GroundTruth(ds), names, 0.5), nil
}
