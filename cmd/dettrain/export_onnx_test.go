package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/model"
)

// onnxMetadata reads an .onnx file's metadata_props (ModelProto field 14,
// StringStringEntryProto key = 1, value = 2; onnx.proto) with protowire's
// generic field reader.
func onnxMetadata(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fields := func(b []byte, f func(num protowire.Number, v []byte)) {
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				t.Fatalf("%s: bad tag: %v", path, protowire.ParseError(n))
			}
			b = b[n:]
			var v []byte
			if typ == protowire.BytesType {
				v, n = protowire.ConsumeBytes(b)
			} else {
				n = protowire.ConsumeFieldValue(num, typ, b)
			}
			if n < 0 {
				t.Fatalf("%s: field %d: %v", path, num, protowire.ParseError(n))
			}
			b = b[n:]
			f(num, v)
		}
	}
	meta := map[string]string{}
	fields(b, func(num protowire.Number, v []byte) {
		if num != 14 {
			return
		}
		var k, val string
		fields(v, func(num protowire.Number, s []byte) {
			switch num {
			case 1:
				k = string(s)
			case 2:
				val = string(s)
			}
		})
		meta[k] = val
	})
	return meta
}

// demoRun writes a run folder (model.cfg, names.txt, weights/best.weights)
// of the demo model with Init's weights.
func demoRun(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg, err := model.ReadCfg("../../configs/models/demo-tiny.cfg")
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(5)
	names := make([]string, net.Classes)
	for i := range names {
		names[i] = "shape" + string(rune('a'+i))
	}
	if err := engine.WriteRunFiles(dir, net, names); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, engine.RunWeights), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := net.WriteWeights(filepath.Join(dir, engine.RunWeights, engine.RunBest), 0); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestExportONNXRun: --run writes RUN/model.onnx whose metadata carries the
// run's class names, the input size and the preprocessing; --out FOLDER and
// --decode --dynamic-batch --size give FOLDER/model.onnx with boxes and
// scores at that size.
func TestExportONNXRun(t *testing.T) {
	dir := demoRun(t)
	var out, errs bytes.Buffer
	if err := engine.ExportONNX(&IO{Out: &out, Err: &errs}, &engine.ExportOptions{Run: dir, Format: "onnx", Opset: 13}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.onnx")
	meta := onnxMetadata(t, path)
	names, _ := engine.ReadNames(filepath.Join(dir, engine.RunNames))
	var got []string
	if err := json.Unmarshal([]byte(meta["names"]), &got); err != nil || strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("metadata names %q (%v), the run's %v", meta["names"], err, names)
	}
	cfg, _ := model.ReadCfg(filepath.Join(dir, engine.RunCfg))
	net, _ := model.NewNetwork(cfg, 0)
	if s := net.InputSize(); meta["input_width"] != itoaT(s.W) || meta["input_height"] != itoaT(s.H) || meta["outputs"] != "raw" ||
		!strings.Contains(meta["preprocessing"], "RGB") {
		t.Errorf("metadata %v, the cfg's size %s", meta, s)
	}
	if !strings.Contains(out.String(), "wrote "+path) || !strings.Contains(out.String(), "head0 (1, ") {
		t.Errorf("output %q", out.String())
	}

	folder := t.TempDir()
	out.Reset()
	o := &engine.ExportOptions{Run: dir, Format: "onnx", Opset: 11, Out: folder, Decode: true, DynamicBatch: true, Size: model.Size{W: 96, H: 64}}
	if err := engine.ExportONNX(&IO{Out: &out, Err: &errs}, o); err != nil {
		t.Fatal(err)
	}
	meta = onnxMetadata(t, filepath.Join(folder, "model.onnx"))
	if meta["input_width"] != "96" || meta["input_height"] != "64" || meta["outputs"] != "decoded" {
		t.Errorf("metadata %v", meta)
	}
	if !strings.Contains(out.String(), "boxes (batch, ") || !strings.Contains(out.String(), "opset 11") {
		t.Errorf("output %q", out.String())
	}
}

// TestExportONNXBadInput: each problem is one error naming the file.
func TestExportONNXBadInput(t *testing.T) {
	dir := demoRun(t)
	w := filepath.Join(dir, engine.RunWeights, engine.RunBest)
	cfg := filepath.Join(dir, engine.RunCfg)
	badNames := filepath.Join(t.TempDir(), "two.names")
	os.WriteFile(badNames, []byte("a\nb\n"), 0o644)
	short := filepath.Join(t.TempDir(), "short.weights")
	b, _ := os.ReadFile(w)
	os.WriteFile(short, b[:len(b)-4], 0o644)
	for _, tc := range []struct {
		o    engine.ExportOptions
		want []string
	}{
		{engine.ExportOptions{Model: cfg, Weights: w, Names: badNames}, []string{badNames, "2 class names"}},
		{engine.ExportOptions{Model: cfg, Weights: short}, []string{short}},
		{engine.ExportOptions{Model: cfg, Weights: w, Size: model.Size{W: 100, H: 100}}, []string{cfg, "multiple of 8"}},
		{engine.ExportOptions{Run: filepath.Join(dir, "missing")}, []string{"missing", "not a folder"}},
	} {
		tc.o.Format, tc.o.Opset = "onnx", 13
		if tc.o.Out == "" {
			tc.o.Out = t.TempDir()
		}
		var msg bytes.Buffer
		err := engine.ExportONNX(&IO{Out: &msg, Err: &msg}, &tc.o)
		for _, s := range tc.want {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("%+v: error %v, want it to contain %q", tc.o, err, s)
			}
		}
	}
}

// TestExportONNXFlags: the ONNX flags reach the options, are refused with
// --format darknet, and --opset is bounded.
func TestExportONNXFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = accepted
	}{
		{[]string{"--run", "r", "--format", "onnx"}, ""},
		{[]string{"--run", "r", "--format", "onnx", "--decode", "--dynamic-batch", "--opset", "18", "--size", "320x192", "--keep-bn", "--out", "m.onnx"}, ""},
		{[]string{"--run", "r", "--format", "onnx", "--opset", "10"}, "--opset 10: supported are 11 to 18"},
		{[]string{"--run", "r", "--out", "d", "--decode"}, "--decode applies to --format onnx only"},
		{[]string{"--run", "r", "--out", "d", "--format", "tflite"}, `--format "tflite": darknet or onnx`},
	} {
		var got *engine.ExportOptions
		cmd := newExportCmd(&IO{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, func(o *engine.ExportOptions) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if tc.want != "" {
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), tc.want) || !asUsage(err, &ue) {
				t.Errorf("%v: error %v, want a usage error %q", tc.args, err, tc.want)
			}
			continue
		}
		if err != nil || got == nil || got.Format != "onnx" {
			t.Errorf("%v: err %v, options %+v", tc.args, err, got)
			continue
		}
		if len(tc.args) > 4 && (!got.Decode || !got.DynamicBatch || !got.KeepBN || got.Opset != 18 || got.Size != (model.Size{W: 320, H: 192}) || got.Out != "m.onnx") {
			t.Errorf("%v: options %+v", tc.args, got)
		}
		if len(tc.args) == 4 && (got.Opset != 13 || got.Decode || got.Out != "") {
			t.Errorf("%v: defaults %+v", tc.args, got)
		}
	}
}

func itoaT(v int) string { b, _ := json.Marshal(v); return string(b) }
