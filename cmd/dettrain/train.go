package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/train"
)

// TrainOptions are train's flags.
type TrainOptions struct {
	Config ConfigOptions
	Out    string
	Resume string
	Device string
}

func newTrainCmd(io *IO, runF func(*TrainOptions) error) *cobra.Command {
	o := &TrainOptions{}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a detector from a YAML config, or resume a run",
		Long: `train builds the darknet model of model.cfg for the data set's classes, trains it with
SGD on the training split, evaluates every train.eval_interval epochs, and writes
  OUT/weights/last.weights, OUT/weights/best.weights  (darknet format)
  OUT/checkpoints/ckpt-*.ckpt, best.ckpt  (everything needed to resume exactly)
  OUT/model.cfg      the cfg with heads fitted to the classes
  OUT/config.yaml    the resolved config
  OUT/log.jsonl      one JSON object per logged iteration and per epoch
then prints the mAP of the eval split (eval.split).

--resume OUT continues a stopped run exactly where its last checkpoint left it
(same losses, same final weights), reading OUT/config.yaml; --set may change
train.epochs to extend a finished run. Ctrl-C (or SIGTERM) finishes the current
step, writes a checkpoint and says how to resume.`,
		Example: `  dettrain synth --out demo/shapes && dettrain train --config configs/demo.yaml
  dettrain train -c configs/bccd-yolov3-tiny.yaml --set train.epochs=10 --out runs/bccd-short
  dettrain train --resume runs/bccd-short --set train.epochs=20
  mpirun -np 2 --bind-to none dettrain train --config configs/demo.yaml   # across processes (docs/DISTRIBUTED.md)`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (o.Config.File == "") == (o.Resume == "") {
				return usagef("give exactly one of --config and --resume")
			}
			if o.Device != "" {
				o.Config.Sets = append(o.Config.Sets, "train.device="+o.Device)
			}
			if runF != nil {
				return runF(o)
			}
			return trainRun(cmd, io, o)
		},
	}
	addConfigFlags(cmd, &o.Config)
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder (default: output.dir from the config)")
	cmd.Flags().StringVar(&o.Resume, "resume", "", "continue the run in this output folder")
	cmd.Flags().StringVar(&o.Device, "device", "", `where to train: "cpu", "cuda" or "cuda:N" (default: train.device)`)
	return cmd
}

func trainRun(cmd *cobra.Command, ios *IO, o *TrainOptions) error {
	var (
		c      *config.Config
		resume *train.Checkpoint
		err    error
	)
	if o.Resume != "" {
		o.Config.File = filepath.Join(o.Resume, "config.yaml")
		if _, err := os.Stat(o.Config.File); err != nil {
			return usagef("--resume %s: not a dettrain run folder (%v)", o.Resume, err)
		}
		if c, err = o.Config.Load(); err != nil {
			return err
		}
		c.Output.Dir = o.Resume
		var path string
		if resume, path, err = train.LatestCheckpoint(filepath.Join(o.Resume, "checkpoints"), ios.Err); err != nil {
			return err
		}
		fmt.Fprintf(ios.Out, "resuming from %s (iteration %d, epoch %d)\n", path, resume.State.Iter, resume.State.Epoch+1)
	} else {
		if c, err = o.Config.Load(); err != nil {
			return err
		}
		if o.Out != "" {
			c.Output.Dir = o.Out
		}
	}
	_, err = engine.Train(cmd.Context(), ios, c, resume)
	return err
}
