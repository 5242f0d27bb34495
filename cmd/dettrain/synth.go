package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/data/synth"
)

// SynthOptions are synth's flags.
type SynthOptions struct {
	Out    string
	Images int
	Seed   int64
	Size   int
}

func newSynthCmd(io *IO, runF func(*SynthOptions) error) *cobra.Command {
	o := &SynthOptions{}
	cmd := &cobra.Command{
		Use:   "synth",
		Short: "Generate the built-in synthetic shapes data set (VOC layout)",
		Long: `synth draws a deterministic detection data set of four shape classes
(circle, square, triangle, cross) on textured backgrounds, in PASCAL VOC
layout with train/val/test splits, so the demo needs no download.`,
		Example: "  dettrain synth --out demo/shapes --images 2400 --seed 1",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Out == "" {
				return usagef("--out is required")
			}
			if o.Images < 1 || o.Images > 1000000 {
				return usagef("--images %d: must be between 1 and 1000000", o.Images)
			}
			if runF != nil {
				return runF(o)
			}
			s, err := synth.Generate(o.Out, synth.Options{Images: o.Images, Seed: o.Seed, Size: o.Size})
			if err != nil {
				return err
			}
			fmt.Fprintf(io.Out, "wrote %d images (%d train, %d val, %d test) with %d objects to %s\n", s.Images, s.Train, s.Val, s.Test, s.Objects, o.Out)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder (required)")
	cmd.Flags().IntVar(&o.Images, "images", 2400, "number of images")
	cmd.Flags().Int64Var(&o.Seed, "seed", 1, "random seed")
	cmd.Flags().IntVar(&o.Size, "size", 160, "image width and height in pixels")
	return cmd
}
