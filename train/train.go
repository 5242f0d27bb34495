// Package train is dettrain's training loop: batches in, SGD steps on a
// model.Network (on one or several data-parallel replicas), a JSON log line
// per logged iteration and per epoch, periodic evaluation, checkpoints for
// exact resume, and darknet weights written atomically.
package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/progress"
	"github.com/dettrain/dettrain/tricks"
)

// Batches is what training consumes: a data.Loader, or anything that yields
// batches epoch after epoch, starting anywhere in an epoch.
type Batches interface {
	EpochFrom(e, k int)
	Next() (*data.Batch, error)
	BatchesPerEpoch() int
}

// Identity ties checkpoints to a model and data set, so that resuming with
// another one is refused.
type Identity struct {
	Config []byte // resolved config YAML, stored in checkpoints
	Model  string // hash of the model cfg
	Data   string // hash of the class names and training sample ids
}

// Options of one run.
type Options struct {
	Epochs, Batch   int
	Size            model.Size // the input size of the first batch (built first, to fail early)
	Momentum, Decay float64
	Schedule        tricks.Schedule // Total and Warmup in iterations
	EvalInterval    int             // epochs; 0 = only after the last epoch
	LogInterval     int             // iterations
	Dir             string          // run folder: weights/ and checkpoints/ go here
	KeepCheckpoints int             // newest checkpoints kept (plus best.ckpt); default 3
	// EMA of the weights (nil: off), used for evaluation and best.weights.
	EMA *EMAOptions
	// OnNaN is what a non-finite loss or gradient does: "stop" (default),
	// "skip" (drop the step) or "rollback" (reload the last checkpoint and
	// halve the learning rate).
	OnNaN string
	// Replicas splits each batch into that many shards trained in parallel
	// with averaged gradients (1 by default).
	Replicas int
	// SyncBN reduces the BN batch statistics over the replicas (synchronized
	// batch norm); otherwise each replica normalises its own shard.
	SyncBN bool
	// ClassTarget maps class targets for label smoothing (nil: none; see
	// tricks.ClassTarget).
	ClassTarget func(float64) float64
	// MaxGraphs bounds how many input sizes keep their graphs (and buffers)
	// at once when batches come in several sizes (random shapes); the least
	// recently used is dropped. Default 2 (train.shape_graphs).
	MaxGraphs int
	Identity  Identity
	// GPU, when set, trains on NVIDIA GPUs (package gpu): the whole step runs
	// on the devices, and the host copy of the model is refreshed only to
	// write checkpoints and weights and to evaluate.
	GPU *GPUOptions
	// Resume continues from this checkpoint.
	Resume *Checkpoint
	// SkipBad (data.skip_bad) goes on when images fail to load during an
	// epoch: an image the loader left out (data.Batch.Skipped) is warned
	// about and counted, and a batch none of whose images load is skipped.
	// Without it a failed load writes a checkpoint of the last completed
	// step and ends the run with an error naming the file.
	SkipBad bool
	// Fault, when set, may poison a step (tests inject NaN through it).
	Fault func(iter int, loss *model.LossParts, grads [][]float32)
	// OnEpoch, when set, is called after every epoch (results.csv, charts).
	OnEpoch func(EpochInfo) error
}

// EpochInfo describes a finished epoch.
type EpochInfo struct {
	Epoch     int     // 1-based
	Seconds   float64 // since the start of this run
	LR        float64 // at the end of the epoch
	Loss      model.LossParts
	Steps     int      // iterations in the epoch (this run); Loss parts are means over them
	ImgPerSec float64  // over the epoch
	Metric    *float64 // the evaluation's mAP, nil when not evaluated
}

// EMAOptions are train.ema's settings.
type EMAOptions struct{ Decay, Tau float64 }

// Evaluator scores the current weights (mAP); higher is better.
type Evaluator func(epoch int) (float64, error)

// Summary is what a finished run reports.
type Summary struct {
	State
	Skipped    int // images that failed to load and were left out (SkipBad), this run
	LastMetric float64
	Elapsed    time.Duration
	ImagesPerS float64
}

// Record is one line of log.jsonl.
type Record struct {
	Kind      string   `json:"kind"` // "iter", "epoch", "resume", "nan", "skip"
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
	Skipped   int      `json:"skipped,omitempty"` // epoch: images left out (SkipBad); skip: 1 or the batch's images
	Seconds   float64  `json:"seconds"`
	Message   string   `json:"message,omitempty"`
}

