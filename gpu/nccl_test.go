package gpu

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

// These NCCL tests need no GPU and no NCCL: the binding's checks before
// NCCL, the library search, and the argument passing of every bound
// function, against a stand-in libnccl compiled from C for the test.

// TestNCCLNotFound: with the library nowhere to be found, the error names
// libnccl, every soname tried, the folders searched and how to get it.
func TestNCCLNotFound(t *testing.T) {
	ld, root := t.TempDir(), t.TempDir()
	t.Setenv("LD_LIBRARY_PATH", ld)
	t.Setenv("DETTRAIN_CUDA_PATH", root)
	l, err := openLib(ncclSearch)
	if err == nil {
		t.Skipf("NCCL is installed here (%s): its not-found message cannot be checked on this machine", l.path)
	}
	msg := err.Error()
	for _, want := range append([]string{"libnccl", ncclSearch.what, ld, root, ncclSearch.hint, "nvidia-nccl-cu13", "DETTRAIN_CUDA_PATH"}, ncclSearch.names...) {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not mention %q:\n%s", want, msg)
		}
	}
}

// TestLoadNCCLError: LoadNCCL either works or says that libnccl is missing.
func TestLoadNCCLError(t *testing.T) {
	if err := LoadNCCL(); err != nil {
		if !strings.Contains(err.Error(), "libnccl") {
			t.Errorf("LoadNCCL's error does not mention libnccl: %v", err)
		}
		t.Logf("no NCCL here: %v", err)
		return
	}
	v, err := NCCLVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NCCL %s (%d) from %s", ncclVersionString(v), v, ncclLib.api.lib.path)
}

// TestNCCLWheelFolderSearched: DETTRAIN_CUDA_PATH pointing at a
// site-packages folder reaches nvidia/nccl/lib, where the nvidia-nccl-cu13
// wheel puts libnccl.so.2. A file there that is no library must be reported
// by its path with the loader's complaint.
func TestNCCLWheelFolderSearched(t *testing.T) {
	site := t.TempDir()
	dir := filepath.Join(site, "nvidia", "nccl", "lib")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "libnccl.so.2")
	if err := os.WriteFile(bad, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LD_LIBRARY_PATH", "")
	t.Setenv("DETTRAIN_CUDA_PATH", site)
	found := false
	for _, d := range searchDirs() {
		found = found || d == dir
	}
	if !found {
		t.Fatalf("searchDirs does not include the wheel folder %s: %v", dir, searchDirs())
	}
	checkBrokenReported(t, ncclSearch, bad)
}

// TestNCCLNewCommsBadDevices: device lists NCCL would refuse are refused before
// NCCL is loaded (on a machine without NCCL the error is still about the
// devices, not about libnccl).
func TestNCCLNewCommsBadDevices(t *testing.T) {
	for _, tc := range []struct {
		devs []int
		want []string
	}{
		{[]int{0, 1, 0}, []string{"NewComms", "cuda:0 is listed twice", "[0 1 0]", "Duplicate GPU", "positions 0 and 2"}},
		{[]int{3, 3}, []string{"cuda:3 is listed twice"}},
		{nil, []string{"NewComms: no devices"}},
		{[]int{0, -1}, []string{"-1", "negative"}},
	} {
		comms, err := NewComms(tc.devs)
		if err == nil {
			t.Fatalf("NewComms(%v) = %v, want an error", tc.devs, comms)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("NewComms(%v): the error does not mention %q: %v", tc.devs, w, err)
			}
		}
		if strings.Contains(err.Error(), "libnccl") {
			t.Errorf("NewComms(%v) looked for NCCL before checking the devices: %v", tc.devs, err)
		}
	}
}

