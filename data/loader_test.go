package data

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dettrain/dettrain/box"
)

// fakeDecoder writes a pattern that depends on the path and the position,
// sleeps a random while when jitter is set (to shuffle the workers), and
// fails for the path fail.
type fakeDecoder struct {
	w, h   int
	fail   string
	jitter bool
	block  chan struct{} // when not nil, Load waits for it to close
}

func (d *fakeDecoder) Load(path string, w, h int, dst []float32) (int, int, error) {
	if d.block != nil {
		<-d.block
	}
	if d.jitter {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	}
	if path == d.fail {
		return 0, 0, errors.New("cannot decode image " + path)
	}
	if len(dst) != 3*w*h {
		return 0, 0, fmt.Errorf("dst has %d floats for %dx%d", len(dst), w, h)
	}
	f := fnv.New32a()
	f.Write([]byte(path))
	seed := f.Sum32()
	for i := range dst {
		dst[i] = float32((seed+uint32(i)*2654435761)>>16) / 65535
	}
	return d.w, d.h, nil
}

// Decode returns a d.w x d.h image whose values 0..255 depend on the path
// and the position, after the same blocking, jitter and failure as Load.
func (d *fakeDecoder) Decode(path string) (*Image, error) {
	if d.block != nil {
		<-d.block
	}
	if d.jitter {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	}
	if path == d.fail {
		return nil, errors.New("cannot decode image " + path)
	}
	f := fnv.New32a()
	f.Write([]byte(path))
	seed := f.Sum32()
	img := NewImage(d.w, d.h)
	for i := range img.Pix {
		img.Pix[i] = float32((seed + uint32(i)*2654435761) >> 24)
	}
	return img, nil
}

// loadOnly is a Decoder without Decode.
type loadOnly struct{ d *fakeDecoder }

func (l loadOnly) Load(path string, w, h int, dst []float32) (int, int, error) {
	return l.d.Load(path, w, h, dst)
}

func testDataset(n int) *Dataset {
	ds := &Dataset{Names: []string{"a", "b"}}
	for i := range n {
		ds.Samples = append(ds.Samples, Sample{
			ID: fmt.Sprint(i), ImagePath: fmt.Sprintf("img%02d.jpg", i), Width: 200, Height: 100,
			Objects: []Object{
				{Class: i % 2, Box: box.Box{X1: float64(i), Y1: 10, X2: float64(i) + 40, Y2: 30}},
				{Class: 1, Box: box.Box{X1: 0, Y1: 0, X2: 5, Y2: 5}, Difficult: i%3 == 0},
			},
		})
	}
	return ds
}

func allBatches(t *testing.T, l *Loader, epochs int) [][]*Batch {
	t.Helper()
	var out [][]*Batch
	for e := range epochs {
		l.Epoch(e)
		var bs []*Batch
		for {
			b, err := l.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			bs = append(bs, b)
		}
		if len(bs) != l.BatchesPerEpoch() {
			t.Fatalf("epoch %d: %d batches, BatchesPerEpoch %d", e, len(bs), l.BatchesPerEpoch())
		}
		out = append(out, bs)
	}
	return out
}

func TestLoaderDeterminism(t *testing.T) {
	ds := testDataset(23)
	o := LoaderOptions{Batch: 4, W: 8, Prefetch: 2, Shuffle: true, Flip: true, Seed: 7}
	run := func(workers int) [][]*Batch {
		o := o
		o.Workers = workers
		l := NewLoader(ds, &fakeDecoder{w: 200, h: 100, jitter: true}, o)
		defer l.Close()
		return allBatches(t, l, 3)
	}
	one, three := run(1), run(3)
	if !reflect.DeepEqual(one, three) {
		t.Fatal("batches differ between 1 and 3 workers")
	}
	if n := len(one[0]); n != 6 || one[0][5].N != 3 {
		t.Errorf("%d batches, last of %d images; want 6, the last of 3", n, one[0][5].N)
	}
	if reflect.DeepEqual(one[0][0].Index, one[1][0].Index) {
		t.Error("epochs 0 and 1 start with the same samples")
	}
	// Every sample exactly once per epoch.
	seen := map[int]int{}
	for _, b := range one[1] {
		for _, i := range b.Index {
			seen[i]++
		}
	}
	if len(seen) != 23 {
		t.Errorf("epoch 1 covers %d samples", len(seen))
	}
	o.DropLast = true
	if n := NewLoader(ds, nil, o).BatchesPerEpoch(); n != 5 {
		t.Errorf("DropLast: %d batches, want 5", n)
	}
}

