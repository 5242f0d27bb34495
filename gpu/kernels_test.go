package gpu

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKernelsCompileWithClang compiles dettrain's CUDA C with clang's CUDA
// mode (to PTX, no CUDA headers or GPU needed), so that a syntax or type
// error is caught on any machine with clang, before NVRTC sees it on a GPU
// machine. It skips without clang.
func TestKernelsCompileWithClang(t *testing.T) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Skip("clang not installed (apt-get install clang): CUDA C not checked on this machine")
	}
	src := filepath.Join(t.TempDir(), "dettrain.cu")
	if err := os.WriteFile(src, []byte(KernelSource()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(clang, "-x", "cuda", "--cuda-device-only", "--cuda-gpu-arch=sm_80", "-nocudainc", "-nocudalib",
		"-std=c++17", "-Wall", "-Wno-unused-function", "-Wno-unknown-cuda-version", "-S", "-o", "-", src).CombinedOutput()
	if err != nil {
		t.Fatalf("clang: %v\n%s", err, firstLines(string(out), 60))
	}
	if !strings.Contains(string(out), ".entry check_finite") {
		t.Fatalf("no check_finite entry in the PTX")
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "warning:") {
			t.Errorf("clang: %s", l)
		}
	}
}

func firstLines(s string, n int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > n {
		ls = ls[:n]
	}
	return strings.Join(ls, "\n")
}
