package main

import (
	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/engine"
)

func newBenchCmd(io *IO, runF func(*engine.BenchOptions) error) *cobra.Command {
	o := &engine.BenchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure training or inference speed on synthetic input",
		Long: `bench runs a model on random input (and random boxes, for training steps) and
prints img/s (median, min, max over --iters timed iterations after --warmup),
GFLOP/s by darknet's forward FLOP count (x3 for a training step, forward plus
backward, as ../shared/bench/torch_yolov3.py counts) and the peak RSS.`,
		Example: `  dettrain bench --model configs/models/yolov3-tiny.cfg --size 256 --batch 8 --mode train
  dettrain bench --model configs/models/yolov3.cfg --size 416 --batch 2 --iters 5 --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case (o.Model == "") == (o.Run == ""):
				return usagef("give --model or --run")
			case o.Batch < 1 || o.Iters < 1 || o.Warmup < 0:
				return usagef("--batch and --iters must be >= 1, --warmup >= 0")
			case o.Mode != "train" && o.Mode != "infer":
				return usagef("--mode %q: must be train or infer", o.Mode)
			}
			dev, err := config.ParseDevice(o.Device)
			if err != nil {
				return usagef("--device %q: %v", o.Device, err)
			}
			if o.AMP && (dev < 0 || o.Mode != "train") {
				return usagef("--amp: mixed precision is for training on cuda (--device cuda --mode train)")
			}
			if runF != nil {
				return runF(o)
			}
			return engine.Bench(io, o)
		},
	}
	cmd.Flags().StringVar(&o.Model, "model", "", "darknet .cfg")
	cmd.Flags().StringVar(&o.Run, "run", "", "a training run's folder: its model.cfg, with its class count")
	cmd.Flags().Var(sizeFlag{&o.Size}, "size", "input size, N or WxH (default: the cfg's [net] width x height)")
	cmd.Flags().IntVar(&o.Batch, "batch", 8, "images per iteration")
	cmd.Flags().StringVar(&o.Mode, "mode", "train", "train (forward, backward, SGD step) or infer (forward)")
	cmd.Flags().IntVar(&o.Iters, "iters", 10, "timed iterations")
	cmd.Flags().IntVar(&o.Warmup, "warmup", 3, "untimed iterations first")
	cmd.Flags().IntVar(&o.Classes, "classes", 20, "classes of the heads")
	cmd.Flags().IntVar(&o.Threads, "threads", 0, "BLAS threads (0 = number of CPUs)")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print one JSON object")
	cmd.Flags().IntVar(&o.RSSEvery, "rss-every", 0, "print the resident memory every N timed iterations (0: never)")
	cmd.Flags().StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the timed iterations (go tool pprof)")
	cmd.Flags().StringVar(&o.MemProfile, "memprofile", "", "write a heap profile after the timed iterations (go tool pprof -sample_index=inuse_space)")
	cmd.Flags().BoolVar(&o.OpTimes, "op-times", false, "print each op's wall time per step and the cores it kept busy, slowest first (CPU only)")
	cmd.Flags().StringVar(&o.Device, "device", "cpu", `"cpu", "cuda" or "cuda:N"`)
	cmd.Flags().BoolVar(&o.TF32, "tf32", true, "on cuda, let float32 convolutions use TF32 tensor cores (PyTorch's default)")
	cmd.Flags().BoolVar(&o.AMP, "amp", false, "on cuda, train in mixed precision (bfloat16 activations, as train.amp)")
	cmd.Flags().BoolVar(&o.Resident, "resident", false, "on cuda, upload the input once and keep it on the device (as the PyTorch harness does); default: copy and upload it every step, as training does")
	return cmd
}
