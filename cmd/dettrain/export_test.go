package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/model"
)

// TestExportByteIdentical: exporting a model that was not changed gives back
// its bytes, cfg comments and weights header included (here darknet's old
// 0.1 header with a 32-bit seen).
func TestExportByteIdentical(t *testing.T) {
	dir := t.TempDir()
	cfgPath := "../../configs/models/demo-tiny.cfg"
	cfg, err := model.ReadCfg(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(3)
	w := filepath.Join(dir, "in.weights")
	if err := net.WriteWeightsHeader(w, model.WeightsHeader{Major: 0, Minor: 1, Revision: 0, Seen: 4242}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o := &engine.ExportOptions{Model: cfgPath, Weights: w, Format: "darknet", Out: filepath.Join(dir, "out")}
	if err := engine.Export(&IO{Out: &out, Err: &out}, o); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{cfgPath, filepath.Join(dir, "out", "demo-tiny.cfg")}, {w, filepath.Join(dir, "out", "in.weights")}} {
		a, _ := os.ReadFile(pair[0])
		b, err := os.ReadFile(pair[1])
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s (%v)", pair[1], pair[0], err)
		}
	}
	if !strings.Contains(out.String(), "darknet 0.1.0") || !strings.Contains(out.String(), "4242 images seen") {
		t.Errorf("output %q", out.String())
	}
	// Weights of another cfg are refused, naming the counts.
	b, _ := os.ReadFile(w)
	os.WriteFile(w, b[:len(b)-8], 0o644)
	err = engine.Export(&IO{Out: &out, Err: &out}, o)
	if err == nil || !strings.Contains(err.Error(), "floats after its 16-byte header") {
		t.Errorf("truncated weights: %v", err)
	}
}

// TestExportPretrained: the pretrained Yolo-Fastest comes out byte for byte.
func TestExportPretrained(t *testing.T) {
	dir := "../../../shared/models/yolo-fastest-1.1-coco"
	w := filepath.Join(dir, "yolo-fastest-1.1.weights")
	if _, err := os.Stat(w); err != nil {
		t.Skipf("%s is absent (../shared is not here?)", w)
	}
	out := t.TempDir()
	var msg bytes.Buffer
	if err := engine.Export(&IO{Out: &msg, Err: &msg}, &engine.ExportOptions{Model: filepath.Join(dir, "yolo-fastest-1.1.cfg"), Weights: w, Format: "darknet", Out: out}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"yolo-fastest-1.1.cfg", "yolo-fastest-1.1.weights"} {
		a, _ := os.ReadFile(filepath.Join(dir, f))
		b, _ := os.ReadFile(filepath.Join(out, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: exported file differs", f)
		}
	}
}

// TestExportFlags: missing flags and other formats are usage errors; the
// options reach the run function.
func TestExportFlags(t *testing.T) {
	var got *engine.ExportOptions
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", "a.cfg"}, "--out is required"},
		{[]string{"--model", "a.cfg", "--out", "d"}, "give --run RUN_DIR, or --weights"},
		{[]string{"--model", "a.cfg", "--weights", "a.weights", "--out", "d", "--format", "tflite"}, `--format "tflite": darknet or onnx`},
		{[]string{"--model", "a.cfg", "--weights", "a.weights", "--out", "d"}, ""},
	} {
		got = nil
		cmd := newExportCmd(&IO{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, func(o *engine.ExportOptions) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		switch {
		case tc.want == "" && (err != nil || got == nil || got.Format != "darknet" || got.Out != "d"):
			t.Errorf("%v: err %v, options %+v", tc.args, err, got)
		case tc.want != "":
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), tc.want) || !asUsage(err, &ue) {
				t.Errorf("%v: error %v, want a usage error %q", tc.args, err, tc.want)
			}
		}
	}
}

func asUsage(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	if ok {
		*ue = u
	}
	return ok
}
