package onnx

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/model"
)

// checkerScript loads each model with the onnx Python package (an
// independent protobuf parser of onnx.proto), runs onnx.checker with
// full_check (operator schemas and strict shape inference against the
// declared shapes) and prints, per model, its opset, output shapes as
// inferred by onnx.shape_inference, and metadata_props.
const checkerScript = `
import json, sys, onnx
from onnx import shape_inference
res = {"max_opset": onnx.defs.onnx_opset_version(), "models": []}
for p in sys.argv[1:]:
    m = onnx.load(p)
    if m.opset_import[0].version > res["max_opset"]:
        res["models"].append({"path": p, "skipped": True})
        continue
    onnx.checker.check_model(m, full_check=True)
    inf = shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    outs = {}
    for v in list(inf.graph.value_info) + list(inf.graph.output):
        outs[v.name] = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    res["models"].append({"path": p, "opset": m.opset_import[0].version, "ir": m.ir_version,
        "inferred": {o.name: outs.get(o.name) for o in m.graph.output},
        "declared": {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in m.graph.output},
        "metadata": {e.key: e.value for e in m.metadata_props},
        "ops": sorted(set(n.op_type for n in m.graph.node))})
print(json.dumps(res))
`

// python finds a python3 that imports onnx (Debian's python3-onnx is in
// /usr/bin/python3; a pyenv shim on PATH may lack it), or skips.
func python(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import onnx").Run() == nil {
			return p
		}
	}
	t.Skip("no python3 with the onnx package (apt-get install python3-onnx): onnx.checker cannot run")
	return ""
}

func readNet(t *testing.T, path string, classes int) *model.Network {
	t.Helper()
	c, err := model.ReadCfg(path)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(c, classes)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(1)
	return net
}

// TestCheckerAcceptsExports: onnx.checker (full_check) accepts the exports
// of the all-layers cfg, YOLOv3-tiny and the demo model, raw and decoded, at
// opsets 11, 13 and 18 (18 only where the installed onnx knows it), square
// and not, fixed and dynamic batch; onnx's own shape inference gives the
// output shapes Export declares, and the metadata is what Export wrote.
func TestCheckerAcceptsExports(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	type want struct {
		decode bool
		names  []string
		size   model.Size
	}
	wants := map[string]want{}
	var paths []string
	for _, m := range []struct {
		cfg     string
		classes int
	}{{"testdata/all-layers.cfg", 0}, {"../configs/models/yolov3-tiny.cfg", 3}, {"../configs/models/demo-tiny.cfg", 0}} {
		net := readNet(t, m.cfg, m.classes)
		names := make([]string, net.Classes)
		for i := range names {
			names[i] = "class " + string(rune('A'+i))
		}
		for _, o := range []Options{
			{Opset: 11}, {Opset: 13, Decode: true, DynamicBatch: true, Size: model.Size{W: 96, H: 64}},
			{Opset: 13, KeepBN: true, Names: names}, {Opset: 18, Decode: true, Size: model.Size{W: 64, H: 128}},
		} {
			p := filepath.Join(dir, strings.TrimSuffix(filepath.Base(m.cfg), ".cfg")+"-"+itoa(len(paths))+".onnx")
			if _, err := Write(p, net, o); err != nil {
				t.Fatal(err)
			}
			size := o.Size
			if size.IsZero() {
				size = net.InputSize()
			}
			wants[p] = want{o.Decode, o.Names, size}
			paths = append(paths, p)
		}
	}
	out, err := exec.Command(py, append([]string{"-c", checkerScript}, paths...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx.checker: %v\n%s", err, out)
	}
	var res struct {
		MaxOpset int `json:"max_opset"`
		Models   []struct {
			Path               string
			Skipped            bool
			Opset, IR          int
			Inferred, Declared map[string][]any
			Metadata           map[string]string
			Ops                []string
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	checked := 0
	for _, m := range res.Models {
		if m.Skipped {
			t.Logf("%s: opset above the installed onnx's %d, not checked", filepath.Base(m.Path), res.MaxOpset)
			continue
		}
		checked++
		w := wants[m.Path]
		for name, d := range m.Declared {
			if b, _ := json.Marshal(m.Inferred[name]); string(b) != mustJSON(d) {
				t.Errorf("%s: output %s declared %v, onnx infers %v", m.Path, name, d, m.Inferred[name])
			}
		}
		if _, ok := m.Declared[BoxesName]; ok != w.decode {
			t.Errorf("%s: outputs %v, decode %v", m.Path, m.Declared, w.decode)
		}
		if m.Metadata["input_width"] != itoa(w.size.W) || m.Metadata["input_height"] != itoa(w.size.H) || m.Metadata["preprocessing"] != Preprocessing {
			t.Errorf("%s: metadata %v, want size %s", m.Path, m.Metadata, w.size)
		}
		if w.names != nil && m.Metadata["names"] != mustJSON(w.names) {
			t.Errorf("%s: names %s, want %v", m.Path, m.Metadata["names"], w.names)
		}
		var heads []HeadInfo
		if err := json.Unmarshal([]byte(m.Metadata["heads"]), &heads); err != nil || len(heads) == 0 {
			t.Errorf("%s: heads metadata %q: %v", m.Path, m.Metadata["heads"], err)
		}
	}
	t.Logf("onnx %d's checker (full_check) and strict shape inference accept %d of %d exports", res.MaxOpset, checked, len(res.Models))
	if checked == 0 {
		t.Fatal("nothing checked")
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func itoa(v int) string { return mustJSON(v) }

// TestExportErrors: unusable options and cfgs whose shapes do not work out
// are one error naming the cfg (and its line for a layer).
func TestExportErrors(t *testing.T) {
	net := readNet(t, "testdata/all-layers.cfg", 0)
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Opset: 10}, "testdata/all-layers.cfg: opset 10: supported are 11 to 18"},
		{Options{Size: model.Size{W: 100, H: 64}}, "testdata/all-layers.cfg: input size 100x64: each side must be a positive multiple of 8"},
		{Options{Names: []string{"a"}}, "testdata/all-layers.cfg: 1 class names for a model of 2 classes"},
	} {
		if _, err := Export(net, tc.o); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.want)
		}
	}
	dir := t.TempDir()
	for _, tc := range []struct{ cfg, want string }{
		// darknet pads padding/2 before: 2 >= size 2, which ONNX runtimes refuse.
		{"[net]\nwidth=64\nheight=64\n[maxpool]\nsize=2\nstride=2\npadding=5\n" + head, "bad.cfg:4: layer 0 [maxpool]: padding=5"},
		// A route of a 32x32 and a 16x16 output.
		{"[net]\nwidth=64\nheight=64\n[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n" +
			"[maxpool]\nsize=2\nstride=2\n[route]\nlayers=-1,-2\n" + head, "bad.cfg:13: layer 2 [route]: input layer 0 is 32x32"},
	} {
		p := filepath.Join(dir, "bad.cfg")
		if err := os.WriteFile(p, []byte(tc.cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		net := readNet(t, p, 0)
		if _, err := Export(net, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to contain %q", err, tc.want)
		}
	}
}

// head is a 1x1 conv and a one-class [yolo] layer with one anchor.
const head = "[convolutional]\nfilters=6\nsize=1\nstride=1\nactivation=linear\n[yolo]\nmask=0\nanchors=10,14\nclasses=1\nnum=1\n"
