package gpu

import (
	"sync"
	"testing"
)

var (
	tdOnce sync.Once
	tdDev  *Device
	tdStr  *Stream
	tdKern *Kernels
	tdErr  error
)

// testGPU returns device 0, a stream and the compiled kernels, or skips the
// test with the reason when this machine has no usable GPU. Tests run their
// device work inside dev.Do.
func testGPU(t testing.TB) (*Device, *Stream, *Kernels) {
	t.Helper()
	tdOnce.Do(func() {
		n, err := DeviceCount()
		if err != nil {
			tdErr = err
			return
		}
		if n == 0 {
			tdErr = ErrNoGPU
			return
		}
		d, err := Open(0)
		if err != nil {
			tdErr = err
			return
		}
		tdErr = d.Do(func() error {
			s, err := d.NewStream()
			if err != nil {
				return err
			}
			k, err := LoadKernels(d)
			if err != nil {
				return err
			}
			tdDev, tdStr, tdKern = d, s, k
			return nil
		})
	})
	if tdErr != nil {
		if tdDev == nil && tdKern == nil && isNoGPU(tdErr) {
			t.Skipf("GPU test skipped: %v", tdErr)
		}
		t.Fatalf("GPU setup: %v", tdErr)
	}
	return tdDev, tdStr, tdKern
}

func isNoGPU(err error) bool {
	for e := err; e != nil; {
		if e == ErrNoGPU {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// upload allocates device memory holding v. Call inside Do.
func upload(t testing.TB, d *Device, s *Stream, v []float32) Ptr {
	t.Helper()
	p, err := d.AllocF32(max(len(v), 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Upload(p, v); err != nil {
		t.Fatal(err)
	}
	return p
}

// poisoned allocates n float32s filled with NaN, so that an element a kernel
// fails to write shows up. Call inside Do.
func poisoned(t testing.TB, d *Device, s *Stream, n int) Ptr {
	t.Helper()
	p, err := d.AllocF32(max(n, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Fill32(p, 0x7fc00000, max(n, 1)); err != nil {
		t.Fatal(err)
	}
	return p
}

// download copies n float32s from p. Call inside Do.
func download(t testing.TB, s *Stream, p Ptr, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := s.Download(out, p); err != nil {
		t.Fatal(err)
	}
	return out
}
