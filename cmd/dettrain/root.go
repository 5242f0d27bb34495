package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/train"
)

// Exit statuses (documented in the root command's help and docs/TRAINING.md).
const (
	exitOK      = 0
	exitFailure = 1 // failure while running, or inputs skipped (predict)
	exitUsage   = 2 // bad usage or config
	// A run stopped by a signal exits 128 + the signal number after writing
	// its checkpoint (train.StopSignal.ExitCode): 130 for SIGINT, 143 for
	// SIGTERM.
)

// exitStatusHelp is the exit-status table of the root command's help.
const exitStatusHelp = `Exit status:
  0    success
  1    failure while running (the message names the file and the problem);
       predict: some inputs were unreadable and skipped (listed at the end)
  2    bad usage or config
  130  interrupted by SIGINT (Ctrl-C): the step finished, a checkpoint was written
  143  stopped by SIGTERM: likewise; resume with dettrain train --resume <run folder>
A second Ctrl-C or SIGTERM stops at once, without a checkpoint (the
previous checkpoints stay whole).`

// usageError marks errors that exit with status 2.
type usageError = engine.UsageError

var usagef = engine.Usagef

// IO holds the streams a command writes to (tests pass buffers).
type IO = engine.IO

// Main runs the command line args and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signalContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	io := &IO{Out: stdout, Err: stderr}
	root := newRootCmd(io)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if cerr := engine.Close(); cerr != nil && err == nil { // MPI_Finalize after a run across ranks
		err = cerr
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "dettrain:", err)
	return exitStatus(err, context.Cause(ctx))
}

// exitStatus maps a command's error to the process's exit status; cause is
// the cancellation cause of the command's context (a train.StopSignal when
// a signal arrived, else nil or context.Canceled).
func exitStatus(err error, cause error) int {
	if err == nil {
		return exitOK
	}
	var sig train.StopSignal
	if errors.As(err, &sig) {
		return sig.ExitCode()
	}
	if errors.Is(err, train.ErrStopped) || errors.Is(err, context.Canceled) {
		if errors.As(cause, &sig) {
			return sig.ExitCode()
		}
	}
	var ue usageError
	if errors.As(err, &ue) || config.IsConfigError(err) || isCobraUsage(err) {
		return exitUsage
	}
	return exitFailure
}

// signalContext is signal.NotifyContext with the signal as the context's
// cause (a train.StopSignal, so that a stopped run's exit status can name
// it). After the first signal the default action is restored: a second one
// ends the process at once.
func signalContext(parent context.Context, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			cancel(train.StopSignal{Signal: s})
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel(context.Canceled)
		})
	}
}

// isCobraUsage recognises cobra's own flag and argument errors.
func isCobraUsage(err error) bool {
	var fe flagError
	return errors.As(err, &fe)
}

type flagError struct{ error }

func newRootCmd(io *IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "dettrain",
		Short: "Train, evaluate and run YOLO object detectors on CPU",
		Long: `dettrain trains YOLO-family object detectors (darknet .cfg/.weights) from a YAML config.

  dettrain synth --out demo/shapes           # make the built-in demo data set
  dettrain train --config configs/demo.yaml  # train on it and print the test mAP

` + exitStatusHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return flagError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.AddCommand(newTrainCmd(io, nil), newEvalCmd(io, nil), newPredictCmd(io, nil), newSynthCmd(io, nil),
		newDataCmd(io), newConfigCmd(io, nil), newVersionCmd(io), newBenchCmd(io, nil), newAblateCmd(io, nil),
		newExportCmd(io, nil), newAnchorsCmd(io, nil))
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %d arguments, got %d (see --help)", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}
