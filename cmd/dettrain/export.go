package main

import (
	"fmt"
	goio "io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/onnx"
)

// ExportOptions are export's flags.
type ExportOptions struct {
	Run                         string // --run DIR: DIR/model.cfg, names.txt, weights/best.weights
	Model, Weights, Format, Out string
	// ONNX only (--format onnx).
	Names        string     // --names: class names for the metadata (default: the run's)
	Size         model.Size // --size; zero: the cfg's [net] width x height
	Opset        int        // --opset (default onnx.DefaultOpset)
	Decode       bool       // --decode: boxes and scores instead of the raw heads
	DynamicBatch bool       // --dynamic-batch: a symbolic batch dimension
	KeepBN       bool       // --keep-bn: BatchNormalization nodes instead of folding
}

func newExportCmd(io *IO, runF func(*ExportOptions) error) *cobra.Command {
	o := &ExportOptions{}
	cmd := &cobra.Command{
		Use:   "export (--run RUN | --model CFG --weights FILE) [--format darknet --out DIR | --format onnx [--out FILE]]",
		Short: "Write a model as darknet .cfg + .weights, or as one ONNX file (onnxruntime, OpenCV, TensorRT)",
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
with model.bn_eps: 1e-6 for outputs that match OpenCV's to float32 rounding.

--format onnx writes one .onnx file (--out FILE, or a folder: FOLDER/NAME.onnx; default
RUN/model.onnx with --run, else NAME.onnx here) that computes what dettrain computes,
batch norm folded into the convolutions with the model's own epsilon (--keep-bn keeps
BatchNormalization nodes). Input "images": float32 (1, 3, H, W) (--dynamic-batch: N),
RGB/255 of the image resized to W x H without letterbox, at the cfg's [net] size unless
--size. Outputs: the raw head tensors head0, head1, ... (N, A*(5+C), gh, gw), one per
[yolo] layer in darknet's layout; with --decode, boxes (N, K, 4) x1 y1 x2 y2 in input
pixels and scores (N, K, C) = sigmoid(objectness)*sigmoid(class), no NMS. The class
names, input size, preprocessing, anchors and strides are in the model's metadata_props.
See docs/ONNX.md.`,
		Example: `  dettrain export --run runs/bccd --out deploy/
  dettrain export --model yolo-fastest-1.1.cfg --weights yolo-fastest-1.1.weights --format darknet --out /tmp/x
  dettrain export --run runs/bccd --format onnx --decode --out deploy/bccd.onnx
  dettrain export --model yolo-fastest-1.1.cfg --weights yolo-fastest-1.1.weights --names coco.names --format onnx --dynamic-batch`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			onnxOnly := []string{"names", "size", "opset", "decode", "dynamic-batch", "keep-bn"}
			switch {
			case o.Format != "darknet" && o.Format != "onnx":
				return usagef("--format %q: darknet or onnx", o.Format)
			case o.Out == "" && o.Format == "darknet":
				return usagef("--out is required")
			case o.Run == "" && o.Weights == "":
				return usagef("give --run RUN_DIR, or --weights (with --model unless the weights are in a run folder)")
			case o.Format == "onnx" && (o.Opset < onnx.MinOpset || o.Opset > onnx.MaxOpset):
				return usagef("--opset %d: supported are %d to %d", o.Opset, onnx.MinOpset, onnx.MaxOpset)
			}
			if o.Format == "darknet" {
				for _, f := range onnxOnly {
					if cmd.Flags().Changed(f) {
						return usagef("--%s applies to --format onnx only", f)
					}
				}
			}
			if runF != nil {
				return runF(o)
			}
			if o.Format == "onnx" {
				return exportONNX(io, o)
			}
			return exportRun(io, o)
		},
	}
	cmd.Flags().StringVar(&o.Run, "run", "", "a training run's folder: its model.cfg, names.txt and weights/best.weights")
	cmd.Flags().StringVar(&o.Model, "model", "", "darknet .cfg (default with --run, or with weights inside a run: the run's model.cfg)")
	cmd.Flags().StringVar(&o.Weights, "weights", "", "darknet .weights that fit the cfg (default with --run: RUN/weights/best.weights)")
	cmd.Flags().StringVar(&o.Format, "format", "darknet", "output format: darknet (.cfg + .weights) or onnx (one .onnx file)")
	cmd.Flags().StringVar(&o.Out, "out", "", "darknet: output folder, created if missing (required); onnx: the .onnx file or a folder (default RUN/model.onnx, else NAME.onnx)")
	cmd.Flags().StringVar(&o.Names, "names", "", "onnx: class names for the metadata, one per line or a YAML with names (default: the run's names.txt, else 0, 1, ...)")
	cmd.Flags().Var(sizeFlag{&o.Size}, "size", "onnx: input size, N or WxH (default: the cfg's [net] width x height)")
	cmd.Flags().IntVar(&o.Opset, "opset", onnx.DefaultOpset, fmt.Sprintf("onnx: operator set version, %d to %d (18 writes Mish as one op)", onnx.MinOpset, onnx.MaxOpset))
	cmd.Flags().BoolVar(&o.Decode, "decode", false, "onnx: output boxes (x1 y1 x2 y2, input pixels) and per-class scores instead of the raw heads")
	cmd.Flags().BoolVar(&o.DynamicBatch, "dynamic-batch", false, "onnx: a symbolic batch dimension (default: batch 1)")
	cmd.Flags().BoolVar(&o.KeepBN, "keep-bn", false, "onnx: write BatchNormalization nodes instead of folding batch norm into the convolutions")
	return cmd
}

// exportONNX writes the model as one ONNX file (package onnx).
func exportONNX(io *IO, o *ExportOptions) error {
	run, err := engine.ResolveModel(o.Run, &o.Model, &o.Weights, io.Err)
	if err != nil {
		return err
	}
	cfg, err := model.ReadCfg(o.Model)
	if err != nil {
		return err
	}
	net, err := model.NewNetwork(cfg, 0)
	if err != nil {
		return err
	}
	if _, err := net.LoadWeights(o.Weights); err != nil {
		return err
	}
	var names []string
	switch {
	case o.Names != "":
		if names, err = engine.ReadNames(o.Names); err != nil {
			return err
		}
		if len(names) != net.Classes {
			return fmt.Errorf("%s: %d class names, but %s has %d classes", o.Names, len(names), o.Model, net.Classes)
		}
	case run != nil:
		names = run.Names
		if len(names) != net.Classes {
			return fmt.Errorf("run %s: %d class names, but its %s has %d classes", run.Dir, len(names), run.Cfg, net.Classes)
		}
	default:
		fmt.Fprintf(io.Err, "no --names: the model's metadata names its %d classes 0 to %d\n", net.Classes, net.Classes-1)
	}
	out := o.Out
	base := strings.TrimSuffix(filepath.Base(o.Model), filepath.Ext(o.Model)) + ".onnx"
	switch {
	case out == "" && run != nil:
		out = filepath.Join(run.Dir, "model.onnx")
	case out == "":
		out = base
	default:
		if st, err := os.Stat(out); err == nil && st.IsDir() {
			out = filepath.Join(out, base)
		}
	}
	if dir := filepath.Dir(out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	m, err := onnx.Write(out, net, onnx.Options{Size: o.Size, Opset: o.Opset, Decode: o.Decode,
		DynamicBatch: o.DynamicBatch, KeepBN: o.KeepBN, Names: names, Producer: version})
	if err != nil {
		return err
	}
	var outs []string
	for _, v := range m.Graph.Outputs {
		dims := make([]string, len(v.Dims))
		for i, d := range v.Dims {
			dims[i] = d.Param
			if d.Param == "" {
				dims[i] = fmt.Sprint(d.Value)
			}
		}
		outs = append(outs, fmt.Sprintf("%s (%s)", v.Name, strings.Join(dims, ", ")))
	}
	bn := "batch norm folded"
	if o.KeepBN {
		bn = "batch norm kept"
	}
	fmt.Fprintf(io.Out, "wrote %s (ONNX opset %d, input %s %sx%s, outputs %s, %d classes, %s, %d nodes)\n",
		out, m.Opset, onnx.InputName, m.Meta("input_width"), m.Meta("input_height"), strings.Join(outs, ", "), net.Classes, bn, len(m.Graph.Nodes))
	return nil
}

func exportRun(io *IO, o *ExportOptions) error {
	run, err := engine.ResolveModel(o.Run, &o.Model, &o.Weights, io.Err)
	if err != nil {
		return err
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
		namesOut := filepath.Join(o.Out, engine.RunNames)
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
