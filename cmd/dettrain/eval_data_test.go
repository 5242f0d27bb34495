package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	goimage "image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/eval"
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
	// The same as txt files: "class score x1 y1 x2 y2", names or indices,
	// the corners of a VOC data set in the XML's own convention (1-based
	// inclusive), so the ground truth's corners score 1 with every metric.
	txt := filepath.Join(dir, "txt")
	writeFile(t, filepath.Join(txt, "a.txt"), "cat 0.9 1 1 20 20\n1 0.8 30 10 60 40\n")
	writeFile(t, filepath.Join(txt, "b.txt"), "0 0.7 5 5 30 30\n")
	js = filepath.Join(dir, "txt.json")
	code, stdout, errs = run(t, "eval", "--config", cfg, "--detections", txt, "--json", js)
	if code != 0 || !strings.Contains(stdout, "mAP@0.5 (VOC all-point): 1.0000") || errs != "" {
		t.Errorf("txt: exit %d\n%s\n%s", code, stdout, errs)
	}
	b, _ = os.ReadFile(js)
	s = nil
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	// COCO AP@[.5:.95] needs IoU >= .95: only corners read exactly as the XML's give 1.
	for _, k := range []string{"map50_voc", "coco_ap", "coco_ap75"} {
		if v, _ := s[k].(float64); v < 1-1e-12 || v > 1+1e-12 {
			t.Errorf("txt: %s = %v, want 1", k, s[k])
		}
	}
	// Errors name the entry or the file and line.
	writeFile(t, p, `[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 1}]`)
	if code, _, errs := run(t, "eval", "--data-config", cfg, "--detections", p); code != 1 || !strings.Contains(errs, "dets.json: entry 0: bbox has 3 numbers, want 4") {
		t.Errorf("bad bbox: exit %d, %s", code, errs)
	}
	writeFile(t, p, `[{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]`)
	if code, _, errs := run(t, "eval", "--data-config", cfg, "--detections", p, "--strict"); code != 1 || !strings.Contains(errs, "dets.json: entry 0: image_id 9 is not an image of the split") {
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

// The boundary case end to end: a VOC data set whose ground truth
// is (xmin, ymin, xmax, ymax) = (2, 63, 134, 215) and a detection txt line
// with corners (19, 90, 143, 182). voc_eval.py, +1 widths on both boxes as
// written: areas 133*153 = 20349 and 125*93 = 11625, intersection
// (134-19+1)*(182-90+1) = 116*93 = 10788, union 21186, IoU 0.50920 > 0.5:
// a true positive, AP 1. (Reading the txt corners as continuous would give
// 10580/21177 = 0.49960, a false positive and AP 0; see
// eval.TestTxtVOCBoundaryCase.) On a YOLO data set the same line is
// continuous, the 0.4996, and misses.
func TestEvalTxtVOCBoundary(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "ds")
	writeFile(t, filepath.Join(root, "Annotations", "a.xml"), "<annotation><size><width>160</width><height>240</height></size>"+
		"<object><name>cat</name><difficult>0</difficult><bndbox><xmin>2</xmin><ymin>63</ymin><xmax>134</xmax><ymax>215</ymax></bndbox></object></annotation>")
	writeFile(t, filepath.Join(root, "JPEGImages", "a.png"), string(pngBytes(t, 160, 240)))
	writeFile(t, filepath.Join(root, "ImageSets", "Main", "test.txt"), "a\n")
	cfg := writeFile(t, filepath.Join(dir, "c.yaml"), "data:\n  root: ds\n  names: [cat, dog]\n")
	txt := filepath.Join(dir, "txt")
	writeFile(t, filepath.Join(txt, "a.txt"), "cat 0.9 19 90 143 182\n")
	js := filepath.Join(dir, "s.json")
	code, stdout, errs := run(t, "eval", "--data-config", cfg, "--detections", txt, "--json", js)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errs)
	}
	var s struct {
		PerClass []struct {
			AP float64 `json:"ap50_voc"`
		} `json:"per_class"`
	}
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &s); err != nil || len(s.PerClass) != 2 {
		t.Fatalf("%s: %v", b, err)
	}
	// One ground truth and one detection: AP = (1-0)*1 exactly for a match.
	if s.PerClass[0].AP != 1 {
		t.Errorf("cat AP %v, want 1 (a true positive at IoU 0.5092)", s.PerClass[0].AP)
	}
}

