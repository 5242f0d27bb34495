package gpu

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Ptr is a device address (CUdeviceptr). It is not a Go pointer: the host
// reads device memory only through Stream.Download.
type Ptr uintptr

// Add returns p advanced by n bytes.
func (p Ptr) Add(n int) Ptr { return p + Ptr(n) }

// F32 returns p advanced by n float32 elements.
func (p Ptr) F32(n int) Ptr { return p + Ptr(4*n) }

// Error is a failed CUDA library call: the call's name and its status.
type Error struct {
	Call string
	Code int
	Name string
}

func (e *Error) Error() string { return fmt.Sprintf("%s failed: %s (%d)", e.Call, e.Name, e.Code) }

// ErrNoGPU is wrapped by the errors of Open when there is no usable driver or device.
var ErrNoGPU = errors.New("no usable NVIDIA GPU")

// The CUDA driver API (cuda.h), bound at run time.
var drv struct {
	once sync.Once
	err  error
	lib  *lib

	cuInit                     func(flags uint32) int32
	cuDriverGetVersion         func(v *int32) int32
	cuGetErrorName             func(code int32, s **byte) int32
	cuDeviceGetCount           func(n *int32) int32
	cuDeviceGet                func(dev *int32, ordinal int32) int32
	cuDeviceGetName            func(name *byte, n int32, dev int32) int32
	cuDeviceGetAttribute       func(v *int32, attr int32, dev int32) int32
	cuDeviceTotalMem           func(b *uint64, dev int32) int32
	cuDevicePrimaryCtxRetain   func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease  func(dev int32) int32
	cuCtxSetCurrent            func(ctx uintptr) int32
	cuCtxSynchronize           func() int32
	cuMemAlloc                 func(p *uint64, size uint64) int32
	cuMemFree                  func(p uint64) int32
	cuMemGetInfo               func(free, total *uint64) int32
	cuMemHostAlloc             func(p *unsafe.Pointer, size uint64, flags uint32) int32
	cuMemFreeHost              func(p unsafe.Pointer) int32
	cuMemcpyHtoDAsync          func(dst uint64, src unsafe.Pointer, size uint64, stream uintptr) int32
	cuMemcpyDtoHAsync          func(dst unsafe.Pointer, src uint64, size uint64, stream uintptr) int32
	cuMemcpyDtoDAsync          func(dst, src uint64, size uint64, stream uintptr) int32
	cuMemsetD32Async           func(dst uint64, v uint32, n uint64, stream uintptr) int32
	cuMemsetD16Async           func(dst uint64, v uint16, n uint64, stream uintptr) int32
	cuStreamCreate             func(s *uintptr, flags uint32) int32
	cuStreamDestroy            func(s uintptr) int32
	cuStreamSynchronize        func(s uintptr) int32
	cuStreamWaitEvent          func(s, ev uintptr, flags uint32) int32
	cuEventCreate              func(ev *uintptr, flags uint32) int32
	cuEventRecord              func(ev, s uintptr) int32
	cuEventSynchronize         func(ev uintptr) int32
	cuEventElapsedTime         func(ms *float32, start, end uintptr) int32
	cuEventDestroy             func(ev uintptr) int32
	cuModuleLoadData           func(m *uintptr, image unsafe.Pointer) int32
	cuModuleGetFunction        func(f *uintptr, m uintptr, name *byte) int32
	cuModuleUnload             func(m uintptr) int32
	cuLaunchKernel             func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, s uintptr, params *unsafe.Pointer, extra *unsafe.Pointer) int32
	cuFuncSetAttribute         func(f uintptr, attr int32, v int32) int32
	cuStreamBeginCapture       func(s uintptr, mode int32) int32
	cuStreamEndCapture         func(s uintptr, g *uintptr) int32
	cuGraphInstantiate         func(exec *uintptr, g uintptr, flags uint64) int32
	cuGraphLaunch              func(exec, s uintptr) int32
	cuGraphExecDestroy         func(exec uintptr) int32
	cuGraphDestroy             func(g uintptr) int32
	cuDeviceCanAccessPeer      func(can *int32, dev, peer int32) int32
	cuMemcpyPeerAsync          func(dst uint64, dstCtx uintptr, src uint64, srcCtx uintptr, size uint64, s uintptr) int32
	cuCtxEnablePeerAccess      func(peer uintptr, flags uint32) int32
	cuCtxGetCurrent            func(ctx *uintptr) int32
	cuStreamQuery              func(s uintptr) int32
	cuPointerGetAttribute      func(data unsafe.Pointer, attr int32, p uint64) int32
	cuMemAllocHost             func(p *unsafe.Pointer, size uint64) int32
	cuDeviceGetPCIBusId        func(id *byte, n int32, dev int32) int32
	cuCtxGetDevice             func(dev *int32) int32
	cuDevicePrimaryCtxSetFlags func(dev int32, flags uint32) int32
}

