package main

import (
	"strings"
	"testing"

	"github.com/dettrain/dettrain/gpu"
)

// TestDeviceCUDAWithoutGPU: --device cuda on a machine without a usable GPU
// fails at once, before reading any data, with one message naming what was
// looked for; a malformed device is a usage error.
func TestDeviceCUDAWithoutGPU(t *testing.T) {
	if n, err := gpu.DeviceCount(); err == nil && n > 0 {
		t.Skip("this machine has a GPU")
	}
	code, _, stderr := run(t, "train", "--config", "../../configs/demo.yaml", "--device", "cuda", "--set", "data.root=/nonexistent")
	if code != 1 || !strings.Contains(stderr, `train.device "cuda": no usable NVIDIA GPU`) || !strings.Contains(stderr, "libcuda.so.1") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = run(t, "bench", "--model", "../../configs/models/yolov3-tiny.cfg", "--device", "gpu0")
	if code != 2 || !strings.Contains(stderr, `--device "gpu0"`) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}
