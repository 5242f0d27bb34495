package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/onnx"
)

func newExportCmd(io *IO, runF func(*engine.ExportOptions) error) *cobra.Command {
	o := &engine.ExportOptions{}
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
			o.Producer = version
			if runF != nil {
				return runF(o)
			}
			return engine.Export(io, o)
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
