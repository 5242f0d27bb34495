package gpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/dettrain/dettrain/model"
)

// testNCCL is testGPU plus NCCL: it skips without a GPU, and skips with the
// reason when libnccl cannot be loaded. It logs NCCL's version.
func testNCCL(t *testing.T) (*Device, *Stream) {
	t.Helper()
	d, s, _ := testGPU(t)
	if err := LoadNCCL(); err != nil {
		t.Skipf("NCCL test skipped: libnccl not found or not usable (install nvidia-nccl-cu13 and set DETTRAIN_CUDA_PATH to its site-packages folder): %v", err)
	}
	v, err := NCCLVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NCCL %s (ncclGetVersion %d) from %s; %v", ncclVersionString(v), v, ncclLib.api.lib.path, d)
	return d, s
}

// ncclPoison fills the guard elements around a buffer (every 32-bit word).
const ncclPoison = 0x7fc0dead

// ncclBuf is a device buffer of pad guard elements, n data elements and pad
// guard elements, float32 or float64.
type ncclBuf struct {
	d        *Device
	s        *Stream
	base     Ptr
	n, pad   int
	elemSize int
	f64      bool
}

// data is where the n data elements start.
func (b *ncclBuf) data() Ptr { return b.base.Add(b.pad * b.elemSize) }

func (b *ncclBuf) bytes() int { return (b.n + 2*b.pad) * b.elemSize }

// encode gives vals as the buffer's element type, little-endian.
func ncclEncode(vals []float64, f64 bool) []byte {
	if f64 {
		out := make([]byte, 8*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(v))
		}
		return out
	}
	out := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(float32(v)))
	}
	return out
}

// newNCCLBuf allocates the buffer on d, poisons it all and uploads vals into
// the data elements. Call inside d.Do.
func newNCCLBuf(t *testing.T, d *Device, s *Stream, vals []float64, pad int, f64 bool) *ncclBuf {
	t.Helper()
	b := &ncclBuf{d: d, s: s, n: len(vals), pad: pad, elemSize: 4, f64: f64}
	if f64 {
		b.elemSize = 8
	}
	p, err := d.Alloc(b.bytes())
	if err != nil {
		t.Fatal(err)
	}
	b.base = p
	if err := s.Fill32(p, ncclPoison, b.bytes()/4); err != nil {
		t.Fatal(err)
	}
	if err := s.UploadBytes(b.data(), ncclEncode(vals, f64)); err != nil {
		t.Fatal(err)
	}
	return b
}

// check downloads the whole buffer and compares the data elements with
// want, bit for bit, and the guards with the poison. Call inside b.d.Do.
func (b *ncclBuf) check(t *testing.T, what string, want []float64) {
	t.Helper()
	if err := b.s.Sync(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, b.bytes())
	if err := b.s.DownloadBytes(got, b.base); err != nil {
		t.Fatal(err)
	}
	guard := b.pad * b.elemSize
	for _, r := range [][2]int{{0, guard}, {len(got) - guard, len(got)}} {
		for i := r[0]; i < r[1]; i += 4 {
			if w := binary.LittleEndian.Uint32(got[i:]); w != ncclPoison {
				t.Fatalf("%s: the guard word at byte %d (buffer of %d elements, %d-byte elements) was overwritten: %#x", what, i, b.n, b.elemSize, w)
			}
		}
	}
	exp := ncclEncode(want, b.f64)
	data := got[guard : len(got)-guard]
	for i := 0; i < b.n; i++ {
		g, w := data[i*b.elemSize:(i+1)*b.elemSize], exp[i*b.elemSize:(i+1)*b.elemSize]
		if string(g) != string(w) {
			t.Fatalf("%s: element %d of %d is %s, want %s", what, i, b.n, ncclDecode(g), ncclDecode(w))
		}
	}
}

func ncclDecode(b []byte) string {
	if len(b) == 8 {
		return fmt.Sprint(math.Float64frombits(binary.LittleEndian.Uint64(b)))
	}
	return fmt.Sprint(math.Float32frombits(binary.LittleEndian.Uint32(b)))
}

func (b *ncclBuf) free(t *testing.T) {
	if err := b.d.Free(b.base, b.bytes()); err != nil {
		t.Error(err)
	}
}

// ncclValues are rank's test values: small integers and halves, so that
// sums are exact in float32 and float64 alike.
func ncclValues(n, rank int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i%97-48)*float64(rank+1) + 0.5*float64(rank)
	}
	return v
}

// ncclSizes are the element counts tried: one, a few, and a few MiB (odd).
var ncclSizes = []int{1, 7, 1<<20 + 3}

const ncclPad = 67 // guard elements on each side

