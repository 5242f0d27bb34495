package gpu

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// NVRTC (nvrtc.h), bound at run time.
var rtc struct {
	once sync.Once
	err  error
	lib  *lib

	nvrtcVersion           func(major, minor *int32) int32
	nvrtcGetErrorString    func(code int32) string
	nvrtcCreateProgram     func(prog *uintptr, src *byte, name *byte, nh int32, headers **byte, names **byte) int32
	nvrtcCompileProgram    func(prog uintptr, nopt int32, opts **byte) int32
	nvrtcGetProgramLogSize func(prog uintptr, n *uint64) int32
	nvrtcGetProgramLog     func(prog uintptr, log *byte) int32
	nvrtcGetCUBINSize      func(prog uintptr, n *uint64) int32
	nvrtcGetCUBIN          func(prog uintptr, out *byte) int32
	nvrtcDestroyProgram    func(prog *uintptr) int32
}

var nvrtcSearch = libSearch{
	what:  "NVRTC, the CUDA runtime compiler (libnvrtc)",
	names: []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"},
	hint:  "Install the CUDA toolkit's NVRTC (apt: cuda-nvrtc-13-0; pip: nvidia-cuda-nvrtc) and point DETTRAIN_CUDA_PATH at it if it is not on the loader's path.",
}

func loadNVRTC() error {
	rtc.once.Do(func() {
		l, err := openLib(nvrtcSearch)
		if err != nil {
			rtc.err = err
			return
		}
		rtc.lib = l
		b := &binder{l: l}
		b.bind(&rtc.nvrtcVersion, "nvrtcVersion")
		b.bind(&rtc.nvrtcGetErrorString, "nvrtcGetErrorString")
		b.bind(&rtc.nvrtcCreateProgram, "nvrtcCreateProgram")
		b.bind(&rtc.nvrtcCompileProgram, "nvrtcCompileProgram")
		b.bind(&rtc.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize")
		b.bind(&rtc.nvrtcGetProgramLog, "nvrtcGetProgramLog")
		b.bind(&rtc.nvrtcGetCUBINSize, "nvrtcGetCUBINSize")
		b.bind(&rtc.nvrtcGetCUBIN, "nvrtcGetCUBIN")
		b.bind(&rtc.nvrtcDestroyProgram, "nvrtcDestroyProgram")
		rtc.err = b.err
	})
	return rtc.err
}

func rtcCheck(call string, code int32) error {
	if code == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(code), Name: rtc.nvrtcGetErrorString(code)}
}

// NVRTCVersion returns NVRTC's version, e.g. "13.0".
func NVRTCVersion() (string, error) {
	if err := loadNVRTC(); err != nil {
		return "", err
	}
	var a, b int32
	if err := rtcCheck("nvrtcVersion", rtc.nvrtcVersion(&a, &b)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d.%d", a, b), nil
}

func cstr(s string) *byte { b := append([]byte(s), 0); return &b[0] }

// Compile compiles CUDA C source for compute capability cc (sm_XY machine
// code, cubin) with NVRTC. The result is cached on disk under cacheDir
// (skipped when cacheDir is ""), keyed by the source, the options and
// NVRTC's version. cached reports whether it came from the cache.
func Compile(src, name string, cc [2]int, cacheDir string, extra ...string) (cubin []byte, cached bool, err error) {
	if err := loadNVRTC(); err != nil {
		return nil, false, err
	}
	ver, err := NVRTCVersion()
	if err != nil {
		return nil, false, err
	}
	opts := append([]string{fmt.Sprintf("--gpu-architecture=sm_%d%d", cc[0], cc[1]), "--std=c++17", "-default-device"}, extra...)
	h := sha256.New()
	fmt.Fprintf(h, "nvrtc %s\x00%s\x00", ver, strings.Join(opts, "\x00"))
	h.Write([]byte(src))
	key := hex.EncodeToString(h.Sum(nil))[:32]
	var path string
	if cacheDir != "" {
		path = filepath.Join(cacheDir, fmt.Sprintf("%s-sm_%d%d-%s.cubin", name, cc[0], cc[1], key))
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b, true, nil
		}
	}
	var prog uintptr
	if err := rtcCheck("nvrtcCreateProgram", rtc.nvrtcCreateProgram(&prog, cstr(src), cstr(name+".cu"), 0, nil, nil)); err != nil {
		return nil, false, err
	}
	defer rtc.nvrtcDestroyProgram(&prog)
	copts := make([]*byte, len(opts))
	for i, o := range opts {
		copts[i] = cstr(o)
	}
	cerr := rtcCheck("nvrtcCompileProgram", rtc.nvrtcCompileProgram(prog, int32(len(copts)), &copts[0]))
	var n uint64
	var log string
	if rtc.nvrtcGetProgramLogSize(prog, &n) == 0 && n > 1 {
		b := make([]byte, n)
		if rtc.nvrtcGetProgramLog(prog, &b[0]) == 0 {
			log = strings.TrimRight(string(b[:n-1]), "\n")
		}
	}
	if cerr != nil {
		return nil, false, fmt.Errorf("compiling %s.cu for sm_%d%d: %w\n%s", name, cc[0], cc[1], cerr, log)
	}
	if err := rtcCheck("nvrtcGetCUBINSize", rtc.nvrtcGetCUBINSize(prog, &n)); err != nil {
		return nil, false, err
	}
	cubin = make([]byte, n)
	if err := rtcCheck("nvrtcGetCUBIN", rtc.nvrtcGetCUBIN(prog, &cubin[0])); err != nil {
		return nil, false, err
	}
	if path != "" {
		if os.MkdirAll(cacheDir, 0o755) == nil {
			tmp := path + fmt.Sprintf(".tmp%d", os.Getpid())
			if os.WriteFile(tmp, cubin, 0o644) == nil {
				os.Rename(tmp, path)
			} else {
				os.Remove(tmp)
			}
		}
	}
	return cubin, false, nil
}