// TestLoaderTargets checks the box scaling (Size/origW, Size/origH) and the
// flip (x -> Size-x, corners swapped) on a known box, and that the image is
// mirrored with it.
func TestLoaderTargets(t *testing.T) {
	ds := &Dataset{Samples: []Sample{{ImagePath: "a.jpg", Objects: []Object{
		{Class: 1, Box: box.Box{X1: 20, Y1: 10, X2: 60, Y2: 30}},
		{Class: 0, Box: box.Box{X1: 0, Y1: 0, X2: 5, Y2: 5}, Difficult: true},
	}}}}
	const size = 50
	plain := make([]float32, 3*size*size)
	dec := &fakeDecoder{w: 200, h: 100}
	dec.Load("a.jpg", size, size, plain)
	l := NewLoader(ds, dec, LoaderOptions{Batch: 1, W: size, Workers: 2, Flip: true, Seed: 3})
	defer l.Close()
	flips := map[bool]bool{}
	for e := range 16 {
		l.Epoch(e)
		b, err := l.Next()
		if err != nil {
			t.Fatal(err)
		}
		flip := SampleRand(3, e, 0).Float64() < 0.5
		flips[flip] = true
		// sx = 50/200, sy = 50/100: (20,10,60,30) -> (5,5,15,15); flipped (35,5,45,15).
		want := []Target{{Class: 1, Box: box.Box{X1: 5, Y1: 5, X2: 15, Y2: 15}, Weight: 1}}
		if flip {
			want[0].Box = box.Box{X1: 35, Y1: 5, X2: 45, Y2: 15}
		}
		if !reflect.DeepEqual(b.Targets[0], want) || b.OrigW[0] != 200 || b.OrigH[0] != 100 {
			t.Errorf("epoch %d (flip %v): targets %v orig %dx%d", e, flip, b.Targets[0], b.OrigW[0], b.OrigH[0])
		}
		for _, p := range [][3]int{{0, 0, 0}, {2, 7, 3}, {1, 49, 49}} {
			c, y, x := p[0], p[1], p[2]
			sx := x
			if flip {
				sx = size - 1 - x
			}
			if got, w := b.Images[(c*size+y)*size+x], plain[(c*size+y)*size+sx]; got != w {
				t.Errorf("epoch %d: pixel c%d y%d x%d = %v, want %v", e, c, y, x, got, w)
			}
		}
		if _, err := l.Next(); err != io.EOF {
			t.Errorf("epoch %d: second Next: %v, want io.EOF", e, err)
		}
		if _, err := l.Next(); err != io.EOF {
			t.Errorf("epoch %d: third Next: %v, want io.EOF", e, err)
		}
	}
	if len(flips) != 2 {
		t.Errorf("16 epochs flipped %v only", flips)
	}
}