// TestNCCLOneRank: one rank on device 0 (NewComms and NewCommRank alike):
// an in-place sum over one rank leaves the values as they are and writes
// nothing around them.
func TestNCCLOneRank(t *testing.T) {
	d, s := testNCCL(t)
	comms, err := NewComms([]int{0})
	if err != nil {
		t.Fatal(err)
	}
	c := comms[0]
	t.Cleanup(func() {
		if err := c.Destroy(); err != nil {
			t.Error(err)
		}
	})
	if n, err := c.Count(); err != nil || n != 1 {
		t.Fatalf("Count of a one-rank communicator: %d, %v", n, err)
	}
	if c.Rank != 0 || c.Ranks != 1 || c.Ordinal != 0 {
		t.Fatalf("NewComms([0]) gave %v", c)
	}

	id, err := NewNCCLUniqueID()
	if err != nil {
		t.Fatalf("ncclGetUniqueId (NCCL needs a network interface for its bootstrap socket; NCCL_SOCKET_IFNAME=lo may help): %v", err)
	}
	cr, err := NewCommRank(0, 1, 0, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cr.Destroy(); err != nil {
			t.Error(err)
		}
	})
	if n, err := cr.Count(); err != nil || n != 1 {
		t.Fatalf("Count of the one-rank communicator from NewCommRank: %d, %v", n, err)
	}

	for _, f64 := range []bool{false, true} {
		for _, n := range ncclSizes {
			for _, way := range []string{"AllReduceSum/NewComms", "AllReduceGroup/NewComms", "AllReduceSum/NewCommRank"} {
				what := fmt.Sprintf("%s, %d elements, f64=%v", way, n, f64)
				err := d.Do(func() error {
					want := ncclValues(n, 0)
					b := newNCCLBuf(t, d, s, want, ncclPad, f64)
					defer b.free(t)
					var err error
					switch way {
					case "AllReduceSum/NewComms":
						err = c.AllReduceSum(s, b.data(), n, f64)
					case "AllReduceGroup/NewComms":
						err = AllReduceGroup([]*Comm{c}, []*Stream{s}, []Ptr{b.data()}, n, f64)
					default:
						err = cr.AllReduceSum(s, b.data(), n, f64)
					}
					if err != nil {
						return err
					}
					b.check(t, what, want)
					return nil
				})
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
		}
	}
}

// ncclRank is one rank of the two-GPU tests: its device, stream and buffer.
type ncclRank struct {
	d *Device
	s *Stream
	b *ncclBuf
}

// ncclTwoDevices opens devices 0 and 1 with a stream each, or skips.
func ncclTwoDevices(t *testing.T) []*ncclRank {
	d0, s0 := testNCCL(t)
	n, err := DeviceCount()
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Skipf("two-rank NCCL test skipped: it needs 2 GPUs, this machine has %d", n)
	}
	d1, err := Open(1)
	if err != nil {
		t.Fatal(err)
	}
	var s1 *Stream
	if err := d1.Do(func() error {
		var err error
		s1, err = d1.NewStream()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d1.Do(s1.Destroy) })
	return []*ncclRank{{d: d0, s: s0}, {d: d1, s: s1}}
}

// ncclWithTimeout fails the test when f has not returned after a while (a
// deadlock in the ranks' calls).
func ncclWithTimeout(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("%s: no answer after 3 minutes (the ranks' NCCL calls deadlocked?)", what)
	}
}

