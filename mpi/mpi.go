// Package mpi is dettrain's process engine for data-parallel training: a
// small binding of Open MPI loaded at run time with purego (no cgo, no
// headers; the binary runs without Open MPI and only Init needs it). MPI
// starts the processes (mpirun, srun), gives each its rank, sums CPU buffers
// over all ranks (MPI_Allreduce) and carries small messages such as NCCL's
// unique id (MPI_Bcast); NCCL, bound elsewhere, is the GPU data plane.
//
// Every collective here is MPI's own; the package has no home-made ones.
//
// Threads: MPI is initialised with MPI_THREAD_FUNNELED, and every MPI call of
// the process runs on one goroutine locked to its OS thread (the thread that
// called MPI_Init_thread, which the MPI standard calls the main thread). The
// Comm's methods hand their call to that goroutine and wait, so callers may
// call from any goroutine and cannot break the thread rule. FUNNELED rather
// than SERIALIZED or MULTIPLE because it is exactly what the design
// guarantees (one thread, always the same one), the least the library must
// support, and it asks nothing of Open MPI's internal locking.
//
// Faults: the communicator's error handler is MPI_ERRORS_RETURN, so a failed
// call returns an *Error (MPI_Error_string's text, the call and the rank)
// instead of killing the process silently. After such an error MPI's state
// is undefined: call Abort. A rank that dies (a crash, SIGKILL, os.Exit
// before Finalize) is seen by the launcher, which ends every rank; Abort
// prints its message naming the rank and calls MPI_Abort, which ends the
// job; SetTimeout makes a rank that waits too long in a call exit, which the
// launcher then turns into the end of the job.
package mpi

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Comm is MPI_COMM_WORLD of an initialised MPI. It is safe for concurrent
// use, but collectives meet in call order: every rank must make the same
// collective calls in the same order with the same lengths, so in practice
// one goroutine (the training loop) calls them.
type Comm struct {
	a         *api
	rank      int
	size      int
	localRank int
	provided  int
	version   string

	calls chan call  // to the MPI goroutine
	reply chan error // from it

	mu      sync.Mutex // one call at a time; guards timeout
	done    atomic.Bool
	timeout time.Duration

	bucket []float32 // AllReduceMean's packing buffer, used on the MPI goroutine only
}

type call struct {
	fn   func() error
	last bool // Finalize: the goroutine ends after it
}

// Error is an MPI call that returned a code other than MPI_SUCCESS.
type Error struct {
	Call string // "MPI_Allreduce"
	Code int    // the error code (MPI_ERR_ROOT and the rest)
	Msg  string // MPI_Error_string(Code)
	Rank int
	Size int
}

func (e *Error) Error() string {
	return fmt.Sprintf("mpi: rank %d of %d: %s: %s (error code %d)", e.Rank, e.Size, e.Call, e.Msg, e.Code)
}

// ErrFinalized is returned by every call after Finalize.
var ErrFinalized = errors.New("mpi: MPI has been finalized")

var (
	initMu     sync.Mutex
	initCalled bool
)

