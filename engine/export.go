package engine

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
	Producer     string     // the ONNX producer_version: dettrain's version
}

// ExportONNX writes the model as one ONNX file (package onnx).
func ExportONNX(io *IO, o *ExportOptions) error {
	run, net, _, err := exportModel(io, o)
	if err != nil {
		return err
	}
	var names []string
	switch {
	case o.Names != "":
		if names, err = ReadNames(o.Names); err != nil {
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
		DynamicBatch: o.DynamicBatch, KeepBN: o.KeepBN, Names: names, Producer: o.Producer})
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

// Export writes the model as darknet cfg + weights (and the run's names),
// or with o.Format "onnx" as one ONNX file (ExportONNX).
func Export(ios *IO, o *ExportOptions) error {
	if o.Format == "onnx" {
		return ExportONNX(ios, o)
	}
	run, net, h, err := exportModel(ios, o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	cfgOut := filepath.Join(o.Out, filepath.Base(o.Model))
	weightsOut := filepath.Join(o.Out, filepath.Base(o.Weights))
	if err := model.WriteAtomic(cfgOut, func(w io.Writer) error { _, err := w.Write(net.Cfg.Text()); return err }); err != nil {
		return err
	}
	if err := net.WriteWeightsHeader(weightsOut, h); err != nil {
		return err
	}
	if run != nil {
		namesOut := filepath.Join(o.Out, RunNames)
		text := strings.Join(run.Names, "\n") + "\n"
		if err := model.WriteAtomic(namesOut, func(w io.Writer) error { _, err := io.WriteString(w, text); return err }); err != nil {
			return err
		}
		fmt.Fprintf(ios.Out, "wrote %s (%d class names)\n", namesOut, len(run.Names))
	}
	fmt.Fprintf(ios.Out, "wrote %s and %s (darknet %d.%d.%d, %d layers, %d classes, %d images seen)\n",
		cfgOut, weightsOut, h.Major, h.Minor, h.Revision, len(net.Layers), net.Classes, h.Seen)
	return nil
}

// exportModel is the model an export writes: the run's (o.Run, or weights
// inside a run) or o.Model with o.Weights, as the cfg has it (no class
// count imposed), and the weights file's header.
func exportModel(ios *IO, o *ExportOptions) (*Run, *model.Network, model.WeightsHeader, error) {
	run, err := ResolveModel(o.Run, &o.Model, &o.Weights, ios.Err)
	if err != nil {
		return nil, nil, model.WeightsHeader{}, err
	}
	cfg, err := model.ReadCfg(o.Model)
	if err != nil {
		return nil, nil, model.WeightsHeader{}, err
	}
	net, err := model.NewNetwork(cfg, 0)
	if err != nil {
		return nil, nil, model.WeightsHeader{}, err
	}
	h, err := net.LoadWeights(o.Weights)
	return run, net, h, err
}
