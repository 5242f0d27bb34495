package main

import (
	"fmt"
	goio "io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/model"
)

// ExportOptions are export's flags.
type ExportOptions struct {
	Run                         string // --run DIR: DIR/model.cfg, names.txt, weights/best.weights
	Model, Weights, Format, Out string
}

func newExportCmd(io *IO, runF func(*ExportOptions) error) *cobra.Command {
	o := &ExportOptions{}
	cmd := &cobra.Command{
		Use:   "export (--run RUN | --model CFG --weights FILE) --out DIR",
		Short: "Write a model as darknet .cfg + .weights (for darknet, OpenCV DNN and converters)",
		Long: `export reads a darknet cfg and its weights and writes them to DIR under their own file
names, in darknet's format, which darknet itself, OpenCV's DNN module
(cv::dnn::readNetFromDarknet) and the usual converters read. The weights must fit the
cfg exactly. The cfg is written as it was read (comments included) and the weights
keep their header (version and images seen), so exporting a model that was not
changed gives back the same bytes. Training writes its models in this format too
(OUT/model.cfg and OUT/weights/*.weights).

--run RUN exports a training run: its model.cfg (fitted heads and anchors, [net]
width x height = the training size), weights/best.weights (or --weights) and its
class names as names.txt, the three files darknet and OpenCV need.

OpenCV normalises batch norm with sqrt(var + 1e-6) where darknet uses 1e-5: train
with model.bn_eps: 1e-6 for outputs that match OpenCV's to float32 rounding.`,
		Example: `  dettrain export --run runs/bccd --out deploy/
  dettrain export --model yolo-fastest-1.1.cfg --weights yolo-fastest-1.1.weights --format darknet --out /tmp/x`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.Out == "":
				return usagef("--out is required")
			case o.Run == "" && o.Weights == "":
				return usagef("give --run RUN_DIR, or --weights (with --model unless the weights are in a run folder)")
			case o.Format != "darknet":
				return usagef("--format %q: only darknet is supported", o.Format)
			}
			if runF != nil {
				return runF(o)
			}
			return exportRun(io, o)
		},
	}
	cmd.Flags().StringVar(&o.Run, "run", "", "a training run's folder: its model.cfg, names.txt and weights/best.weights")
	cmd.Flags().StringVar(&o.Model, "model", "", "darknet .cfg (default with --run, or with weights inside a run: the run's model.cfg)")
	cmd.Flags().StringVar(&o.Weights, "weights", "", "darknet .weights that fit the cfg (default with --run: RUN/weights/best.weights)")
	cmd.Flags().StringVar(&o.Format, "format", "darknet", "output format: darknet (.cfg + .weights)")
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder, created if missing (required)")
	return cmd
}

func exportRun(io *IO, o *ExportOptions) error {
	run, err := resolveRun(o.Run, &o.Weights, io.Err)
	if err != nil {
		return err
	}
	if run != nil && o.Model == "" {
		o.Model = run.Cfg
	}
	if o.Model == "" {
		return usagef("--model is required: %s is not inside a run folder (RUN/weights/*.weights)", o.Weights)
	}
	cfg, err := model.ReadCfg(o.Model)
	if err != nil {
		return err
	}
	net, err := model.NewNetwork(cfg, 0)
	if err != nil {
		return err
	}
	h, err := net.LoadWeights(o.Weights)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	cfgOut := filepath.Join(o.Out, filepath.Base(o.Model))
	weightsOut := filepath.Join(o.Out, filepath.Base(o.Weights))
	if err := model.WriteAtomic(cfgOut, func(w goio.Writer) error { _, err := w.Write(net.Cfg.Text()); return err }); err != nil {
		return err
	}
	if err := net.WriteWeightsHeader(weightsOut, h); err != nil {
		return err
	}
	if run != nil {
		namesOut := filepath.Join(o.Out, runNames)
		text := strings.Join(run.Names, "\n") + "\n"
		if err := model.WriteAtomic(namesOut, func(w goio.Writer) error { _, err := goio.WriteString(w, text); return err }); err != nil {
			return err
		}
		fmt.Fprintf(io.Out, "wrote %s (%d class names)\n", namesOut, len(run.Names))
	}
	fmt.Fprintf(io.Out, "wrote %s and %s (darknet %d.%d.%d, %d layers, %d classes, %d images seen)\n",
		cfgOut, weightsOut, h.Major, h.Minor, h.Revision, len(net.Layers), net.Classes, h.Seen)
	return nil
}
