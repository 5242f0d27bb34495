package engine

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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dettrain/dettrain/blas"
	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/gpu"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/mpi"
	"github.com/dettrain/dettrain/report"
	"github.com/dettrain/dettrain/train"
	"github.com/dettrain/dettrain/tricks"
)

// TrainResult is what Train reports.
type TrainResult struct {
	Summary train.Summary
	Test    eval.Summary
	Elapsed time.Duration
}

// Train trains with a resolved config (from scratch, or from resume) into
// c.Output.Dir and scores best.weights on the eval split: the data sets,
// the network, the loader and train.Options from their config sections,
// then train.Run, then the final evaluation.
//
// Started by mpirun or srun (mpi.Launched) with more than one process, the
// processes train one model together (train.Ranks): rank 0 prints and
// writes, the others print only errors, and an error on any rank ends every
// rank (MPI_Abort) with one message naming the rank.
func Train(ctx context.Context, ios *IO, c *config.Config, resume *train.Checkpoint) (*TrainResult, error) {
	env, launched := mpi.Launched()
	if !launched || env.Size == 1 {
		return trainOn(ctx, ios, c, resume, nil)
	}
	comm, err := joinRanks()
	if err != nil {
		return nil, fmt.Errorf("started by %s as rank %d of %d: %w", env.Launcher, env.Rank, env.Size, err)
	}
	// Rank 0 prints plain lines: mpirun hands each rank a pseudo-terminal
	// whatever its own output is, so a progress bar would be redrawn into
	// log files. The other ranks print nothing (their errors end the job
	// through Abort).
	rio := &IO{Out: struct{ io.Writer }{ios.Out}, Err: ios.Err}
	if comm.Rank() != 0 {
		rio = &IO{Out: io.Discard, Err: io.Discard}
	}
	r, err := trainOn(ctx, rio, c, resume, comm)
	if err != nil && !errors.Is(err, train.ErrStopped) {
		comm.Abort(1, err.Error()) // does not return
	}
	return r, err
}

// world is this process's MPI communicator. MPI is process-wide by design:
// it can be initialised once per process and must be finalized once before
// the process exits, so the first Train under a launcher initialises it,
// every later one (ablate trains many runs) reuses it, and Close finalizes
// it.
var world struct {
	sync.Mutex
	comm   *mpi.Comm
	err    error
	joined bool
}

// joinRanks is world's communicator, made on the first call.
func joinRanks() (*mpi.Comm, error) {
	world.Lock()
	defer world.Unlock()
	if !world.joined {
		world.comm, world.err = mpi.Init()
		world.joined = true
	}
	return world.comm, world.err
}

// Close ends what the engine started for the process: after training
// across processes, MPI_Finalize (every rank calls it before it exits with
// status 0, or mpirun counts the rank as failed). The CLI calls it once,
// before it exits; without ranks it does nothing.
func Close() error {
	world.Lock()
	defer world.Unlock()
	if world.comm == nil {
		return nil
	}
	c := world.comm
	world.comm, world.err = nil, mpi.ErrFinalized
	return c.Finalize()
}

