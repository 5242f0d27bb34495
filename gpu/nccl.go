package gpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// NCCL (nccl.h), bound at run time: all-reduce between the GPUs of one
// process (NewComms, ncclCommInitAll), or between processes with one GPU
// each (NewNCCLUniqueID and NewCommRank, ncclGetUniqueId and
// ncclCommInitRank: NCCL's documented multi-process bootstrap; Trainer's
// ProcessGroup), for data-parallel training. See Comm for how to call it.
//
// ncclCommInitRank takes its ncclUniqueId (a 128-byte struct) by value;
// purego passes struct arguments on linux/amd64 and linux/arm64 (on amd64 in
// memory on the stack, as the System V ABI does for structs over 16 bytes),
// which TestNCCLFakeLibraryABI checks against a C library compiled for the
// test.
var ncclLib struct {
	once sync.Once
	err  error
	api  *ncclAPI
}

// ncclAPI is one bound copy of libnccl's functions (the real one in
// ncclLib.api; the tests also bind a stand-in library).
type ncclAPI struct {
	lib *lib

	getVersion     func(version *int32) int32
	getErrorString func(result int32) string
	getLastError   func(comm uintptr) string // optional (NCCL 2.13+)
	getUniqueId    func(id *ncclUniqueId) int32
	commInitAll    func(comms *uintptr, ndev int32, devlist *int32) int32
	commInitRank   func(comm *uintptr, nranks int32, id ncclUniqueId, rank int32) int32
	commDestroy    func(comm uintptr) int32
	commAbort      func(comm uintptr) int32
	commCount      func(comm uintptr, count *int32) int32
	allReduce      func(sendbuff, recvbuff uintptr, count uintptr, datatype, op int32, comm, stream uintptr) int32
	groupStart     func() int32
	groupEnd       func() int32
}

// ncclUniqueId is nccl.h's ncclUniqueId: typedef struct { char
// internal[NCCL_UNIQUE_ID_BYTES]; } with NCCL_UNIQUE_ID_BYTES 128.
type ncclUniqueId struct {
	Internal [128]byte
}

var ncclSearch = libSearch{
	what:  "NCCL (libnccl)",
	names: []string{"libnccl.so.2", "libnccl.so"},
	hint: "Install NCCL (pip: nvidia-nccl-cu13, which puts libnccl.so.2 in site-packages/nvidia/nccl/lib; " +
		"apt: libnccl2 from NVIDIA's CUDA repository) and point DETTRAIN_CUDA_PATH at its folder " +
		"(for the pip wheel, the site-packages folder) if it is not on the loader's path.",
}

// nccl.h's enums.
const (
	ncclFloat32 = 7 // ncclDataType_t
	ncclFloat64 = 8
	ncclSum     = 0 // ncclRedOp_t
)

// ncclResultNames are ncclResult_t's names.
var ncclResultNames = map[int32]string{
	0: "ncclSuccess",
	1: "ncclUnhandledCudaError",
	2: "ncclSystemError",
	3: "ncclInternalError",
	4: "ncclInvalidArgument",
	5: "ncclInvalidUsage",
	6: "ncclRemoteError",
	7: "ncclInProgress",
}

// bindNCCL binds the functions of an opened libnccl.
func bindNCCL(l *lib) (*ncclAPI, error) {
	a := &ncclAPI{lib: l}
	b := &binder{l: l}
	b.bind(&a.getVersion, "ncclGetVersion")
	b.bind(&a.getErrorString, "ncclGetErrorString")
	b.bind(&a.getUniqueId, "ncclGetUniqueId")
	b.bind(&a.commInitAll, "ncclCommInitAll")
	b.bind(&a.commInitRank, "ncclCommInitRank")
	b.bind(&a.commDestroy, "ncclCommDestroy")
	b.bind(&a.commAbort, "ncclCommAbort")
	b.bind(&a.commCount, "ncclCommCount")
	b.bind(&a.allReduce, "ncclAllReduce")
	b.bind(&a.groupStart, "ncclGroupStart")
	b.bind(&a.groupEnd, "ncclGroupEnd")
	if b.err == nil && l.has("ncclGetLastError") {
		b.bind(&a.getLastError, "ncclGetLastError")
	}
	if b.err != nil {
		return nil, b.err
	}
	return a, nil
}

