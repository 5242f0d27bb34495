package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dettrain/dettrain/train"
)

// TestExitStatusMapping: hand-worked cases of exitStatus. A stopped run
// exits 128 + the signal number (bash's convention for a process ended by a
// signal; SIGINT is 2 and SIGTERM 15 on Linux and the BSDs), whether the
// signal is in the error or only in the context's cause.
func TestExitStatusMapping(t *testing.T) {
	stopped := fmt.Errorf("%w at iteration 3 (epoch 1): checkpoint x written", train.ErrStopped)
	cases := []struct {
		name  string
		err   error
		cause error
		want  int
	}{
		{"success", nil, nil, 0},
		{"SIGINT as the cause", stopped, train.StopSignal{Signal: syscall.SIGINT}, 130},
		{"SIGTERM as the cause", stopped, train.StopSignal{Signal: syscall.SIGTERM}, 143},
		{"SIGTERM in the error", fmt.Errorf("%w: %w", stopped, train.StopSignal{Signal: syscall.SIGTERM}), nil, 143},
		{"context cancelled by a signal", fmt.Errorf("evaluating: %w", context.Canceled), train.StopSignal{Signal: syscall.SIGINT}, 130},
		{"stopped without a signal", stopped, context.Canceled, 1},
		{"a failure while a signal arrived", errors.New("disk full"), train.StopSignal{Signal: syscall.SIGTERM}, 1},
		{"usage", usagef("bad flag"), nil, 2},
		{"failure", errors.New("x.jpg: not an image"), nil, 1},
	}
	for _, c := range cases {
		if got := exitStatus(c.err, c.cause); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
}

// TestHelpListsExitStatuses: the root help documents every status Main returns.
func TestHelpListsExitStatuses(t *testing.T) {
	code, out, _ := run(t, "--help")
	for _, s := range []string{"Exit status:", "\n  0 ", "\n  1 ", "\n  2 ", "\n  130 ", "\n  143 "} {
		if code != 0 || !strings.Contains(out, s) {
			t.Errorf("dettrain --help (exit %d) lacks %q:\n%s", code, s, out)
		}
	}
}

// TestTerminateExits143: SIGTERM finishes the step, writes a checkpoint and
// exits 143 with the resume command (SIGINT and 130: TestInterruptSavesAndResumes).
func TestTerminateExits143(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a training subprocess")
	}
	cfg, dir := smallConfig(t)
	cmd, out := subprocess(t, nil, "train", "--config", cfg)
	waitFor(t, "iteration 3", func() bool { return strings.Contains(out.String(), "iter 3 ") })
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 143 || !strings.Contains(out.String(), "dettrain train --resume") {
		t.Fatalf("terminated run: %v, want exit status 143 and the resume command\n%s", err, out)
	}
	if len(glob(filepath.Join(dir, "run", "checkpoints", "ckpt-*.ckpt"))) == 0 {
		t.Fatalf("no checkpoint after SIGTERM\n%s", out)
	}
}

// TestSecondSignalStopsAtOnce: a second SIGINT while the first one's
// checkpoint is being written (slowed by the test hook) ends the process
// by the signal, without waiting; no half-written file takes a checkpoint's name.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a training subprocess")
	}
	cfg, dir := smallConfig(t)
	ckdir := filepath.Join(dir, "run", "checkpoints")
	cmd, out := subprocess(t, []string{"DETTRAIN_TEST_SLOW_CHECKPOINT=20s"}, "train", "--config", cfg)
	waitFor(t, "iteration 3", func() bool { return strings.Contains(out.String(), "iter 3 ") })
	cmd.Process.Signal(syscall.SIGINT)
	waitFor(t, "the interrupted run's checkpoint write", func() bool { return len(glob(filepath.Join(ckdir, ".ckpt-*.tmp*"))) == 1 })
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ws syscall.WaitStatus
	if ee, ok := err.(*exec.ExitError); ok {
		ws, _ = ee.Sys().(syscall.WaitStatus)
	}
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Fatalf("after two SIGINTs: %v, want the process ended by SIGINT\n%s", err, out)
	}
	if got := glob(filepath.Join(ckdir, "ckpt-*.ckpt")); len(got) != 0 {
		t.Errorf("checkpoints %v: the half-written one took its name", got)
	}
}
