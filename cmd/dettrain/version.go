package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/blas"
)

// version is set at link time: -ldflags "-X main.version=v0.1.0".
var version = "dev"

func newVersionCmd(io *IO) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, Go version and BLAS backend",
		Example: "  dettrain version",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev := ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = " " + s.Value
					}
				}
			}
			fmt.Fprintf(io.Out, "dettrain %s%s (%s %s/%s, BLAS: %s)\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH, blas.Backend())
			return nil
		},
	}
}