// LoadNCCL finds and binds libnccl (once; later calls return the first
// result). Its error says where it looked and how to get NCCL.
func LoadNCCL() error {
	ncclLib.once.Do(func() {
		l, err := openLib(ncclSearch)
		if err != nil {
			ncclLib.err = err
			return
		}
		ncclLib.api, ncclLib.err = bindNCCL(l)
	})
	return ncclLib.err
}

// check turns an ncclResult_t into an error naming the call, with NCCL's
// message for the code and, when there is one, NCCL's last error message
// (which has the details, e.g. which CUDA call failed).
func (a *ncclAPI) check(call string, code int32, comm uintptr) error {
	if code == 0 {
		return nil
	}
	name, ok := ncclResultNames[code]
	if !ok {
		name = "ncclResult_t"
	}
	if s := a.getErrorString(code); s != "" {
		name += ": " + s
	}
	if a.getLastError != nil {
		if s := a.getLastError(comm); s != "" {
			name += "; NCCL's last error: " + s
		}
	}
	return &Error{Call: call, Code: int(code), Name: name}
}

// ncclVersionString decodes ncclGetVersion's code: major*10000 +
// minor*100 + patch since NCCL 2.9, major*1000 + minor*100 + patch before.
func ncclVersionString(code int) string {
	if code >= 10000 {
		return fmt.Sprintf("%d.%d.%d", code/10000, code%10000/100, code%100)
	}
	return fmt.Sprintf("%d.%d.%d", code/1000, code%1000/100, code%100)
}

// NCCLVersion returns the loaded NCCL's version code (ncclGetVersion), e.g.
// 22703 for 2.27.3 (major*10000 + minor*100 + patch; before NCCL 2.9,
// major*1000 + minor*100 + patch).
func NCCLVersion() (int, error) {
	if err := LoadNCCL(); err != nil {
		return 0, err
	}
	var v int32
	if err := ncclLib.api.check("ncclGetVersion", ncclLib.api.getVersion(&v), 0); err != nil {
		return 0, err
	}
	return int(v), nil
}

// Comm is one rank of an NCCL communicator: the rank of one device.
//
// Communicators come from NewComms (ncclCommInitAll: one Comm per device,
// all made by one call) or from NewCommRank (ncclCommInitRank: one call per
// rank, each from its own goroutine, all at the same time). A collective
// needs a call on every rank, with the same count and type, and the
// collectives must come in the same order on every rank. Two patterns issue
// those calls:
//
//   - One goroutine per rank (a trainer with one goroutine per replica):
//     each goroutine calls its own Comm's AllReduceSum, typically inside its
//     Device.Do. NCCL allows this: the calls go to different communicators
//     on different devices, one thread each. The calls must really run
//     concurrently: AllReduceSum may block its goroutine until the other
//     ranks have issued theirs (the first collective of a communicator
//     connects it to its peers), and its kernel waits on the GPU for the
//     peers' kernels. So a goroutine must not wait for another rank (a
//     Stream.Sync on another device, a channel fed by another replica's
//     result) between the start of the step and its own call.
//
//   - One goroutine for all ranks: AllReduceGroup issues every rank's call
//     between ncclGroupStart and ncclGroupEnd, as NCCL requires when one
//     thread drives several ranks. Calling AllReduceSum on each Comm in
//     turn from one goroutine deadlocks as soon as there are two ranks.
//
// Never use one Comm from two goroutines at once.
//
// Every call makes its rank's device context current for the NCCL call and
// afterwards puts back the context the thread had before (NCCL switches
// devices internally with cudaSetDevice), so a call inside a Device.Do
// leaves that Do's context current.
type Comm struct {
	Ordinal int // the CUDA device of this rank
	Rank    int // 0..Ranks-1
	Ranks   int // the number of ranks in the communicator

	h   uintptr // ncclComm_t
	dev *Device
	api *ncclAPI
	// aborted is set by Abort (possibly from another goroutine than the
	// one using c).
	aborted atomic.Bool
}

// String describes the rank, e.g. "NCCL rank 1 of 2 on cuda:1".
func (c *Comm) String() string {
	return fmt.Sprintf("NCCL rank %d of %d on cuda:%d", c.Rank, c.Ranks, c.Ordinal)
}

