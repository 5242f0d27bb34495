package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/gpu"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/report"
	"github.com/dettrain/dettrain/train"
	"github.com/dettrain/dettrain/tricks"
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
  dettrain train --resume runs/bccd-short --set train.epochs=20`,
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
	o.Config.addFlags(cmd)
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder (default: output.dir from the config)")
	cmd.Flags().StringVar(&o.Resume, "resume", "", "continue the run in this output folder")
	cmd.Flags().StringVar(&o.Device, "device", "", `where to train: "cpu", "cuda" or "cuda:N" (default: train.device)`)
	return cmd
}

// hashOf is a short content hash for identities.
func hashOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func dataIdentity(names []string, ds *data.Dataset) string {
	var parts [][]byte
	for _, n := range names {
		parts = append(parts, []byte(n))
	}
	for _, s := range ds.Samples {
		parts = append(parts, []byte(s.ID))
	}
	return hashOf(parts...)
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
		if c, err = o.Config.load(); err != nil {
			return err
		}
		c.Output.Dir = o.Resume
		var path string
		if resume, path, err = train.LatestCheckpoint(filepath.Join(o.Resume, "checkpoints"), ios.Err); err != nil {
			return err
		}
		fmt.Fprintf(ios.Out, "resuming from %s (iteration %d, epoch %d)\n", path, resume.State.Iter, resume.State.Epoch+1)
	} else {
		if c, err = o.Config.load(); err != nil {
			return err
		}
		if o.Out != "" {
			c.Output.Dir = o.Out
		}
	}
	_, err = runTraining(cmd.Context(), ios, c, resume)
	return err
}

// trainResult is what runTraining reports.
type trainResult struct {
	Summary train.Summary
	Test    eval.Summary
	Elapsed time.Duration
}

// runTraining trains with a resolved config (from scratch, or from resume)
// into c.Output.Dir and scores best.weights on the eval split.
func runTraining(ctx context.Context, ios *IO, c *config.Config, resume *train.Checkpoint) (*trainResult, error) {
	start := time.Now()
	if err := checkDevice(c.Train.Device, c.Train.Devices); err != nil {
		return nil, err
	}
	names, err := classNames(c)
	if err != nil {
		return nil, err
	}
	setThreads(c.Train)
	trainSet, err := loadDataset(c, c.Data.Train, names, ios.Err)
	if err != nil {
		return nil, err
	}
	var (
		valSet  *data.Dataset
		valCOCO *data.COCOSplit
	)
	if c.Data.Val != "" && c.Train.EvalInterval > 0 {
		if valSet, valCOCO, err = loadDatasetCOCO(c, c.Data.Val, names, ios.Err); err != nil {
			return nil, err
		}
	}
	testSet, testCOCO, err := loadDatasetCOCO(c, c.Eval.Split, names, ios.Err)
	if err != nil {
		return nil, err
	}
	net, err := buildNetwork(c.Model.Cfg, "", len(names), c.Train.Seed)
	if err != nil {
		return nil, err
	}
	// The input size (model.size, or the cfg's [net]) becomes the model's
	// own, written into the run's model.cfg. Then pretrained weights
	// (partial import when the heads differ), BN epsilon, automatic anchors.
	size := trainSize(c.Model, net)
	setNetSize(net, size)
	if err := prepareModel(net, c.Model, size, trainSet, ios.Out); err != nil {
		return nil, err
	}
	if resume == nil {
		c.Output.Dir = freshDir(c.Output.Dir, ios.Out)
	}
	out := c.Output.Dir
	resolved, err := c.YAML()
	if err != nil {
		return nil, err
	}
	id := train.Identity{Config: resolved, Model: hashOf(net.Cfg.Text()), Data: dataIdentity(names, trainSet)}
	lo := data.LoaderOptions{
		Batch: c.Train.Batch, W: size.W, H: size.H, Workers: c.Data.Workers, Shuffle: true, Flip: c.Data.Flip, Seed: c.Train.Seed, DropLast: true,
		Augment: c.Data.Augment, SkipBad: c.Data.SkipBad}
	per := len(trainSet.Samples) / c.Train.Batch
	if c.Train.Mixup {
		off := c.Train.MixupOffEpochs
		if c.Train.MixupOffFraction > 0 {
			off = int(math.Round(c.Train.MixupOffFraction * float64(c.Train.Epochs)))
		}
		lo.Mixup = &data.MixupOptions{Alpha: c.Train.MixupAlpha, Beta: c.Train.MixupBeta, OffFromEpoch: c.Train.Epochs - off}
	}
	if c.Train.Mosaic {
		lo.Mosaic = &data.MosaicOptions{OffFromEpoch: c.Train.Epochs - c.Train.CloseMosaic}
	}
	if c.Train.RandomShapes {
		shapes := tricks.Shapes{Sizes: c.Train.Shapes, Every: c.Train.ShapeEvery, Seed: c.Train.Seed}
		lo.SizeAt = func(epoch, batch int) (int, int) { return shapes.SizeAtAspect(epoch*per+batch, size.W, size.H) }
	}
	loader := data.NewLoader(trainSet, image.OpenCV{}, lo)
	defer loader.Close()
	if resume != nil {
		if resume.ModelID != id.Model {
			return nil, fmt.Errorf("cannot resume %s: its checkpoint was made with another model (cfg %s, now %s)", out, resume.ModelID, id.Model)
		}
		if resume.DataID != id.Data {
			return nil, fmt.Errorf("cannot resume %s: its checkpoint was made with another data set or class list (%s, now %s)", out, resume.DataID, id.Data)
		}
		if err := describeResume(ios.Out, resume, c, per); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(out, "weights"), 0o755); err != nil {
		return nil, err
	}
	if err := model.WriteAtomic(filepath.Join(out, "config.yaml"), func(w io.Writer) error { _, err := w.Write(resolved); return err }); err != nil {
		return nil, err
	}
	if err := writeRunFiles(out, net, names); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(out, "log.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if resume == nil {
		if err := logf.Truncate(0); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(ios.Out, "training %s on %d images (%d classes), %d epochs x %d iterations, batch %d, size %s, %d replica(s); output in %s\n",
		filepath.Base(c.Model.Cfg), len(trainSet.Samples), len(names), c.Train.Epochs, per, c.Train.Batch, size, c.Train.Replicas, out)
	fmt.Fprintf(ios.Out, "tricks: %s\n", strings.Join(trickList(c), ", "))
	var (
		evaluator train.Evaluator
		lastEval  eval.Summary
		rows      []report.Epoch
	)
	if valSet != nil {
		evaluator = func(epoch int) (float64, error) {
			s, _, err := evaluateSummary(net, valSet, valCOCO, c, names, nil)
			lastEval = s
			return s.Primary(), err
		}
	}
	onEpoch := func(e train.EpochInfo) error {
		row := report.Epoch{Epoch: e.Epoch, Seconds: e.Seconds, LR: e.LR, Loss: e.Loss.Total(), LossObj: e.Loss.Obj, LossXY: e.Loss.XY,
			LossWH: e.Loss.WH, LossCls: e.Loss.Cls, ImgPerSec: e.ImgPerSec}
		if e.Metric != nil {
			row.MAP50VOC07, row.MAP50VOC, row.MAPCOCO, row.MAP50COCO = lastEval.VOC.MAP07, lastEval.VOC.MAP, lastEval.COCO.AP(), lastEval.COCO.AP50()
		} else {
			row = row.NoMetrics()
		}
		rows = append(rows, row)
		if err := report.WriteResultsFile(filepath.Join(out, "results.csv"), rows); err != nil {
			return err
		}
		_, err := report.PlotTraining(out, rows)
		return err
	}
	opts := train.Options{
		Epochs: c.Train.Epochs, Batch: c.Train.Batch, Size: size,
		Momentum: c.Train.Momentum, Decay: c.Train.WeightDecay, Schedule: schedule(c.Train, per),
		EvalInterval: c.Train.EvalInterval, LogInterval: c.Train.LogInterval, Dir: out,
		KeepCheckpoints: c.Train.KeepCheckpoints, OnNaN: c.Train.OnNaN, Replicas: c.Train.Replicas, SyncBN: c.Model.BN == "sync",
		Identity: id, Resume: resume, OnEpoch: onEpoch, SkipBad: c.Data.SkipBad,
	}
	if dev, _ := config.ParseDevice(c.Train.Device); dev >= 0 {
		opts.GPU = &train.GPUOptions{Devices: c.Train.Devices, TF32: c.Train.TF32, AMP: c.Train.AMP}
		if len(opts.GPU.Devices) == 0 {
			opts.GPU.Devices = []int{dev}
		}
	}
	if c.Train.EMA {
		opts.EMA = &train.EMAOptions{Decay: c.Train.EMADecay, Tau: c.Train.EMATau}
	}
	if opts.ClassTarget, err = tricks.ClassTarget(c.Train.LabelSmoothing, len(names), c.Train.SmoothingEps); err != nil {
		return nil, err
	}
	opts.MaxGraphs = c.Train.ShapeGraphs
	sum, err := train.Run(ctx, net, loader, opts, evaluator, ios.Out, logf)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(ios.Out, "trained to iteration %d in %s (%.1f img/s)\n", sum.Iter, time.Since(start).Round(time.Second), sum.ImagesPerS)
	if sum.Skipped > 0 {
		fmt.Fprintf(ios.Out, "%d images failed to load and were left out (data.skip_bad; the warnings above and log.jsonl name them)\n", sum.Skipped)
	}
	best := filepath.Join(out, "weights", "best.weights")
	if _, err := net.LoadWeights(best); err != nil {
		return nil, err
	}
	r, dets, err := evaluateSummary(net, testSet, testCOCO, c, names, nil)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(ios.Out, "\n%s split (%d images), weights %s:\n", c.Eval.Split, len(testSet.Samples), best)
	if err := r.Table(ios.Out); err != nil {
		return nil, err
	}
	fmt.Fprintf(ios.Out, "mAP@0.5 (VOC all-point) %.4f, VOC07 11-point %.4f, COCO AP@[.5:.95] %.4f; total time %s\n", r.VOC.MAP, r.VOC.MAP07, r.COCO.AP(), time.Since(start).Round(time.Second))
	if _, err := writeEvalReport(filepath.Join(out, "eval"), fmt.Sprintf("%s split, %s", c.Eval.Split, best), r, dets, groundTruth(testSet, testCOCO), names); err != nil {
		return nil, err
	}
	return &trainResult{Summary: sum, Test: r, Elapsed: time.Since(start)}, nil
}

// describeResume says what a resume does, and how an extension stretches
// the schedule.
func describeResume(w io.Writer, ck *train.Checkpoint, c *config.Config, per int) error {
	old, err := config.Parse(ck.Config)
	if err != nil {
		return fmt.Errorf("the checkpoint's config: %w", err)
	}
	if ck.State.Finished && c.Train.Epochs <= ck.State.Epoch {
		return errors.New("that run is finished: extend it with --set train.epochs=N (N > " + fmt.Sprint(ck.State.Epoch) + ")")
	}
	if old.Train.Epochs != c.Train.Epochs {
		s0, s1 := schedule(old.Train, per), schedule(c.Train, per)
		fmt.Fprintf(w, "train.epochs %d -> %d: the %s schedule is stretched from %d to %d iterations; at iteration %d the rate goes from %.6g to %.6g\n",
			old.Train.Epochs, c.Train.Epochs, c.Train.Schedule, s0.Total, s1.Total, ck.State.Iter, s0.LR(ck.State.Iter), s1.LR(ck.State.Iter))
	}
	return nil
}

// trickList names the training tricks a config turns on.
func trickList(c *config.Config) []string {
	t := c.Train
	var on []string
	if c.Data.Augment {
		on = append(on, "YOLOv3 augmentation")
	} else if c.Data.Flip {
		on = append(on, "flip")
	}
	if t.WarmupEpochs > 0 {
		on = append(on, fmt.Sprintf("warmup %g epochs", t.WarmupEpochs))
	}
	on = append(on, t.Schedule+" lr")
	if t.Mixup {
		on = append(on, fmt.Sprintf("mixup Beta(%g,%g)", t.MixupAlpha, t.MixupBeta))
	}
	if t.RandomShapes {
		on = append(on, fmt.Sprintf("random shapes %v every %d", t.Shapes, t.ShapeEvery))
	}
	if t.Mosaic {
		on = append(on, fmt.Sprintf("mosaic (off for the last %d epochs)", t.CloseMosaic))
	}
	if t.LabelSmoothing != "none" {
		on = append(on, "label smoothing ("+t.LabelSmoothing+")")
	}
	if c.Model.BN == "sync" {
		on = append(on, "synchronized BN")
	}
	if t.EMA {
		on = append(on, "EMA")
	}
	return on
}

// freshDir returns dir, or, when dir already holds a run (weights or
// checkpoints), the first of dir-2, dir-3, ... that does not, so that a new
// run never overwrites an earlier run's weights.
func freshDir(dir string, w io.Writer) string {
	used := func(d string) bool {
		for _, sub := range []string{"weights", "checkpoints"} {
			if ents, err := os.ReadDir(filepath.Join(d, sub)); err == nil && len(ents) > 0 {
				return true
			}
		}
		return false
	}
	if !used(dir) {
		return dir
	}
	for i := 2; ; i++ {
		d := fmt.Sprintf("%s-%d", dir, i)
		if !used(d) {
			fmt.Fprintf(w, "%s holds an earlier run (continue it with --resume %s); this run writes to %s\n", dir, dir, d)
			return d
		}
	}
}

// checkDevice fails at once, before any data is read, when train.device
// asks for a GPU this machine does not have.
func checkDevice(device string, devices []int) error {
	dev, err := config.ParseDevice(device)
	if err != nil || dev < 0 {
		return err
	}
	n, err := gpu.DeviceCount()
	if err != nil {
		return fmt.Errorf("train.device %q: %w", device, err)
	}
	for _, d := range append([]int{dev}, devices...) {
		if d >= n {
			return fmt.Errorf("train.device %q / train.devices: GPU %d asked for, but the driver sees %d", device, d, n)
		}
	}
	return nil
}