// ncclTwoRankSums runs, for each size and type, an in-place sum over the two
// ranks with allReduce and checks that each rank holds the elementwise sum,
// with nothing written around it.
func ncclTwoRankSums(t *testing.T, ranks []*ncclRank, name string, allReduce func(ranks []*ncclRank, n int, f64 bool) error) {
	for _, f64 := range []bool{false, true} {
		for _, n := range ncclSizes {
			what := fmt.Sprintf("%s, 2 ranks, %d elements, f64=%v", name, n, f64)
			want := make([]float64, n)
			for r, rk := range ranks {
				vals := ncclValues(n, r)
				for i, v := range vals {
					want[i] += v
				}
				if err := rk.d.Do(func() error {
					rk.b = newNCCLBuf(t, rk.d, rk.s, vals, ncclPad, f64)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			ncclWithTimeout(t, what, func() { err = allReduce(ranks, n, f64) })
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			for r, rk := range ranks {
				rk.d.Do(func() error {
					rk.b.check(t, fmt.Sprintf("%s, rank %d", what, r), want)
					rk.b.free(t)
					return nil
				})
			}
		}
	}
}

// ncclEachRank runs f for every rank in its own goroutine, inside its device's
// Do, all at once: the trainer's pattern.
func ncclEachRank(ranks []*ncclRank, f func(r int, rk *ncclRank) error) error {
	errs := make([]error, len(ranks))
	var wg sync.WaitGroup
	for r, rk := range ranks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = rk.d.Do(func() error { return f(r, rk) })
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestNCCLTwoRanks: ranks on devices 0 and 1 from NewComms, summed both
// ways: AllReduceGroup from one goroutine, and AllReduceSum from one
// goroutine per rank (each inside its Device.Do).
func TestNCCLTwoRanks(t *testing.T) {
	ranks := ncclTwoDevices(t)
	comms, err := NewComms([]int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range comms {
			if err := c.Destroy(); err != nil {
				t.Error(err)
			}
		}
	})
	for r, c := range comms {
		if n, err := c.Count(); err != nil || n != 2 || c.Rank != r || c.Ordinal != r {
			t.Fatalf("%v: Count %d, %v", c, n, err)
		}
	}
	ncclTwoRankSums(t, ranks, "AllReduceGroup", func(ranks []*ncclRank, n int, f64 bool) error {
		return AllReduceGroup(comms, []*Stream{ranks[0].s, ranks[1].s}, []Ptr{ranks[0].b.data(), ranks[1].b.data()}, n, f64)
	})
	ncclTwoRankSums(t, ranks, "AllReduceSum per goroutine", func(ranks []*ncclRank, n int, f64 bool) error {
		return ncclEachRank(ranks, func(r int, rk *ncclRank) error {
			if err := comms[r].AllReduceSum(rk.s, rk.b.data(), n, f64); err != nil {
				return err
			}
			return rk.s.Sync()
		})
	})
}

// TestNCCLTwoRanksByRank: the same sums with ranks made by NewCommRank, one
// goroutine per rank, as a trainer that creates its ranks in its replica
// goroutines would.
func TestNCCLTwoRanksByRank(t *testing.T) {
	ranks := ncclTwoDevices(t)
	id, err := NewNCCLUniqueID()
	if err != nil {
		t.Fatal(err)
	}
	comms := make([]*Comm, len(ranks))
	ncclWithTimeout(t, "NewCommRank on 2 goroutines", func() {
		err = ncclEachRank(ranks, func(r int, rk *ncclRank) error {
			c, err := NewCommRank(rk.d.Ordinal, len(ranks), r, id)
			comms[r] = c
			return err
		})
	})
	t.Cleanup(func() {
		for _, c := range comms {
			if err := c.Destroy(); err != nil {
				t.Error(err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ncclTwoRankSums(t, ranks, "NewCommRank + AllReduceSum per goroutine", func(ranks []*ncclRank, n int, f64 bool) error {
		return ncclEachRank(ranks, func(r int, rk *ncclRank) error {
			if err := comms[r].AllReduceSum(rk.s, rk.b.data(), n, f64); err != nil {
				return err
			}
			return rk.s.Sync()
		})
	})
}

// TestTrainerNCCL: the Trainer's NCCL path (gradients and SyncBN statistics
// all-reduced on the devices) gives the losses and gradients of the plain
// path: with one GPU, one forced NCCL rank against one replica (the sums
// over one rank are copies, so the results agree to the last bit but for
// cuDNN's algorithm choice); with two GPUs or more, two replicas on cuda:0
// and cuda:1 against one replica with the whole batch.
func TestTrainerNCCL(t *testing.T) {
	testGPU(t)
	if err := LoadNCCL(); err != nil {
		t.Skipf("libnccl not found: %v", err)
	}
	const n, size = 4, 64
	img, truths := randomBatch(n, size, 11)
	run := func(o TrainerOptions) ([]float64, [][]float32) {
		net := testNetwork(t, allLayersCfg(t), 3)
		o.SyncBN, o.Momentum, o.Decay = true, 0.9, 5e-4
		tr, err := NewTrainer(net, o)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		t.Logf("%s", tr.Describe())
		if err := tr.Load(nil, nil); err != nil {
			t.Fatal(err)
		}
		var losses []float64
		for i := 0; i < 3; i++ {
			loss, bad, err := tr.Step(img, model.Square(size), truths, 1e-3, 0, 0)
			if err != nil || bad {
				t.Fatalf("%+v: step %d: %v (not finite: %v)", o, i, err, bad)
			}
			losses = append(losses, loss.Total())
		}
		g, err := tr.Grads()
		if err != nil {
			t.Fatal(err)
		}
		return losses, g
	}
	compare := func(what string, la, lb []float64, ga, gb [][]float32) {
		for i := range la {
			if math.Abs(la[i]-lb[i]) > 1e-5*math.Abs(lb[i]) {
				t.Errorf("%s: step %d loss %v, want %v", what, i, la[i], lb[i])
			}
		}
		for i := range ga {
			if e, at := relErr(ga[i], gb[i]); e > 1e-4 {
				t.Errorf("%s: gradient %d: relative error %.3g at %d", what, i, e, at)
			}
		}
	}
	lPlain, gPlain := run(TrainerOptions{})
	lOne, gOne := run(TrainerOptions{Collective: "nccl"})
	compare("one NCCL rank", lOne, lPlain, gOne, gPlain)
	// A process group of one (ncclCommInitRank with one rank): the
	// multi-process step's collectives (TrainerOptions.Group), in one process.
	id, err := NewNCCLUniqueID()
	if err != nil {
		t.Fatal(err)
	}
	lGroup, gGroup := run(TrainerOptions{Group: &ProcessGroup{Rank: 0, Size: 1, ID: id}})
	compare("a process group of one", lGroup, lPlain, gGroup, gPlain)
	if c, _ := DeviceCount(); c >= 2 {
		lTwo, gTwo := run(TrainerOptions{Devices: []int{0, 1}})
		compare("two NCCL ranks", lTwo, lPlain, gTwo, gPlain)
	} else {
		t.Logf("one GPU: the two-rank NCCL path was not run")
	}
}
