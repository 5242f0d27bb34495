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
	// OnEpoch, when set, is called after every epoch (results.csv, charts);
	// on rank 0 only.
	OnEpoch func(EpochInfo) error
	// Ranks, when set, trains across processes (see Ranks): Batch is the
	// global batch, the source gives this rank's shard of each, Replicas
	// counts this process's replicas, and only rank 0 writes files.
	Ranks Ranks
}

// rankCount is the number of processes of a run.
func rankCount(r Ranks) int {
	if r == nil {
		return 1
	}
	return r.Size()
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
	// AllReduceMS (epoch, across ranks): the mean time per step of the
	// all-reduces of the gradients and losses across ranks, ms.
	AllReduceMS float64 `json:"allreduce_ms,omitempty"`
	Seconds     float64 `json:"seconds"`
	Message     string  `json:"message,omitempty"`
}

// ErrStopped is returned (wrapped) when a run stops on a signal after
// saving its checkpoint.
var ErrStopped = errors.New("training stopped")

// trainer is one run in progress.
type trainer struct {
	net      *model.Network
	src      Batches
	o        Options
	step     Stepper
	opt      *SGD
	ema      *EMA
	st       State
	lrScale  float64
	lastGood *Checkpoint // the last checkpoint written, for rollback
	enc      *json.Encoder
	human    io.Writer
	start    time.Time
}

// Run trains net on src. When ctx is cancelled (SIGINT, SIGTERM) it
// finishes the current step, writes a checkpoint and returns an error
// wrapping ErrStopped that says how to resume.
func Run(ctx context.Context, net *model.Network, src Batches, o Options, evaluate Evaluator, human io.Writer, jsonl io.Writer) (Summary, error) {
	return run(ctx, net, src, o, evaluate, human, jsonl, seams{})
}

