package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dettrain/dettrain/data/synth"
)

// These tests run `dettrain train` as two processes under Open MPI's
// mpirun, over TCP only (--mca btl tcp,self: the network path, not shared
// memory), and compare them with one process of two replicas. The ranks
// are this test binary run again: TestMPIRank runs Main with the
// arguments of DETTRAIN_TEST_MPI_ARGS and exits with its status.

const mpiArgsVar = "DETTRAIN_TEST_MPI_ARGS"

// TestMPIRank is a rank of an mpirun job started by the tests below; it
// does nothing in a normal test run.
func TestMPIRank(t *testing.T) {
	args := os.Getenv(mpiArgsVar)
	if args == "" {
		t.Skip("only under mpirun (the MPI tests start it)")
	}
	var a []string
	if err := json.Unmarshal([]byte(args), &a); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(Main(a, os.Stdout, os.Stderr))
}

// mpirunCmd is `mpirun -np np` of this binary running dettrain args, or
// skips when Open MPI's mpirun is not installed.
func mpirunCmd(t *testing.T, ctx context.Context, np int, dir string, args ...string) *exec.Cmd {
	t.Helper()
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("mpirun not found: apt-get install openmpi-bin libopenmpi-dev (scripts/test_deps.sh does)")
	}
	if out, _ := exec.Command(mpirun, "--version").CombinedOutput(); !bytes.Contains(out, []byte("Open MPI")) {
		t.Skipf("mpirun is not Open MPI's: %s", out)
	}
	js, _ := json.Marshal(args)
	// --bind-to none: with -np 2 Open MPI binds each rank to one core,
	// which would starve the loader's workers. --timeout: a hung job fails
	// the test instead of the test binary's own timeout.
	cmd := exec.CommandContext(ctx, mpirun, "-np", strconv.Itoa(np), "--oversubscribe", "--bind-to", "none",
		"--mca", "btl", "tcp,self", "--timeout", "120",
		"-x", mpiArgsVar, os.Args[0], "-test.run=^TestMPIRank$", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), mpiArgsVar+"="+string(js), "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
	return cmd
}

// mpiConfig writes a small synthetic data set and a config that trains on
// it with train.replicas 2: two replicas in one process, or one in each of
// two ranks. Augmentation, mixup and synchronized BN are on, so that the
// shards' draws and the statistics across ranks are both exercised.
func mpiConfig(t *testing.T, epochs int) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	if _, err := synth.Generate(filepath.Join(dir, "ds"), synth.Options{Images: 48, Seed: 4, Size: 64}); err != nil {
		t.Fatal(err)
	}
	mcfg, _ := filepath.Abs("../../configs/models/demo-tiny.cfg")
	cfg = writeFile(t, filepath.Join(dir, "c.yaml"), fmt.Sprintf(`model:
  cfg: %s
  size: 64
  bn: sync
data:
  root: ds
  names: [circle, square, triangle, cross]
  val: ""
  augment: true
train:
  epochs: %d
  batch: 4
  replicas: 2
  lr: 0.004
  schedule: cosine
  mixup: true
  mixup_off_epochs: 0
  eval_interval: 0
  log_interval: 1
  keep_checkpoints: 10
eval:
  conf: 0.001
output:
  dir: run
`, mcfg, epochs))
	return dir, cfg
}

// steps reads a run's log.jsonl without the timings.
func steps(t *testing.T, run string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(run, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		delete(r, "seconds")
		delete(r, "img_per_s")
		delete(r, "allreduce_ms") // rank 0 times its all-reduces
		if r["kind"] == "resume" {
			continue
		}
		out = append(out, r)
	}
	return out
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s and %s differ", a, b)
	}
}

