package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/train"
)

// TrainOptions are train's flags.
type TrainOptions struct {
	Config ConfigOptions
	Out    string
}

func newTrainCmd(io *IO, runF func(*TrainOptions) error) *cobra.Command {
	o := &TrainOptions{}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a detector from a YAML config",
		Long: `train builds the darknet model of model.cfg for the data set's classes, trains it with
SGD on the training split, evaluates every train.eval_interval epochs, and writes
  OUT/weights/last.weights, OUT/weights/best.weights  (darknet format)
  OUT/model.cfg      the cfg with heads fitted to the classes
  OUT/config.yaml    the resolved config
  OUT/log.jsonl      one JSON object per logged iteration and per epoch
then prints the mAP of the eval split (eval.split).`,
		Example: `  dettrain synth --out demo/shapes && dettrain train --config configs/demo.yaml
  dettrain train -c configs/bccd-yolov3-tiny.yaml --set train.epochs=10 --out runs/bccd-short`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return trainRun(cmd, io, o)
		},
	}
	o.Config.addFlags(cmd)
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder (default: output.dir from the config)")
	return cmd
}

func trainRun(cmd *cobra.Command, io *IO, o *TrainOptions) error {
	c, err := o.Config.load()
	if err != nil {
		return err
	}
	if o.Out != "" {
		c.Output.Dir = o.Out
	}
	names, err := c.ClassNames()
	if err != nil {
		return err
	}
	setThreads(c.Train)
	trainSet, err := loadSplit(c, c.Data.Train, names, io.Err)
	if err != nil {
		return err
	}
	var valSet *data.Dataset
	if c.Data.Val != "" && c.Train.EvalInterval > 0 {
		if valSet, err = loadSplit(c, c.Data.Val, names, io.Err); err != nil {
			return err
		}
	}
	testSet, err := loadSplit(c, c.Eval.Split, names, io.Err)
	if err != nil {
		return err
	}
	net, err := buildNetwork(c.Model.Cfg, c.Model.Weights, len(names), c.Train.Seed)
	if err != nil {
		return err
	}
	out := c.Output.Dir
	if err := os.MkdirAll(filepath.Join(out, "weights"), 0o755); err != nil {
		return err
	}
	resolved, err := c.YAML()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "config.yaml"), resolved, 0o644); err != nil {
		return err
	}
	if err := writeCfg(net, filepath.Join(out, "model.cfg")); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(out, "log.jsonl"))
	if err != nil {
		return err
	}
	defer logf.Close()

	loader := data.NewLoader(trainSet, image.OpenCV{}, data.LoaderOptions{
		Batch: c.Train.Batch, Size: c.Model.Size, Workers: c.Data.Workers, Shuffle: true, Flip: c.Data.Flip, Seed: c.Train.Seed, DropLast: true})
	defer loader.Close()
	per := loader.BatchesPerEpoch()
	fmt.Fprintf(io.Out, "training %s on %d images (%d classes), %d epochs x %d iterations, batch %d, size %d; output in %s\n",
		filepath.Base(c.Model.Cfg), len(trainSet.Samples), len(names), c.Train.Epochs, per, c.Train.Batch, c.Model.Size, out)
	var evaluator train.Evaluator
	if valSet != nil {
		evaluator = func(epoch int) (float64, error) {
			r, err := evaluate(net, valSet, c, names)
			return r.MAP, err
		}
	}
	start := time.Now()
	sum, err := train.Run(cmd.Context(), net, loader, train.Options{
		Epochs: c.Train.Epochs, Batch: c.Train.Batch, Size: c.Model.Size,
		Momentum: c.Train.Momentum, Decay: c.Train.WeightDecay, Schedule: schedule(c.Train, per),
		EvalInterval: c.Train.EvalInterval, LogInterval: c.Train.LogInterval, WeightsDir: filepath.Join(out, "weights"),
	}, evaluator, io.Out, logf)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "trained %d iterations in %s (%.1f img/s)\n", sum.Iterations, time.Since(start).Round(time.Second), sum.ImagesPerS)
	best := filepath.Join(out, "weights", "best.weights")
	if _, err := net.LoadWeights(best); err != nil {
		return err
	}
	r, err := evaluate(net, testSet, c, names)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "\n%s split (%d images), weights %s:\n", c.Eval.Split, len(testSet.Samples), best)
	if err := r.Table(io.Out); err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "mAP@0.5 (VOC all-point) %.4f, VOC07 11-point %.4f; total time %s\n", r.MAP, r.MAP07, time.Since(start).Round(time.Second))
	return writeJSON(filepath.Join(out, "eval.json"), r)
}
