// Package gpu is dettrain's NVIDIA backend: small bindings of the CUDA driver
// API, cuBLAS, cuDNN 9 and NVRTC, loaded at run time with purego (no cgo, no
// CUDA headers at build time, so the same binary builds everywhere and finds
// the GPU when it runs), dettrain's own CUDA kernels (kernels/*.cu, compiled
// with NVRTC for the device at first use and cached on disk), and a
// device-resident executor of model.Network layers (net.go).
//
// Device memory is a Ptr, an address: no Go slice ever aliases it, so the
// host can read it only through an explicit copy (Stream.Download), never by
// accident.
package gpu

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ebitengine/purego"
)

// lib is one shared library found at run time.
type lib struct {
	handle uintptr
	path   string
}

// libSearch describes where a library was looked for, for error messages.
type libSearch struct {
	what  string   // "the CUDA driver (libcuda)"
	names []string // sonames, most specific first
	hint  string   // how to get it
}

var (
	libMu    sync.Mutex
	libCache = map[string]*lib{}
)

// openLib finds and dlopens one of s.names: first by soname (the dynamic
// loader's own search: ld.so.cache, LD_LIBRARY_PATH, RUNPATH), then in each
// folder of LD_LIBRARY_PATH explicitly, then under DETTRAIN_CUDA_PATH (the
// folder, its lib64/ and lib/, and the lib/ folders of NVIDIA's pip wheels
// below it). When all fail, the error lists every attempt.
func openLib(s libSearch) (*lib, error) {
	libMu.Lock()
	defer libMu.Unlock()
	if l, ok := libCache[s.names[0]]; ok {
		return l, nil
	}
	var tried []string
	try := func(path string) *lib {
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			msg := err.Error()
			// "not found" only when the library itself is missing: when
			// it exists but one of its own dependencies does not, dlerror
			// names that dependency, which is worth keeping.
			if strings.Contains(msg, path+": cannot open shared object file") {
				msg = "not found"
			}
			tried = append(tried, fmt.Sprintf("%s (%s)", path, msg))
			return nil
		}
		return &lib{handle: h, path: path}
	}
	for _, name := range s.names {
		if l := try(name); l != nil {
			libCache[s.names[0]] = l
			return l, nil
		}
	}
	for _, dir := range searchDirs() {
		for _, name := range s.names {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err != nil {
				continue
			}
			if l := try(p); l != nil {
				libCache[s.names[0]] = l
				return l, nil
			}
		}
	}
	dirs := searchDirs()
	where := "LD_LIBRARY_PATH and DETTRAIN_CUDA_PATH are unset"
	if len(dirs) > 0 {
		where = "also looked in " + strings.Join(dirs, ", ")
	}
	return nil, fmt.Errorf("%s not found: tried %s; %s. %s", s.what, strings.Join(tried, ", "), where, s.hint)
}

// searchDirs lists the folders of LD_LIBRARY_PATH and those DETTRAIN_CUDA_PATH
// points to (each entry, its lib64/ and lib/, and nvidia/*/lib below it, where
// pip's NVIDIA wheels put their libraries).
func searchDirs() []string {
	var out []string
	seen := map[string]bool{}
	add := func(d string) {
		if d == "" || seen[d] {
			return
		}
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			seen[d] = true
			out = append(out, d)
		}
	}
	for _, d := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
		add(d)
	}
	for _, root := range filepath.SplitList(os.Getenv("DETTRAIN_CUDA_PATH")) {
		if root == "" {
			continue
		}
		add(root)
		add(filepath.Join(root, "lib64"))
		add(filepath.Join(root, "lib"))
		add(filepath.Join(root, "targets", "x86_64-linux", "lib"))
		wheels, _ := filepath.Glob(filepath.Join(root, "nvidia", "*", "lib"))
		for _, w := range wheels {
			add(w)
		}
		wheels, _ = filepath.Glob(filepath.Join(root, "*", "lib"))
		for _, w := range wheels {
			add(w)
		}
	}
	return out
}

// bind registers fn (a pointer to a func variable) as symbol name of l, or
// returns an error naming the library and the symbol.
func (l *lib) bind(fn any, name string) error {
	if _, err := purego.Dlsym(l.handle, name); err != nil {
		return fmt.Errorf("%s has no symbol %s (too old a version?)", l.path, name)
	}
	purego.RegisterLibFunc(fn, l.handle, name)
	return nil
}

// binder collects the first error of a series of binds.
type binder struct {
	l   *lib
	err error
}

func (b *binder) bind(fn any, name string) {
	if b.err == nil {
		b.err = b.l.bind(fn, name)
	}
}

// has reports whether the library exports name.
func (l *lib) has(name string) bool {
	_, err := purego.Dlsym(l.handle, name)
	return err == nil
}
