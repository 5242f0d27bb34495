package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	goimage "image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/dettrain/dettrain/model"
)

// pngBytes is a w x h PNG with some texture.
func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := goimage.NewRGBA(goimage.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), uint8((x + y) * 2), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tinyVOC writes a VOC set of three 64x48 PNG images with two classes in
// dir/ds and a config for it (relative paths) in dir/c.yaml.
func tinyVOC(t *testing.T, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "ds")
	objs := map[string][]string{
		"a": {"cat 1 1 20 20 0", "dog 30 10 60 40 0"},
		"b": {"cat 5 5 30 30 0", "cat 40 20 60 45 1"},
		"c": {},
	}
	for id, os := range objs {
		var b strings.Builder
		fmt.Fprintf(&b, "<annotation><filename>%s.png</filename><size><width>64</width><height>48</height><depth>3</depth></size>", id)
		for _, o := range os {
			var n string
			var x1, y1, x2, y2, d int
			fmt.Sscan(o, &n, &x1, &y1, &x2, &y2, &d)
			fmt.Fprintf(&b, "<object><name>%s</name><difficult>%d</difficult><bndbox><xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox></object>", n, d, x1, y1, x2, y2)
		}
		b.WriteString("</annotation>")
		writeFile(t, filepath.Join(root, "Annotations", id+".xml"), b.String())
		writeFile(t, filepath.Join(root, "JPEGImages", id+".png"), string(pngBytes(t, 64, 48)))
	}
	for _, s := range []string{"train", "val", "test"} {
		writeFile(t, filepath.Join(root, "ImageSets", "Main", s+".txt"), "a\nb\nc\n")
	}
	return writeFile(t, filepath.Join(dir, "c.yaml"), "data:\n  root: ds\n  names: [cat, dog]\n")
}

