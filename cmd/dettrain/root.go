package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
)

// Exit statuses: 0 success, 1 failure while running, 2 bad usage or config.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors that exit with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// IO holds the streams a command writes to (tests pass buffers).
type IO struct {
	Out, Err io.Writer
}

// Main runs the command line args and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	io := &IO{Out: stdout, Err: stderr}
	root := newRootCmd(io)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "dettrain:", err)
	var ue usageError
	if errors.As(err, &ue) || config.IsConfigError(err) || isCobraUsage(err) {
		return exitUsage
	}
	return exitFailure
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
  dettrain train --config configs/demo.yaml  # train on it and print the test mAP`,
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
