package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/data/synth"
	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/model"
)

// scores reads the headline numbers of an eval JSON (eval --json, or a
// run's eval/eval.json).
func scores(t *testing.T, path string) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]float64{}
	for _, k := range []string{"map50_voc07", "map50_voc", "coco_ap", "coco_ap50"} {
		f, ok := v[k].(float64)
		if !ok {
			t.Fatalf("%s: no %q in %s", path, k, b)
		}
		out[k] = f
	}
	return out
}

// autoAnchorsRun trains a short run with model.anchors: auto through the CLI
// and returns its config and run folder.
func autoAnchorsRun(t *testing.T, size string) (cfg, runDir string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := synth.Generate(filepath.Join(dir, "ds"), synth.Options{Images: 48, Seed: 4, Size: 64}); err != nil {
		t.Fatal(err)
	}
	mcfg, _ := filepath.Abs("../../configs/models/demo-tiny.cfg")
	cfg = writeFile(t, filepath.Join(dir, "c.yaml"), fmt.Sprintf(`model:
  cfg: %s
  size: %s
  anchors: auto
data:
  root: ds
  names: [circle, square, triangle, cross]
  val: ""
train:
  epochs: 4
  batch: 4
  lr: 0.004
  schedule: cosine
  eval_interval: 0
  log_interval: 1000
eval:
  conf: 0.001
output:
  dir: run
`, mcfg, size))
	code, out, errs := run(t, "train", "--config", cfg)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "model.anchors: auto: anchors=") {
		t.Fatalf("no fitted anchors in the log:\n%s", out)
	}
	return cfg, filepath.Join(dir, "run")
}