var driverSearch = libSearch{
	what:  "the NVIDIA driver's CUDA library (libcuda.so.1)",
	names: []string{"libcuda.so.1", "libcuda.so"},
	hint:  "Install the NVIDIA driver (libcuda.so.1 comes with it; in Docker run with --gpus all), or train with --device cpu.",
}

// loadDriver binds libcuda and calls cuInit once.
func loadDriver() error {
	drv.once.Do(func() {
		l, err := openLib(driverSearch)
		if err != nil {
			drv.err = fmt.Errorf("%w: %v", ErrNoGPU, err)
			return
		}
		drv.lib = l
		b := &binder{l: l}
		b.bind(&drv.cuInit, "cuInit")
		b.bind(&drv.cuDriverGetVersion, "cuDriverGetVersion")
		b.bind(&drv.cuGetErrorName, "cuGetErrorName")
		b.bind(&drv.cuDeviceGetCount, "cuDeviceGetCount")
		b.bind(&drv.cuDeviceGet, "cuDeviceGet")
		b.bind(&drv.cuDeviceGetName, "cuDeviceGetName")
		b.bind(&drv.cuDeviceGetAttribute, "cuDeviceGetAttribute")
		b.bind(&drv.cuDeviceTotalMem, "cuDeviceTotalMem_v2")
		b.bind(&drv.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
		b.bind(&drv.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2")
		b.bind(&drv.cuCtxSetCurrent, "cuCtxSetCurrent")
		b.bind(&drv.cuCtxSynchronize, "cuCtxSynchronize")
		b.bind(&drv.cuMemAlloc, "cuMemAlloc_v2")
		b.bind(&drv.cuMemFree, "cuMemFree_v2")
		b.bind(&drv.cuMemGetInfo, "cuMemGetInfo_v2")
		b.bind(&drv.cuMemHostAlloc, "cuMemHostAlloc")
		b.bind(&drv.cuMemFreeHost, "cuMemFreeHost")
		b.bind(&drv.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2")
		b.bind(&drv.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2")
		b.bind(&drv.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2")
		b.bind(&drv.cuMemsetD32Async, "cuMemsetD32Async")
		b.bind(&drv.cuMemsetD16Async, "cuMemsetD16Async")
		b.bind(&drv.cuStreamCreate, "cuStreamCreate")
		b.bind(&drv.cuStreamDestroy, "cuStreamDestroy_v2")
		b.bind(&drv.cuStreamSynchronize, "cuStreamSynchronize")
		b.bind(&drv.cuStreamWaitEvent, "cuStreamWaitEvent")
		b.bind(&drv.cuEventCreate, "cuEventCreate")
		b.bind(&drv.cuEventRecord, "cuEventRecord")
		b.bind(&drv.cuEventSynchronize, "cuEventSynchronize")
		b.bind(&drv.cuEventElapsedTime, "cuEventElapsedTime")
		b.bind(&drv.cuEventDestroy, "cuEventDestroy_v2")
		b.bind(&drv.cuModuleLoadData, "cuModuleLoadData")
		b.bind(&drv.cuModuleGetFunction, "cuModuleGetFunction")
		b.bind(&drv.cuModuleUnload, "cuModuleUnload")
		b.bind(&drv.cuLaunchKernel, "cuLaunchKernel")
		b.bind(&drv.cuFuncSetAttribute, "cuFuncSetAttribute")
		b.bind(&drv.cuStreamBeginCapture, "cuStreamBeginCapture_v2")
		b.bind(&drv.cuStreamEndCapture, "cuStreamEndCapture")
		b.bind(&drv.cuGraphInstantiate, "cuGraphInstantiateWithFlags")
		b.bind(&drv.cuGraphLaunch, "cuGraphLaunch")
		b.bind(&drv.cuGraphExecDestroy, "cuGraphExecDestroy")
		b.bind(&drv.cuGraphDestroy, "cuGraphDestroy")
		b.bind(&drv.cuCtxGetCurrent, "cuCtxGetCurrent")
		b.bind(&drv.cuStreamQuery, "cuStreamQuery")
		if b.err != nil {
			drv.err = fmt.Errorf("%w: %v", ErrNoGPU, b.err)
			return
		}
		if err := check("cuInit", drv.cuInit(0)); err != nil {
			drv.err = fmt.Errorf("%w: %v (is the NVIDIA driver loaded? in Docker, run with --gpus all)", ErrNoGPU, err)
		}
	})
	return drv.err
}

// check turns a CUresult into an error naming the call.
func check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	name := "CUDA_ERROR_UNKNOWN"
	if drv.cuGetErrorName != nil {
		var s *byte
		if drv.cuGetErrorName(code, &s) == 0 && s != nil {
			name = cString(s)
		}
	}
	return &Error{Call: call, Code: int(code), Name: name}
}

// cString copies a NUL-terminated C string.
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for i := 0; i < 4096; i++ {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(p), i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// DeviceCount returns the number of CUDA devices, or an error saying why
// there are none usable.
func DeviceCount() (int, error) {
	if err := loadDriver(); err != nil {
		return 0, err
	}
	var n int32
	if err := check("cuDeviceGetCount", drv.cuDeviceGetCount(&n)); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoGPU, err)
	}
	return int(n), nil
}

// Device is one GPU with its primary context. Every call that uses the
// device must run inside Device.Do, which pins the goroutine to its OS thread
// and makes the context current there (CUDA contexts are per thread).
type Device struct {
	Ordinal  int
	Name     string
	CC       [2]int // compute capability
	SMs      int
	TotalMem int64
	Driver   int // cuDriverGetVersion, e.g. 13000

	dev int32
	ctx uintptr

	allocated atomic.Int64 // bytes held through Alloc
	peak      atomic.Int64
}

var (
	devMu   sync.Mutex
	devices = map[int]*Device{}
)

// Open returns device ordinal (0-based), retaining its primary context.
// Opening the same ordinal twice returns the same Device.
func Open(ordinal int) (*Device, error) {
	n, err := DeviceCount()
	if err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("%w: cuda:%d asked for, but the driver sees %d device(s)", ErrNoGPU, ordinal, n)
	}
	devMu.Lock()
	defer devMu.Unlock()
	if d, ok := devices[ordinal]; ok {
		return d, nil
	}
	d := &Device{Ordinal: ordinal}
	if err := check("cuDeviceGet", drv.cuDeviceGet(&d.dev, int32(ordinal))); err != nil {
		return nil, err
	}
	name := make([]byte, 256)
	if err := check("cuDeviceGetName", drv.cuDeviceGetName(&name[0], int32(len(name)), d.dev)); err != nil {
		return nil, err
	}
	d.Name = cString(&name[0])
	var v int32
	for _, a := range []struct {
		attr int32
		dst  *int
	}{{75, &d.CC[0]}, {76, &d.CC[1]}, {16, &d.SMs}} {
		if err := check("cuDeviceGetAttribute", drv.cuDeviceGetAttribute(&v, a.attr, d.dev)); err != nil {
			return nil, err
		}
		*a.dst = int(v)
	}
	var tm uint64
	if err := check("cuDeviceTotalMem_v2", drv.cuDeviceTotalMem(&tm, d.dev)); err != nil {
		return nil, err
	}
	d.TotalMem = int64(tm)
	var dv int32
	if err := check("cuDriverGetVersion", drv.cuDriverGetVersion(&dv)); err != nil {
		return nil, err
	}
	d.Driver = int(dv)
	if err := check("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return nil, err
	}
	devices[ordinal] = d
	return d, nil
}

// String describes the device, e.g. "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)".
func (d *Device) String() string {
	return fmt.Sprintf("cuda:%d %s (sm_%d%d, %d SMs, %.1f GiB, driver %d.%d)", d.Ordinal, d.Name, d.CC[0], d.CC[1], d.SMs,
		float64(d.TotalMem)/(1<<30), d.Driver/1000, d.Driver%1000/10)
}

// Do runs f on a locked OS thread with the device's context current. All
// calls of this package that touch the device (and cuBLAS/cuDNN calls) must
// run inside Do.
func (d *Device) Do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := check("cuCtxSetCurrent", drv.cuCtxSetCurrent(d.ctx)); err != nil {
		return err
	}
	return f()
}

// Alloc returns bytes of device memory (cuMemAlloc). Call inside Do.
func (d *Device) Alloc(bytes int) (Ptr, error) {
	if bytes <= 0 {
		bytes = 4
	}
	var p uint64
	if err := check("cuMemAlloc_v2", drv.cuMemAlloc(&p, uint64(bytes))); err != nil {
		free, total, _ := d.MemInfo()
		return 0, fmt.Errorf("allocating %.1f MiB on %s (%.1f of %.1f MiB free, %.1f MiB held by dettrain): %w",
			float64(bytes)/(1<<20), d.Name, float64(free)/(1<<20), float64(total)/(1<<20), float64(d.allocated.Load())/(1<<20), err)
	}
	n := d.allocated.Add(int64(bytes))
	for {
		pk := d.peak.Load()
		if n <= pk || d.peak.CompareAndSwap(pk, n) {
			break
		}
	}
	return Ptr(p), nil
}

// AllocF32 allocates n float32 elements.
func (d *Device) AllocF32(n int) (Ptr, error) { return d.Alloc(4 * n) }

// Free releases memory from Alloc (bytes as allocated, for the accounting). Call inside Do.
func (d *Device) Free(p Ptr, bytes int) error {
	if p == 0 {
		return nil
	}
	if bytes <= 0 {
		bytes = 4
	}
	d.allocated.Add(-int64(bytes))
	return check("cuMemFree_v2", drv.cuMemFree(uint64(p)))
}

// ResetPeak restarts the peak of Allocated from the bytes held now.
func (d *Device) ResetPeak() { d.peak.Store(d.allocated.Load()) }

// Allocated returns the bytes currently held through Alloc, and the peak.
func (d *Device) Allocated() (now, peak int64) { return d.allocated.Load(), d.peak.Load() }

// MemInfo returns the device's free and total memory (cuMemGetInfo). Call inside Do.
func (d *Device) MemInfo() (free, total int64, err error) {
	var f, t uint64
	err = check("cuMemGetInfo_v2", drv.cuMemGetInfo(&f, &t))
	return int64(f), int64(t), err
}

// Sync waits for all work on the device (cuCtxSynchronize). Call inside Do.
func (d *Device) Sync() error { return check("cuCtxSynchronize", drv.cuCtxSynchronize()) }

// HostBuffer is page-locked host memory, for asynchronous copies.
type HostBuffer struct {
	p     unsafe.Pointer
	bytes int
}

// AllocHost returns page-locked host memory of bytes (cuMemHostAlloc). Call inside Do.
func (d *Device) AllocHost(bytes int) (*HostBuffer, error) {
	var p unsafe.Pointer
	if err := check("cuMemHostAlloc", drv.cuMemHostAlloc(&p, uint64(bytes), 0)); err != nil {
		return nil, fmt.Errorf("pinning %.1f MiB of host memory: %w", float64(bytes)/(1<<20), err)
	}
	return &HostBuffer{p: p, bytes: bytes}, nil
}

// F32 views the buffer as float32s (host memory: safe to read and write).
func (h *HostBuffer) F32() []float32 { return unsafe.Slice((*float32)(h.p), h.bytes/4) }

// Bytes views the buffer as bytes.
func (h *HostBuffer) Bytes() []byte { return unsafe.Slice((*byte)(h.p), h.bytes) }

// Free releases the buffer. Call inside Do.
func (h *HostBuffer) Free() error {
	if h.p == nil {
		return nil
	}
	err := check("cuMemFreeHost", drv.cuMemFreeHost(h.p))
	h.p = nil
	return err
}

// Stream is a CUDA stream. Work on it runs in order.
type Stream struct {
	h uintptr
}

// NewStream creates a stream that synchronises with the legacy default
// stream (flags 0). Call inside Do.
func (d *Device) NewStream() (*Stream, error) {
	s := &Stream{}
	if err := check("cuStreamCreate", drv.cuStreamCreate(&s.h, 0)); err != nil {
		return nil, err
	}
	return s, nil
}

// Handle is the CUstream, for cuBLAS and cuDNN.
func (s *Stream) Handle() uintptr { return s.h }

// Sync waits for the stream's work.
func (s *Stream) Sync() error { return check("cuStreamSynchronize", drv.cuStreamSynchronize(s.h)) }

// Destroy releases the stream.
func (s *Stream) Destroy() error { return check("cuStreamDestroy_v2", drv.cuStreamDestroy(s.h)) }

// Upload copies src (host float32s) to dst and waits for the copy (src may
// be ordinary Go memory).
func (s *Stream) Upload(dst Ptr, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	if err := check("cuMemcpyHtoDAsync_v2", drv.cuMemcpyHtoDAsync(uint64(dst), unsafe.Pointer(&src[0]), uint64(4*len(src)), s.h)); err != nil {
		return err
	}
	err := s.Sync()
	runtime.KeepAlive(src)
	return err
}

// UploadBytes copies src to dst and waits for the copy.
func (s *Stream) UploadBytes(dst Ptr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	if err := check("cuMemcpyHtoDAsync_v2", drv.cuMemcpyHtoDAsync(uint64(dst), unsafe.Pointer(&src[0]), uint64(len(src)), s.h)); err != nil {
		return err
	}
	err := s.Sync()
	runtime.KeepAlive(src)
	return err
}

// UploadAsync copies bytes of pinned host memory (from offset off) to dst
// without waiting: the buffer must not change until the stream passes it.
func (s *Stream) UploadAsync(dst Ptr, h *HostBuffer, off, bytes int) error {
	if off < 0 || bytes < 0 || off+bytes > h.bytes {
		return fmt.Errorf("UploadAsync: bytes [%d,%d) outside a %d-byte host buffer", off, off+bytes, h.bytes)
	}
	return check("cuMemcpyHtoDAsync_v2", drv.cuMemcpyHtoDAsync(uint64(dst), unsafe.Add(h.p, off), uint64(bytes), s.h))
}

// DownloadAsync copies bytes from src into pinned host memory at offset off
// without waiting.
func (s *Stream) DownloadAsync(h *HostBuffer, off int, src Ptr, bytes int) error {
	if off < 0 || bytes < 0 || off+bytes > h.bytes {
		return fmt.Errorf("DownloadAsync: bytes [%d,%d) outside a %d-byte host buffer", off, off+bytes, h.bytes)
	}
	return check("cuMemcpyDtoHAsync_v2", drv.cuMemcpyDtoHAsync(unsafe.Add(h.p, off), uint64(src), uint64(bytes), s.h))
}

// Download copies len(dst) float32s from src and waits for the copy.
func (s *Stream) Download(dst []float32, src Ptr) error {
	if len(dst) == 0 {
		return nil
	}
	if err := check("cuMemcpyDtoHAsync_v2", drv.cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), uint64(src), uint64(4*len(dst)), s.h)); err != nil {
		return err
	}
	err := s.Sync()
	runtime.KeepAlive(dst)
	return err
}