// TestNCCLArgsRefusedBeforeNCCL: bad arguments of the collectives are
// caught without calling NCCL or CUDA (these Comms have no library behind
// them: a call would crash).
func TestNCCLArgsRefusedBeforeNCCL(t *testing.T) {
	destroyed := &Comm{Ordinal: 0, Rank: 0, Ranks: 2}
	live := &Comm{Ordinal: 1, Rank: 1, Ranks: 2, h: 1}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"destroyed", destroyed.AllReduceSum(nil, 64, 10, false), "destroyed"},
		{"negative count", live.AllReduceSum(nil, 64, -1, false), "negative count"},
		{"null buffer", live.AllReduceSum(nil, 0, 3, true), "null buffer"},
		{"group lengths", AllReduceGroup([]*Comm{live}, nil, []Ptr{64}, 1, false), "need one of each"},
		{"group empty", AllReduceGroup(nil, nil, nil, 1, false), "no comms"},
		{"group repeat", AllReduceGroup([]*Comm{live, live}, make([]*Stream, 2), []Ptr{64, 128}, 1, false), "listed twice"},
		{"group destroyed", AllReduceGroup([]*Comm{live, destroyed}, make([]*Stream, 2), []Ptr{64, 128}, 1, false), "destroyed"},
		{"group nil", AllReduceGroup([]*Comm{nil}, make([]*Stream, 1), []Ptr{64}, 1, false), "nil Comm"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", c.name, c.err, c.want)
		}
	}
	if err := live.AllReduceSum(nil, 0, 0, false); err != nil {
		t.Errorf("a count of 0 should do nothing, got %v", err)
	}
	if err := destroyed.Destroy(); err != nil {
		t.Errorf("destroying a destroyed Comm: %v", err)
	}
	if _, err := destroyed.Count(); err == nil || !strings.Contains(err.Error(), "destroyed") {
		t.Errorf("Count on a destroyed Comm: %v", err)
	}
	if _, err := NewCommRank(0, 2, 2, NCCLUniqueID{}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("NewCommRank with rank 2 of 2: %v", err)
	}
	aborted := &Comm{Ordinal: 0, Rank: 0, Ranks: 2, h: 1}
	aborted.aborted.Store(true)
	if err := aborted.AllReduceSum(nil, 64, 3, false); err == nil || !strings.Contains(err.Error(), "aborted") {
		t.Errorf("AllReduceSum on an aborted Comm: %v", err)
	}
	if err := aborted.Abort(); err != nil {
		t.Errorf("a second Abort: %v", err)
	}
	if err := aborted.Destroy(); err != nil || aborted.h != 0 {
		t.Errorf("Destroy after Abort: %v (handle %#x), want nothing done", err, aborted.h)
	}
}

// TestTrainerGroupRefused: process-group options NewTrainer cannot run are
// refused with a clear error before any device, library or network is
// touched (the network is nil here).
func TestTrainerGroupRefused(t *testing.T) {
	for _, tc := range []struct {
		o    TrainerOptions
		want []string
	}{
		{TrainerOptions{Devices: []int{0, 1}, Group: &ProcessGroup{Rank: 0, Size: 2}},
			[]string{"process group rank 0 of 2", "2 devices [0 1]", "one device", "one process per GPU"}},
		{TrainerOptions{Group: &ProcessGroup{Rank: 2, Size: 2}}, []string{"rank 2 of 2 is out of range"}},
		{TrainerOptions{Group: &ProcessGroup{Rank: 0, Size: 0}}, []string{"rank 0 of 0 is out of range"}},
		{TrainerOptions{Devices: []int{1}, Collective: "host", Group: &ProcessGroup{Rank: 1, Size: 4}},
			[]string{"collective \"host\"", "through NCCL"}},
	} {
		tr, err := NewTrainer(nil, tc.o)
		if err == nil {
			tr.Close()
			t.Fatalf("NewTrainer(%+v) succeeded, want an error", tc.o)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("NewTrainer with Devices %v, Collective %q, Group %+v: the error does not mention %q: %v",
					tc.o.Devices, tc.o.Collective, *tc.o.Group, w, err)
			}
		}
		if strings.Contains(err.Error(), "libnccl") || strings.Contains(err.Error(), "libcuda") {
			t.Errorf("NewTrainer(%+v) looked for a library before checking the group: %v", tc.o, err)
		}
	}
}

func TestNCCLVersionString(t *testing.T) {
	for code, want := range map[int]string{22703: "2.27.3", 22902: "2.29.2", 2804: "2.8.4", 21003: "2.10.3", 30000: "3.0.0"} {
		if got := ncclVersionString(code); got != want {
			t.Errorf("ncclVersionString(%d) = %s, want %s", code, got, want)
		}
	}
}

