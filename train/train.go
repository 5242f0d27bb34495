// Package train is dettrain's training loop: batches in, SGD steps on a
// model.Network, a JSON log line per logged iteration and per epoch, periodic
// evaluation, and darknet weights written atomically.
package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"time"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/tricks"
)

// Batches is what training consumes: a data.Loader, or anything that yields
// batches epoch after epoch.
type Batches interface {
	Epoch(e int)
	Next() (*data.Batch, error)
	BatchesPerEpoch() int
}

// Options of one run.
type Options struct {
	Epochs, Batch, Size int
	Momentum, Decay     float64
	Schedule            tricks.Schedule // Total and Warmup in iterations
	EvalInterval        int             // epochs; 0 = only after the last epoch
	LogInterval         int             // iterations
	WeightsDir          string          // last.weights and best.weights go here
}

// Evaluator scores the current weights (mAP); higher is better.
type Evaluator func(epoch int) (float64, error)

// Summary is what a finished (or stopped) run reports.
type Summary struct {
	Iterations int
	Epochs     int
	BestMetric float64
	BestEpoch  int
	LastMetric float64
	Elapsed    time.Duration
	ImagesPerS float64
}

// Record is one line of log.jsonl.
type Record struct {
	Kind      string   `json:"kind"` // "iter" or "epoch"
	Epoch     int      `json:"epoch"`
	Iter      int      `json:"iter"`
	LR        float64  `json:"lr,omitempty"`
	Loss      float64  `json:"loss,omitempty"`
	Obj       float64  `json:"loss_obj,omitempty"`
	XY        float64  `json:"loss_xy,omitempty"`
	WH        float64  `json:"loss_wh,omitempty"`
	Cls       float64  `json:"loss_cls,omitempty"`
	ImgPerSec float64  `json:"img_per_s,omitempty"`
	MAP       *float64 `json:"map50,omitempty"`
	Seconds   float64  `json:"seconds"`
}

// Run trains net on src. It stops early, after finishing the current step
// and saving last.weights, when ctx is cancelled.
func Run(ctx context.Context, net *model.Network, src Batches, o Options, evaluate Evaluator, human io.Writer, jsonl io.Writer) (Summary, error) {
	var sum Summary
	per := src.BatchesPerEpoch()
	if per < 1 {
		return sum, fmt.Errorf("the training split has fewer images than one batch of %d", o.Batch)
	}
	g, err := net.NewGraph(o.Batch, o.Size, true)
	if err != nil {
		return sum, err
	}
	defer g.Close()
	opt := NewSGD(net.Params(), o.Momentum, o.Decay)
	enc := json.NewEncoder(jsonl)
	start := time.Now()
	sum.BestMetric = -1
	last := filepath.Join(o.WeightsDir, "last.weights")
	best := filepath.Join(o.WeightsDir, "best.weights")
	it := 0
	var seen uint64
	for epoch := 0; epoch < o.Epochs; epoch++ {
		src.Epoch(epoch)
		var ep model.LossParts
		steps := 0
		tick := time.Now()
		for {
			b, err := src.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return sum, err
			}
			copy(g.Input(), b.Images)
			g.SetTruths(truths(b))
			if err := g.Run(); err != nil {
				return sum, fmt.Errorf("iteration %d: %w", it, err)
			}
			loss := g.Loss()
			if math.IsNaN(loss.Total()) || math.IsInf(loss.Total(), 0) {
				return sum, fmt.Errorf("iteration %d: the loss is %v (obj %v, xy %v, wh %v, cls %v): lower train.lr or raise train.warmup_epochs; last.weights holds the last finite weights",
					it, loss.Total(), loss.Obj, loss.XY, loss.WH, loss.Cls)
			}
			grads, err := g.Grads()
			if err != nil {
				return sum, err
			}
			lr := o.Schedule.LR(it)
			opt.Step(grads, lr)
			for _, g := range grads { // the tape machine accumulates into them
				clear(g)
			}
			ep.Add(loss)
			steps++
			it++
			seen += uint64(b.N)
			if it%o.LogInterval == 0 || it == 1 {
				ips := float64(b.N*steps) / time.Since(tick).Seconds()
				rec := Record{Kind: "iter", Epoch: epoch, Iter: it, LR: lr, Loss: loss.Total(), Obj: loss.Obj, XY: loss.XY, WH: loss.WH, Cls: loss.Cls,
					ImgPerSec: ips, Seconds: time.Since(start).Seconds()}
				if err := enc.Encode(rec); err != nil {
					return sum, err
				}
				fmt.Fprintf(human, "epoch %d/%d iter %d lr %.5f loss %.3f (obj %.3f xy %.3f wh %.3f cls %.3f) %.1f img/s\n",
					epoch+1, o.Epochs, it, lr, loss.Total(), loss.Obj, loss.XY, loss.WH, loss.Cls, ips)
			}
			if ctx.Err() != nil {
				break
			}
		}
		sum.Iterations, sum.Epochs = it, epoch+1
		if err := net.WriteWeights(last, seen); err != nil {
			return sum, err
		}
		rec := Record{Kind: "epoch", Epoch: epoch, Iter: it, Seconds: time.Since(start).Seconds()}
		if steps > 0 {
			n := float64(steps)
			rec.Loss, rec.Obj, rec.XY, rec.WH, rec.Cls = ep.Total()/n, ep.Obj/n, ep.XY/n, ep.WH/n, ep.Cls/n
		}
		if ctx.Err() != nil {
			enc.Encode(rec)
			return sum, fmt.Errorf("stopped during epoch %d: %w; %s holds the weights of iteration %d", epoch+1, ctx.Err(), last, it)
		}
		lastEpoch := epoch == o.Epochs-1
		if evaluate != nil && (lastEpoch || (o.EvalInterval > 0 && (epoch+1)%o.EvalInterval == 0)) {
			m, err := evaluate(epoch)
			if err != nil {
				return sum, fmt.Errorf("evaluating after epoch %d: %w", epoch+1, err)
			}
			rec.MAP = &m
			sum.LastMetric = m
			fmt.Fprintf(human, "epoch %d/%d: mAP@0.5 %.4f\n", epoch+1, o.Epochs, m)
			if m > sum.BestMetric {
				sum.BestMetric, sum.BestEpoch = m, epoch+1
				if err := net.WriteWeights(best, seen); err != nil {
					return sum, err
				}
			}
		}
		if err := enc.Encode(rec); err != nil {
			return sum, err
		}
	}
	if sum.BestMetric < 0 { // never evaluated: best is the last
		if err := net.WriteWeights(best, seen); err != nil {
			return sum, err
		}
	}
	sum.Elapsed = time.Since(start)
	sum.ImagesPerS = float64(seen) / sum.Elapsed.Seconds()
	return sum, nil
}

func truths(b *data.Batch) [][]model.Truth {
	out := make([][]model.Truth, b.N)
	for i, ts := range b.Targets {
		for _, t := range ts {
			out[i] = append(out[i], model.Truth{Class: t.Class, Box: t.Box, Weight: t.Weight})
		}
	}
	return out
}
