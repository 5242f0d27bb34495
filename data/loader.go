package data

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	randv2 "math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/dettrain/dettrain/box"
)

// Target is one training target of one image of a batch.
type Target struct {
	Class  int
	Box    box.Box // in network-input pixels (0..W, 0..H of the batch)
	Weight float32 // loss weight: 1, or the mixing factor of its image under mixup
}

// Batch is N images of network input and their targets.
type Batch struct {
	N, C, H, W int // H x W: the batch's input size (SizeAt, or the options' W x H)
	// Images holds N*C*H*W floats in NCHW order, RGB / 255:
	// Images[((n*C+c)*H+y)*W+x]. The values are in [0,1] except after the
	// colour jitter of Augment, which may leave that range (GluonCV does not
	// clip either).
	Images  []float32
	Targets [][]Target // Targets[n]: image n's objects, difficult ones left out
	Index   []int      // Index[n]: image n's index in Dataset.Samples
	OrigW   []int      // image n's own size before resizing (not its mixup canvas's)
	OrigH   []int
	// Skipped lists the images of the batch that failed to load under
	// LoaderOptions.SkipBad, in slot order; their slots hold a copy of the
	// batch's first image that loaded (and its Index).
	Skipped []*LoadError
}

// LoadError is an image that failed to load: its file, its sample id and
// why (the decoder's error).
type LoadError struct {
	Path, ID string
	Slot     int // the image's position in its batch
	Err      error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("load %s (sample %q): %v", e.Path, e.ID, e.Err)
}
func (e *LoadError) Unwrap() error { return e.Err }

// LoaderOptions configure a Loader. Zero values take the defaults given.
type LoaderOptions struct {
	Batch    int   // images per batch (default 8)
	W, H     int   // network input width and height (default 416 each; H defaults to W)
	Workers  int   // decoding goroutines (default runtime.NumCPU())
	Prefetch int   // batches decoded ahead of Next (default 2)
	Shuffle  bool  // a new sample order every epoch
	Flip     bool  // random horizontal flip, p = 0.5 per image
	Seed     int64 // seeds the order and the per-image random decisions
	DropLast bool  // drop the last batch of an epoch when it is short

	// Augment applies GluonCV's YOLOv3 training transform
	// (YOLO3DefaultTrainTransform) to every image: colour jitter
	// (RandomColorJitter), random expand on a canvas of ExpandFill
	// (RandomExpand), SSD constrained random crop (RandomCrop), resize to
	// the batch size with a random interpolation (Interp(r.IntN(NumInterps)))
	// and the horizontal flip (p = 0.5, whatever Flip says). It needs a
	// FullDecoder. False: a plain resize by the Decoder (Load), as eval and
	// predict do.
	Augment bool
	// Mixup, when not nil, mixes every image with a partner before the other
	// augmentations (see MixupOptions, Mixup). Needs a FullDecoder.
	Mixup *MixupOptions
	// Mosaic, when not nil, makes every image a mosaic of itself and three
	// others before mixup and the other augmentations (see MosaicOptions,
	// Mosaic). Needs a FullDecoder.
	Mosaic *MosaicOptions
	// SizeAt, when not nil, gives the input width and height of batch k of
	// epoch e (random shapes: one size per batch, Batch.H and Batch.W vary);
	// nil: every batch is W x H. It must be a pure function of (e, k): it is
	// called from the loader's goroutine, and EpochFrom relies on it.
	SizeAt func(epoch, batch int) (w, h int)
	// SkipBad leaves an image that fails to load out of its batch (data.skip_bad
	// during training): its slot gets a copy of the pixels, targets and size
	// of the batch's first image that loaded, so that batches keep their
	// size and stay a pure function of the epoch, and Batch.Skipped names it.
	// A batch none of whose images load is still an error, joining each
	// image's *LoadError. Without SkipBad a failed image makes Next return
	// its *LoadError.
	SkipBad bool

	// Shard and Shards split every batch between Shards processes (data
	// parallel training, one process per device): with Shards = N > 1 the
	// loader gives only shard Shard (0 <= Shard < N) of each global batch
	// of Batch images, images [Shard*Batch/N, (Shard+1)*Batch/N) of it, so
	// its Batch.N is Batch/N. Each image is made exactly as at its position
	// in the unsharded loader (the same sample, SampleRand(Seed, e, pos)
	// with pos its position in the whole epoch, the same mixup and mosaic
	// partners, the batch's SizeAt size), so the N shards of a batch,
	// concatenated in Shard order, are the unsharded batch bit for bit;
	// BatchesPerEpoch and EpochOrder do not change. A short last batch of
	// m < Batch images (without DropLast) is split the same way,
	// [Shard*m/N, (Shard+1)*m/N), and may leave a shard empty (N = 0)
	// when m < N. Under SkipBad a failed image's slot takes a copy of its
	// shard's first image that loaded. Batch must be a multiple of N (see
	// Validate). 0 and 1 (the default) mean no sharding: the whole batch.
	Shard, Shards int
}