// trainOn is Train in one process of ranks (nil: the only one).
func trainOn(ctx context.Context, ios *IO, c *config.Config, resume *train.Checkpoint, ranks *mpi.Comm) (*TrainResult, error) {
	start := time.Now()
	if err := CheckDevice(c.Train.Device, c.Train.Devices); err != nil {
		return nil, err
	}
	replicas, err := rankReplicas(c.Train, ranks)
	if err != nil {
		return nil, err
	}
	setThreads(c.Train.Threads, replicas*ranksOnHost(ranks))
	sets, err := loadSets(c, ios.Err)
	if err != nil {
		return nil, err
	}
	net, size, err := TrainNetwork(c, sets.train, ios.Out)
	if err != nil {
		return nil, err
	}
	if resume == nil {
		c.Output.Dir = FreshDir(c.Output.Dir, ios.Out)
		if ranks != nil { // rank 0's choice
			if c.Output.Dir, err = bcastString(ranks, c.Output.Dir); err != nil {
				return nil, err
			}
		}
	}
	out := c.Output.Dir
	resolved, err := c.YAML()
	if err != nil {
		return nil, err
	}
	id := train.Identity{Config: resolved, Model: hashOf(net.Cfg.Text()), Data: dataIdentity(sets.names, sets.train)}
	per := len(sets.train.Samples) / c.Train.Batch
	lo := LoaderOptions(c, size, per)
	if ranks != nil {
		lo.Shard, lo.Shards = ranks.Rank(), ranks.Size()
	}
	loader := data.NewLoader(sets.train, image.OpenCV{}, lo)
	defer loader.Close()
	if resume != nil {
		if err := checkResume(ios.Out, resume, id, c, per); err != nil {
			return nil, err
		}
	}
	var logw io.Writer = io.Discard
	if ranks == nil || ranks.Rank() == 0 {
		logf, err := startRunFolder(out, resolved, net, sets.names, resume != nil)
		if err != nil {
			return nil, err
		}
		defer logf.Close()
		logw = logf
	}
	where := fmt.Sprintf("%d replica(s)", replicas)
	if ranks != nil {
		where = fmt.Sprintf("%d processes x %d replica(s)", ranks.Size(), replicas)
	}
	fmt.Fprintf(ios.Out, "training %s on %d images (%d classes), %d epochs x %d iterations, batch %d, size %s, %s; output in %s\n",
		filepath.Base(c.Model.Cfg), len(sets.train.Samples), len(sets.names), c.Train.Epochs, per, c.Train.Batch, size, where, out)
	fmt.Fprintf(ios.Out, "tricks: %s\n", strings.Join(TrickList(c), ", "))
	opts, err := TrainOptions(c, size, per, len(sets.names))
	if err != nil {
		return nil, err
	}
	opts.Dir, opts.Identity, opts.Resume, opts.Replicas = out, id, resume, replicas
	if ranks != nil {
		opts.Ranks = ranks
		if opts.GPU != nil {
			if opts.GPU.Devices, err = rankDevice(ranks, replicas); err != nil {
				return nil, err
			}
		}
	}
	rep := &epochReport{dir: out}
	opts.OnEpoch = rep.onEpoch
	var evaluator train.Evaluator
	if sets.val != nil {
		evaluator = func(epoch int) (float64, error) {
			s, _, err := Evaluate(net, sets.val, sets.valCOCO, c, sets.names, nil)
			rep.last = s
			return s.Primary(), err
		}
	}
	sum, err := train.Run(ctx, net, loader, opts, evaluator, ios.Out, logw)
	if err != nil {
		return nil, err
	}
	if ranks != nil && ranks.Rank() != 0 {
		return &TrainResult{Summary: sum, Elapsed: time.Since(start)}, nil // rank 0 tests
	}
	fmt.Fprintf(ios.Out, "trained to iteration %d in %s (%.1f img/s)\n", sum.Iter, time.Since(start).Round(time.Second), sum.ImagesPerS)
	if sum.Skipped > 0 {
		fmt.Fprintf(ios.Out, "%d images failed to load and were left out (data.skip_bad; the warnings above and log.jsonl name them)\n", sum.Skipped)
	}
	r, err := testBest(ios.Out, net, sets, c, out, start)
	if err != nil {
		return nil, err
	}
	return &TrainResult{Summary: sum, Test: r, Elapsed: time.Since(start)}, nil
}

// sets are a training run's data sets.
type sets struct {
	names             []string
	train             *data.Dataset
	val, test         *data.Dataset   // val: nil without periodic evaluation
	valCOCO, testCOCO *data.COCOSplit // COCO ids and areas (data.format coco)
}