// Detections of classes or images the data set does not have (a COCO-80
// detector scored on a subset) are left out with one warning line that
// counts them; --strict makes the first one an error naming it.
func TestEvalDetectionsUnknown(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyVOC(t, dir)
	txt := filepath.Join(dir, "txt")
	writeFile(t, filepath.Join(txt, "a.txt"), "cat 0.9 1 1 20 20\ndog 0.8 30 10 60 40\nbird 0.7 1 1 5 5\n5 0.6 1 1 5 5\nbird 0.5 2 2 6 6\n")
	writeFile(t, filepath.Join(txt, "b.txt"), "cat 0.7 5 5 30 30\n")
	writeFile(t, filepath.Join(txt, "zzz.txt"), "cat 0.9 1 1 20 20\n")
	code, stdout, errs := run(t, "eval", "--data-config", cfg, "--detections", txt)
	want := `warning: ` + txt + `: skipped 4 detections: 3 of 2 classes not in the data set ("bird", "5"), 1 of 1 image not in the split ("zzz") (--strict makes this an error)` + "\n"
	if code != 0 || errs != want || !strings.Contains(stdout, "mAP@0.5 (VOC all-point): 1.0000") {
		t.Errorf("txt: exit %d\nstdout:\n%s\nstderr:\n%s\nwant stderr:\n%s", code, stdout, errs, want)
	}
	// The folder is listed before any file is read: the unknown image is the first error.
	if code, _, errs := run(t, "eval", "--data-config", cfg, "--detections", txt, "--strict"); code != 1 || !strings.Contains(errs, "zzz.txt: no image zzz in the split") {
		t.Errorf("txt --strict: exit %d, %s", code, errs)
	}
	os.Remove(filepath.Join(txt, "zzz.txt"))
	if code, _, errs := run(t, "eval", "--data-config", cfg, "--detections", txt, "--strict"); code != 1 || !strings.Contains(errs, `a.txt:3: class "bird" is neither a class name nor an index in 0..1`) {
		t.Errorf("txt --strict, class: exit %d, %s", code, errs)
	}
	// COCO results: category_id 18 (COCO's "dog" id, not one of the two
	// classes here), image 9 of 3, a file_name of another set.
	p := writeFile(t, filepath.Join(dir, "dets.json"), `[
	 {"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9},
	 {"image_id": 1, "category_id": 2, "bbox": [29, 9, 31, 31], "score": 0.8},
	 {"image_id": 2, "category_id": 1, "bbox": [4, 4, 26, 26], "score": 0.7},
	 {"image_id": 1, "category_id": 18, "bbox": [0, 0, 20, 20], "score": 0.95},
	 {"image_id": 2, "category_id": 18, "bbox": [0, 0, 20, 20], "score": 0.95},
	 {"image_id": 9, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.95},
	 {"file_name": "000001.jpg", "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.95}]`)
	code, stdout, errs = run(t, "eval", "--data-config", cfg, "--detections", p)
	want = `warning: ` + p + `: skipped 4 detections: 2 of 1 class not in the data set ("18"), 2 of 2 images not in the split ("9", "000001.jpg") (--strict makes this an error)` + "\n"
	if code != 0 || errs != want || !strings.Contains(stdout, "mAP@0.5 (VOC all-point): 1.0000") {
		t.Errorf("json: exit %d\nstdout:\n%s\nstderr:\n%s\nwant stderr:\n%s", code, stdout, errs, want)
	}
	if code, _, errs := run(t, "eval", "--data-config", cfg, "--detections", p, "--strict"); code != 1 || !strings.Contains(errs, "dets.json: entry 3: category_id 18 is not a category of the data set") {
		t.Errorf("json --strict: exit %d, %s", code, errs)
	}
}