// ncclOnDevice runs f on a locked OS thread with d's context current, then puts
// back the context the thread had before (NCCL's own cudaSetDevice calls may
// have changed it). The driver must be loaded (d came from Open).
func ncclOnDevice(d *Device, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var prev uintptr
	if err := check("cuCtxGetCurrent", drv.cuCtxGetCurrent(&prev)); err != nil {
		return err
	}
	if d != nil && d.ctx != prev {
		if err := check("cuCtxSetCurrent", drv.cuCtxSetCurrent(d.ctx)); err != nil {
			return err
		}
	}
	err := f()
	var now uintptr
	if drv.cuCtxGetCurrent(&now) != 0 || now != prev {
		if e := check("cuCtxSetCurrent", drv.cuCtxSetCurrent(prev)); e != nil && err == nil {
			err = fmt.Errorf("putting back the thread's CUDA context after NCCL: %w", e)
		}
	}
	return err
}

// ncclCheckDevs rejects device lists NCCL would refuse, before NCCL sees them.
func ncclCheckDevs(call string, devs []int) error {
	if len(devs) == 0 {
		return fmt.Errorf("%s: no devices", call)
	}
	seen := map[int]int{}
	for i, d := range devs {
		if d < 0 {
			return fmt.Errorf("%s: device ordinal %d (in %v) is negative", call, d, devs)
		}
		if j, ok := seen[d]; ok {
			return fmt.Errorf("%s: cuda:%d is listed twice in %v (positions %d and %d): NCCL refuses two ranks on one device "+
				"(ncclCommInitAll fails with ncclInvalidUsage, \"Duplicate GPU\"); give each rank its own GPU", call, d, devs, j, i)
		}
		seen[d] = i
	}
	return nil
}

// NewComms creates one communicator rank per device of devs
// (ncclCommInitAll): rank i runs on cuda:devs[i]. Each device may appear
// once only; a repeat is refused here, before NCCL is loaded. It may be
// called from any goroutine, inside a Device.Do or not.
func NewComms(devs []int) ([]*Comm, error) {
	if err := ncclCheckDevs("NewComms", devs); err != nil {
		return nil, err
	}
	if err := LoadNCCL(); err != nil {
		return nil, err
	}
	api := ncclLib.api
	devices := make([]*Device, len(devs))
	list := make([]int32, len(devs))
	for i, o := range devs {
		d, err := Open(o)
		if err != nil {
			return nil, fmt.Errorf("NewComms(%v): %w", devs, err)
		}
		devices[i], list[i] = d, int32(o)
	}
	hs := make([]uintptr, len(devs))
	err := ncclOnDevice(nil, func() error {
		return api.check("ncclCommInitAll", api.commInitAll(&hs[0], int32(len(devs)), &list[0]), 0)
	})
	if err != nil {
		return nil, fmt.Errorf("NewComms(%v): %w", devs, err)
	}
	comms := make([]*Comm, len(devs))
	for i := range devs {
		comms[i] = &Comm{Ordinal: devs[i], Rank: i, Ranks: len(devs), h: hs[i], dev: devices[i], api: api}
	}
	return comms, nil
}

// NCCLUniqueID identifies a communicator being created rank by rank
// (ncclUniqueId): every rank passes the same one to NewCommRank.
type NCCLUniqueID [128]byte

// NewNCCLUniqueID returns a fresh communicator id (ncclGetUniqueId; NCCL
// opens the bootstrap socket that the ranks will meet on).
func NewNCCLUniqueID() (NCCLUniqueID, error) {
	if err := LoadNCCL(); err != nil {
		return NCCLUniqueID{}, err
	}
	var id ncclUniqueId
	if err := ncclLib.api.check("ncclGetUniqueId", ncclLib.api.getUniqueId(&id), 0); err != nil {
		return NCCLUniqueID{}, err
	}
	return NCCLUniqueID(id.Internal), nil
}