// loadSets reads the class names and the train, val (when train.eval_interval
// asks for it) and test (eval.split) splits.
func loadSets(c *config.Config, errw io.Writer) (*sets, error) {
	s := &sets{}
	var err error
	if s.names, err = ClassNames(c); err != nil {
		return nil, err
	}
	if s.train, err = LoadDataset(c, c.Data.Train, s.names, errw); err != nil {
		return nil, err
	}
	if c.Data.Val != "" && c.Train.EvalInterval > 0 {
		if s.val, s.valCOCO, err = LoadDatasetCOCO(c, c.Data.Val, s.names, errw); err != nil {
			return nil, err
		}
	}
	if s.test, s.testCOCO, err = LoadDatasetCOCO(c, c.Eval.Split, s.names, errw); err != nil {
		return nil, err
	}
	return s, nil
}

// LoaderOptions maps the data section and train's data tricks (mixup,
// mosaic, random shapes) to the training loader's options, for input size
// size and per batches an epoch.
func LoaderOptions(c *config.Config, size model.Size, per int) data.LoaderOptions {
	lo := data.LoaderOptions{
		Batch: c.Train.Batch, W: size.W, H: size.H, Workers: c.Data.Workers, Shuffle: true, Flip: c.Data.Flip, Seed: c.Train.Seed, DropLast: true,
		Augment: c.Data.Augment, SkipBad: c.Data.SkipBad}
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
	return lo
}

// TrainOptions maps the train section (and model.bn) to train.Options for
// input size size, per iterations an epoch and classes classes. The run's
// folder, identity, resume point and callbacks are the caller's.
func TrainOptions(c *config.Config, size model.Size, per, classes int) (train.Options, error) {
	t := c.Train
	o := train.Options{
		Epochs: t.Epochs, Batch: t.Batch, Size: size,
		Momentum: t.Momentum, Decay: t.WeightDecay, Schedule: Schedule(t, per),
		EvalInterval: t.EvalInterval, LogInterval: t.LogInterval,
		KeepCheckpoints: t.KeepCheckpoints, OnNaN: t.OnNaN, Replicas: t.Replicas, SyncBN: c.Model.BN == "sync",
		SkipBad: c.Data.SkipBad, MaxGraphs: t.ShapeGraphs,
	}
	if dev, _ := config.ParseDevice(t.Device); dev >= 0 {
		o.GPU = &train.GPUOptions{Devices: t.Devices, TF32: t.TF32, AMP: t.AMP}
		if len(o.GPU.Devices) == 0 {
			o.GPU.Devices = []int{dev}
		}
	}
	if t.EMA {
		o.EMA = &train.EMAOptions{Decay: t.EMADecay, Tau: t.EMATau}
	}
	var err error
	o.ClassTarget, err = tricks.ClassTarget(t.LabelSmoothing, classes, t.SmoothingEps)
	return o, err
}

// Schedule is the learning-rate schedule of train (lr, schedule, warmup,
// steps), in iterations of itersPerEpoch an epoch.
func Schedule(t config.Train, itersPerEpoch int) tricks.Schedule {
	total := t.Epochs * itersPerEpoch
	s := tricks.Schedule{Base: t.LR, Kind: t.Schedule, Total: total, Final: t.FinalLR, Factor: 0.1,
		Warmup: int(math.Round(t.WarmupEpochs * float64(itersPerEpoch)))}
	for _, f := range t.Steps {
		s.Steps = append(s.Steps, int(math.Round(f*float64(total))))
	}
	return s
}

// checkResume refuses a checkpoint of another model or data set and says
// what the resume does.
func checkResume(w io.Writer, ck *train.Checkpoint, id train.Identity, c *config.Config, per int) error {
	out := c.Output.Dir
	if ck.ModelID != id.Model {
		return fmt.Errorf("cannot resume %s: its checkpoint was made with another model (cfg %s, now %s)", out, ck.ModelID, id.Model)
	}
	if ck.DataID != id.Data {
		return fmt.Errorf("cannot resume %s: its checkpoint was made with another data set or class list (%s, now %s)", out, ck.DataID, id.Data)
	}
	return describeResume(w, ck, c, per)
}

