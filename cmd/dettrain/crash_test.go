package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dettrain/dettrain/data/synth"
	"github.com/dettrain/dettrain/train"
)

// TestMain lets the test binary act as dettrain in a subprocess.
func TestMain(m *testing.M) {
	if os.Getenv("DETTRAIN_TEST_AS_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// subprocess starts this test binary as `dettrain args...`.
func subprocess(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "DETTRAIN_TEST_AS_MAIN=1"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// smallConfig writes a synthetic data set and a 3-epoch config on it.
func smallConfig(t *testing.T) (cfg, dir string) {
	t.Helper()
	dir = t.TempDir()
	if _, err := synth.Generate(filepath.Join(dir, "ds"), synth.Options{Images: 40, Seed: 2, Size: 64}); err != nil {
		t.Fatal(err)
	}
	model, _ := filepath.Abs("../../configs/models/demo-tiny.cfg")
	cfg = writeFile(t, filepath.Join(dir, "c.yaml"), fmt.Sprintf(`model:
  cfg: %s
  size: 64
data:
  root: ds
  names: [circle, square, triangle, cross]
  val: ""
train:
  epochs: 3
  batch: 4
  lr: 0.002
  schedule: cosine
  eval_interval: 0
  log_interval: 1
eval:
  size: 64
output:
  dir: run
`, model))
	return cfg, dir
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func glob(pattern string) []string { m, _ := filepath.Glob(pattern); return m }

// TestKillDuringCheckpointWrite: SIGKILL while a checkpoint is half written
// leaves the previous checkpoint whole, and --resume finishes the run.
func TestKillDuringCheckpointWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs training subprocesses")
	}
	cfg, dir := smallConfig(t)
	ckdir := filepath.Join(dir, "run", "checkpoints")
	cmd, out := subprocess(t, []string{"DETTRAIN_TEST_SLOW_CHECKPOINT=3s"}, "train", "--config", cfg)
	// The first checkpoint (end of epoch 1) takes 3 s to write; wait until it
	// is complete and the second one is half written, then kill.
	waitFor(t, "a complete checkpoint and a half-written one", func() bool {
		return len(glob(filepath.Join(ckdir, "ckpt-*.ckpt"))) == 1 && len(glob(filepath.Join(ckdir, ".ckpt-*.tmp*"))) == 1
	})
	before := glob(filepath.Join(ckdir, "ckpt-*.ckpt"))[0]
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ck, path, err := train.LatestCheckpoint(ckdir, io.Discard)
	if err != nil || path != before {
		t.Fatalf("after the kill: %v %s (want %s); output:\n%s", err, path, before, out)
	}
	if ck.State.Epoch != 1 || ck.State.Batch != 0 {
		t.Fatalf("checkpoint state %+v", ck.State)
	}
	code, stdout, stderr := run(t, "train", "--resume", filepath.Join(dir, "run"))
	if code != 0 || !strings.Contains(stdout, "resuming from") || !strings.Contains(stdout, "mAP@0.5") {
		t.Fatalf("resume: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestInterruptSavesAndResumes: SIGINT finishes the step, writes a
// checkpoint, exits 130 (128 + SIGINT, as a shell reports Ctrl-C) with the
// resume command; resuming completes the run.
func TestInterruptSavesAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs training subprocesses")
	}
	cfg, dir := smallConfig(t)
	cmd, out := subprocess(t, nil, "train", "--config", cfg)
	waitFor(t, "iteration 3", func() bool { return strings.Contains(out.String(), "iter 3 ") })
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 || !strings.Contains(out.String(), "dettrain train --resume") {
		t.Fatalf("interrupted run: %v\n%s", err, out)
	}
	if code, stdout, stderr := run(t, "train", "--resume", filepath.Join(dir, "run")); code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// Resuming with another data set is refused.
	if _, err := synth.Generate(filepath.Join(dir, "ds"), synth.Options{Images: 44, Seed: 2, Size: 64}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "train", "--resume", filepath.Join(dir, "run"), "--set", "train.epochs=4")
	if code != 1 || !strings.Contains(stderr, "another data set") {
		t.Fatalf("resume with other data: exit %d %s", code, stderr)
	}
}