// refObject is an <object> as voc_eval.py's parse_rec reads it.
type refObject struct {
	name      string
	difficult bool
	bbox      [4]float64 // int(xmin), int(ymin), int(xmax), int(ymax)
}

// refParseRec transcribes parse_rec (py-faster-rcnn lib/datasets/voc_eval.py):
// every <object>'s name, int(difficult) and the int() of its bndbox corners.
func refParseRec(t *testing.T, path string) []refObject {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Objects []struct {
			Name      string `xml:"name"`
			Difficult string `xml:"difficult"`
			Box       struct {
				Xmin string `xml:"xmin"`
				Ymin string `xml:"ymin"`
				Xmax string `xml:"xmax"`
				Ymax string `xml:"ymax"`
			} `xml:"bndbox"`
		} `xml:"object"`
	}
	if err := xml.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	pyInt := func(s string) float64 { // Python's int(str): surrounding whitespace allowed
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("%s: int(%q): %v", path, s, err)
		}
		return float64(n)
	}
	var objs []refObject
	for _, o := range a.Objects {
		objs = append(objs, refObject{
			name: o.Name, difficult: pyInt(o.Difficult) != 0,
			bbox: [4]float64{pyInt(o.Box.Xmin), pyInt(o.Box.Ymin), pyInt(o.Box.Xmax), pyInt(o.Box.Ymax)},
		})
	}
	return objs
}

// refVOCEval transcribes voc_eval (py-faster-rcnn lib/datasets/voc_eval.py)
// and voc_ap for one class: it reads detpath (voc_eval's
// detpath.format(classname): lines "image_id score x1 y1 x2 y2"), sorts by
// descending confidence, matches greedily with the devkit's +1 widths and
// returns npos, nd and the 11-point and all-point APs. np.argsort is not
// stable; the caller's scores are distinct, so order is unambiguous.
func refVOCEval(t *testing.T, detpath string, recs map[string][]refObject, imagenames []string, classname string, ovthresh float64) (npos, nd int, ap07, ap float64) {
	t.Helper()
	type classRec struct {
		bbox      [][4]float64
		difficult []bool
		det       []bool
	}
	classRecs := map[string]*classRec{}
	for _, im := range imagenames {
		r := &classRec{}
		for _, o := range recs[im] {
			if o.name == classname {
				r.bbox = append(r.bbox, o.bbox)
				r.difficult = append(r.difficult, o.difficult)
				r.det = append(r.det, false)
				if !o.difficult {
					npos++
				}
			}
		}
		classRecs[im] = r
	}
	raw, err := os.ReadFile(detpath)
	if err != nil {
		t.Fatal(err)
	}
	var imageIDs []string
	var confidence []float64
	var BB [][4]float64
	for _, line := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		if line == "" {
			continue
		}
		x := strings.Split(strings.TrimSpace(line), " ")
		f := func(s string) float64 {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: float(%q)", detpath, s)
			}
			return v
		}
		imageIDs = append(imageIDs, x[0])
		confidence = append(confidence, f(x[1]))
		BB = append(BB, [4]float64{f(x[2]), f(x[3]), f(x[4]), f(x[5])})
	}
	sortedInd := make([]int, len(confidence))
	for i := range sortedInd {
		sortedInd[i] = i
	}
	sort.SliceStable(sortedInd, func(a, b int) bool { return -confidence[sortedInd[a]] < -confidence[sortedInd[b]] })
	nd = len(imageIDs)
	tp, fp := make([]float64, nd), make([]float64, nd)
	for d := 0; d < nd; d++ {
		R := classRecs[imageIDs[sortedInd[d]]]
		if R == nil {
			t.Fatalf("%s: image %q not in the image set (voc_eval.py: KeyError)", detpath, imageIDs[sortedInd[d]])
		}
		bb := BB[sortedInd[d]]
		ovmax, jmax := math.Inf(-1), 0
		for j, g := range R.bbox {
			ixmin, iymin := math.Max(g[0], bb[0]), math.Max(g[1], bb[1])
			ixmax, iymax := math.Min(g[2], bb[2]), math.Min(g[3], bb[3])
			iw := math.Max(ixmax-ixmin+1., 0.)
			ih := math.Max(iymax-iymin+1., 0.)
			inters := iw * ih
			uni := (bb[2]-bb[0]+1.)*(bb[3]-bb[1]+1.) + (g[2]-g[0]+1.)*(g[3]-g[1]+1.) - inters
			if ov := inters / uni; ov > ovmax { // np.argmax: the first maximum
				ovmax, jmax = ov, j
			}
		}
		if ovmax > ovthresh {
			if !R.difficult[jmax] {
				if !R.det[jmax] {
					tp[d] = 1.
					R.det[jmax] = true
				} else {
					fp[d] = 1.
				}
			}
		} else {
			fp[d] = 1.
		}
	}
	rec, prec := make([]float64, nd), make([]float64, nd)
	var ctp, cfp float64
	for d := 0; d < nd; d++ {
		ctp += tp[d]
		cfp += fp[d]
		rec[d] = ctp / float64(npos)
		prec[d] = ctp / math.Max(ctp+cfp, 0x1p-52) // np.finfo(np.float64).eps
	}
	// voc_ap, use_07_metric=True: for t in np.arange(0., 1.1, 0.1).
	for i := 0; i <= 10; i++ {
		th := float64(i) * 0.1 // np.arange's values are start + i*step
		p := 0.
		for k := range rec {
			if rec[k] >= th && prec[k] > p {
				p = prec[k]
			}
		}
		ap07 += p / 11.
	}
	// voc_ap, all-point.
	mrec := append(append([]float64{0.}, rec...), 1.)
	mpre := append(append([]float64{0.}, prec...), 0.)
	for i := len(mpre) - 1; i > 0; i-- {
		mpre[i-1] = math.Max(mpre[i-1], mpre[i])
	}
	for i := 0; i+1 < len(mrec); i++ {
		if mrec[i+1] != mrec[i] {
			ap += (mrec[i+1] - mrec[i]) * mpre[i+1]
		}
	}
	return npos, nd, ap07, ap
}

