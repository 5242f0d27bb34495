package gpu

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// kernelModes are the ways the CUDA C is compiled: float activations (the
// default module), bfloat16 activations (common.h's ACT_BF16, mixed
// precision) and, for this check only, bfloat16 activations held in a struct
// (ACT_BF16_STRICT), where an activation read without ld() or written
// without cv() does not compile (with act_t an unsigned short it would be a
// silent integer conversion).
var kernelModes = []struct{ name, prefix string }{
	{"float", ""},
	{"bf16", "#define ACT_BF16 1\n"},
	{"bf16-strict", "#define ACT_BF16 1\n#define ACT_BF16_STRICT 1\n"},
}

// TestKernelsCompileWithClang compiles dettrain's CUDA C with clang's CUDA
// mode (to PTX, no CUDA headers or GPU needed) in each of kernelModes, so
// that a syntax or type error is caught on any machine with clang, before
// NVRTC sees it on a GPU machine; every mode must give the same kernels with
// the same number of parameters (the Go wrappers pass them positionally). It
// skips without clang.
func TestKernelsCompileWithClang(t *testing.T) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Skip("clang not installed (apt-get install clang): CUDA C not checked on this machine")
	}
	var first map[string]int
	for _, m := range kernelModes {
		src := filepath.Join(t.TempDir(), "dettrain.cu")
		if err := os.WriteFile(src, []byte(m.prefix+KernelSource()), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(clang, "-x", "cuda", "--cuda-device-only", "--cuda-gpu-arch=sm_80", "-nocudainc", "-nocudalib",
			"-std=c++17", "-Wall", "-Wno-unused-function", "-Wno-unknown-cuda-version", "-S", "-o", "-", src).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: clang: %v\n%s", m.name, err, firstLines(string(out), 60))
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "warning:") {
				t.Errorf("%s: clang: %s", m.name, l)
			}
		}
		entries := ptxEntries(string(out))
		for _, e := range []string{"check_finite", "op_act_fwd", "yolo_loss", "op_to_act", "op_from_act"} {
			if _, ok := entries[e]; !ok {
				t.Errorf("%s: no %s entry in the PTX", m.name, e)
			}
		}
		if first == nil {
			first = entries
		} else if !reflect.DeepEqual(entries, first) {
			t.Errorf("%s: kernels or parameter counts differ from %s's:\n%v\n%v", m.name, kernelModes[0].name, entries, first)
		}
	}
}

var ptxEntryRE = regexp.MustCompile(`(?m)^\.visible \.entry (\w+)\(`)

// ptxEntries returns the kernels of a PTX listing and their parameter counts.
func ptxEntries(ptx string) map[string]int {
	m := map[string]int{}
	for _, loc := range ptxEntryRE.FindAllStringSubmatchIndex(ptx, -1) {
		name := ptx[loc[2]:loc[3]]
		body := ptx[loc[1]:]
		if i := strings.Index(body, ")"); i >= 0 {
			body = body[:i]
		}
		m[name] = strings.Count(body, ".param ")
	}
	return m
}

func firstLines(s string, n int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > n {
		ls = ls[:n]
	}
	return strings.Join(ls, "\n")
}