// A perfect detection file scores 1 with every metric, whichever way it
// names images and classes; a wrong one is an error naming the entry.
func TestEvalDetections(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyVOC(t, dir)
	// VOC (xmin..xmax 1-based inclusive) 1..20 is x 0..20 in pixels: COCO [0, 0, 20, 20].
	dets := `[
	 {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9},
	 {"file_name": "a.png", "category_name": "dog", "bbox": [29, 9, 31, 31], "score": 0.8},
	 {"image_id": "b", "category_id": 1, "bbox": [4, 4, 26, 26], "score": 0.7},
	 {"image_id": 3, "category_id": 2, "bbox": [1, 1, 5, 5], "score": 0.01}]`
	p := writeFile(t, filepath.Join(dir, "dets.json"), dets)
	js, out := filepath.Join(dir, "s.json"), filepath.Join(dir, "report")
	code, stdout, errs := run(t, "eval", "--data-config", cfg, "--detections", p, "--json", js, "--out", out, "--set", "eval.metric=coco")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, errs)
	}
	var s map[string]any
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	// The 0.01 dog in c is a false positive scored below every true positive: AP stays 1.
	for _, k := range []string{"map", "map50_voc07", "map50_voc", "coco_ap", "coco_ap50", "coco_ar100"} {
		if v, _ := s[k].(float64); v < 1-1e-12 || v > 1+1e-12 {
			t.Errorf("%s = %v, want 1", k, s[k])
		}
	}
	if s["metric"] != "coco" || !strings.Contains(stdout, "mAP@[.5:.95] (COCO): 1.0000") {
		t.Errorf("metric %v; stdout:\n%s", s["metric"], stdout)
	}
	for _, f := range []string{"eval.json", "summary.md", "pr_curves.png", "confusion.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The same as txt files: "class score x1 y1 x2 y2", names or indices.
	txt := filepath.Join(dir, "txt")
	writeFile(t, filepath.Join(txt, "a.txt"), "cat 0.9 0 0 20 20\n1 0.8 29 9 60 40\n")
	writeFile(t, filepath.Join(txt, "b.txt"), "0 0.7 4 4 30 30\n")
	code, stdout, errs = run(t, "eval", "--config", cfg, "--detections", txt)
	if code != 0 || !strings.Contains(stdout, "mAP@0.5 (VOC all-point): 1.0000") {
		t.Errorf("txt: exit %d\n%s\n%s", code, stdout, errs)
	}
	// Errors name the entry or the file and line.
	writeFile(t, p, `[{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]`)
	if code, _, errs := run(t, "eval", "--data-config", cfg, "--detections", p); code != 1 || !strings.Contains(errs, "dets.json: entry 0: image_id 9 is not an image of the split") {
		t.Errorf("bad image id: exit %d, %s", code, errs)
	}
	writeFile(t, filepath.Join(txt, "b.txt"), "0 0.7 4 4 30\n")
	if code, _, errs := run(t, "eval", "--data-config", cfg, "--detections", txt); code != 1 || !strings.Contains(errs, "b.txt:1: 5 fields, want 6") {
		t.Errorf("bad txt: exit %d, %s", code, errs)
	}
	for _, args := range [][]string{
		{"eval", "--data-config", cfg, "--weights", "w"},
		{"eval", "--config", cfg, "--weights", "w", "--detections", p},
	} {
		if code, _, _ := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// data convert VOC -> YOLO -> COCO from the command line, then data check
// and eval read the COCO result with format coco.
func TestDataConvertAndCheck(t *testing.T) {
	dir := t.TempDir()
	tinyVOC(t, dir)
	yolo, coco := filepath.Join(dir, "yolo"), filepath.Join(dir, "coco")
	code, out, errs := run(t, "data", "convert", "--from", "voc", "--to", "yolo", "--in", filepath.Join(dir, "ds"), "--out", yolo, "--splits", "train,test")
	if code != 0 || !strings.Contains(out, "left out 2 difficult/crowd objects") {
		t.Fatalf("voc->yolo exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = run(t, "data", "convert", "--from", "yolo", "--to", "coco", "--in", yolo, "--out", coco)
	if code != 0 || !strings.Contains(out, "wrote 6 images and 6 objects as coco") || !strings.Contains(out, "format: coco") {
		t.Fatalf("yolo->coco exit %d\n%s\n%s", code, out, errs)
	}
	cfg := writeFile(t, filepath.Join(dir, "coco.yaml"), "data:\n  format: coco\n  root: coco\n  images: images\n  annotations: annotations\n  names: [cat, dog]\n  val: \"\"\nmodel:\n  cfg: x.cfg\n")
	code, out, errs = run(t, "data", "check", "--config", cfg)
	if code != 0 || !strings.Contains(out, "== split train (coco)") || !strings.Contains(out, "no problems found") {
		t.Errorf("check coco: exit %d\n%s\n%s", code, out, errs)
	}
	// A YOLO label with an out-of-range class: data check exits 1 naming file and line.
	writeFile(t, filepath.Join(yolo, "labels", "test", "a.txt"), "0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n")
	ycfg := writeFile(t, filepath.Join(dir, "yolo.yaml"), "data:\n  format: yolo\n  root: yolo\n  images: images\n  annotations: labels\n  names_file: yolo/data.yaml\n  val: \"\"\nmodel:\n  cfg: x.cfg\n")
	code, out, _ = run(t, "data", "check", "--config", ycfg)
	if code != 1 || !strings.Contains(out, "a.txt: line 2: class 7 is not in 0..1 (2 names)") {
		t.Errorf("check yolo: exit %d\n%s", code, out)
	}
	if code, _, _ := run(t, "data", "convert", "--from", "voc", "--to", "darknet", "--in", dir, "--out", dir); code != 2 {
		t.Errorf("bad --to: exit %d", code)
	}
}

// randomWeights writes the demo-tiny network for 2 classes with random
// weights: dir/m.cfg and dir/w.weights.
func randomWeights(t *testing.T, dir string) (mcfg, w string) {
	t.Helper()
	cfgPath, _ := filepath.Abs("../../configs/models/demo-tiny.cfg")
	cfg, err := model.ReadCfg(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(1)
	w = filepath.Join(dir, "w.weights")
	if err := net.WriteWeights(w, 0); err != nil {
		t.Fatal(err)
	}
	mcfg = filepath.Join(dir, "m.cfg")
	if err := os.WriteFile(mcfg, net.Cfg.Text(), 0o644); err != nil {
		t.Fatal(err)
	}
	return mcfg, w
}

// eval with weights: runs the network over the split and writes the report.
func TestEvalWeights(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a network; skipped with -short")
	}
	dir := t.TempDir()
	cfg := tinyVOC(t, dir)
	mcfg, w := randomWeights(t, dir)
	out := filepath.Join(dir, "report")
	code, stdout, errs := run(t, "eval", "--config", cfg, "--set", "model.cfg="+mcfg, "--set", "eval.size=64", "--weights", w, "--out", out)
	if code != 0 || !strings.Contains(stdout, "test split (3 images), size 64") || !strings.Contains(errs, "eval test  100% 3/3 img") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errs)
	}
	if _, err := os.Stat(filepath.Join(out, "summary.md")); err != nil {
		t.Error(err)
	}
}

// predict on a glob of images and a video: COCO JSON, YOLO txt, annotated
// images and an annotated video.
func TestPredictImagesAndVideo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a network; skipped with -short")
	}
	dir := t.TempDir()
	mcfg, w := randomWeights(t, dir)
	for _, n := range []string{"x.png", "y.png", "z.png"} {
		writeFile(t, filepath.Join(dir, "in", n), string(pngBytes(t, 64, 48)))
	}
	video := filepath.Join(dir, "clip.avi")
	vw, err := gocv.VideoWriterFile(video, "MJPG", 10, 64, 48, true)
	if err != nil || !vw.IsOpened() {
		t.Skipf("OpenCV cannot write a test video here: %v", err)
	}
	for i := range 5 {
		m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(40*i), 100, 200, 0), 48, 64, gocv.MatTypeCV8UC3)
		if err := vw.Write(m); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	vw.Close()
	out := filepath.Join(dir, "pred")
	code, stdout, errs := run(t, "predict", "--model", mcfg, "--weights", w, "--size", "64", "--batch", "2", "--conf", "0", "--max-dets", "3",
		"--out", out, "--save-txt", "--save-conf", filepath.Join(dir, "in", "*.png"), video)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errs)
	}
	var res []map[string]any
	b, _ := os.ReadFile(filepath.Join(out, "predictions.json"))
	if err := json.Unmarshal(b, &res); err != nil || len(res) != 9 {
		t.Fatalf("predictions.json: %v, %d entries (3 per image)", err, len(res))
	}
	if res[0]["image_id"] != 1.0 || res[0]["file_name"] != "x.png" || res[0]["category_id"].(float64) < 1 {
		t.Errorf("first entry %v", res[0])
	}
	for _, f := range []string{"x.png", "labels/x.txt", "labels/z.txt", "clip.mp4", "labels/clip_000004.txt"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	lines, _ := os.ReadFile(filepath.Join(out, "labels", "x.txt"))
	if f := strings.Fields(strings.Split(string(lines), "\n")[0]); len(f) != 6 {
		t.Errorf("label line %q: want class cx cy w h score", f)
	}
	if !strings.Contains(stdout, "in 5 frames of") {
		t.Errorf("stdout %s", stdout)
	}
}