// NewCommRank creates rank rank (of ranks) on device dev of the communicator
// id (ncclCommInitRank). It blocks until every rank has called it, so each
// rank must call it from its own goroutine, all at the same time; the ranks
// must be on different devices.
func NewCommRank(dev, ranks, rank int, id NCCLUniqueID) (*Comm, error) {
	if ranks < 1 || rank < 0 || rank >= ranks {
		return nil, fmt.Errorf("NewCommRank: rank %d of %d is out of range", rank, ranks)
	}
	if dev < 0 {
		return nil, fmt.Errorf("NewCommRank: device ordinal %d is negative", dev)
	}
	if err := LoadNCCL(); err != nil {
		return nil, err
	}
	api := ncclLib.api
	d, err := Open(dev)
	if err != nil {
		return nil, fmt.Errorf("NewCommRank(cuda:%d, rank %d of %d): %w", dev, rank, ranks, err)
	}
	c := &Comm{Ordinal: dev, Rank: rank, Ranks: ranks, dev: d, api: api}
	// ncclCommInitRank takes the device from the calling thread's current
	// context: ncclOnDevice makes it d's.
	err = ncclOnDevice(d, func() error {
		return api.check("ncclCommInitRank", api.commInitRank(&c.h, int32(ranks), ncclUniqueId{Internal: id}, int32(rank)), 0)
	})
	if err != nil {
		return nil, fmt.Errorf("NewCommRank(cuda:%d, rank %d of %d): %w", dev, rank, ranks, err)
	}
	return c, nil
}

// errNCCLCommDestroyed is returned by the calls on a destroyed Comm.
var errNCCLCommDestroyed = errors.New("the NCCL communicator was destroyed")

// errNCCLCommAborted is returned by the calls on an aborted Comm.
var errNCCLCommAborted = errors.New("the NCCL communicator was aborted")

// Count returns the number of ranks of the communicator, as NCCL sees it
// (ncclCommCount).
func (c *Comm) Count() (int, error) {
	if c.h == 0 {
		return 0, fmt.Errorf("ncclCommCount on %v: %w", c, errNCCLCommDestroyed)
	}
	var n int32
	if err := c.api.check("ncclCommCount", c.api.commCount(c.h, &n), c.h); err != nil {
		return 0, fmt.Errorf("%v: %w", c, err)
	}
	return int(n), nil
}

// allReduceArgs validates the arguments of an in-place sum.
func (c *Comm) allReduceArgs(call string, buf Ptr, count int) error {
	if c == nil {
		return fmt.Errorf("%s: nil Comm", call)
	}
	if c.aborted.Load() {
		return fmt.Errorf("%s on %v: %w", call, c, errNCCLCommAborted)
	}
	if c.h == 0 {
		return fmt.Errorf("%s on %v: %w", call, c, errNCCLCommDestroyed)
	}
	if count < 0 {
		return fmt.Errorf("%s on %v: negative count %d", call, c, count)
	}
	if buf == 0 && count > 0 {
		return fmt.Errorf("%s on %v: null buffer for %d elements", call, c, count)
	}
	return nil
}

func ncclType(f64 bool) (int32, string) {
	if f64 {
		return ncclFloat64, "float64"
	}
	return ncclFloat32, "float32"
}

func ncclStreamHandle(s *Stream) uintptr {
	if s == nil {
		return 0 // the legacy default stream
	}
	return s.h
}

// AllReduceSum replaces count elements at buf (float64 when f64, float32
// otherwise) with their sum over all ranks, in place (ncclAllReduce with
// ncclSum). It is asynchronous on s (a stream of this rank's device; nil is
// the default stream): buf holds the sum once s has passed the call. Every
// rank must make the same call (same count and type), each from its own
// goroutine (see Comm); with one goroutine for several ranks use
// AllReduceGroup. A count of 0 does nothing.
func (c *Comm) AllReduceSum(s *Stream, buf Ptr, count int, f64 bool) error {
	if err := c.allReduceArgs("AllReduceSum", buf, count); err != nil {
		return err
	}
	if count == 0 {
		return nil
	}
	dt, tn := ncclType(f64)
	err := ncclOnDevice(c.dev, func() error {
		return c.api.check("ncclAllReduce", c.api.allReduce(uintptr(buf), uintptr(buf), uintptr(count), dt, ncclSum, c.h, ncclStreamHandle(s)), c.h)
	})
	if err != nil {
		return fmt.Errorf("AllReduceSum on %v (%d %s): %w", c, count, tn, err)
	}
	return nil
}