// ErrStopped is returned (wrapped) when a run stops on a signal after
// saving its checkpoint.
var ErrStopped = errors.New("training stopped")

// trainer is one run in progress.
type trainer struct {
	net      *model.Network
	src      Batches
	o        Options
	graphs   *graphCache
	opt      *SGD
	ema      *EMA
	st       State
	lrScale  float64
	lastGood *Checkpoint // the last checkpoint written, for rollback
	enc      *json.Encoder
	human    io.Writer
	start    time.Time
	gpu      *gpuRun // nil on the CPU
}

// Run trains net on src. When ctx is cancelled (SIGINT, SIGTERM) it
// finishes the current step, writes a checkpoint and returns an error
// wrapping ErrStopped that says how to resume.
func Run(ctx context.Context, net *model.Network, src Batches, o Options, evaluate Evaluator, human io.Writer, jsonl io.Writer) (Summary, error) {
	return run(ctx, net, src, o, evaluate, human, jsonl, nil)
}

// runWithCache is Run for tests that count graph constructions.
func runWithCache(ctx context.Context, net *model.Network, src Batches, o Options, built *int) (Summary, error) {
	return run(ctx, net, src, o, nil, io.Discard, io.Discard, built)
}

func run(ctx context.Context, net *model.Network, src Batches, o Options, evaluate Evaluator, human io.Writer, jsonl io.Writer, built *int) (Summary, error) {
	if o.KeepCheckpoints <= 0 {
		o.KeepCheckpoints = 3
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.LogInterval <= 0 {
		o.LogInterval = 10
	}
	t := &trainer{net: net, src: src, o: o, lrScale: 1, enc: json.NewEncoder(jsonl), human: human, start: time.Now()}
	sum := Summary{}
	if src.BatchesPerEpoch() < 1 {
		return sum, fmt.Errorf("the training split has fewer images than one batch of %d", o.Batch)
	}
	if o.Batch%o.Replicas != 0 {
		return sum, fmt.Errorf("train.batch %d is not divisible by %d replicas", o.Batch, o.Replicas)
	}
	if o.MaxGraphs <= 0 {
		o.MaxGraphs = 2
	}
	t.graphs = &graphCache{net: net, r: o.Replicas, n: o.Batch / o.Replicas, max: o.MaxGraphs, classTarget: o.ClassTarget}
	if o.SyncBN && o.Replicas > 1 {
		t.graphs.group = model.NewSyncGroup(o.Replicas)
	}
	defer t.graphs.close()
	if built != nil {
		defer func() { *built = t.graphs.Built }()
	}
	if o.GPU == nil {
		if _, err := t.graphs.get(o.Size); err != nil { // fail early on a bad size
			return sum, err
		}
	}
	t.opt = NewSGD(net.Params(), o.Momentum, o.Decay)
	if o.EMA != nil {
		t.ema = NewEMA(net, o.EMA.Decay, o.EMA.Tau)
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "weights"), 0o755); err != nil {
		return sum, err
	}
	t.st = State{BestMetric: -1}
	if ck := o.Resume; ck != nil {
		if err := ck.restore(net, t.opt, t.ema); err != nil {
			return sum, fmt.Errorf("resuming: %w", err)
		}
		t.st = ck.State
		t.st.Finished = false
		t.lastGood = ck
		t.log(Record{Kind: "resume", Epoch: t.st.Epoch, Iter: t.st.Iter, Message: fmt.Sprintf("resumed at epoch %d batch %d", t.st.Epoch, t.st.Batch)})
	}
	if o.GPU != nil {
		g, err := newGPURun(net, o, t.opt, t.ema)
		if err != nil {
			return sum, err
		}
		defer g.close()
		t.gpu = g
		fmt.Fprintf(human, "training on %s\n", g.tr.Describe())
	}
	for t.st.Epoch < o.Epochs {
		if err := t.epoch(ctx, evaluate, &sum); err != nil {
			return sum, err
		}
	}
	t.st.Finished = true
	if _, err := t.checkpoint(); err != nil {
		return sum, err
	}
	if t.st.BestMetric < 0 { // never evaluated: best is the last
		if err := t.writeWeights("best.weights", t.ema != nil); err != nil {
			return sum, err
		}
	}
	sum.State = t.st
	sum.Elapsed = time.Since(t.start)
	sum.ImagesPerS = float64(t.imagesThisRun()) / sum.Elapsed.Seconds()
	return sum, nil
}

