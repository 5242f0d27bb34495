package train

import (
	"os"
	"syscall"
)

// StopSignal is the cause with which the command line cancels a run's
// context when a signal arrives (context.WithCancelCause); the error of a run
// stopped that way wraps ErrStopped and, through context.Cause, this, so
// the caller can exit with the shell's status for the signal.
type StopSignal struct{ Signal os.Signal }

func (s StopSignal) Error() string { return s.Signal.String() + " received" }

// ExitCode is 128 + the signal number, what a shell reports for a process
// killed by the signal (POSIX sh "Exit Status"; bash: 130 for SIGINT, 143
// for SIGTERM), so that schedulers see an interrupted run as interrupted
// even though it exits on its own after writing its checkpoint. A signal
// without a number (not a syscall.Signal) gives 1.
func (s StopSignal) ExitCode() int {
	if n, ok := s.Signal.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}