// Bit-identical is the tolerance: with two ranks every reduction (the
// gradients' float32 sum, SyncBN's float64 statistics, the losses) is one
// addition of two numbers, which is commutative and correctly rounded, and
// the mean multiplies by the same 1/2, so the ranks compute exactly what two
// replicas in one process compute. (With more ranks MPI's summation order
// may differ from the replicas' rank order, and equality would hold only to
// float32 rounding.)
func TestMPIMatchesReplicas(t *testing.T) {
	dir, cfg := mpiConfig(t, 2)
	if code, out, errs := run(t, "train", "--config", cfg, "--out", filepath.Join(dir, "one")); code != 0 {
		t.Fatalf("one process: exit %d\n%s\n%s", code, out, errs)
	}
	cmd := mpirunCmd(t, context.Background(), 2, dir, "train", "--config", cfg, "--out", filepath.Join(dir, "two"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun -np 2: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "2 processes x 1 replica(s)") || strings.Count(string(out), "training on ") != 1 {
		t.Errorf("rank 0 alone should print, as 2 processes x 1 replica:\n%s", out)
	}
	a, b := steps(t, filepath.Join(dir, "one")), steps(t, filepath.Join(dir, "two"))
	if len(a) != 18 || len(a) != len(b) { // 2 epochs x 8 iterations + 2 epoch lines
		t.Fatalf("log lines: one process %d, two ranks %d, want 18", len(a), len(b))
	}
	for i := range a {
		if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
			t.Errorf("step %d: one process %v, two ranks %v", i, a[i], b[i])
		}
	}
	sameFile(t, filepath.Join(dir, "one", "weights", "last.weights"), filepath.Join(dir, "two", "weights", "last.weights"))

	// Resume across rank counts: drop each run's final checkpoints (those
	// after iteration 8, the end of epoch 1) and its weights, and continue
	// the one-process run with two ranks and the two-rank run in one
	// process: each must end with the weights the other run ended with.
	for _, r := range []string{"one", "two"} {
		rd := filepath.Join(dir, r)
		if err := os.Rename(filepath.Join(rd, "weights", "last.weights"), filepath.Join(dir, r+".weights")); err != nil {
			t.Fatal(err)
		}
		cks, _ := filepath.Glob(filepath.Join(rd, "checkpoints", "ckpt-*.ckpt"))
		for _, c := range cks {
			if filepath.Base(c) > "ckpt-000000008.ckpt" {
				os.Remove(c)
			}
		}
		os.RemoveAll(filepath.Join(rd, "weights"))
		if err := os.Rename(rd, rd+"-r"); err != nil {
			t.Fatal(err)
		}
	}
	cmd = mpirunCmd(t, context.Background(), 2, dir, "train", "--resume", filepath.Join(dir, "one-r"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("resume at 2 ranks: %v\n%s", err, out)
	}
	if code, out, errs := run(t, "train", "--resume", filepath.Join(dir, "two-r")); code != 0 {
		t.Fatalf("resume in one process: exit %d\n%s\n%s", code, out, errs)
	}
	sameFile(t, filepath.Join(dir, "one-r", "weights", "last.weights"), filepath.Join(dir, "two.weights"))
	sameFile(t, filepath.Join(dir, "two-r", "weights", "last.weights"), filepath.Join(dir, "one.weights"))
}

// TestMPIKillRank kills rank 1 with SIGKILL in the middle of training: the
// job must end, with a failure status and a message naming the rank,
// within 60 s, not hang in rank 0's all-reduce.
func TestMPIKillRank(t *testing.T) {
	dir, cfg := mpiConfig(t, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := mpirunCmd(t, ctx, 2, dir, "train", "--config", cfg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait for training to run (iterations in rank 0's log), then find
	// rank 1 among mpirun's children by its OMPI_COMM_WORLD_RANK.
	logPath := filepath.Join(dir, "run", "log.jsonl")
	var rank1 int
	for deadline := time.Now().Add(90 * time.Second); rank1 == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("training did not start within 90 s:\n%s", out.String())
		}
		if b, _ := os.ReadFile(logPath); bytes.Count(b, []byte(`"kind":"iter"`)) < 3 {
			continue
		}
		rank1 = rankPID(cmd.Process.Pid, "1")
	}
	if err := syscall.Kill(rank1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("mpirun exited 0 after rank 1 was killed:\n%s", out.String())
		}
		t.Logf("job ended %.1f s after the kill: %v", time.Since(killed).Seconds(), err)
	case <-time.After(60 * time.Second):
		t.Fatalf("the job still runs 60 s after rank 1 was killed:\n%s", out.String())
	}
	if s := out.String(); !strings.Contains(s, "rank 1") {
		t.Errorf("no message names rank 1:\n%s", s)
	}
}

// rankPID is the pid of the process below parent whose environment says
// OMPI_COMM_WORLD_RANK=rank, or 0.
func rankPID(parent int, rank string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		env, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(env, []byte("\x00OMPI_COMM_WORLD_RANK="+rank+"\x00")) || !bytes.Contains(env, []byte(mpiArgsVar)) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if descends(pid, parent) {
			return pid
		}
	}
	return 0
}

// descends reports whether pid is parent or below it.
func descends(pid, parent int) bool {
	for pid > 1 {
		if pid == parent {
			return true
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 2 {
			return false
		}
		pid, _ = strconv.Atoi(f[1])
	}
	return false
}

// TestMPIErrorNamesRank: an error on the ranks (here train.replicas 3 with
// train.batch 6, a valid config that does not divide among 2 ranks, found
// by each rank once MPI is up) ends the job through MPI_Abort, non-zero,
// with the rank and the error in one message.
func TestMPIErrorNamesRank(t *testing.T) {
	dir, cfg := mpiConfig(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := mpirunCmd(t, ctx, 2, dir, "train", "--config", cfg, "--set", "train.replicas=3", "--set", "train.batch=6").CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the job did not end within 60 s:\n%s", out)
	}
	if err == nil {
		t.Fatalf("mpirun exited 0:\n%s", out)
	}
	if !regexp.MustCompile(`mpi: rank [01] of 2: train.replicas 3 does not divide among 2 ranks`).Match(out) {
		t.Errorf("no message with the rank and the error:\n%s", out)
	}
}

// TestMPIAblate: ablate trains several runs in one process; under mpirun
// every run trains across the ranks on the one MPI communicator of the
// process (MPI can be initialised once), finalized when the command ends.
func TestMPIAblate(t *testing.T) {
	dir, cfg := mpiConfig(t, 2)
	out := filepath.Join(dir, "ablate")
	cmd := mpirunCmd(t, context.Background(), 2, dir, "ablate", "--config", cfg, "--steps", "baseline,+cosine", "--seeds", "1", "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mpirun -np 2 dettrain ablate: %v\n%s", err, b)
	}
	recs, err := os.ReadFile(filepath.Join(out, "ablation.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.TrimSpace(string(recs)), "\n"); n != 2 {
		t.Fatalf("ablation.csv has %d runs, want 2:\n%s", n, recs)
	}
}