// Init loads Open MPI (libmpi.so.40, else libmpi.so), initialises it with
// MPI_Init_thread(MPI_THREAD_FUNNELED) on a goroutine that keeps its OS
// thread for every later call, sets MPI_ERRORS_RETURN on MPI_COMM_WORLD and
// reads the rank, the size and the local rank (the rank within this host's
// processes, from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)).
//
// Without a launcher, Open MPI starts as a singleton: one process, rank 0 of
// size 1, where every collective is the identity. When the launcher's
// environment (Launched) names a size other than the one MPI reports, Init
// fails: the libmpi loaded is not the launcher's MPI.
//
// MPI can be initialised once per process: a second Init fails.
func Init() (*Comm, error) {
	initMu.Lock()
	defer initMu.Unlock()
	if initCalled {
		return nil, errors.New("mpi: Init called twice (MPI can be initialised once per process)")
	}
	a, err := load(libNames)
	if err != nil {
		return nil, err
	}
	initCalled = true
	c := &Comm{a: a, calls: make(chan call), reply: make(chan error)}
	started := make(chan error)
	go c.serve(started)
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// serve is the MPI goroutine: it locks its OS thread for good (the thread is
// retired when the goroutine ends after MPI_Finalize, still locked),
// initialises MPI on it and then runs every call.
func (c *Comm) serve(started chan<- error) {
	runtime.LockOSThread()
	if err := c.start(); err != nil {
		started <- err
		return
	}
	started <- nil
	for cl := range c.calls {
		c.reply <- cl.fn()
		if cl.last {
			return
		}
	}
}

func (c *Comm) start() error {
	a := c.a
	var provided int32
	if code := a.initThread(nil, nil, threadFunneled, &provided); code != success {
		return &Error{Call: "MPI_Init_thread", Code: int(code), Msg: a.errString(code), Rank: -1, Size: -1}
	}
	c.provided = int(provided)
	c.version = a.version()
	fail := func(err error) error {
		a.finalize()
		return err
	}
	if provided < threadFunneled {
		return fail(fmt.Errorf("mpi: %s provides thread level %d (MPI_THREAD_SINGLE) but dettrain needs MPI_THREAD_FUNNELED: the Go runtime is always multi-threaded", c.version, provided))
	}
	var r, s int32
	check := func(name string, code int32) error {
		if code == success {
			return nil
		}
		return &Error{Call: name, Code: int(code), Msg: a.errString(code), Rank: int(r), Size: int(s)}
	}
	if err := check("MPI_Comm_set_errhandler", a.commSetErrhandler(a.commWorld, a.errorsReturn)); err != nil {
		return fail(err)
	}
	if err := check("MPI_Comm_rank", a.commRank(a.commWorld, &r)); err != nil {
		return fail(err)
	}
	if err := check("MPI_Comm_size", a.commSize(a.commWorld, &s)); err != nil {
		return fail(err)
	}
	var node uintptr
	if err := check("MPI_Comm_split_type", a.commSplitType(a.commWorld, commTypeShared, r, a.infoNull, &node)); err != nil {
		return fail(err)
	}
	var lr int32
	err := check("MPI_Comm_rank", a.commRank(node, &lr))
	if err2 := check("MPI_Comm_free", a.commFree(&node)); err == nil {
		err = err2
	}
	if err != nil {
		return fail(err)
	}
	c.rank, c.size, c.localRank = int(r), int(s), int(lr)
	if env, ok := Launched(); ok && env.Size > 0 && env.Size != c.size {
		return fail(fmt.Errorf("mpi: launched by %s as %d processes, but %s (%s) sees %d: the library is not the launcher's MPI "+
			"(Open MPI's mpirun and libmpi must match; under Slurm use srun --mpi=pmix)", env.Launcher, env.Size, a.path, c.version, c.size))
	}
	return nil
}

// Rank is this process's rank in MPI_COMM_WORLD, 0 to Size()-1.
func (c *Comm) Rank() int { return c.rank }

// Size is the number of processes in MPI_COMM_WORLD.
func (c *Comm) Size() int { return c.size }

// LocalRank is this process's rank among the processes on its host (the GPU
// it takes).
func (c *Comm) LocalRank() int { return c.localRank }

// ThreadLevel is the level MPI_Init_thread provided (1: MPI_THREAD_FUNNELED,
// 2: SERIALIZED, 3: MULTIPLE; Open MPI built with thread support returns the
// one asked for).
func (c *Comm) ThreadLevel() int { return c.provided }

// Version is the first line of MPI_Get_library_version, e.g. "Open MPI
// v4.1.4, package: Debian OpenMPI, ...".
func (c *Comm) Version() string { return c.version }

// SetTimeout makes every later call that has not returned after d print a
// message naming the rank and the call, then exit the process with status
// 1: the launcher sees a rank die and ends the job. It guards against a peer
// that hangs without dying (which MPI itself cannot see). 0 (the default)
// waits for ever. Choose d above the longest time one rank may legitimately
// wait for the others, such as rank 0 evaluating or saving a checkpoint.
func (c *Comm) SetTimeout(d time.Duration) {
	c.mu.Lock()
	c.timeout = d
	c.mu.Unlock()
}

// do runs fn on the MPI goroutine and waits for it. code is what fn's MPI
// call returned; a non-zero one becomes an *Error.
func (c *Comm) do(name string, fn func() int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done.Load() {
		return ErrFinalized
	}
	if c.timeout > 0 {
		d := c.timeout
		t := time.AfterFunc(d, func() {
			fmt.Fprintf(os.Stderr, "mpi: rank %d of %d: %s did not complete within %v (SetTimeout): a peer is stuck or gone; exiting\n", c.rank, c.size, name, d)
			os.Exit(1)
		})
		defer t.Stop()
	}
	c.calls <- call{fn: func() error {
		if code := fn(); code != success {
			return &Error{Call: name, Code: int(code), Msg: c.a.errString(code), Rank: c.rank, Size: c.size}
		}
		return nil
	}}
	return <-c.reply
}

// maxCount is the most elements one MPI call takes (its count is a C int);
// longer buffers go in several calls.
const maxCount = math.MaxInt32

// allreduceSum sums buf over all ranks in place (MPI_IN_PLACE), on the MPI
// goroutine.
func allreduceSum[T float32 | float64](c *Comm, buf []T, datatype uintptr) int32 {
	for off := 0; off < len(buf); off += maxCount {
		n := min(len(buf)-off, maxCount)
		if code := c.a.allreduce(inPlace, unsafe.Pointer(&buf[off]), int32(n), datatype, c.a.opSum, c.a.commWorld); code != success {
			return code
		}
	}
	return success
}

// AllReduceSumF32 replaces buf, on every rank, with the element-wise sum of
// all ranks' buf (MPI_Allreduce, MPI_IN_PLACE, MPI_FLOAT, MPI_SUM). The
// order of the additions is Open MPI's; it is the same on every rank, so all
// ranks get bit-identical results.
func (c *Comm) AllReduceSumF32(buf []float32) error {
	if len(buf) == 0 {
		return nil
	}
	return c.do("MPI_Allreduce", func() int32 { return allreduceSum(c, buf, c.a.float) })
}

// AllReduceSumF64 is AllReduceSumF32 for float64 (MPI_DOUBLE).
func (c *Comm) AllReduceSumF64(buf []float64) error {
	if len(buf) == 0 {
		return nil
	}
	return c.do("MPI_Allreduce", func() int32 { return allreduceSum(c, buf, c.a.double) })
}

// AllReduce is AllReduceSumF64 under the name dettrain's model.Collective
// uses for synchronized batch norm: buf becomes the sum over ranks. A *Comm
// is therefore a model.Collective (model.WithSyncBN(comm)).
func (c *Comm) AllReduce(buf []float64) error { return c.AllReduceSumF64(buf) }

// bucketLen is the number of float32s AllReduceMean packs into one
// MPI_Allreduce (16 MiB, the order of PyTorch DDP's 25 MB buckets): small
// gradients travel together, so the per-call latency is paid once per bucket
// rather than once per tensor; a gradient at least this long is reduced in
// place on its own.
const bucketLen = 4 << 20

// AllReduceMean replaces every gradient, on every rank, with its mean over
// ranks: g = (sum over ranks r of g_r) * (1/Size), the data-parallel SGD
// update of Goyal et al. 2017 ("Accurate, Large Minibatch SGD", section 3:
// each rank's loss is the mean over its own images, and the all-reduced
// gradient is divided by the number of ranks). Every rank must pass the
// same number of gradients with the same lengths in the same order.
func (c *Comm) AllReduceMean(grads [][]float32) error {
	total := 0
	for _, g := range grads {
		total += len(g)
	}
	if total == 0 {
		return nil
	}
	scale := 1 / float32(c.size)
	return c.do("MPI_Allreduce", func() int32 {
		if c.bucket == nil {
			c.bucket = make([]float32, 0, min(total, bucketLen))
		}
		var members [][]float32
		flush := func() int32 {
			b := c.bucket
			if len(b) == 0 {
				return success
			}
			if code := allreduceSum(c, b, c.a.float); code != success {
				return code
			}
			off := 0
			for _, g := range members {
				for i := range g {
					g[i] = b[off+i] * scale
				}
				off += len(g)
			}
			c.bucket, members = b[:0], members[:0]
			return success
		}
		for _, g := range grads {
			if len(g) == 0 {
				continue
			}
			if len(g) >= bucketLen {
				if code := allreduceSum(c, g, c.a.float); code != success {
					return code
				}
				for i := range g {
					g[i] *= scale
				}
				continue
			}
			if len(c.bucket)+len(g) > bucketLen {
				if code := flush(); code != success {
					return code
				}
			}
			c.bucket = append(c.bucket, g...)
			members = append(members, g)
		}
		return flush()
	})
}

// Bcast copies root's buf into every other rank's buf (MPI_Bcast,
// MPI_BYTE): every rank passes a buffer of the same length. It carries, for
// instance, NCCL's 128-byte ncclUniqueId from rank 0 to the others.
func (c *Comm) Bcast(buf []byte, root int) error {
	if len(buf) == 0 {
		return nil
	}
	if root < 0 || root > math.MaxInt32 {
		root = -1 // MPI reports MPI_ERR_ROOT with the rank in its message
	}
	return c.do("MPI_Bcast", func() int32 {
		for off := 0; off < len(buf); off += maxCount {
			n := min(len(buf)-off, maxCount)
			if code := c.a.bcast(unsafe.Pointer(&buf[off]), int32(n), c.a.byte_, int32(root), c.a.commWorld); code != success {
				return code
			}
		}
		return success
	})
}

// Barrier returns once every rank has called it (MPI_Barrier).
func (c *Comm) Barrier() error {
	return c.do("MPI_Barrier", func() int32 { return c.a.barrier(c.a.commWorld) })
}

// abortWait is how long Abort waits for the MPI goroutine (busy in a
// collective that another rank will never join, say) before it exits the
// process instead of calling MPI_Abort.
const abortWait = 5 * time.Second

// Abort ends the whole job: it prints "mpi: rank R of N: msg" to stderr,
// then calls MPI_Abort(MPI_COMM_WORLD, code), which makes the launcher kill
// every rank (Open MPI adds its own "MPI_ABORT was invoked on rank R"). If
// the MPI goroutine is still inside another call after 5 s, Abort exits the
// process with code instead; the launcher sees the rank die and ends the job
// all the same. Abort does not return. A code of 0 is made 1, so the job's
// status says it failed.
func (c *Comm) Abort(code int, msg string) {
	if code == 0 {
		code = 1
	}
	fmt.Fprintf(os.Stderr, "mpi: rank %d of %d: %s\n", c.rank, c.size, msg)
	abort := call{fn: func() error {
		c.a.abort(c.a.commWorld, int32(code))
		return nil
	}}
	if c.done.Load() {
		os.Exit(code) // no MPI any more: the launcher sees the exit
	}
	select {
	case c.calls <- abort:
		// MPI_Abort does not return; if it did, exit after a moment.
		time.Sleep(abortWait)
	case <-time.After(abortWait):
	}
	os.Exit(code)
}

// Finalize shuts MPI down (MPI_Finalize, a collective: every rank calls it
// before it exits with status 0) and ends the MPI goroutine. Later calls
// return ErrFinalized; MPI cannot be initialised again in this process.
func (c *Comm) Finalize() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done.Swap(true) {
		return ErrFinalized
	}
	c.calls <- call{last: true, fn: func() error {
		if code := c.a.finalize(); code != success {
			return &Error{Call: "MPI_Finalize", Code: int(code), Msg: c.a.errString(code), Rank: c.rank, Size: c.size}
		}
		return nil
	}}
	return <-c.reply
}