// Validate reports options NewLoader cannot use (after the defaults):
// Shards < 0, Shard outside 0..Shards-1, or Batch not a multiple of
// Shards. A loader made with such options returns the error from Next.
func (o LoaderOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Shards < 1:
		return fmt.Errorf("data.Loader: %d shards, want at least 1", o.Shards)
	case o.Shard < 0 || o.Shard >= o.Shards:
		return fmt.Errorf("data.Loader: shard %d of %d, want 0..%d", o.Shard, o.Shards, o.Shards-1)
	case o.Batch%o.Shards != 0:
		return fmt.Errorf("data.Loader: batch %d is not a multiple of the %d shards", o.Batch, o.Shards)
	}
	return nil
}

func (o LoaderOptions) withDefaults() LoaderOptions {
	if o.Batch <= 0 {
		o.Batch = 8
	}
	if o.W <= 0 {
		o.W = 416
	}
	if o.H <= 0 {
		o.H = o.W
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.Prefetch <= 0 {
		o.Prefetch = 2
	}
	if o.Shards == 0 {
		o.Shards = 1
	}
	if o.Mixup != nil {
		m := o.Mixup.withDefaults()
		o.Mixup = &m
	}
	return o
}

// Loader turns a Dataset into batches, epoch after epoch, decoding images in
// parallel goroutines.
//
// Batches are a pure function of (dataset, options, epoch): the sample order
// of epoch e is rand.New(rand.NewSource(Seed + e*1000003)).Perm(n) (the
// identity without Shuffle), and every per-image random decision uses a
// generator seeded from (Seed, e, position in the epoch) alone — see
// SampleRand — so batches are bit-identical whatever the number of workers
// and however the goroutines are scheduled.
//
// A Loader is used from one goroutine: Epoch, then Next until io.EOF, then
// the next Epoch; Close at the end.
type Loader struct {
	ds  *Dataset
	dec Decoder
	o   LoaderOptions

	err    error // o.Validate()
	ep     *epochRun
	next   int
	closed bool
}

// NewLoader returns a loader over ds; call Epoch before Next. Options that
// fail Validate make Next return that error.
func NewLoader(ds *Dataset, dec Decoder, o LoaderOptions) *Loader {
	return &Loader{ds: ds, dec: dec, o: o.withDefaults(), err: o.Validate()}
}

// Options returns the options in use, defaults filled in.
func (l *Loader) Options() LoaderOptions { return l.o }

// BatchesPerEpoch is ceil(n/Batch), or floor(n/Batch) with DropLast,
// whatever the shard.
func (l *Loader) BatchesPerEpoch() int {
	n := len(l.ds.Samples)
	if l.o.DropLast {
		return n / l.o.Batch
	}
	return (n + l.o.Batch - 1) / l.o.Batch
}

// EpochOrder returns the sample indices of epoch e in the order they are
// batched.
func (l *Loader) EpochOrder(e int) []int {
	n := len(l.ds.Samples)
	if !l.o.Shuffle {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		return order
	}
	return rand.New(rand.NewSource(l.o.Seed + int64(e)*1000003)).Perm(n)
}

// SampleRand returns the random generator for the image at position pos of
// epoch e (pos counts from 0 over the whole epoch, the global batch
// included: a shard does not renumber). It depends on nothing else, which makes augmentation independent of scheduling. The draws, in
// order: the flip (r.Float64() < 0.5, drawn first whether or not it is
// used, so that runs from before Augment and Mixup keep their flips); with
// mixup, lambda and the partner (tricks.MixupDraw: the partner only when
// lambda < 1);
// with Augment, RandomColorJitter, RandomExpand, RandomCrop and the
// interpolation (r.IntN(NumInterps)).
func SampleRand(seed int64, e, pos int) *randv2.Rand {
	return randv2.New(randv2.NewPCG(uint64(seed), uint64(e)<<32^uint64(uint32(pos))))
}

// Epoch starts epoch e, abandoning whatever is left of the previous one.
func (l *Loader) Epoch(e int) { l.EpochFrom(e, 0) }

// EpochFrom starts epoch e at its batch k (0-based): the batches are those
// Epoch(e) would give after k calls of Next, without decoding the first k.
// Resuming a run in the middle of an epoch uses it.
func (l *Loader) EpochFrom(e, k int) {
	l.stop()
	if l.closed || l.err != nil {
		return
	}
	k = max(0, min(k, l.BatchesPerEpoch()))
	l.next = k
	l.ep = startEpoch(l, e, k)
}

// Next returns the next batch of the epoch, io.EOF after the last one. Each
// batch is newly allocated and belongs to the caller. An
// image that fails to load makes Next return a *LoadError naming its file
// (with SkipBad only when no image of the batch loads); the following call
// goes on with the next batch.
func (l *Loader) Next() (*Batch, error) {
	if l.closed {
		return nil, errors.New("data.Loader: Next after Close")
	}
	if l.err != nil {
		return nil, l.err
	}
	if l.ep == nil {
		return nil, errors.New("data.Loader: Next before Epoch")
	}
	if l.next >= len(l.ep.results) {
		return nil, io.EOF
	}
	r := <-l.ep.results[l.next]
	l.next++
	l.ep.tokens <- struct{}{} // one more batch may be decoded ahead
	if r.err != nil {
		return nil, r.err
	}
	return r.b, nil
}

// Close stops the decoding goroutines and waits for them to return.
func (l *Loader) Close() {
	l.stop()
	l.closed = true
}

func (l *Loader) stop() {
	if l.ep != nil {
		close(l.ep.done)
		l.ep.wg.Wait()
		l.ep = nil
	}
}

// epochRun is one epoch in flight: a dispatcher goroutine hands out the
// images of at most Prefetch batches ahead of Next to the workers; the worker
// that finishes a batch's last image delivers the batch to its own buffered
// channel, so batches come out in order however the workers interleave.
type epochRun struct {
	results []chan batchResult // one per batch, buffered 1
	tokens  chan struct{}      // batches that may be started
	done    chan struct{}      // closed to stop the goroutines
	wg      sync.WaitGroup
}

type batchResult struct {
	b   *Batch
	err error
}

// pending is a batch being decoded.
type pending struct {
	b      *Batch
	left   atomic.Int32
	mu     sync.Mutex
	errs   []*LoadError // per slot, nil when it loaded
	result chan batchResult
}

type job struct {
	p   *pending
	n   int // image within the batch
	pos int // position within the epoch
}

func startEpoch(l *Loader, e, first int) *epochRun {
	order := l.EpochOrder(e)
	nb := l.BatchesPerEpoch()
	er := &epochRun{
		results: make([]chan batchResult, nb),
		tokens:  make(chan struct{}, l.o.Prefetch+nb),
		done:    make(chan struct{}),
	}
	for i := range er.results {
		er.results[i] = make(chan batchResult, 1)
	}
	for range l.o.Prefetch {
		er.tokens <- struct{}{}
	}
	jobs := make(chan job)
	er.wg.Add(1 + l.o.Workers)
	go func() { // dispatcher
		defer er.wg.Done()
		defer close(jobs)
		for bi := first; bi < nb; bi++ {
			select {
			case <-er.tokens:
			case <-er.done:
				return
			}
			lo, hi := l.shardOf(bi, len(order))
			w, h := l.o.W, l.o.H
			if l.o.SizeAt != nil {
				w, h = l.o.SizeAt(e, bi)
			}
			if w <= 0 || h <= 0 {
				er.results[bi] <- batchResult{err: fmt.Errorf("data.Loader: SizeAt(%d, %d) = %dx%d, want both > 0", e, bi, w, h)}
				continue
			}
			if hi == lo { // a shard of a short last batch can be empty
				er.results[bi] <- batchResult{b: l.newBatch(nil, w, h)}
				continue
			}
			p := &pending{b: l.newBatch(order[lo:hi], w, h), result: er.results[bi]}
			p.left.Store(int32(hi - lo))
			for n := range hi - lo {
				select {
				case jobs <- job{p: p, n: n, pos: lo + n}:
				case <-er.done:
					return
				}
			}
		}
	}()
	for range l.o.Workers {
		go func() {
			defer er.wg.Done()
			for {
				select {
				case j, ok := <-jobs:
					if !ok {
						return
					}
					l.fill(j, e)
				case <-er.done:
					return
				}
			}
		}()
	}
	return er
}

// shardOf is the part of the epoch's order that batch bi of this shard
// holds, [lo, hi): the global batch [bi*Batch, min((bi+1)*Batch, n)) of m
// images, of which shard s of N takes [s*m/N, (s+1)*m/N).
func (l *Loader) shardOf(bi, n int) (lo, hi int) {
	glo := bi * l.o.Batch
	m := min(glo+l.o.Batch, n) - glo
	s, N := l.o.Shard, l.o.Shards
	return glo + s*m/N, glo + (s+1)*m/N
}

func (l *Loader) newBatch(idx []int, w, h int) *Batch {
	n := len(idx)
	return &Batch{
		N: n, C: 3, H: h, W: w,
		Images:  make([]float32, n*3*w*h),
		Targets: make([][]Target, n),
		Index:   append([]int(nil), idx...),
		OrigW:   make([]int, n),
		OrigH:   make([]int, n),
	}
}

// fill decodes image j.n of its batch and makes its targets; the last image
// of a batch to finish delivers the batch.
func (l *Loader) fill(j job, e int) {
	b := j.p.b
	w, h := b.W, b.H
	plane := 3 * w * h
	dst := b.Images[j.n*plane : (j.n+1)*plane]
	sm := &l.ds.Samples[b.Index[j.n]]
	r := SampleRand(l.o.Seed, e, j.pos)
	flipDraw := r.Float64() < 0.5
	var err error
	if l.o.Augment || l.mixes(e) || l.mosaics(e) {
		err = l.fillTrain(j, e, r, flipDraw)
	} else {
		var ow, oh int
		ow, oh, err = l.dec.Load(sm.ImagePath, w, h, dst)
		if err == nil && (ow <= 0 || oh <= 0) {
			err = fmt.Errorf("decoder returned size %dx%d", ow, oh)
		}
		if err == nil {
			flip := flipDraw && l.o.Flip
			if flip {
				flipCHW(dst, 3, h, w)
			}
			b.OrigW[j.n], b.OrigH[j.n] = ow, oh
			b.Targets[j.n] = targets(sm.Objects, float64(w)/float64(ow), float64(h)/float64(oh), float64(w), flip)
		}
	}
	if err != nil {
		j.p.mu.Lock()
		if j.p.errs == nil {
			j.p.errs = make([]*LoadError, b.N)
		}
		j.p.errs[j.n] = &LoadError{Path: sm.ImagePath, ID: sm.ID, Slot: j.n, Err: err}
		j.p.mu.Unlock()
	}
	if j.p.left.Add(-1) == 0 {
		j.p.mu.Lock()
		errs := j.p.errs
		j.p.mu.Unlock()
		j.p.result <- l.deliver(b, errs)
	}
}

// deliver is the result of a batch whose images are all done; errs[n] is
// image n's failure (errs nil: none failed). Without SkipBad the first
// failure in slot order is the batch's error; with it each failed slot
// takes a copy of the first slot that loaded, and when none loaded the
// error joins every image's (errors.Join, in slot order).
func (l *Loader) deliver(b *Batch, errs []*LoadError) batchResult {
	if errs == nil {
		return batchResult{b: b}
	}
	good := -1
	var first *LoadError
	for n, e := range errs {
		if e == nil && good < 0 {
			good = n
		}
		if e != nil && first == nil {
			first = e
		}
	}
	if !l.o.SkipBad {
		return batchResult{err: first}
	}
	if good < 0 {
		all := make([]error, len(errs))
		for n, e := range errs {
			all[n] = e
		}
		return batchResult{err: errors.Join(all...)}
	}
	plane := b.C * b.H * b.W
	src := b.Images[good*plane : (good+1)*plane]
	for n, e := range errs {
		if e == nil {
			continue
		}
		copy(b.Images[n*plane:(n+1)*plane], src)
		b.Targets[n] = append([]Target(nil), b.Targets[good]...)
		b.OrigW[n], b.OrigH[n] = b.OrigW[good], b.OrigH[good]
		b.Index[n] = b.Index[good]
		b.Skipped = append(b.Skipped, e)
	}
	return batchResult{b: b}
}

// targets scales the boxes of objs by (sx, sy) and, when flip is set,
// mirrors them in an image of width w: x -> w - x, the corners swapping.
// Difficult objects are left out.
func targets(objs []Object, sx, sy, w float64, flip bool) []Target {
	ts := make([]Target, 0, len(objs))
	for _, o := range objs {
		if o.Difficult {
			continue
		}
		b := o.Box.Scale(sx, sy)
		if flip {
			b.X1, b.X2 = w-b.X2, w-b.X1
		}
		ts = append(ts, Target{Class: o.Class, Box: b, Weight: 1})
	}
	return ts
}

// flipCHW mirrors a CHW image left to right in place.
func flipCHW(img []float32, c, h, w int) {
	for row := range c * h {
		r := img[row*w : (row+1)*w]
		for i, j := 0, w-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
	}
}