// KernelCacheDir is where compiled kernels are kept: $DETTRAIN_CACHE/kernels,
// else the user cache folder's dettrain/kernels, else "" (no cache).
func KernelCacheDir() string {
	if d := os.Getenv("DETTRAIN_CACHE"); d != "" {
		return filepath.Join(d, "kernels")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "dettrain", "kernels")
	}
	return ""
}

//go:embed kernels/*.h kernels/*.cu
var kernelFS embed.FS

// KernelSource is dettrain's CUDA C: kernels/common.h followed by every
// kernels/*.cu in name order, as one NVRTC program.
func KernelSource() string {
	var sb strings.Builder
	b, _ := kernelFS.ReadFile("kernels/common.h")
	sb.Write(b)
	names, _ := fs.Glob(kernelFS, "kernels/*.cu")
	sort.Strings(names)
	for _, n := range names {
		b, _ := kernelFS.ReadFile(n)
		fmt.Fprintf(&sb, "\n// ---- %s ----\n", n)
		sb.Write(b)
	}
	return sb.String()
}

// Kernels is dettrain's compiled kernel module on one device.
type Kernels struct {
	mod *Module
	mu  sync.Mutex
	fns map[string]Func
	// Cached reports whether the module came from the disk cache.
	Cached bool
	// BF16: the activation kernels read and write bfloat16 tensors
	// (mixed precision); the parameter kernels are the same in both.
	BF16 bool
}

// LoadKernels compiles (or reads from the cache) and loads dettrain's
// kernels for d, with float32 activations. Call inside d.Do.
func LoadKernels(d *Device) (*Kernels, error) { return LoadKernelsAct(d, false) }

// LoadKernelsAct is LoadKernels, with bfloat16 activations when bf16 is set
// (the same source compiled with ACT_BF16 defined: see kernels/common.h).
func LoadKernelsAct(d *Device, bf16 bool) (*Kernels, error) {
	src, name := KernelSource(), "dettrain"
	if bf16 {
		src, name = "#define ACT_BF16 1\n"+src, "dettrain_bf16"
	}
	cubin, cached, err := Compile(src, name, d.CC, KernelCacheDir())
	if err != nil {
		return nil, err
	}
	m, err := LoadModule(cubin)
	if err != nil {
		return nil, err
	}
	return &Kernels{mod: m, fns: map[string]Func{}, Cached: cached, BF16: bf16}, nil
}

// fn returns the kernel named name, looked up once.
func (k *Kernels) fn(name string) (Func, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f, ok := k.fns[name]; ok {
		return f, nil
	}
	f, err := k.mod.Func(name)
	if err != nil {
		return Func{}, err
	}
	k.fns[name] = f
	return f, nil
}

// launch runs kernel name on s.
func (k *Kernels) launch(s *Stream, name string, grid, block Dim3, shared int, args ...any) error {
	f, err := k.fn(name)
	if err != nil {
		return err
	}
	return s.Launch(f, grid, block, shared, args...)
}

// launch1 runs kernel name over n elements with a 1-D grid of 256-thread
// blocks (grid-stride kernels).
func (k *Kernels) launch1(s *Stream, name string, n int, args ...any) error {
	return k.launch(s, name, Grid1(n, 256), D1(256), 0, args...)
}
