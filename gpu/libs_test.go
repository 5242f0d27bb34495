package gpu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibraryNotFound checks that a library that cannot be found is
// reported with what it is, every soname tried, the folders searched and how
// to get it. Where the dynamic loader finds the library anyway (a machine
// with it installed), the message cannot be provoked and the case skips.
func TestLibraryNotFound(t *testing.T) {
	for _, s := range []libSearch{driverSearch, nvrtcSearch, cublasSearch, cudnnSearch} {
		t.Run(s.names[0], func(t *testing.T) {
			ld, root := t.TempDir(), t.TempDir()
			t.Setenv("LD_LIBRARY_PATH", ld)
			t.Setenv("DETTRAIN_CUDA_PATH", root)
			l, err := openLib(s)
			if err == nil {
				t.Skipf("%s is installed here (%s): its not-found message cannot be checked on this machine", s.what, l.path)
			}
			msg := err.Error()
			for _, want := range append([]string{s.what, ld, root, s.hint}, s.names...) {
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not mention %q:\n%s", want, msg)
				}
			}
		})
	}
}

// TestLibraryFoundButBroken puts a file that is no shared library where
// DETTRAIN_CUDA_PATH points: the error must name that file and the loader's
// complaint, not just say "not found".
func TestLibraryFoundButBroken(t *testing.T) {
	for _, s := range []libSearch{cublasSearch, cudnnSearch} {
		t.Run(s.names[0], func(t *testing.T) {
			root := t.TempDir()
			lib := filepath.Join(root, "lib")
			if err := os.Mkdir(lib, 0o755); err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(lib, s.names[0])
			if err := os.WriteFile(bad, []byte("not an ELF file"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv("LD_LIBRARY_PATH", "")
			t.Setenv("DETTRAIN_CUDA_PATH", root)
			checkBrokenReported(t, s, bad)
		})
	}
}

// checkBrokenReported opens s, which finds the non-library file bad first:
// the error must name bad with the loader's complaint, not "not found".
func checkBrokenReported(t *testing.T, s libSearch, bad string) {
	t.Helper()
	l, err := openLib(s)
	if err == nil {
		t.Skipf("%s is installed here (%s): the dynamic loader finds it before the broken copy", s.what, l.path)
	}
	msg := err.Error()
	i := strings.Index(msg, bad+" (")
	if i < 0 {
		t.Fatalf("the error does not name the broken file %s:\n%s", bad, msg)
	}
	if strings.HasPrefix(msg[i+len(bad)+2:], "not found") {
		t.Errorf("the broken file is reported as not found, not with the loader's complaint:\n%s", msg)
	}
}

func TestCUDNNHintNamesPackages(t *testing.T) {
	for _, want := range []string{"nvidia-cudnn-cu13", "libcudnn9-cuda-13", "DETTRAIN_CUDA_PATH"} {
		if !strings.Contains(cudnnSearch.hint, want) {
			t.Errorf("cuDNN's hint %q does not mention %s", cudnnSearch.hint, want)
		}
	}
	if !strings.Contains(cublasSearch.hint, "DETTRAIN_CUDA_PATH") {
		t.Errorf("cuBLAS's hint %q does not mention DETTRAIN_CUDA_PATH", cublasSearch.hint)
	}
}
