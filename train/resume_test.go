package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/synth"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/tricks"
)

// smallRun is a tiny synthetic training setup: 8 images of 64x64, batch 4.
type smallRun struct {
	ds  *data.Dataset
	cfg string
}

func newSmallRun(t *testing.T) *smallRun {
	t.Helper()
	dir := t.TempDir()
	if _, err := synth.Generate(dir, synth.Options{Images: 12, Seed: 3, Size: 64}); err != nil {
		t.Fatal(err)
	}
	ds, rep, err := data.LoadVOC(data.DefaultVOCLayout(dir), "train", synth.Classes, nil)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("%v %v", err, rep.Problems)
	}
	return &smallRun{ds: ds, cfg: "../configs/models/demo-tiny.cfg"}
}

func (s *smallRun) net(t *testing.T) *model.Network {
	t.Helper()
	c, err := model.ReadCfg(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := model.NewNetwork(c, len(synth.Classes))
	if err != nil {
		t.Fatal(err)
	}
	n.Init(7)
	return n
}

func (s *smallRun) loader() *data.Loader {
	return data.NewLoader(s.ds, stdDecoder{}, data.LoaderOptions{Batch: 4, W: 64, Workers: 2, Shuffle: true, Flip: true, Seed: 9, DropLast: true})
}

func (s *smallRun) options(dir string, epochs int) Options {
	per := len(s.ds.Samples) / 4
	return Options{
		Epochs: epochs, Batch: 4, Size: model.Square(64), Momentum: 0.9, Decay: 0.0005, LogInterval: 1, Dir: dir,
		Schedule: tricks.Schedule{Base: 0.002, Warmup: 2, Total: epochs * per, Kind: "cosine"},
		Identity: Identity{Config: []byte("test"), Model: "m", Data: "d"},
	}
}

// losses reads the per-iteration losses of a log.jsonl.
func losses(t *testing.T, log []byte) map[int]float64 {
	t.Helper()
	out := map[int]float64{}
	for _, line := range bytes.Split(bytes.TrimSpace(log), []byte("\n")) {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == "iter" {
			out[r.Iter] = r.Loss
		}
	}
	return out
}

func weightsOf(n *model.Network) [][]float32 {
	var out [][]float32
	for _, p := range n.Params() {
		out = append(out, clone(p.Value.Float32s()))
	}
	for _, b := range bnStates(n) {
		out = append(out, clone(b.Mean), clone(b.Var))
	}
	return out
}

// TestResumeIsExact: a run stopped after iteration k and resumed gives the
// same loss at every later iteration and bit-identical final weights and BN
// statistics as an uninterrupted run.
func TestResumeIsExact(t *testing.T) {
	s := newSmallRun(t)
	const epochs = 3
	resumed, dirB := checkResumeIsExact(t, func() *model.Network { return s.net(t) }, s.loader, s.options, epochs)
	// Extending the finished run by one epoch works from its final checkpoint.
	ck, _, err := LatestCheckpoint(filepath.Join(dirB, "checkpoints"), io.Discard)
	if err != nil || !ck.State.Finished {
		t.Fatalf("final checkpoint %+v %v", ck.State, err)
	}
	o := s.options(dirB, epochs+1)
	o.Resume = ck
	ld := s.loader()
	defer ld.Close()
	sum, err := Run(context.Background(), resumed, ld, o, nil, io.Discard, io.Discard)
	if err != nil || sum.Epoch != epochs+1 {
		t.Fatalf("extension: %+v %v", sum.State, err)
	}
}

// dropoutCfg is the demo model with two [dropout] layers, as Yolo-Fastest
// has them: one after the backbone's conv 8 (the route "-1, 8" still takes
// the conv's output) and one before the second head's last conv.
func dropoutCfg(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../configs/models/demo-tiny.cfg")
	if err != nil {
		t.Fatal(err)
	}
	txt := string(b)
	pools := strings.SplitAfterN(txt, "[maxpool]", 6) // the fifth [maxpool] follows conv 8
	if len(pools) < 6 {
		t.Fatal("demo-tiny.cfg: fewer [maxpool] sections than the test expects")
	}
	txt = strings.Join(pools[:4], "") + strings.TrimSuffix(pools[4], "[maxpool]") + "[dropout]\nprobability=0.2\n\n[maxpool]" + pools[5]
	k := strings.LastIndex(txt, "[convolutional]")
	txt = txt[:k] + "[dropout]\nprobability=0.1\n\n" + txt[k:]
	path := filepath.Join(t.TempDir(), "demo-dropout.cfg")
	if err := os.WriteFile(path, []byte(txt), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestResumeIsExactWithTricks is TestResumeIsExact with everything that
// draws random numbers or keeps state on: augmentation, mixup, random
// shapes, EMA, two replicas, and dropout (the fine-tuning config's
// Yolo-Fastest has three [dropout] layers). The resumed network starts from
// another seed, so its dropout masks too must come from the checkpoint.
func TestResumeIsExactWithTricks(t *testing.T) {
	s := newSmallRun(t)
	s.cfg = dropoutCfg(t)
	newNet := func() *model.Network {
		n := s.net(t)
		drop := 0
		for _, l := range n.Layers {
			if d, ok := l.(*model.DropoutLayer); ok && d.P > 0 {
				drop++
			}
		}
		if drop != 2 {
			t.Fatalf("%s: %d dropout layers, want 2", s.cfg, drop)
		}
		return n
	}
	per := len(s.ds.Samples) / 4
	shapes := tricks.Shapes{Sizes: []int{32, 64, 96}, Every: 1, Seed: 4}
	loader := func() *data.Loader {
		return data.NewLoader(s.ds, stdDecoder{}, data.LoaderOptions{Batch: 4, W: 64, Workers: 2, Shuffle: true, Flip: true, Seed: 9, DropLast: true,
			Augment: true, Mixup: &data.MixupOptions{Alpha: 1.5, Beta: 1.5, OffFromEpoch: 2},
			SizeAt: func(e, b int) (int, int) { n := shapes.SizeAt(e*per + b); return n, n }})
	}
	options := func(dir string, epochs int) Options {
		o := s.options(dir, epochs)
		o.EMA = &EMAOptions{Decay: 0.999, Tau: 4}
		o.Replicas = 2
		return o
	}
	checkResumeIsExact(t, newNet, loader, options, 3)
}

// checkResumeIsExact runs epochs uninterrupted, then again stopped (as by
// SIGINT) during iteration 3, mid-epoch 2, and resumed in a fresh network
// initialised with another seed; it checks that every loss of the resumed
// run and the final weights, BN statistics and EMA values are bit-identical
// to the uninterrupted run's. It returns the resumed network and its folder.
func checkResumeIsExact(t *testing.T, newNet func() *model.Network, newLoader func() *data.Loader, options func(dir string, epochs int) Options, epochs int) (*model.Network, string) {
	t.Helper()
	// The uninterrupted run.
	full := newNet()
	la := newLoader()
	defer la.Close()
	var logA bytes.Buffer
	dirA := t.TempDir()
	if _, err := Run(context.Background(), full, la, options(dirA, epochs), nil, io.Discard, &logA); err != nil {
		t.Fatal(err)
	}
	// The same run, stopped during iteration 3, mid-epoch 2.
	ctx, cancel := context.WithCancel(context.Background())
	dirB := t.TempDir()
	o := options(dirB, epochs)
	cancelAt2 := seams{fault: func(iter int, _ *model.LossParts, _ [][]float32) {
		if iter == 2 {
			cancel()
		}
	}}
	lb := newLoader()
	defer lb.Close()
	var logB bytes.Buffer
	_, err := run(ctx, newNet(), lb, o, nil, io.Discard, &logB, cancelAt2)
	if !errors.Is(err, ErrStopped) || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("stopped run: %v", err)
	}
	ck, _, err := LatestCheckpoint(filepath.Join(dirB, "checkpoints"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if ck.State.Iter != 3 || ck.State.Epoch != 1 || ck.State.Batch != 1 {
		t.Fatalf("checkpoint state %+v, want iteration 3 = epoch 1 batch 1", ck.State)
	}
	// Resume in a fresh network with another initialisation (and dropout
	// seed): everything must come from the checkpoint.
	resumed := newNet()
	resumed.Init(99)
	o = options(dirB, epochs)
	o.Resume = ck
	lc := newLoader()
	defer lc.Close()
	var logC bytes.Buffer
	if _, err := Run(context.Background(), resumed, lc, o, nil, io.Discard, &logC); err != nil {
		t.Fatal(err)
	}
	a, c := losses(t, logA.Bytes()), losses(t, logC.Bytes())
	if len(c) == 0 {
		t.Fatal("the resumed run logged no iterations")
	}
	for it, lc := range c {
		if it <= 3 {
			t.Fatalf("resumed run logged iteration %d, before the checkpoint", it)
		}
		if la, ok := a[it]; !ok || la != lc {
			t.Errorf("iteration %d: loss %v resumed, %v uninterrupted", it, lc, la)
		}
	}
	wa, wc := weightsOf(full), weightsOf(resumed)
	for i := range wa {
		for j := range wa[i] {
			if math.Float32bits(wa[i][j]) != math.Float32bits(wc[i][j]) {
				t.Fatalf("tensor %d element %d: %v resumed, %v uninterrupted", i, j, wc[i][j], wa[i][j])
			}
		}
	}
	// The EMA, when on, is in the final checkpoints: compare them.
	ca, _, errA := LatestCheckpoint(filepath.Join(dirA, "checkpoints"), io.Discard)
	cc, _, errC := LatestCheckpoint(filepath.Join(dirB, "checkpoints"), io.Discard)
	if errA != nil || errC != nil {
		t.Fatalf("final checkpoints: %v %v", errA, errC)
	}
	if (ca.EMA == nil) != (cc.EMA == nil) {
		t.Fatalf("EMA in one final checkpoint only")
	}
	if ca.EMA != nil {
		if ca.EMA.Updates != cc.EMA.Updates {
			t.Fatalf("EMA updates %d resumed, %d uninterrupted", cc.EMA.Updates, ca.EMA.Updates)
		}
		for i := range ca.EMA.Values {
			for j, v := range ca.EMA.Values[i] {
				if math.Float32bits(v) != math.Float32bits(cc.EMA.Values[i][j]) {
					t.Fatalf("EMA tensor %d element %d: %v resumed, %v uninterrupted", i, j, cc.EMA.Values[i][j], v)
				}
			}
		}
	}
	return resumed, dirB
}

// TestOnNaN injects a NaN loss at iteration 2 and checks the three policies.
func TestOnNaN(t *testing.T) {
	s := newSmallRun(t)
	inject := func(iter int, l *model.LossParts, _ [][]float32) {
		if iter == 3 {
			l.Obj = math.NaN()
		}
	}
	run := func(policy string) (Summary, string, error) {
		o := s.options(t.TempDir(), 2)
		o.OnNaN = policy
		l := s.loader()
		defer l.Close()
		var human, log bytes.Buffer
		sum, err := run(context.Background(), s.net(t), l, o, nil, &human, &log, seams{fault: inject})
		return sum, human.String() + log.String(), err
	}
	_, _, err := run("stop")
	if err == nil || !strings.Contains(err.Error(), "iteration 3") || !strings.Contains(err.Error(), "NaN") || !strings.Contains(err.Error(), "obj NaN") {
		t.Fatalf("stop: %v", err)
	}
	sum, out, err := run("skip")
	if err != nil || !strings.Contains(out, "step skipped") || sum.Iter != 4 {
		t.Fatalf("skip: %v iter %d\n%s", err, sum.Iter, out)
	}
	// Rollback: the NaN at iteration 3 (epoch 2) rolls back to the end-of-epoch-1
	// checkpoint (iteration 2) with half the rate; the fault fires once more
	// at iteration 3 and rolls back again, then training finishes.
	fired := 0
	inject = func(iter int, l *model.LossParts, _ [][]float32) {
		if iter == 3 && fired < 2 {
			fired++
			l.Obj = math.NaN()
		}
	}
	sum, out, err = run("rollback")
	if err != nil || strings.Count(out, "rolled back to iteration 2") != 2 || !strings.Contains(out, "x0.25") || sum.Iter != 4 {
		t.Fatalf("rollback: %v iter %d\n%s", err, sum.Iter, out)
	}
}

// TestCheckpointFilesAreKept: only the newest K checkpoints stay.
func TestCheckpointFilesAreKept(t *testing.T) {
	s := newSmallRun(t)
	dir := t.TempDir()
	o := s.options(dir, 4)
	o.KeepCheckpoints = 2
	l := s.loader()
	defer l.Close()
	if _, err := Run(context.Background(), s.net(t), l, o, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	all, _ := listCheckpoints(filepath.Join(dir, "checkpoints"))
	if len(all) != 2 || !strings.HasSuffix(all[1], checkpointName(8)) {
		t.Fatalf("checkpoints %v", all)
	}
	if _, err := os.Stat(filepath.Join(dir, "weights", "last.weights")); err != nil {
		t.Fatal(err)
	}
}