// dettrain's eval --detections path (engine.ReadDetections, then eval.Evaluate)
// against the transcription of voc_eval.py above on BCCD's test split (72
// images), with detections made deterministically from the ground truth:
// each object found with probability 0.85 by a box whose integer corners
// are moved by up to 25% of its size (IoUs on both sides of 0.5), 10%
// found twice (a duplicate is a false positive), 5% given the wrong
// class, and 3 random boxes per image. The same lines are written twice,
// as dettrain's ID.txt per image and as voc_eval.py's per-class files.
//
// APs agree to 1e-9: with integer corners every IoU operand is an integer,
// so both sides compute the same float64 values in the same order, and the
// sums run left to right on both (numpy's pairwise np.sum would move the
// last bits, below 1e-13 for these sizes). NumGT and NumDet must be equal.
// As a check that the test can tell the conventions apart, the same files
// read as continuous corners (a yolo data set's convention) must give a
// different AP for some class.
func TestEvalDetectionsMatchVOCDevkit(t *testing.T) {
	root := "../../../shared/data/bccd"
	if _, err := os.Stat(root); err != nil {
		t.Skipf("BCCD not found at %s (the shared data sets are not on this machine): %v", root, err)
	}
	ids := strings.Fields(string(must(os.ReadFile(filepath.Join(root, "splits", "Main", "test.txt")))))
	names := []string{"RBC", "WBC", "Platelets"}
	recs := map[string][]refObject{}
	for _, id := range ids {
		recs[id] = refParseRec(t, filepath.Join(root, "annotations", id+".xml"))
	}
	dir := t.TempDir()
	txt := filepath.Join(dir, "txt")
	rng := rand.New(rand.NewPCG(1, 2))
	perImage := map[string]*strings.Builder{}
	perClass := map[string]*strings.Builder{}
	for _, n := range names {
		perClass[n] = &strings.Builder{}
	}
	seen := map[float64]bool{}
	emit := func(id, cls string, b [4]float64) {
		score := rng.Float64()
		for seen[score] {
			score = rng.Float64()
		}
		seen[score] = true
		b[2], b[3] = max(b[0], b[2]), max(b[1], b[3])
		corners := fmt.Sprintf("%s %g %g %g %g", strconv.FormatFloat(score, 'g', -1, 64), b[0], b[1], b[2], b[3])
		if perImage[id] == nil {
			perImage[id] = &strings.Builder{}
		}
		fmt.Fprintf(perImage[id], "%s %s\n", cls, corners)
		fmt.Fprintf(perClass[cls], "%s %s\n", id, corners)
	}
	jitter := func(b [4]float64) [4]float64 {
		w, h := b[2]-b[0]+1, b[3]-b[1]+1
		for k, s := range []float64{w, h, w, h} {
			m := math.Floor(0.25 * s)
			b[k] += math.Round((2*rng.Float64() - 1) * m)
		}
		return b
	}
	for _, id := range ids {
		for _, o := range recs[id] {
			if rng.Float64() < 0.85 {
				emit(id, o.name, jitter(o.bbox))
			}
			if rng.Float64() < 0.10 {
				emit(id, o.name, jitter(o.bbox))
			}
			if rng.Float64() < 0.05 {
				emit(id, names[rng.IntN(len(names))], jitter(o.bbox))
			}
		}
		for range 3 {
			x, y := math.Floor(rng.Float64()*600), math.Floor(rng.Float64()*440)
			emit(id, names[rng.IntN(len(names))], [4]float64{x + 1, y + 1, x + 1 + math.Floor(rng.Float64()*100), y + 1 + math.Floor(rng.Float64()*100)})
		}
	}
	for id, b := range perImage {
		writeFile(t, filepath.Join(txt, id+".txt"), b.String())
	}
	for n, b := range perClass {
		writeFile(t, filepath.Join(dir, "comp4_det_test_"+n+".txt"), b.String())
	}

	cfg := writeFile(t, filepath.Join(dir, "bccd.yaml"), fmt.Sprintf("data:\n  root: %s\n  images: images\n  annotations: annotations\n  splits: splits/Main\n  names: [RBC, WBC, Platelets]\n", must(filepath.Abs(root))))
	o := &EvalOptions{DataConfig: cfg, Detections: txt}
	c, err := o.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	ds, cs, err := engine.LoadDatasetCOCO(c, "test", names, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Samples) != len(ids) {
		t.Fatalf("%d samples, want %d", len(ds.Samples), len(ids))
	}
	score := func(format string) eval.Summary {
		var warn bytes.Buffer
		dets, err := engine.ReadDetections(txt, ds, cs, names, format, &warn, true)
		if err != nil || warn.Len() != 0 {
			t.Fatalf("readDetections: %v %s", err, warn.String())
		}
		return eval.Evaluate(dets, engine.GroundTruth(ds, cs), names, "voc")
	}
	s := score("voc")
	other := score("yolo")
	differs := false
	for k, n := range names {
		npos, nd, ap07, ap := refVOCEval(t, filepath.Join(dir, "comp4_det_test_"+n+".txt"), recs, ids, n, 0.5)
		got := s.VOC.PerClass[k]
		t.Logf("%s: npos %d, nd %d, AP %.6f (voc_eval.py) %.6f (dettrain, difference %g), AP07 %.6f %.6f (difference %g); continuous corners AP %.6f",
			n, npos, nd, ap, got.AP, got.AP-ap, ap07, got.AP07, got.AP07-ap07, other.VOC.PerClass[k].AP)
		if got.NumGT != npos || got.NumDet != nd {
			t.Errorf("%s: NumGT, NumDet = %d, %d, voc_eval.py %d, %d", n, got.NumGT, got.NumDet, npos, nd)
		}
		if math.Abs(got.AP-ap) > 1e-9 || math.Abs(got.AP07-ap07) > 1e-9 {
			t.Errorf("%s: AP %.12f, AP07 %.12f; voc_eval.py %.12f, %.12f", n, got.AP, got.AP07, ap, ap07)
		}
		differs = differs || math.Abs(other.VOC.PerClass[k].AP-ap) > 1e-9
	}
	if !differs {
		t.Error("continuous corners give the devkit's APs too: the detections do not probe the +1 convention")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