// run is Run with test seams: build, resume, then epoch after epoch.
func run(ctx context.Context, net *model.Network, src Batches, o Options, evaluate Evaluator, human io.Writer, jsonl io.Writer, hooks seams) (Summary, error) {
	o = o.withDefaults()
	t := &trainer{net: net, src: src, o: o, lrScale: 1, enc: json.NewEncoder(jsonl), human: human, start: time.Now()}
	sum := Summary{}
	if src.BatchesPerEpoch() < 1 {
		return sum, fmt.Errorf("the training split has fewer images than one batch of %d", o.Batch)
	}
	if n := rankCount(o.Ranks) * o.Replicas; o.Batch%n != 0 {
		if o.Ranks != nil {
			return sum, fmt.Errorf("train.batch %d is not divisible by %d ranks x %d replicas", o.Batch, o.Ranks.Size(), o.Replicas)
		}
		return sum, fmt.Errorf("train.batch %d is not divisible by %d replicas", o.Batch, o.Replicas)
	}
	t.opt = NewSGD(net.Params(), o.Momentum, o.Decay)
	if o.EMA != nil {
		t.ema = NewEMA(net, o.EMA.Decay, o.EMA.Tau)
	}
	if lead(o.Ranks) {
		if err := os.MkdirAll(filepath.Join(o.Dir, "weights"), 0o755); err != nil {
			return sum, err
		}
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
	step, err := newStepper(net, o, t.opt, t.ema, hooks)
	if err != nil {
		return sum, err
	}
	defer step.Close()
	t.step = step
	fmt.Fprintf(human, "training on %s\n", step.Describe())
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

func (o Options) withDefaults() Options {
	if o.KeepCheckpoints <= 0 {
		o.KeepCheckpoints = 3
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.LogInterval <= 0 {
		o.LogInterval = 10
	}
	if o.MaxGraphs <= 0 {
		o.MaxGraphs = 2
	}
	return o
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

// epoch runs the rest of epoch t.st.Epoch: take a batch, step, apply the
// NaN policy, log, stop on a signal; then the end of the epoch.
func (t *trainer) epoch(ctx context.Context, evaluate Evaluator, sum *Summary) error {
	e := t.st.Epoch
	t.src.EpochFrom(e, t.st.Batch)
	m := t.newMeter(e)
	defer m.bar.Finish()
	in := lookahead{src: t.src}
	for {
		b, err := in.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if b, err = t.admit(b, err, m, sum); err != nil {
			return err
		}
		if b == nil {
			continue // skipped (data.skip_bad)
		}
		lr := t.o.Schedule.LR(t.st.Iter) * t.lrScale
		loss, bad, err := t.step.Step(b, t.st.Iter, lr, in.peek)
		if err != nil {
			return fmt.Errorf("iteration %d: %w", t.st.Iter, err)
		}
		if bad != "" {
			restart, err := t.nonFinite(bad, loss)
			if err != nil || restart {
				return err // restart: the caller reruns the epoch from the restored position
			}
			continue
		}
		t.st.Iter++
		t.st.Batch++
		t.st.Seen += uint64(t.o.Batch)
		m.add(t, loss, lr, t.o.Batch)
		stop, err := anyRank(t.o.Ranks, ctx.Err() != nil)
		if err != nil {
			return err
		}
		if stop {
			return t.interrupted(ctx)
		}
	}
	return t.endEpoch(evaluate, m, sum)
}

// lookahead is the batch source with one batch of lookahead: on the GPU the
// next batch is taken while a step runs, so that its images travel to the
// device meanwhile. The source allocates every batch, and positions are
// kept by the trainer's State, so taking it early changes nothing else.
type lookahead struct {
	src   Batches
	ahead *data.Batch
	err   error
}

func (l *lookahead) peek() *data.Batch {
	if l.ahead == nil && l.err == nil {
		l.ahead, l.err = l.src.Next()
	}
	return l.ahead
}

func (l *lookahead) next() (*data.Batch, error) {
	b, err := l.ahead, l.err
	if b == nil && err == nil {
		b, err = l.src.Next()
	}
	l.ahead, l.err = nil, nil
	return b, err
}

// admit applies the data.skip_bad policy to what the source gave: it
// returns the batch to train on, nil (with no error) for a batch skipped
// whole, or the error that ends the run.
func (t *trainer) admit(b *data.Batch, err error, m *meter, sum *Summary) (*data.Batch, error) {
	e := t.st.Epoch
	if err != nil {
		var le *data.LoadError
		if t.o.SkipBad && errors.As(err, &le) && t.o.Ranks != nil {
			// The other ranks' shards loaded and they are waiting in the
			// step: a rank cannot skip alone.
			return nil, fmt.Errorf("%w: rank %d: no image of its shard of batch %d of epoch %d loaded; a batch cannot be skipped across ranks (data.skip_bad); the last checkpoint is the one written at the end of the last epoch", err, t.o.Ranks.Rank(), t.st.Batch, e+1)
		}
		if t.o.SkipBad && errors.As(err, &le) {
			// No image of the batch loaded: skip the batch. The loader
			// goes on with the next one, so the position moves on too.
			msg := fmt.Sprintf("%v: no image of batch %d of epoch %d loaded; batch skipped (data.skip_bad)", err, t.st.Batch, e+1)
			fmt.Fprintf(t.human, "warning: %s\n", msg)
			t.log(Record{Kind: "skip", Epoch: e, Iter: t.st.Iter, Skipped: t.o.Batch, Message: msg})
			m.skipped += t.o.Batch
			sum.Skipped += t.o.Batch
			t.st.Batch++
			return nil, nil
		}
		return nil, t.stopOnData(err)
	}
	for _, le := range b.Skipped {
		msg := fmt.Sprintf("%v: image skipped (data.skip_bad)", le)
		fmt.Fprintf(t.human, "warning: %s\n", msg)
		t.log(Record{Kind: "skip", Epoch: e, Iter: t.st.Iter, Skipped: 1, Message: msg})
		m.skipped++
		sum.Skipped++
	}
	if want := t.o.Batch / rankCount(t.o.Ranks); b.N != want {
		return nil, fmt.Errorf("batch of %d images, want %d (the loader must drop the last short batch)", b.N, want)
	}
	return b, nil
}

// nonFinite applies train.on_nan to a step whose loss or gradients were
// not finite (bad says which). restart is true after a rollback: the epoch
// starts again from the restored position.
func (t *trainer) nonFinite(bad string, loss model.LossParts) (restart bool, err error) {
	e := t.st.Epoch
	msg := fmt.Sprintf("iteration %d (epoch %d): %s (loss %v: obj %v, xy %v, wh %v, cls %v)", t.st.Iter, e+1, bad, loss.Total(), loss.Obj, loss.XY, loss.WH, loss.Cls)
	t.log(Record{Kind: "nan", Epoch: e, Iter: t.st.Iter, Message: msg})
	switch t.o.OnNaN {
	case "skip":
		fmt.Fprintf(t.human, "warning: %s: step skipped (train.on_nan: skip)\n", msg)
		t.st.Iter++
		t.st.Batch++
		return false, nil
	case "rollback":
		if t.lastGood == nil {
			return false, fmt.Errorf("%s, and there is no checkpoint to roll back to yet", msg)
		}
		if err := t.lastGood.restore(t.net, t.opt, t.ema); err != nil {
			return false, err
		}
		if err := t.step.Load(); err != nil {
			return false, err
		}
		t.st = t.lastGood.State
		t.lrScale /= 2
		fmt.Fprintf(t.human, "warning: %s: rolled back to iteration %d, learning rate now x%g (train.on_nan: rollback)\n", msg, t.st.Iter, t.lrScale)
		return true, nil
	default:
		return false, fmt.Errorf("%s: stopped (train.on_nan: stop); lower train.lr or raise train.warmup_epochs, or resume from the last checkpoint", msg)
	}
}

// reduceTimer is a Stepper that times its all-reduces across ranks.
type reduceTimer interface{ reduceTime() time.Duration }

// meter is an epoch's running sums, its progress bar and its log lines.
type meter struct {
	loss    model.LossParts // summed over the steps
	steps   int
	skipped int // images left out (data.skip_bad)
	tick    time.Time
	reduced time.Duration // the stepper's all-reduce time at the start
	mode    progress.Mode
	bar     *progress.Bar
}

func (t *trainer) newMeter(e int) *meter {
	m := &meter{tick: time.Now(), mode: progress.Silent} // plain log lines only, when not on a terminal
	if r, ok := t.step.(reduceTimer); ok {
		m.reduced = r.reduceTime()
	}
	if progress.IsTerminal(t.human) {
		m.mode = progress.Redraw
	}
	m.bar = progress.New(t.human, t.src.BatchesPerEpoch()-t.st.Batch, progress.Options{Label: fmt.Sprintf("epoch %d/%d", e+1, t.o.Epochs), Mode: m.mode})
	return m
}

// add counts a finished step of n images and logs it every
// train.log_interval iterations (and at the epoch's first step).
func (m *meter) add(t *trainer, loss model.LossParts, lr float64, n int) {
	m.loss.Add(loss)
	m.steps++
	e := t.st.Epoch
	if t.st.Iter%t.o.LogInterval == 0 || m.steps == 1 {
		ips := float64(n*m.steps) / time.Since(m.tick).Seconds()
		t.log(Record{Kind: "iter", Epoch: e, Iter: t.st.Iter, LR: lr, Loss: loss.Total(), Obj: loss.Obj, XY: loss.XY, WH: loss.WH, Cls: loss.Cls, ImgPerSec: ips})
		line := fmt.Sprintf("epoch %d/%d iter %d lr %.5f loss %.3f (obj %.3f xy %.3f wh %.3f cls %.3f) %.1f img/s",
			e+1, t.o.Epochs, t.st.Iter, lr, loss.Total(), loss.Obj, loss.XY, loss.WH, loss.Cls, ips)
		if m.mode == progress.Silent {
			fmt.Fprintln(t.human, line)
		} else {
			m.bar.Log(line)
		}
	}
	m.bar.Add(1)
	m.bar.SetSuffix(fmt.Sprintf("loss %.3f", loss.Total()))
}

// interrupted ends the run on a signal after the current step: checkpoint,
// last.weights, and an error saying how to resume.
func (t *trainer) interrupted(ctx context.Context) error {
	if err := t.step.Store(); err != nil {
		return err
	}
	path, err := t.checkpoint()
	if err != nil {
		return err
	}
	if err := t.writeWeights("last.weights", false); err != nil {
		return err
	}
	if ctx.Err() == nil { // another rank was stopped
		return fmt.Errorf("%w at iteration %d (epoch %d): another rank was stopped by a signal", ErrStopped, t.st.Iter, t.st.Epoch+1)
	}
	stop := fmt.Errorf("%w at iteration %d (epoch %d): checkpoint %s written; continue with: dettrain train --resume %s", ErrStopped, t.st.Iter, t.st.Epoch+1, path, t.o.Dir)
	if c := context.Cause(ctx); c != nil && c != ctx.Err() {
		return fmt.Errorf("%w: %w", c, stop) // the signal, for the exit status (StopSignal)
	}
	return stop
}

// endEpoch closes epoch t.st.Epoch: last.weights, the evaluation (and
// best.weights, best.ckpt) when due, the epoch's log line and callback, and
// a checkpoint.
func (t *trainer) endEpoch(evaluate Evaluator, m *meter, sum *Summary) error {
	o := t.o
	e := t.st.Epoch
	m.bar.Finish()
	info := EpochInfo{Epoch: e + 1, LR: o.Schedule.LR(max(t.st.Iter-1, 0)) * t.lrScale, Steps: m.steps}
	rec := Record{Kind: "epoch", Epoch: e, Iter: t.st.Iter, Skipped: m.skipped}
	if m.steps > 0 {
		n, ep := float64(m.steps), m.loss
		info.Loss = model.LossParts{Obj: ep.Obj / n, XY: ep.XY / n, WH: ep.WH / n, Cls: ep.Cls / n, Positives: ep.Positives}
		info.ImgPerSec = float64(m.steps*o.Batch) / time.Since(m.tick).Seconds()
		rec.Loss, rec.Obj, rec.XY, rec.WH, rec.Cls = ep.Total()/n, ep.Obj/n, ep.XY/n, ep.WH/n, ep.Cls/n
		if r, ok := t.step.(reduceTimer); ok && o.Ranks != nil {
			rec.AllReduceMS = (r.reduceTime() - m.reduced).Seconds() * 1000 / n
		}
	}
	t.st.Epoch++
	t.st.Batch = 0
	if err := t.step.Store(); err != nil {
		return err
	}
	if err := t.writeWeights("last.weights", false); err != nil {
		return err
	}
	last := t.st.Epoch == o.Epochs
	if evaluate != nil && (last || (o.EvalInterval > 0 && t.st.Epoch%o.EvalInterval == 0)) {
		m, err := t.evaluate(evaluate, e)
		if err != nil {
			return err
		}
		rec.MAP = &m
		sum.LastMetric = m
	}
	t.log(rec)
	if o.OnEpoch != nil && lead(o.Ranks) {
		info.Seconds, info.Metric = time.Since(t.start).Seconds(), rec.MAP
		if err := o.OnEpoch(info); err != nil {
			return err
		}
	}
	_, err := t.checkpoint()
	return err
}

// evaluate scores the weights after epoch e (the EMA's when on) and keeps
// best.weights and best.ckpt.
func (t *trainer) evaluate(evaluate Evaluator, e int) (float64, error) {
	if t.ema != nil {
		t.ema.Swap(t.net)
	}
	var m float64
	var err error
	if lead(t.o.Ranks) {
		m, err = evaluate(e)
	}
	m, err = fromLead(t.o.Ranks, m, err)
	if err == nil && m > t.st.BestMetric {
		t.st.BestMetric, t.st.BestEpoch = m, e+1
		err = t.writeWeights("best.weights", false)
	}
	if t.ema != nil {
		t.ema.Swap(t.net)
	}
	if err != nil {
		return 0, fmt.Errorf("evaluating after epoch %d: %w", e+1, err)
	}
	fmt.Fprintf(t.human, "epoch %d/%d: mAP@0.5 %.4f (best %.4f, epoch %d)\n", e+1, t.o.Epochs, m, t.st.BestMetric, t.st.BestEpoch)
	if t.st.BestEpoch == e+1 && lead(t.o.Ranks) {
		ck := capture(t.net, t.opt, t.ema, t.st, t.o.Identity)
		if err := writeAtomicCheckpoint(filepath.Join(t.o.Dir, "checkpoints", "best.ckpt"), ck); err != nil {
			return 0, err
		}
	}
	return m, nil
}

// stopOnData ends the run on a batch that failed to load (without SkipBad):
// it writes a checkpoint of the last completed step, so that nothing done is
// lost, and returns an error naming the file and saying how to go on.
func (t *trainer) stopOnData(err error) error {
	if serr := t.step.Store(); serr != nil {
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
	if !lead(t.o.Ranks) { // kept in memory for a rollback
		t.lastGood = ck
		return filepath.Join(t.o.Dir, "checkpoints", checkpointName(t.st.Iter)), nil
	}
	path, err := WriteCheckpoint(filepath.Join(t.o.Dir, "checkpoints"), ck, t.o.KeepCheckpoints)
	if err == nil {
		t.lastGood = ck
	}
	return path, err
}

// writeWeights writes weights/NAME; with ema the averaged weights.
func (t *trainer) writeWeights(name string, ema bool) error {
	if !lead(t.o.Ranks) {
		return nil
	}
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