// TestRunIsSelfDescribing: a run trained with model.anchors: auto is scored
// by `eval --run` and by `eval --config --weights RUN/weights/best.weights`
// exactly as training scored it at its end (same network, anchors, size and
// thresholds, so the same detections and the same float64 arithmetic: equal
// to 1e-9, the bound only allowing for the JSON's decimal round trip, which
// is exact for float64 in Go). Weights outside the run with that config are
// refused, naming the fix; and the run's files say what the model is.
func TestRunIsSelfDescribing(t *testing.T) {
	cfg, runDir := autoAnchorsRun(t, "64")
	want := scores(t, filepath.Join(runDir, "eval", "eval.json"))
	t.Logf("run's final test scores: %v", want)
	if want["map50_voc"] <= 0 {
		t.Fatalf("the run learnt nothing (mAP %v): the comparison below would not tell models apart", want["map50_voc"])
	}
	check := func(what string, args ...string) {
		t.Helper()
		js := filepath.Join(t.TempDir(), "s.json")
		code, out, errs := run(t, append(append([]string{"eval"}, args...), "--json", js)...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", what, code, out, errs)
		}
		if !strings.Contains(errs, "model of run "+runDir) {
			t.Errorf("%s: no line saying the run's model is used:\n%s", what, errs)
		}
		got := scores(t, js)
		for k, w := range want {
			if math.Abs(got[k]-w) > 1e-9 {
				t.Errorf("%s: %s = %.12f, the run's own %.12f", what, k, got[k], w)
			}
		}
	}
	check("eval --run", "--run", runDir)
	check("eval --config --weights", "--config", cfg, "--weights", filepath.Join(runDir, "weights", "best.weights"))

	// The same weights outside their run: the cfg's anchors would be another
	// model, so the config with anchors: auto is refused.
	elsewhere := filepath.Join(t.TempDir(), "best.weights")
	b, err := os.ReadFile(filepath.Join(runDir, "weights", "best.weights"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, elsewhere, string(b))
	code, _, errs := run(t, "eval", "--config", cfg, "--weights", elsewhere)
	if code == 0 || !strings.Contains(errs, "model.anchors is auto") || !strings.Contains(errs, "--run") || !strings.Contains(errs, elsewhere) {
		t.Errorf("weights outside the run with anchors: auto: exit %d, stderr %q; want a refusal naming the file and --run", code, errs)
	}

	// The run describes its model: names.txt, and model.cfg with the fitted
	// anchors (not the cfg's) and the training size in [net].
	names, err := engine.ReadNames(filepath.Join(runDir, "names.txt"))
	if err != nil || strings.Join(names, ",") != "circle,square,triangle,cross" {
		t.Errorf("names.txt: %v %v", names, err)
	}
	rc, err := model.ReadCfg(filepath.Join(runDir, "model.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := model.ReadCfg(mustAbs(t, "../../configs/models/demo-tiny.cfg"))
	if w, _ := rc.Net.Int("width", 0); w != 64 {
		t.Errorf("model.cfg [net] width = %d, want the training size 64", w)
	}
	if h, _ := rc.Net.Int("height", 0); h != 64 {
		t.Errorf("model.cfg [net] height = %d, want 64", h)
	}
	if anchorsOf(rc) == anchorsOf(orig) {
		t.Errorf("model.cfg keeps the cfg's anchors %q: the fitted ones were not written", anchorsOf(rc))
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// anchorsOf is the anchors= value of a cfg's first [yolo] section.
func anchorsOf(c *model.Cfg) string {
	for _, s := range c.Layers {
		if s.Type == "yolo" {
			return s.Str("anchors", "")
		}
	}
	return ""
}

// TestNonSquareRun: a run trained at 96x64 records that size in its
// model.cfg; eval --run scores it as training did (to 1e-9, as above), and
// predict and export take the run with no other flag.
func TestNonSquareRun(t *testing.T) {
	_, runDir := autoAnchorsRun(t, "96x64")
	rc, err := model.ReadCfg(filepath.Join(runDir, "model.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := rc.Net.Int("width", 0); w != 96 {
		t.Errorf("[net] width = %d, want 96", w)
	}
	if h, _ := rc.Net.Int("height", 0); h != 64 {
		t.Errorf("[net] height = %d, want 64", h)
	}
	want := scores(t, filepath.Join(runDir, "eval", "eval.json"))
	js := filepath.Join(t.TempDir(), "s.json")
	code, out, errs := run(t, "eval", "--run", runDir, "--json", js)
	if code != 0 || !strings.Contains(out, "size 96x64") {
		t.Fatalf("eval --run: exit %d, stdout lacks \"size 96x64\":\n%s\n%s", code, out, errs)
	}
	for k, w := range scores(t, js) {
		if math.Abs(w-want[k]) > 1e-9 {
			t.Errorf("eval --run: %s = %.12f, the run's own %.12f", k, w, want[k])
		}
	}
	pred := t.TempDir()
	imgs, _ := filepath.Glob(filepath.Join(filepath.Dir(runDir), "ds", "JPEGImages", "*.jpg"))
	code, out, errs = run(t, append([]string{"predict", "--run", runDir, "--conf", "0.001", "--no-draw", "--out", pred}, imgs[:3]...)...)
	if code != 0 {
		t.Fatalf("predict --run: exit %d\n%s\n%s", code, out, errs)
	}
	var preds []map[string]any
	b, err := os.ReadFile(filepath.Join(pred, "predictions.json"))
	if err != nil || json.Unmarshal(b, &preds) != nil || len(preds) == 0 {
		t.Fatalf("predict --run: predictions.json %v: %s", err, b)
	}
	if n := preds[0]["category_name"]; n != "circle" && n != "square" && n != "triangle" && n != "cross" {
		t.Errorf("predict --run: category_name %v is not one of the run's names", n)
	}
	exp := t.TempDir()
	if code, out, errs = run(t, "export", "--run", runDir, "--out", exp); code != 0 {
		t.Fatalf("export --run: exit %d\n%s\n%s", code, out, errs)
	}
	for _, f := range []string{"model.cfg", "best.weights", "names.txt"} {
		if _, err := os.Stat(filepath.Join(exp, f)); err != nil {
			t.Errorf("export --run did not write %s: %v", f, err)
		}
	}
	// bench --run: the run's model at its own size, with its class count.
	code, out, errs = run(t, "bench", "--run", runDir, "--iters", "1", "--warmup", "0", "--batch", "1", "--json")
	var bj map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &bj) != nil || bj["size"] != "96x64" {
		t.Fatalf("bench --run: exit %d, %q %s", code, out, errs)
	}
}
