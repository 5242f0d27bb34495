package train

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/tricks"
)

// TestReproducibleWithTricks: with a fixed seed and worker count, two runs
// with augmentation, mixup, random shapes, label smoothing and 2 synced
// replicas log identical losses at every iteration.
func TestReproducibleWithTricks(t *testing.T) {
	s := newSmallRun(t)
	shapes := tricks.Shapes{Sizes: []int{32, 64, 96}, Every: 1, Seed: 4}
	smooth, _ := tricks.ClassTarget("gluoncv", 4, 0)
	run := func() map[int]float64 {
		per := len(s.ds.Samples) / 4
		l := data.NewLoader(s.ds, stdDecoder{}, data.LoaderOptions{Batch: 4, W: 64, Workers: 2, Shuffle: true, Flip: true, Seed: 9, DropLast: true,
			Augment: true, Mixup: &data.MixupOptions{Alpha: 1.5, Beta: 1.5, OffFromEpoch: 2},
			SizeAt: func(e, b int) (int, int) { s := shapes.SizeAt(e*per + b); return s, s }})
		defer l.Close()
		o := s.options(t.TempDir(), 3)
		o.Replicas, o.SyncBN, o.ClassTarget = 2, true, smooth
		var log bytes.Buffer
		if _, err := Run(context.Background(), s.net(t), l, o, nil, io.Discard, &log); err != nil {
			t.Fatal(err)
		}
		return losses(t, log.Bytes())
	}
	a, b := run(), run()
	if len(a) != 6 {
		t.Fatalf("logged %d iterations, want 6", len(a))
	}
	for it, v := range a {
		if b[it] != v {
			t.Errorf("iteration %d: loss %v then %v", it, v, b[it])
		}
	}
}
