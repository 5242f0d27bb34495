package main

import (
	"fmt"
	goio "io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/model"
)

// ExportOptions are export's flags.
type ExportOptions struct {
	Model, Weights, Format, Out string
}

func newExportCmd(io *IO, runF func(*ExportOptions) error) *cobra.Command {
	o := &ExportOptions{}
	cmd := &cobra.Command{
		Use:   "export --model CFG --weights FILE --out DIR",
		Short: "Write a model as darknet .cfg + .weights (for darknet, OpenCV DNN and converters)",
		Long: `export reads a darknet cfg and its weights and writes them to DIR under their own file
names, in darknet's format, which darknet itself, OpenCV's DNN module
(cv::dnn::readNetFromDarknet) and the usual converters read. The weights must fit the
cfg exactly. The cfg is written as it was read (comments included) and the weights
keep their header (version and images seen), so exporting a model that was not
changed gives back the same bytes. Training writes its models in this format too
(OUT/model.cfg and OUT/weights/*.weights).

OpenCV normalises batch norm with sqrt(var + 1e-6) where darknet uses 1e-5: train
with model.bn_eps: 1e-6 for outputs that match OpenCV's to float32 rounding.`,
		Example: `  dettrain export --model runs/bccd/model.cfg --weights runs/bccd/weights/best.weights --out deploy/
  dettrain export --model yolo-fastest-1.1.cfg --weights yolo-fastest-1.1.weights --format darknet --out /tmp/x`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.Model == "" || o.Weights == "" || o.Out == "":
				return usagef("--model, --weights and --out are required")
			case o.Format != "darknet":
				return usagef("--format %q: only darknet is supported", o.Format)
			}
			if runF != nil {
				return runF(o)
			}
			return exportRun(io, o)
		},
	}
	cmd.Flags().StringVar(&o.Model, "model", "", "darknet .cfg (required)")
	cmd.Flags().StringVar(&o.Weights, "weights", "", "darknet .weights that fit the cfg (required)")
	cmd.Flags().StringVar(&o.Format, "format", "darknet", "output format: darknet (.cfg + .weights)")
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder, created if missing (required)")
	return cmd
}

func exportRun(io *IO, o *ExportOptions) error {
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
	fmt.Fprintf(io.Out, "wrote %s and %s (darknet %d.%d.%d, %d layers, %d classes, %d images seen)\n",
		cfgOut, weightsOut, h.Major, h.Minor, h.Revision, len(net.Layers), net.Classes, h.Seen)
	return nil
}