func TestLoaderDecodeError(t *testing.T) {
	ds := testDataset(6)
	l := NewLoader(ds, &fakeDecoder{w: 200, h: 100, fail: "img03.jpg"}, LoaderOptions{Batch: 2, W: 4, Workers: 3})
	defer l.Close()
	if _, err := l.Next(); err == nil {
		t.Error("Next before Epoch: no error")
	}
	l.Epoch(0)
	var errs []string
	n := 0
	for {
		_, err := l.Next()
		if err == io.EOF {
			break
		}
		n++
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if n != 3 || len(errs) != 1 || !strings.Contains(errs[0], "img03.jpg") {
		t.Errorf("%d batches, errors %q; want 3 batches, one error naming img03.jpg", n, errs)
	}
}

func TestLoaderClose(t *testing.T) {
	before := runtime.NumGoroutine()
	ds := testDataset(40)
	dec := &fakeDecoder{w: 200, h: 100, jitter: true}
	l := NewLoader(ds, dec, LoaderOptions{Batch: 3, W: 16, Workers: 4, Prefetch: 2, Shuffle: true})
	l.Epoch(0)
	if _, err := l.Next(); err != nil {
		t.Fatal(err)
	}
	l.Epoch(1) // abandons epoch 0 half done
	// Workers blocked in Load and the dispatcher waiting on Prefetch.
	blocked := &fakeDecoder{w: 200, h: 100, block: make(chan struct{})}
	l2 := NewLoader(ds, blocked, LoaderOptions{Batch: 3, W: 16, Workers: 4, Prefetch: 2})
	l2.Epoch(0)
	time.AfterFunc(20*time.Millisecond, func() { close(blocked.block) })

	done := make(chan struct{})
	go func() {
		l.Close()
		l2.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	if _, err := l.Next(); err == nil {
		t.Error("Next after Close: no error")
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

// resumeEqual checks that l.EpochFrom(e, k) gives want[k:], the batches of
// epoch e from its batch k on, and then io.EOF.
func resumeEqual(t *testing.T, l *Loader, e, k int, want []*Batch) {
	t.Helper()
	l.EpochFrom(e, k)
	for i := k; i < len(want); i++ {
		b, err := l.Next()
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if !reflect.DeepEqual(b, want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
	if _, err := l.Next(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

// TestEpochFrom: starting epoch 1 at batch 2 gives exactly the batches
// Epoch(1) gives from its third on.
func TestEpochFrom(t *testing.T) {
	ds := testDataset(10)
	o := LoaderOptions{Batch: 3, W: 8, Workers: 2, Shuffle: true, Flip: true, Seed: 4}
	full := NewLoader(ds, &fakeDecoder{w: 20, h: 16}, o)
	defer full.Close()
	want := allBatches(t, full, 2)[1]
	if len(want) != 4 {
		t.Fatalf("%d batches, want 4", len(want))
	}
	part := NewLoader(ds, &fakeDecoder{w: 20, h: 16}, o)
	defer part.Close()
	resumeEqual(t, part, 1, 2, want)
}

// TestLoaderShards: with augmentation, mosaic (epoch 0), mixup (epochs 0
// and 1) and random shapes, the N shards of every batch, concatenated in
// shard order, are the unsharded batch bit for bit (pixels, targets,
// indices, sizes); each full shard holds Batch/N images, no sample is in
// two shards of an epoch, and BatchesPerEpoch does not change. 23 images
// in batches of 4 end with a batch of 3: N = 2 splits it 1+2, N = 4 leaves
// shard 0 empty.
func TestLoaderShards(t *testing.T) {
	ds := testDataset(23)
	dec := &fakeDecoder{w: 80, h: 40}
	o := augOptions(2)
	o.Flip = true
	o.Mosaic = &MosaicOptions{OffFromEpoch: 1}
	const epochs = 3
	whole := NewLoader(ds, dec, o)
	defer whole.Close()
	want := allBatches(t, whole, epochs)
	for _, n := range []int{2, 4} {
		shards := make([][][]*Batch, n)
		for s := range n {
			o := o
			o.Shard, o.Shards = s, n
			l := NewLoader(ds, dec, o)
			if l.BatchesPerEpoch() != whole.BatchesPerEpoch() {
				t.Fatalf("%d shards: %d batches per epoch, unsharded %d", n, l.BatchesPerEpoch(), whole.BatchesPerEpoch())
			}
			shards[s] = allBatches(t, l, epochs)
			l.Close()
		}
		for e := range epochs {
			owner := map[int]int{}
			for k, wb := range want[e] {
				cat := &Batch{C: wb.C, H: wb.H, W: wb.W}
				for s := range n {
					b := shards[s][e][k]
					if b.H != wb.H || b.W != wb.W {
						t.Fatalf("%d shards, epoch %d batch %d shard %d: %dx%d, unsharded %dx%d", n, e, k, s, b.W, b.H, wb.W, wb.H)
					}
					if wb.N == o.Batch && b.N != o.Batch/n {
						t.Errorf("%d shards, epoch %d batch %d shard %d: N = %d, want %d", n, e, k, s, b.N, o.Batch/n)
					}
					for _, i := range b.Index {
						if r, ok := owner[i]; ok && r != s {
							t.Errorf("%d shards, epoch %d: sample %d in shards %d and %d", n, e, i, r, s)
						}
						owner[i] = s
					}
					cat.N += b.N
					cat.Images = append(cat.Images, b.Images...)
					cat.Targets = append(cat.Targets, b.Targets...)
					cat.Index = append(cat.Index, b.Index...)
					cat.OrigW = append(cat.OrigW, b.OrigW...)
					cat.OrigH = append(cat.OrigH, b.OrigH...)
				}
				if !reflect.DeepEqual(cat, wb) {
					t.Errorf("%d shards, epoch %d batch %d: the shards concatenated differ from the unsharded batch", n, e, k)
				}
			}
		}
	}
}

// TestLoaderShardOptions: a batch that is not a multiple of Shards, or a
// shard out of range, fails Validate, and Next returns that error.
func TestLoaderShardOptions(t *testing.T) {
	for _, o := range []LoaderOptions{
		{Batch: 6, Shards: 4},
		{Batch: 4, Shard: 2, Shards: 2},
		{Batch: 4, Shard: -1, Shards: 2},
		{Batch: 4, Shards: -2},
	} {
		err := o.Validate()
		if err == nil {
			t.Errorf("%+v: Validate passed", o)
			continue
		}
		l := NewLoader(testDataset(8), &fakeDecoder{w: 8, h: 8}, o)
		l.Epoch(0)
		if _, nerr := l.Next(); nerr == nil || nerr.Error() != err.Error() {
			t.Errorf("%+v: Next returned %v, want %v", o, nerr, err)
		}
		l.Close()
	}
	for _, o := range []LoaderOptions{{}, {Shards: 1}, {Batch: 6, Shard: 2, Shards: 3}} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
