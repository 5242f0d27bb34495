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
	"reflect"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/data"
)

// breakImage overwrites the image that epoch 0 puts at position pos (so in
// batch pos/4) with bytes no decoder reads, and returns its path and a
// function that puts the original back.
func breakImage(t *testing.T, s *smallRun, pos int) (string, func()) {
	t.Helper()
	l := s.loader()
	defer l.Close()
	path := s.ds.Samples[l.EpochOrder(0)[pos]].ImagePath
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, func() {
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDecodeFailureSavesTheRun: without data.skip_bad, an image that fails
// to load in the middle of an epoch (batch 1 of epoch 1, so after one step)
// ends the run with an error naming the file and the resume command, after
// a checkpoint of the last completed step; once the file is repaired, the
// resumed run ends with the weights of a run that never failed, bit for bit.
func TestDecodeFailureSavesTheRun(t *testing.T) {
	s := newSmallRun(t)
	const epochs = 2
	ref := s.net(t)
	l := s.loader()
	defer l.Close()
	if _, err := Run(context.Background(), ref, l, s.options(t.TempDir(), epochs), nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}

	bad, repair := breakImage(t, s, 5)
	dir := t.TempDir()
	lb := s.loader()
	defer lb.Close()
	_, err := Run(context.Background(), s.net(t), lb, s.options(dir, epochs), nil, io.Discard, io.Discard)
	var le *data.LoadError
	if !errors.As(err, &le) || le.Path != bad {
		t.Fatalf("error %v, want a *data.LoadError for %s", err, bad)
	}
	ck, path, cerr := LatestCheckpoint(filepath.Join(dir, "checkpoints"), io.Discard)
	if cerr != nil || ck.State.Iter != 1 || ck.State.Epoch != 0 || ck.State.Batch != 1 {
		t.Fatalf("checkpoint %s: %+v %v, want iteration 1 = epoch 0 batch 1 (the last completed step)", path, ck, cerr)
	}
	for _, want := range []string{bad, path, "data.skip_bad", "dettrain train --resume " + dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	repair()
	resumed := s.net(t)
	resumed.Init(99) // everything must come from the checkpoint
	o := s.options(dir, epochs)
	o.Resume = ck
	lc := s.loader()
	defer lc.Close()
	if _, err := Run(context.Background(), resumed, lc, o, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	wa, wc := weightsOf(ref), weightsOf(resumed)
	for i := range wa {
		for j := range wa[i] {
			if math.Float32bits(wa[i][j]) != math.Float32bits(wc[i][j]) {
				t.Fatalf("tensor %d element %d: %v after the failure and resume, %v without failure", i, j, wc[i][j], wa[i][j])
			}
		}
	}
}

// TestSkipBadDuringEpoch: with data.skip_bad the image that fails to load
// is left out each epoch, warned about naming the file and counted in
// log.jsonl (a "skip" record per image, "skipped" in the epoch record), and
// the run finishes.
func TestSkipBadDuringEpoch(t *testing.T) {
	s := newSmallRun(t)
	const epochs = 3
	bad, _ := breakImage(t, s, 5)
	o := s.options(t.TempDir(), epochs)
	o.SkipBad = true
	l := data.NewLoader(s.ds, stdDecoder{}, data.LoaderOptions{Batch: 4, W: 64, Workers: 2, Shuffle: true, Flip: true, Seed: 9, DropLast: true, SkipBad: true})
	defer l.Close()
	var human, log bytes.Buffer
	sum, err := Run(context.Background(), s.net(t), l, o, nil, &human, &log)
	if err != nil {
		t.Fatal(err)
	}
	// The broken file is in the training split, so in every epoch once.
	if sum.Skipped != epochs || sum.Iter != epochs*len(s.ds.Samples)/4 {
		t.Fatalf("skipped %d images in %d iterations, want %d in %d", sum.Skipped, sum.Iter, epochs, epochs*len(s.ds.Samples)/4)
	}
	if n := strings.Count(human.String(), "warning: load "+bad); n != epochs {
		t.Errorf("%d warnings naming %s, want %d:\n%s", n, bad, epochs, human.String())
	}
	skips, perEpoch := 0, map[int]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(log.Bytes()), []byte("\n")) {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		switch r.Kind {
		case "skip":
			skips++
			if r.Skipped != 1 || !strings.Contains(r.Message, bad) {
				t.Errorf("skip record %+v, want 1 image naming %s", r, bad)
			}
		case "epoch":
			perEpoch[r.Epoch] = r.Skipped
		}
	}
	if skips != epochs || !reflect.DeepEqual(perEpoch, map[int]int{0: 1, 1: 1, 2: 1}) {
		t.Errorf("%d skip records, per epoch %v; want %d and 1 in each", skips, perEpoch, epochs)
	}
}

// TestLoaderSkipBadSlot: with SkipBad the failed image's slot holds the
// pixels, targets, size and index of the batch's first image that loaded,
// every other slot is what a loader over intact files gives, and
// Batch.Skipped names the file; without SkipBad the batch is a *LoadError.
func TestLoaderSkipBadSlot(t *testing.T) {
	s := newSmallRun(t)
	opts := data.LoaderOptions{Batch: 4, W: 64, Workers: 2, Shuffle: true, Flip: true, Seed: 9, DropLast: true, SkipBad: true}
	second := func(o data.LoaderOptions) (*data.Batch, error) { // batch 1 of epoch 0
		l := data.NewLoader(s.ds, stdDecoder{}, o)
		defer l.Close()
		l.Epoch(0)
		if _, err := l.Next(); err != nil {
			t.Fatal(err)
		}
		return l.Next()
	}
	want, err := second(opts)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := breakImage(t, s, 5) // slot 1 of batch 1; slot 0 is the first that loads
	got, err := second(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Skipped) != 1 || got.Skipped[0].Path != bad {
		t.Fatalf("Skipped %v, want %s", got.Skipped, bad)
	}
	plane := 3 * 64 * 64
	for n := range 4 {
		src := n
		if n == 1 {
			src = 0
		}
		if !reflect.DeepEqual(got.Images[n*plane:(n+1)*plane], want.Images[src*plane:(src+1)*plane]) ||
			!reflect.DeepEqual(got.Targets[n], want.Targets[src]) || got.Index[n] != want.Index[src] ||
			got.OrigW[n] != want.OrigW[src] || got.OrigH[n] != want.OrigH[src] {
			t.Errorf("slot %d differs from slot %d of the intact batch", n, src)
		}
	}
	opts.SkipBad = false
	_, err = second(opts)
	var le *data.LoadError
	if !errors.As(err, &le) || le.Path != bad || !strings.Contains(err.Error(), bad) {
		t.Fatalf("without SkipBad: %v, want a *data.LoadError naming %s", err, bad)
	}
}

// TestSkipBadWholeBatch: with data.skip_bad a batch none of whose images
// load (batch 1 of epoch 1, all four broken) is skipped as a whole: one
// "skip" record counting its 4 images, no step for it, and the run ends.
func TestSkipBadWholeBatch(t *testing.T) {
	s := newSmallRun(t)
	var bad []string
	for pos := 4; pos < 8; pos++ {
		p, _ := breakImage(t, s, pos)
		bad = append(bad, p)
	}
	o := s.options(t.TempDir(), 1)
	o.SkipBad = true
	l := data.NewLoader(s.ds, stdDecoder{}, data.LoaderOptions{Batch: 4, W: 64, Workers: 2, Shuffle: true, Flip: true, Seed: 9, DropLast: true, SkipBad: true})
	defer l.Close()
	var human, log bytes.Buffer
	sum, err := Run(context.Background(), s.net(t), l, o, nil, &human, &log)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Iter != 1 || sum.Skipped != 4 || sum.Batch != 0 || sum.Epoch != 1 {
		t.Fatalf("%+v skipped %d, want 1 iteration, 4 images skipped, the epoch done", sum.State, sum.Skipped)
	}
	var skips []Record
	for _, line := range bytes.Split(bytes.TrimSpace(log.Bytes()), []byte("\n")) {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == "skip" {
			skips = append(skips, r)
		}
	}
	if len(skips) != 1 || skips[0].Skipped != 4 {
		t.Fatalf("skip records %+v, want one for 4 images", skips)
	}
	for _, p := range bad {
		if !strings.Contains(skips[0].Message, p) || !strings.Contains(human.String(), p) {
			t.Errorf("%s not named in the skip record or the warning:\n%s", p, human.String())
		}
	}
}