func (t *trainer) imagesThisRun() uint64 {
	if t.o.Resume != nil {
		return t.st.Seen - t.o.Resume.State.Seen
	}
	return t.st.Seen
}

func (t *trainer) log(r Record) {
	r.Seconds = time.Since(t.start).Seconds()
	t.enc.Encode(r)
}

// epoch runs the rest of epoch t.st.Epoch.
func (t *trainer) epoch(ctx context.Context, evaluate Evaluator, sum *Summary) error {
	o := t.o
	e := t.st.Epoch
	t.src.EpochFrom(e, t.st.Batch)
	var ep model.LossParts
	steps, skipped := 0, 0
	tick := time.Now()
	mode := progress.Silent // plain log lines only, when not on a terminal
	if progress.IsTerminal(t.human) {
		mode = progress.Redraw
	}
	bar := progress.New(t.human, t.src.BatchesPerEpoch()-t.st.Batch, progress.Options{Label: fmt.Sprintf("epoch %d/%d", e+1, o.Epochs), Mode: mode})
	defer bar.Finish()
	// One batch of lookahead on the GPU: the next batch is taken from the
	// source while a step runs, so that its images travel to the device
	// meanwhile. The source allocates every batch, and positions are kept
	// by t.st, so taking it early changes nothing else.
	var ahead *data.Batch
	var aheadErr error
	peek := func() *data.Batch {
		if ahead == nil && aheadErr == nil {
			ahead, aheadErr = t.src.Next()
		}
		return ahead
	}
	for {
		b, err := ahead, aheadErr
		if b == nil && err == nil {
			b, err = t.src.Next()
		}
		ahead, aheadErr = nil, nil
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var le *data.LoadError
			if o.SkipBad && errors.As(err, &le) {
				// No image of the batch loaded: skip the batch. The loader
				// goes on with the next one, so the position moves on too.
				msg := fmt.Sprintf("%v: no image of batch %d of epoch %d loaded; batch skipped (data.skip_bad)", err, t.st.Batch, e+1)
				fmt.Fprintf(t.human, "warning: %s\n", msg)
				t.log(Record{Kind: "skip", Epoch: e, Iter: t.st.Iter, Skipped: o.Batch, Message: msg})
				skipped += o.Batch
				sum.Skipped += o.Batch
				t.st.Batch++
				continue
			}
			return t.stopOnData(err)
		}
		for _, le := range b.Skipped {
			msg := fmt.Sprintf("%v: image skipped (data.skip_bad)", le)
			fmt.Fprintf(t.human, "warning: %s\n", msg)
			t.log(Record{Kind: "skip", Epoch: e, Iter: t.st.Iter, Skipped: 1, Message: msg})
			skipped++
			sum.Skipped++
		}
		if b.N != o.Batch {
			return fmt.Errorf("batch of %d images, want %d (the loader must drop the last short batch)", b.N, o.Batch)
		}
		lr := o.Schedule.LR(t.st.Iter) * t.lrScale
		var loss model.LossParts
		var grads [][]float32
		bad := ""
		if t.gpu != nil {
			// The whole step, update included, runs on the GPU; a
			// non-finite step leaves the weights unchanged there.
			if loss, bad, err = t.gpu.step(b, lr, t.ema, peek); err != nil {
				return fmt.Errorf("iteration %d: %w", t.st.Iter, err)
			}
		} else {
			if loss, grads, err = t.step(b); err != nil {
				return fmt.Errorf("iteration %d: %w", t.st.Iter, err)
			}
			if o.Fault != nil {
				o.Fault(t.st.Iter, &loss, grads)
			}
			bad = nonFinite(loss, grads)
		}
		if bad != "" {
			msg := fmt.Sprintf("iteration %d (epoch %d): %s (loss %v: obj %v, xy %v, wh %v, cls %v)", t.st.Iter, e+1, bad, loss.Total(), loss.Obj, loss.XY, loss.WH, loss.Cls)
			t.log(Record{Kind: "nan", Epoch: e, Iter: t.st.Iter, Message: msg})
			switch o.OnNaN {
			case "skip":
				fmt.Fprintf(t.human, "warning: %s: step skipped (train.on_nan: skip)\n", msg)
				zero(grads)
				t.st.Iter++
				t.st.Batch++
				continue
			case "rollback":
				if t.lastGood == nil {
					return fmt.Errorf("%s, and there is no checkpoint to roll back to yet", msg)
				}
				if err := t.lastGood.restore(t.net, t.opt, t.ema); err != nil {
					return err
				}
				if err := t.gpu.load(t.opt, t.ema); err != nil {
					return err
				}
				t.st = t.lastGood.State
				t.lrScale /= 2
				fmt.Fprintf(t.human, "warning: %s: rolled back to iteration %d, learning rate now x%g (train.on_nan: rollback)\n", msg, t.st.Iter, t.lrScale)
				return nil // the caller restarts the epoch from the restored position
			default:
				return fmt.Errorf("%s: stopped (train.on_nan: stop); lower train.lr or raise train.warmup_epochs, or resume from the last checkpoint", msg)
			}
		}
		if t.gpu == nil {
			t.opt.Step(grads, lr)
			zero(grads)
			if t.ema != nil {
				t.ema.Update(t.net)
			}
		}
		ep.Add(loss)
		steps++
		t.st.Iter++
		t.st.Batch++
		t.st.Seen += uint64(b.N)
		if t.st.Iter%o.LogInterval == 0 || steps == 1 {
			ips := float64(b.N*steps) / time.Since(tick).Seconds()
			t.log(Record{Kind: "iter", Epoch: e, Iter: t.st.Iter, LR: lr, Loss: loss.Total(), Obj: loss.Obj, XY: loss.XY, WH: loss.WH, Cls: loss.Cls, ImgPerSec: ips})
			line := fmt.Sprintf("epoch %d/%d iter %d lr %.5f loss %.3f (obj %.3f xy %.3f wh %.3f cls %.3f) %.1f img/s",
				e+1, o.Epochs, t.st.Iter, lr, loss.Total(), loss.Obj, loss.XY, loss.WH, loss.Cls, ips)
			if mode == progress.Silent {
				fmt.Fprintln(t.human, line)
			} else {
				bar.Log(line)
			}
		}
		bar.Add(1)
		bar.SetSuffix(fmt.Sprintf("loss %.3f", loss.Total()))
		if ctx.Err() != nil {
			if err := t.gpu.store(t.opt, t.ema); err != nil {
				return err
			}
			path, err := t.checkpoint()
			if err != nil {
				return err
			}
			if err := t.writeWeights("last.weights", false); err != nil {
				return err
			}
			stop := fmt.Errorf("%w at iteration %d (epoch %d): checkpoint %s written; continue with: dettrain train --resume %s", ErrStopped, t.st.Iter, e+1, path, o.Dir)
			if c := context.Cause(ctx); c != nil && c != ctx.Err() {
				return fmt.Errorf("%w: %w", c, stop) // the signal, for the exit status (StopSignal)
			}
			return stop
		}
	}
	// End of the epoch.
	bar.Finish()
	info := EpochInfo{Epoch: e + 1, LR: o.Schedule.LR(max(t.st.Iter-1, 0)) * t.lrScale, Steps: steps}
	if steps > 0 {
		n := float64(steps)
		info.Loss = model.LossParts{Obj: ep.Obj / n, XY: ep.XY / n, WH: ep.WH / n, Cls: ep.Cls / n, Positives: ep.Positives}
		info.ImgPerSec = float64(steps*o.Batch) / time.Since(tick).Seconds()
	}
	t.st.Epoch++
	t.st.Batch = 0
	rec := Record{Kind: "epoch", Epoch: e, Iter: t.st.Iter, Skipped: skipped}
	if steps > 0 {
		n := float64(steps)
		rec.Loss, rec.Obj, rec.XY, rec.WH, rec.Cls = ep.Total()/n, ep.Obj/n, ep.XY/n, ep.WH/n, ep.Cls/n
	}
	if err := t.gpu.store(t.opt, t.ema); err != nil {
		return err
	}
	if err := t.writeWeights("last.weights", false); err != nil {
		return err
	}
	last := t.st.Epoch == o.Epochs
	if evaluate != nil && (last || (o.EvalInterval > 0 && t.st.Epoch%o.EvalInterval == 0)) {
		if t.ema != nil {
			t.ema.Swap(t.net)
		}
		m, err := evaluate(e)
		if err == nil && m > t.st.BestMetric {
			t.st.BestMetric, t.st.BestEpoch = m, e+1
			err = t.writeWeights("best.weights", false)
		}
		if t.ema != nil {
			t.ema.Swap(t.net)
		}
		if err != nil {
			return fmt.Errorf("evaluating after epoch %d: %w", e+1, err)
		}
		rec.MAP = &m
		sum.LastMetric = m
		fmt.Fprintf(t.human, "epoch %d/%d: mAP@0.5 %.4f (best %.4f, epoch %d)\n", e+1, o.Epochs, m, t.st.BestMetric, t.st.BestEpoch)
		if t.st.BestEpoch == e+1 {
			ck := capture(t.net, t.opt, t.ema, t.st, t.o.Identity)
			if err := writeAtomicCheckpoint(filepath.Join(o.Dir, "checkpoints", "best.ckpt"), ck); err != nil {
				return err
			}
		}
	}
	t.log(rec)
	if o.OnEpoch != nil {
		info.Seconds, info.Metric = time.Since(t.start).Seconds(), rec.MAP
		if err := o.OnEpoch(info); err != nil {
			return err
		}
	}
	_, err := t.checkpoint()
	return err
}

