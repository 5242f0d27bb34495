package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/engine"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"train"},                      // no --config
		{"train", "--bogus"},           // unknown flag
		{"eval", "--config", "x.yaml"}, // no --weights
		{"predict", "--model", "a.cfg"},
		{"synth"},
		{"version", "extra"},
	} {
		if code, _, errs := run(t, args...); code != 2 || !strings.Contains(errs, "dettrain:") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
}

func TestConfigErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	// Two problems in one file: an unknown key and a bad range, reported together.
	p := writeFile(t, filepath.Join(dir, "bad.yaml"), "model:\n  cfg: m.cfg\n  size: 417\ndata:\n  root: d\n  names: [a]\ntrain:\n  lrr: 0.1\n")
	code, _, errs := run(t, "config", "--config", p)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr %s", code, errs)
	}
	for _, want := range []string{"bad.yaml:8", `unknown key "lrr"`, "model.size", "multiple of 32"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr %q lacks %q", errs, want)
		}
	}
	good := writeFile(t, filepath.Join(dir, "good.yaml"), "model:\n  cfg: m.cfg\ndata:\n  root: d\n  names: [a]\n")
	code, out, errs := run(t, "config", "--config", good, "--set", "train.lr=0.02")
	if code != 0 || !strings.Contains(out, "lr: 0.02") {
		t.Fatalf("exit %d out %q err %q", code, out, errs)
	}
	if code, _, errs := run(t, "config", "--config", good, "--set", "train.lr=-1"); code != 2 || !strings.Contains(errs, "train.lr") {
		t.Fatalf("--set train.lr=-1: exit %d, %q", code, errs)
	}
}

// TestTrainRefusesBadData: a data set with a corrupt image, a malformed XML
// and an unknown class is refused before training, naming each file; exit 1.
func TestTrainRefusesBadData(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "ds")
	xml := func(name, class string) string {
		return "<annotation><filename>" + name + ".jpg</filename><size><width>64</width><height>64</height><depth>3</depth></size>" +
			"<object><name>" + class + "</name><difficult>0</difficult><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object></annotation>"
	}
	writeFile(t, filepath.Join(root, "JPEGImages", "a.jpg"), "this is not a jpeg")
	writeFile(t, filepath.Join(root, "Annotations", "a.xml"), xml("a", "cat"))
	writeFile(t, filepath.Join(root, "JPEGImages", "b.jpg"), "x")
	writeFile(t, filepath.Join(root, "Annotations", "b.xml"), "<annotation><size>")
	writeFile(t, filepath.Join(root, "JPEGImages", "c.jpg"), "x")
	writeFile(t, filepath.Join(root, "Annotations", "c.xml"), xml("c", "zebra"))
	for _, s := range []string{"train", "val", "test"} {
		writeFile(t, filepath.Join(root, "ImageSets", "Main", s+".txt"), "a\nb\nc\n")
	}
	cfg := writeFile(t, filepath.Join(dir, "c.yaml"), "model:\n  cfg: ../../configs/models/demo-tiny.cfg\n  size: 128\ndata:\n  root: ds\n  names: [cat]\n")
	// model.cfg is relative to the config file: point it at the repo's demo cfg.
	repoCfg, _ := filepath.Abs("../../configs/models/demo-tiny.cfg")
	code, _, errs := run(t, "data", "check", "--config", cfg, "--set", "model.cfg="+repoCfg)
	if code != 1 {
		t.Fatalf("data check: exit %d, want 1; %s", code, errs)
	}
	code, _, errs = run(t, "train", "--config", cfg, "--set", "model.cfg="+repoCfg, "--out", filepath.Join(dir, "run"))
	if code != 1 {
		t.Fatalf("train: exit %d, want 1; %s", code, errs)
	}
	for _, want := range []string{"a.jpg", "b.xml", "c.xml", `unknown class "zebra"`, "skip_bad"} {
		if !strings.Contains(errs, want) {
			t.Errorf("train stderr lacks %q:\n%s", want, errs)
		}
	}
}

func TestHelpHasExamples(t *testing.T) {
	for _, c := range [][]string{{"train"}, {"eval"}, {"predict"}, {"synth"}, {"data", "check"}, {"data", "convert"}, {"config"}, {"version"},
		{"bench"}, {"ablate"}, {"export"}, {"anchors"}} {
		code, out, _ := run(t, append(c, "--help")...)
		if code != 0 || !strings.Contains(out, "Examples:") {
			t.Errorf("%v --help: exit %d, no Examples section:\n%s", c, code, out)
		}
	}
}

// TestFreshDirKeepsEarlierRuns: a new run never writes into a folder that
// holds an earlier run's weights or checkpoints.
func TestFreshDirKeepsEarlierRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	var out bytes.Buffer
	if got := engine.FreshDir(dir, &out); got != dir {
		t.Fatalf("empty: %s", got)
	}
	writeFile(t, filepath.Join(dir, "weights", "best.weights"), "x")
	writeFile(t, filepath.Join(dir+"-2", "checkpoints", "ckpt-000000001.ckpt"), "x")
	if got := engine.FreshDir(dir, &out); got != dir+"-3" || !strings.Contains(out.String(), "--resume "+dir) {
		t.Fatalf("got %s, message %q", got, out.String())
	}
}