// DownloadBytes copies len(dst) bytes from src and waits for the copy.
func (s *Stream) DownloadBytes(dst []byte, src Ptr) error {
	if len(dst) == 0 {
		return nil
	}
	if err := check("cuMemcpyDtoHAsync_v2", drv.cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), uint64(src), uint64(len(dst)), s.h)); err != nil {
		return err
	}
	err := s.Sync()
	runtime.KeepAlive(dst)
	return err
}

// Copy copies bytes between device buffers (asynchronous).
func (s *Stream) Copy(dst, src Ptr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	return check("cuMemcpyDtoDAsync_v2", drv.cuMemcpyDtoDAsync(uint64(dst), uint64(src), uint64(bytes), s.h))
}

// Fill32 sets n 32-bit words at p to the bit pattern v (asynchronous).
func (s *Stream) Fill32(p Ptr, v uint32, n int) error {
	if n == 0 {
		return nil
	}
	return check("cuMemsetD32Async", drv.cuMemsetD32Async(uint64(p), v, uint64(n), s.h))
}

// Zero16 sets n 16-bit elements at p (bfloat16 activations) to 0 (asynchronous).
func (s *Stream) Zero16(p Ptr, n int) error {
	if n == 0 {
		return nil
	}
	return check("cuMemsetD16Async", drv.cuMemsetD16Async(uint64(p), 0, uint64(n), s.h))
}