// step runs forward and backward on every replica's shard and returns the
// loss and gradients averaged over the replicas.
func (t *trainer) step(b *data.Batch) (model.LossParts, [][]float32, error) {
	reps, err := t.graphs.get(model.Size{W: b.W, H: b.H})
	if err != nil {
		return model.LossParts{}, nil, err
	}
	// Dropout masks are a pure function of (dropout seed, layer, image of
	// the batch, iteration), so that a resumed run draws what the
	// uninterrupted one drew, and R replicas what one batch draws.
	for i, r := range reps {
		r.g.SetDropoutStep(t.net.DropoutSeed(), i*(b.N/len(reps)), t.st.Iter)
	}
	return runReplicas(reps, b, t.graphs.group)
}

// stopOnData ends the run on a batch that failed to load (without SkipBad):
// it writes a checkpoint of the last completed step, so that nothing done is
// lost, and returns an error naming the file and saying how to go on.
func (t *trainer) stopOnData(err error) error {
	if serr := t.gpu.store(t.opt, t.ema); serr != nil {
		return fmt.Errorf("%w (and saving the run failed: %v)", err, serr)
	}
	path, cerr := t.checkpoint()
	if cerr != nil {
		return fmt.Errorf("%w (and writing a checkpoint failed: %v)", err, cerr)
	}
	if werr := t.writeWeights("last.weights", false); werr != nil {
		return fmt.Errorf("%w (and writing last.weights failed: %v)", err, werr)
	}
	return fmt.Errorf("%w\ntraining stopped at iteration %d (epoch %d, batch %d): checkpoint %s written (the last completed step); repair or remove the file, or set data.skip_bad: true, then continue with: dettrain train --resume %s",
		err, t.st.Iter, t.st.Epoch+1, t.st.Batch, path, t.o.Dir)
}