// fakeNCCL is a stand-in libnccl: the functions this package binds, with
// nccl.h's signatures, recording what they receive.
const fakeNCCL = `
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct { char internal[128]; } ncclUniqueId;

static uint64_t rec[16];
static unsigned char rec_id[128];

uint64_t fake_get(int i) { return rec[i]; }
int fake_id_byte(int i) { return rec_id[i]; }

int ncclGetVersion(int* v) { *v = 22703; return 0; }
const char* ncclGetErrorString(int r) {
	return r == 1 ? "unhandled cuda error (run with NCCL_DEBUG=INFO for details)" : "some other error";
}
const char* ncclGetLastError(void* comm) { rec[9] = (uintptr_t)comm; return "Cuda failure 'out of memory'"; }
int ncclGetUniqueId(ncclUniqueId* id) {
	for (int i = 0; i < 128; i++) id->internal[i] = (char)(255 - i);
	return 0;
}
int ncclCommInitAll(void** comms, int ndev, const int* devlist) {
	rec[0] = (uint64_t)ndev;
	for (int i = 0; i < ndev; i++) { rec[1+i] = (uint64_t)devlist[i]; comms[i] = (void*)(uintptr_t)(0x1000 + i); }
	return ndev > 4 ? 5 : 0;
}
int ncclCommInitRank(void** comm, int nranks, ncclUniqueId id, int rank) {
	rec[0] = (uint64_t)nranks; rec[1] = (uint64_t)rank;
	memcpy(rec_id, id.internal, 128);
	*comm = (void*)0x2000;
	return 0;
}
int ncclCommDestroy(void* comm) { rec[0] = (uintptr_t)comm; return 0; }
#ifndef FAKE_NO_ABORT
int ncclCommAbort(void* comm) { rec[10] = (uintptr_t)comm; return 0; }
#endif
int ncclCommCount(const void* comm, int* n) { rec[0] = (uintptr_t)comm; *n = 5; return 0; }
int ncclAllReduce(const void* send, void* recv, size_t count, int dt, int op, void* comm, void* stream) {
	rec[0] = (uintptr_t)send; rec[1] = (uintptr_t)recv; rec[2] = count; rec[3] = (uint64_t)dt;
	rec[4] = (uint64_t)op; rec[5] = (uintptr_t)comm; rec[6] = (uintptr_t)stream;
	return count == 12345 ? 1 : 0;
}
int ncclGroupStart(void) { rec[7]++; return 0; }
int ncclGroupEnd(void) { rec[8]++; return 0; }
`

// TestNCCLFakeLibraryABI binds a stand-in libnccl (compiled here with the C
// compiler, when there is one) and checks that every argument arrives as C
// sees it: in particular ncclCommInitRank's 128-byte ncclUniqueId passed by
// value between two int arguments, and ncclAllReduce's seven arguments (one
// on the stack) with a 64-bit size_t count. It also checks the error text.
// The stand-in is opened RTLD_LOCAL and under another name, so it can never
// stand in for the real libnccl of the GPU tests.
func TestNCCLFakeLibraryABI(t *testing.T) {
	l := openFakeNCCL(t)
	h := l.handle
	a, err := bindNCCL(l)
	if err != nil {
		t.Fatal(err)
	}
	var get func(i int32) uint64
	var idByte func(i int32) int32
	purego.RegisterLibFunc(&get, h, "fake_get")
	purego.RegisterLibFunc(&idByte, h, "fake_id_byte")

	var v int32
	if err := a.check("ncclGetVersion", a.getVersion(&v), 0); err != nil || v != 22703 {
		t.Errorf("ncclGetVersion: %d, %v", v, err)
	}

	// ncclGetUniqueId fills the struct; ncclCommInitRank gets it by value.
	var id ncclUniqueId
	if err := a.check("ncclGetUniqueId", a.getUniqueId(&id), 0); err != nil {
		t.Fatal(err)
	}
	for i, b := range id.Internal {
		if b != byte(255-i) {
			t.Fatalf("ncclGetUniqueId: byte %d is %d, want %d", i, b, 255-i)
		}
	}
	var pattern ncclUniqueId
	for i := range pattern.Internal {
		pattern.Internal[i] = byte(i*7 + 3)
	}
	var comm uintptr
	if err := a.check("ncclCommInitRank", a.commInitRank(&comm, 3, pattern, 2), 0); err != nil {
		t.Fatal(err)
	}
	if comm != 0x2000 || get(0) != 3 || get(1) != 2 {
		t.Errorf("ncclCommInitRank got nranks %d, rank %d and returned comm %#x; want 3, 2, 0x2000", get(0), get(1), comm)
	}
	for i := range pattern.Internal {
		if got := idByte(int32(i)); byte(got) != pattern.Internal[i] {
			t.Fatalf("ncclCommInitRank's ncclUniqueId byte %d arrived as %d, want %d", i, got, pattern.Internal[i])
		}
	}

	// ncclCommInitAll fills the comms array from the device list.
	hs := make([]uintptr, 3)
	list := []int32{2, 0, 1}
	if err := a.check("ncclCommInitAll", a.commInitAll(&hs[0], 3, &list[0]), 0); err != nil {
		t.Fatal(err)
	}
	if get(0) != 3 || get(1) != 2 || get(2) != 0 || get(3) != 1 || hs[0] != 0x1000 || hs[2] != 0x1002 {
		t.Errorf("ncclCommInitAll: got ndev %d devlist %d %d %d, comms %#x", get(0), get(1), get(2), get(3), hs)
	}
	hs = make([]uintptr, 5)
	list = []int32{0, 1, 2, 3, 4}
	err = a.check("ncclCommInitAll", a.commInitAll(&hs[0], 5, &list[0]), 0)
	if err == nil || !strings.Contains(err.Error(), "ncclCommInitAll failed: ncclInvalidUsage: some other error") {
		t.Errorf("ncclCommInitAll's failure: %v", err)
	}

	// ncclAllReduce: seven arguments, the seventh on the stack on amd64,
	// and a count over 32 bits.
	const count = 1<<32 + 3
	if err := a.check("ncclAllReduce", a.allReduce(0x7000, 0x8000, count, ncclFloat64, ncclSum, 0x1001, 0xabcdef0123), 0x1001); err != nil {
		t.Fatal(err)
	}
	want := []uint64{0x7000, 0x8000, count, ncclFloat64, ncclSum, 0x1001, 0xabcdef0123}
	for i, w := range want {
		if g := get(int32(i)); g != w {
			t.Errorf("ncclAllReduce argument %d arrived as %#x, want %#x", i, g, w)
		}
	}
	err = a.check("ncclAllReduce", a.allReduce(0x7000, 0x7000, 12345, ncclFloat32, ncclSum, 0x1001, 0), 0x1001)
	for _, w := range []string{"ncclAllReduce failed", "ncclUnhandledCudaError", "unhandled cuda error (run with NCCL_DEBUG=INFO for details)", "Cuda failure 'out of memory'"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("ncclAllReduce's error does not mention %q: %v", w, err)
		}
	}
	if get(9) != 0x1001 {
		t.Errorf("ncclGetLastError got comm %#x, want 0x1001", get(9))
	}

	var n int32
	if err := a.check("ncclCommCount", a.commCount(0x1002, &n), 0x1002); err != nil || n != 5 || get(0) != 0x1002 {
		t.Errorf("ncclCommCount: %d (comm %#x), %v", n, get(0), err)
	}
	if err := a.check("ncclCommDestroy", a.commDestroy(0x1001), 0); err != nil || get(0) != 0x1001 {
		t.Errorf("ncclCommDestroy: comm %#x, %v", get(0), err)
	}
	if a.groupStart() != 0 || a.groupEnd() != 0 || get(7) != 1 || get(8) != 1 {
		t.Errorf("ncclGroupStart/End: called %d and %d times", get(7), get(8))
	}
	if err := a.check("ncclCommAbort", a.commAbort(0x2000), 0); err != nil || get(10) != 0x2000 {
		t.Errorf("ncclCommAbort: comm %#x, %v", get(10), err)
	}
}

