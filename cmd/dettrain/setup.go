package main

import (
	"math"
	"runtime"

	"github.com/dettrain/dettrain/blas"
	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/tricks"
)

// This file turns a resolved config into the pieces the commands need. Each
// package gets only its own section's values.

func layout(c *config.Config) data.VOCLayout {
	return data.VOCLayout{Root: c.Data.Root, Images: c.Data.Images, Annotations: c.Data.Annotations, Splits: c.Data.Splits, AllowOutside: c.Data.AllowOutside}
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