// Zero sets n float32s at p to 0 (asynchronous).
func (s *Stream) Zero(p Ptr, n int) error { return s.Fill32(p, 0, n) }

// FillF32 sets n float32s at p to v (asynchronous).
func (s *Stream) FillF32(p Ptr, v float32, n int) error { return s.Fill32(p, math.Float32bits(v), n) }

// Event is a CUDA event, for timing and ordering.
type Event struct{ h uintptr }

// NewEvent creates an event (with timing). Call inside Do.
func NewEvent() (*Event, error) {
	e := &Event{}
	return e, check("cuEventCreate", drv.cuEventCreate(&e.h, 0))
}

// Record records the event on s.
func (e *Event) Record(s *Stream) error { return check("cuEventRecord", drv.cuEventRecord(e.h, s.h)) }

// Sync waits for the event.
func (e *Event) Sync() error { return check("cuEventSynchronize", drv.cuEventSynchronize(e.h)) }

// Since returns the milliseconds between start and e (both recorded and passed).
func (e *Event) Since(start *Event) (float64, error) {
	var ms float32
	err := check("cuEventElapsedTime", drv.cuEventElapsedTime(&ms, start.h, e.h))
	return float64(ms), err
}

// Destroy releases the event.
func (e *Event) Destroy() error { return check("cuEventDestroy_v2", drv.cuEventDestroy(e.h)) }

