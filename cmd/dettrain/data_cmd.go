package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
)

func newDataCmd(io *IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Inspect data sets",
	}
	cmd.AddCommand(newDataCheckCmd(io, nil))
	return cmd
}

// DataCheckOptions are data check's flags.
type DataCheckOptions struct {
	Config ConfigOptions
}

func newDataCheckCmd(io *IO, runF func(*DataCheckOptions) error) *cobra.Command {
	o := &DataCheckOptions{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate every split of a data set: images, boxes per class, problems",
		Long: `check reads every annotation and the header of every image of the train, val and
test splits and lists what is wrong: missing or corrupt images, malformed XML,
unknown classes, boxes outside the image. It exits 1 when it finds problems.`,
		Example: "  dettrain data check --config configs/bccd-yolov3-tiny.yaml",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			c, err := o.Config.load()
			if err != nil {
				return err
			}
			names, err := c.ClassNames()
			if err != nil {
				return err
			}
			problems := 0
			for _, split := range []string{c.Data.Train, c.Data.Val, c.Data.Test} {
				if split == "" {
					continue
				}
				_, rep, err := data.Check(layout(c), split, names, image.OpenCV{})
				if err != nil {
					return err
				}
				fmt.Fprintf(io.Out, "== split %s\n", split)
				if err := rep.Summary(io.Out, names); err != nil {
					return err
				}
				problems += len(rep.Problems)
			}
			if problems > 0 {
				return fmt.Errorf("%d problems found", problems)
			}
			fmt.Fprintln(io.Out, "no problems found")
			return nil
		},
	}
	o.Config.addFlags(cmd)
	return cmd
}