func (t *trainer) checkpoint() (string, error) {
	ck := capture(t.net, t.opt, t.ema, t.st, t.o.Identity)
	path, err := WriteCheckpoint(filepath.Join(t.o.Dir, "checkpoints"), ck, t.o.KeepCheckpoints)
	if err == nil {
		t.lastGood = ck
	}
	return path, err
}

// writeWeights writes weights/NAME; with ema the averaged weights.
func (t *trainer) writeWeights(name string, ema bool) error {
	if ema && t.ema != nil {
		t.ema.Swap(t.net)
		defer t.ema.Swap(t.net)
	}
	return writeWeightsFS(osFS{}, t.net, filepath.Join(t.o.Dir, "weights", name), t.st.Seen)
}

// writeWeightsFS writes net as darknet .weights (images seen: seen) to path
// through writeAtomic: write, fsync, close, rename, fsync of the folder.
func writeWeightsFS(fsys fileSystem, net *model.Network, path string, seen uint64) error {
	h := model.DefaultHeader
	h.Seen = seen
	return writeAtomic(fsys, path, func(w io.Writer) error { return net.EncodeWeights(w, h) })
}

func zero(grads [][]float32) {
	for _, g := range grads {
		clear(g)
	}
}

// nonFinite names the first NaN or Inf in the loss or gradients, or "".
func nonFinite(l model.LossParts, grads [][]float32) string {
	if v := l.Total(); math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("the loss is %v", v)
	}
	for i, g := range grads {
		for _, v := range g {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Sprintf("gradient %d holds %v", i, v)
			}
		}
	}
	return ""
}

func truths(b *data.Batch, lo, hi int) [][]model.Truth {
	out := make([][]model.Truth, hi-lo)
	for i := lo; i < hi; i++ {
		for _, t := range b.Targets[i] {
			out[i-lo] = append(out[i-lo], model.Truth{Class: t.Class, Box: t.Box, Weight: t.Weight})
		}
	}
	return out
}