// Wait makes s wait for e.
func (s *Stream) Wait(e *Event) error {
	return check("cuStreamWaitEvent", drv.cuStreamWaitEvent(s.h, e.h, 0))
}

// Graph is an instantiated CUDA graph: a captured sequence of a stream's
// work, replayed by one launch.
type Graph struct{ g, exec uintptr }

// BeginCapture starts recording the work enqueued on s from this thread
// into a graph instead of running it (thread-local capture mode). Call
// inside Do.
func (s *Stream) BeginCapture() error {
	return check("cuStreamBeginCapture_v2", drv.cuStreamBeginCapture(s.h, 1)) // CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
}

// EndCapture stops the recording begun by BeginCapture and instantiates
// the graph. It must follow every BeginCapture, even after an error inside
// the capture (the stream leaves capture mode; the error is returned).
func (s *Stream) EndCapture() (*Graph, error) {
	g := &Graph{}
	if err := check("cuStreamEndCapture", drv.cuStreamEndCapture(s.h, &g.g)); err != nil {
		if g.g != 0 {
			drv.cuGraphDestroy(g.g)
		}
		return nil, err
	}
	if err := check("cuGraphInstantiateWithFlags", drv.cuGraphInstantiate(&g.exec, g.g, 0)); err != nil {
		drv.cuGraphDestroy(g.g)
		return nil, err
	}
	return g, nil
}

// Launch replays the graph on s.
func (g *Graph) Launch(s *Stream) error {
	return check("cuGraphLaunch", drv.cuGraphLaunch(g.exec, s.h))
}

// Destroy releases the graph. Call inside Do, after its launches finished.
func (g *Graph) Destroy() {
	if g == nil {
		return
	}
	if g.exec != 0 {
		drv.cuGraphExecDestroy(g.exec)
	}
	if g.g != 0 {
		drv.cuGraphDestroy(g.g)
	}
	g.g, g.exec = 0, 0
}