// openFakeNCCL compiles fakeNCCL (with the C compiler's -D flags defs) into
// a shared library and opens it, or skips the test without a C compiler.
func openFakeNCCL(t *testing.T, defs ...string) *lib {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("no C compiler (%s) to build the stand-in libnccl: %v", cc, err)
	}
	dir := t.TempDir()
	src, so := filepath.Join(dir, "fakenccl.c"), filepath.Join(dir, "libfakenccl-test.so")
	if err := os.WriteFile(src, []byte(fakeNCCL), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"-shared", "-fPIC", "-O1"}, defs...), "-o", so, src)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Skipf("could not build the stand-in libnccl with %s: %v\n%s", cc, err, out)
	}
	h, err := purego.Dlopen(so, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { purego.Dlclose(h) })
	return &lib{handle: h, path: so}
}

// TestNCCLBindsMultiProcessSymbols: the multi-process bootstrap's
// functions (ncclGetUniqueId, ncclCommInitRank, ncclCommAbort) are part of
// what bindNCCL requires: a libnccl without ncclCommAbort is refused, naming
// the symbol.
func TestNCCLBindsMultiProcessSymbols(t *testing.T) {
	l := openFakeNCCL(t, "-DFAKE_NO_ABORT")
	_, err := bindNCCL(l)
	if err == nil || !strings.Contains(err.Error(), "has no symbol ncclCommAbort") {
		t.Fatalf("binding a libnccl without ncclCommAbort: %v, want an error naming ncclCommAbort", err)
	}
	a, err := bindNCCL(openFakeNCCL(t))
	if err != nil {
		t.Fatal(err)
	}
	if a.getUniqueId == nil || a.commInitRank == nil || a.commAbort == nil {
		t.Errorf("bindNCCL left a multi-process function unbound: getUniqueId %v, commInitRank %v, commAbort %v",
			a.getUniqueId != nil, a.commInitRank != nil, a.commAbort != nil)
	}
}