// AllReduceGroup is AllReduceSum on every rank of comms from one goroutine:
// bufs[i] (count elements on comms[i]'s device) is summed in place over the
// ranks, asynchronously on streams[i] (nil: the default stream). The calls
// run between ncclGroupStart and ncclGroupEnd, as NCCL requires when one
// thread drives several ranks; comms must hold every rank of the
// communicator (a rank left out would make the others wait forever). A
// count of 0 does nothing.
func AllReduceGroup(comms []*Comm, streams []*Stream, bufs []Ptr, count int, f64 bool) error {
	if len(streams) != len(comms) || len(bufs) != len(comms) {
		return fmt.Errorf("AllReduceGroup: %d comms, %d streams and %d buffers: need one of each per rank", len(comms), len(streams), len(bufs))
	}
	if len(comms) == 0 {
		return errors.New("AllReduceGroup: no comms")
	}
	seen := map[*Comm]bool{}
	for i, c := range comms {
		if err := c.allReduceArgs("AllReduceGroup", bufs[i], count); err != nil {
			return err
		}
		if seen[c] {
			return fmt.Errorf("AllReduceGroup: %v is listed twice", c)
		}
		seen[c] = true
	}
	if count == 0 {
		return nil
	}
	dt, tn := ncclType(f64)
	api := comms[0].api
	err := ncclOnDevice(nil, func() error {
		if err := api.check("ncclGroupStart", api.groupStart(), 0); err != nil {
			return err
		}
		var first error
		for i, c := range comms {
			// NCCL switches to each rank's device itself; making it current
			// as well costs nothing and keeps to "the rank's context is
			// current for its calls".
			if err := check("cuCtxSetCurrent", drv.cuCtxSetCurrent(c.dev.ctx)); err != nil {
				first = fmt.Errorf("%v: %w", c, err)
				break
			}
			if err := c.api.check("ncclAllReduce", c.api.allReduce(uintptr(bufs[i]), uintptr(bufs[i]), uintptr(count), dt, ncclSum, c.h, ncclStreamHandle(streams[i])), c.h); err != nil {
				first = fmt.Errorf("%v: %w", c, err)
				break
			}
		}
		// ncclGroupEnd must come even after a failed call: it ends the group
		// (and, after an error, abandons its operations).
		if err := api.check("ncclGroupEnd", api.groupEnd(), 0); err != nil && first == nil {
			first = err
		}
		return first
	})
	if err != nil {
		return fmt.Errorf("AllReduceGroup (%d ranks, %d %s): %w", len(comms), count, tn, err)
	}
	return nil
}

// Destroy releases the rank (ncclCommDestroy); later calls on c fail, a
// second Destroy does nothing. Let the streams that used c finish first.
// The ranks of one communicator may be destroyed one after another from one
// goroutine: NCCL frees what they share when the last one goes.
func (c *Comm) Destroy() error {
	if c == nil || c.h == 0 {
		return nil
	}
	if c.aborted.Load() {
		c.h = 0 // ncclCommAbort freed it
		return nil
	}
	h := c.h
	err := ncclOnDevice(c.dev, func() error {
		return c.api.check("ncclCommDestroy", c.api.commDestroy(h), 0)
	})
	c.h = 0
	if err != nil {
		return fmt.Errorf("destroying %v: %w", c, err)
	}
	return nil
}

// Abort ends the rank at once (ncclCommAbort): NCCL stops its pending
// operations on c and frees it, so that a rank whose peer has failed (a
// process of the group that died, or a timeout) does not wait forever in a
// collective. It may be called from another goroutine while a call on c is
// blocked (that call then fails); later calls on c fail, Destroy does
// nothing, and a second Abort does nothing. The device's streams that used
// c may hold failed work afterwards: treat the rank's device state as lost.
func (c *Comm) Abort() error {
	if c == nil || c.h == 0 || !c.aborted.CompareAndSwap(false, true) {
		return nil
	}
	h := c.h
	err := ncclOnDevice(c.dev, func() error {
		return c.api.check("ncclCommAbort", c.api.commAbort(h), 0)
	})
	if err != nil {
		return fmt.Errorf("aborting %v: %w", c, err)
	}
	return nil
}
