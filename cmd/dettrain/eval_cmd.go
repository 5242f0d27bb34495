package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/model"
)

// EvalOptions are eval's flags.
type EvalOptions struct {
	Config  ConfigOptions
	Weights string
	Split   string
	JSON    string
}

func newEvalCmd(io *IO, runF func(*EvalOptions) error) *cobra.Command {
	o := &EvalOptions{}
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Score weights on a split: per-class AP and mAP@0.5 (VOC07 11-point and all-point)",
		Example: `  dettrain eval --config configs/demo.yaml --weights runs/demo/weights/best.weights
  dettrain eval -c configs/bccd-yolov3-tiny.yaml --weights best.weights --split val --json val.json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Weights == "" {
				return usagef("--weights is required")
			}
			if runF != nil {
				return runF(o)
			}
			return evalRun(io, o)
		},
	}
	o.Config.addFlags(cmd)
	cmd.Flags().StringVar(&o.Weights, "weights", "", "darknet .weights file (required)")
	cmd.Flags().StringVar(&o.Split, "split", "", "split to score (default: eval.split from the config)")
	cmd.Flags().StringVar(&o.JSON, "json", "", "also write the result as JSON to this file")
	return cmd
}

func evalRun(io *IO, o *EvalOptions) error {
	c, err := o.Config.load()
	if err != nil {
		return err
	}
	if o.Split != "" {
		c.Eval.Split = o.Split
	}
	names, err := c.ClassNames()
	if err != nil {
		return err
	}
	setThreads(c.Train)
	ds, err := loadSplit(c, c.Eval.Split, names, io.Err)
	if err != nil {
		return err
	}
	net, err := buildNetwork(c.Model.Cfg, o.Weights, len(names), c.Train.Seed)
	if err != nil {
		return err
	}
	r, err := evaluate(net, ds, c, names)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "%s split (%d images), size %d, weights %s\n", c.Eval.Split, len(ds.Samples), c.Eval.Size, o.Weights)
	if err := r.Table(io.Out); err != nil {
		return err
	}
	if o.JSON != "" {
		return writeJSON(o.JSON, r)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func writeCfg(net *model.Network, path string) error {
	return os.WriteFile(path, net.Cfg.Text(), 0o644)
}
