package train

import (
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplicasSyncBNMatchOneBatch: two replicas with synchronized BN train
// like one replica with the whole batch (losses and weights after two steps
// agree to float32 rounding, relative 1e-4), and every replica shares one set
// of weights; with local BN the losses differ.
func TestReplicasSyncBNMatchOneBatch(t *testing.T) {
	s := newSmallRun(t)
	testReplicasMatchOneBatch(t, s)
}

// TestReplicasWithDropoutMatchOneBatch is the same with a [dropout] layer
// (Yolo-Fastest has 18): an image's mask depends on its place in the whole
// batch, not on its replica, so two replicas still train like one batch.
// With masks keyed by replica (as before) iteration 1's loss differed.
func TestReplicasWithDropoutMatchOneBatch(t *testing.T) {
	s := newSmallRun(t)
	raw, err := os.ReadFile(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	// After layer 12 (the conv at line 92), before the head's convs; the
	// route "-1, 8" names a layer before it, so nothing else moves.
	lines := strings.SplitAfter(string(raw), "\n")
	text := strings.Join(lines[:101], "") + "[dropout]\nprobability=0.3\n\n" + strings.Join(lines[101:], "")
	if !strings.HasPrefix(lines[101], "[convolutional]") {
		t.Fatalf("demo-tiny.cfg changed: line 102 is %q", lines[101])
	}
	s.cfg = filepath.Join(t.TempDir(), "dropout.cfg")
	if err := os.WriteFile(s.cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	testReplicasMatchOneBatch(t, s)
}

func testReplicasMatchOneBatch(t *testing.T, s *smallRun) {
	train := func(replicas int, sync bool) (map[int]float64, [][]float32) {
		net := s.net(t)
		o := s.options(t.TempDir(), 1)
		o.Replicas, o.SyncBN = replicas, sync
		l := s.loader()
		defer l.Close()
		var log bytes.Buffer
		if _, err := Run(context.Background(), net, l, o, nil, io.Discard, &log); err != nil {
			t.Fatal(err)
		}
		return losses(t, log.Bytes()), weightsOf(net)
	}
	l1, w1 := train(1, false)
	l2, w2 := train(2, true)
	lloc, _ := train(2, false)
	if len(l1) != 2 {
		t.Fatalf("logged %d iterations", len(l1))
	}
	for it, v := range l1 {
		if math.Abs(l2[it]-v) > 1e-4*math.Abs(v) {
			t.Errorf("iteration %d: loss %v with 2 synced replicas, %v with one batch", it, l2[it], v)
		}
	}
	worst := 0.0
	for i := range w1 {
		for j := range w1[i] {
			d := math.Abs(float64(w1[i][j]-w2[i][j])) / math.Max(1e-2, math.Abs(float64(w1[i][j])))
			worst = math.Max(worst, d)
		}
	}
	if worst > 1e-4 {
		t.Errorf("weights differ by %.2g (relative)", worst)
	}
	same := true
	for it, v := range l1 {
		if math.Abs(lloc[it]-v) > 1e-4*math.Abs(v) {
			same = false
		}
	}
	if same {
		t.Error("local BN over shards gave the whole batch's losses; it should differ")
	}
}