// startRunFolder writes what makes out a self-describing run (config.yaml,
// model.cfg, names.txt) and opens log.jsonl (appended to on a resume).
func startRunFolder(out string, resolved []byte, net *model.Network, names []string, resumed bool) (*os.File, error) {
	if err := os.MkdirAll(filepath.Join(out, "weights"), 0o755); err != nil {
		return nil, err
	}
	if err := model.WriteAtomic(filepath.Join(out, RunConfig), func(w io.Writer) error { _, err := w.Write(resolved); return err }); err != nil {
		return nil, err
	}
	if err := WriteRunFiles(out, net, names); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(out, "log.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if !resumed {
		if err := logf.Truncate(0); err != nil {
			logf.Close()
			return nil, err
		}
	}
	return logf, nil
}

// epochReport keeps results.csv and the training charts after every epoch.
type epochReport struct {
	dir  string
	last eval.Summary // the latest periodic evaluation
	rows []report.Epoch
}

func (r *epochReport) onEpoch(e train.EpochInfo) error {
	row := report.Epoch{Epoch: e.Epoch, Seconds: e.Seconds, LR: e.LR, Loss: e.Loss.Total(), LossObj: e.Loss.Obj, LossXY: e.Loss.XY,
		LossWH: e.Loss.WH, LossCls: e.Loss.Cls, ImgPerSec: e.ImgPerSec}
	if e.Metric != nil {
		row.MAP50VOC07, row.MAP50VOC, row.MAPCOCO, row.MAP50COCO = r.last.VOC.MAP07, r.last.VOC.MAP, r.last.COCO.AP(), r.last.COCO.AP50()
	} else {
		row = row.NoMetrics()
	}
	r.rows = append(r.rows, row)
	if err := report.WriteResultsFile(filepath.Join(r.dir, "results.csv"), r.rows); err != nil {
		return err
	}
	_, err := report.PlotTraining(r.dir, r.rows)
	return err
}

// testBest scores out's best.weights on the test split (eval.split), prints
// the table and writes out/eval/.
func testBest(w io.Writer, net *model.Network, s *sets, c *config.Config, out string, start time.Time) (eval.Summary, error) {
	best := filepath.Join(out, RunWeights, RunBest)
	if _, err := net.LoadWeights(best); err != nil {
		return eval.Summary{}, err
	}
	r, dets, err := Evaluate(net, s.test, s.testCOCO, c, s.names, nil)
	if err != nil {
		return r, err
	}
	fmt.Fprintf(w, "\n%s split (%d images), weights %s:\n", c.Eval.Split, len(s.test.Samples), best)
	if err := r.Table(w); err != nil {
		return r, err
	}
	fmt.Fprintf(w, "mAP@0.5 (VOC all-point) %.4f, VOC07 11-point %.4f, COCO AP@[.5:.95] %.4f; total time %s\n", r.VOC.MAP, r.VOC.MAP07, r.COCO.AP(), time.Since(start).Round(time.Second))
	_, err = WriteEvalReport(filepath.Join(out, "eval"), fmt.Sprintf("%s split, %s", c.Eval.Split, best), r, dets, GroundTruth(s.test, s.testCOCO), s.names)
	return r, err
}

// SetThreads sets OpenBLAS's threads: train.threads, or the CPUs shared
// among the replicas (each replica's GEMMs then run side by side instead of
// fighting over the same cores).
func SetThreads(t config.Train) { setThreads(t.Threads, t.Replicas) }

// setThreads gives OpenBLAS threads threads, or (0) the CPUs shared among
// workers replicas of this host.
func setThreads(threads, workers int) {
	n := threads
	if n == 0 && workers > 1 {
		n = max(1, runtime.NumCPU()/workers)
	}
	blas.SetThreads(n)
}

// rankReplicas is each process's share of train.replicas among the ranks:
// train.replicas counts the replicas of the whole run, at least one a rank
// (so 1, the default, means one a rank), and must divide among them.
func rankReplicas(t config.Train, ranks *mpi.Comm) (int, error) {
	if ranks == nil {
		return max(1, t.Replicas), nil
	}
	return replicasPerRank(t.Replicas, ranks.Size())
}

// replicasPerRank is rankReplicas for replicas among n ranks.
func replicasPerRank(replicas, n int) (int, error) {
	if replicas <= n {
		return 1, nil
	}
	if replicas%n != 0 {
		return 0, fmt.Errorf("train.replicas %d does not divide among %d ranks (give a multiple of %d, or 1: one replica a rank)", replicas, n, n)
	}
	return replicas / n, nil
}

// rankDevice is the GPU of a rank: the one of its local rank (its index
// among the ranks of its host), or the only one it sees (Slurm's
// --gpu-bind, CUDA_VISIBLE_DEVICES per rank).
func rankDevice(ranks *mpi.Comm, replicas int) ([]int, error) {
	if replicas != 1 {
		return nil, fmt.Errorf("train.device cuda across %d ranks: each rank trains one replica on its own GPU, so train.replicas must be 1 or %d (it gives %d a rank)", ranks.Size(), ranks.Size(), replicas)
	}
	n, err := gpu.DeviceCount()
	if err != nil {
		return nil, err
	}
	if n == 1 {
		return []int{0}, nil
	}
	if ranks.LocalRank() >= n {
		return nil, fmt.Errorf("rank %d is local rank %d of its host, which has %d GPUs: start at most one rank a GPU", ranks.Rank(), ranks.LocalRank(), n)
	}
	return []int{ranks.LocalRank()}, nil
}

// ranksOnHost is the number of ranks on this host (Open MPI's
// OMPI_COMM_WORLD_LOCAL_SIZE, Slurm's SLURM_NTASKS_PER_NODE), which share
// its CPUs; 1 without ranks.
func ranksOnHost(ranks *mpi.Comm) int {
	if ranks == nil {
		return 1
	}
	for _, v := range []string{"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"} {
		if n, err := strconv.Atoi(os.Getenv(v)); err == nil && n > 0 {
			return n
		}
	}
	return 1
}

// bcastString gives every rank rank 0's s (a path: at most 4 KiB).
func bcastString(ranks *mpi.Comm, s string) (string, error) {
	buf := make([]byte, 4096)
	if len(s) >= len(buf)-2 {
		return "", fmt.Errorf("output.dir %q is longer than %d bytes", s, len(buf)-2)
	}
	buf[0], buf[1] = byte(len(s)>>8), byte(len(s))
	copy(buf[2:], s)
	if err := ranks.Bcast(buf, 0); err != nil {
		return "", err
	}
	n := int(buf[0])<<8 | int(buf[1])
	return string(buf[2 : 2+n]), nil
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
		s0, s1 := Schedule(old.Train, per), Schedule(c.Train, per)
		fmt.Fprintf(w, "train.epochs %d -> %d: the %s schedule is stretched from %d to %d iterations; at iteration %d the rate goes from %.6g to %.6g\n",
			old.Train.Epochs, c.Train.Epochs, c.Train.Schedule, s0.Total, s1.Total, ck.State.Iter, s0.LR(ck.State.Iter), s1.LR(ck.State.Iter))
	}
	return nil
}

// TrickList names the training tricks a config turns on.
func TrickList(c *config.Config) []string {
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

// FreshDir returns dir, or, when dir already holds a run (weights or
// checkpoints), the first of dir-2, dir-3, ... that does not, so that a new
// run never overwrites an earlier run's weights.
func FreshDir(dir string, w io.Writer) string {
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

// CheckDevice fails at once, before any data is read, when train.device
// asks for a GPU this machine does not have.
func CheckDevice(device string, devices []int) error {
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
