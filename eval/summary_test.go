package eval

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Summary JSON keeps every field of Result's JSON and adds the COCO ones.
func TestSummaryJSON(t *testing.T) {
	dets, gts := oneClassCase()
	for _, metric := range []string{"voc07", "voc", "coco"} {
		s := Evaluate(dets, gts, []string{"cat", "dog"}, metric)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"iou", "map50_voc07", "map50_voc", "per_class", "metric", "map", "coco_ap", "coco_ap50", "coco_ap75",
			"coco_ap_small", "coco_ap_medium", "coco_ap_large", "coco_ar1", "coco_ar10", "coco_ar100", "coco_ar_small", "coco_ar_medium", "coco_ar_large", "coco_stats"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %q in %s", metric, k, b)
			}
		}
		if m["map50_voc07"].(float64) != s.VOC.MAP07 || m["map50_voc"].(float64) != s.VOC.MAP || m["coco_ap"].(float64) != s.COCO.Stats[0] {
			t.Errorf("values %s", b)
		}
		want := map[string]float64{"voc07": s.VOC.MAP07, "voc": s.VOC.MAP, "coco": s.COCO.Stats[0]}[metric]
		if m["map"].(float64) != want || s.Primary() != want {
			t.Errorf("%s: map = %v, want %v", metric, m["map"], want)
		}
		pc := m["per_class"].([]any)
		c0 := pc[0].(map[string]any)
		for _, k := range []string{"class", "name", "num_gt", "num_det", "ap50_voc07", "ap50_voc", "num_crowd", "ap_coco", "ap50_coco", "ap75_coco", "ar100_coco"} {
			if _, ok := c0[k]; !ok {
				t.Errorf("per_class lacks %q: %v", k, c0)
			}
		}
		if pc[1].(map[string]any)["ap_coco"].(float64) != -1 {
			t.Errorf("dog has no gt: %v", pc[1])
		}
	}
}

func TestSummaryTableAndMarkdown(t *testing.T) {
	dets, gts := oneClassCase()
	s := Evaluate(dets, gts, []string{"cat", "dog"}, "coco")
	var b bytes.Buffer
	if err := s.Table(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cat ", " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ", "mAP@[.5:.95] (COCO): "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	cm := ConfusionMatrix(dets, gts, []string{"cat", "dog"}, 0.25, 0.45)
	if err := s.Markdown(&b, "test split", []string{"pr_curves.png"}, &cm); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# test split", "| cat | 3 | 0 | 5 |", "![pr_curves.png](pr_curves.png)", "| predicted \\ true | cat | dog | background |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}

// Confusion matrix by hand, two classes:
//
//	img0: gt cat A (0,0,10,10), gt dog B (20,20,30,30), gt cat D difficult (50,50,60,60)
//	  d1 cat .9 on A            -> M[cat][cat]
//	  d2 cat .8 on B (wrong)    -> M[cat][dog]
//	  d3 dog .7 on A (2nd det)  -> A already taken: a false alarm M[dog][bg]
//	  d4 dog .1 far away        -> below conf .25: not counted
//	  d5 cat .6 on D            -> excluded with D
//	img1: gt dog C (0,0,10,10), no detection -> missed: M[bg][dog]
//	img2: d6 dog .5, no gt -> M[dog][bg]
func TestConfusionMatrix(t *testing.T) {
	gts := []GroundTruth{
		{Image: 0, Class: 0, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 1, Box: bx(20, 20, 30, 30)},
		{Image: 0, Class: 0, Box: bx(50, 50, 60, 60), Difficult: true},
		{Image: 1, Class: 1, Box: bx(0, 0, 10, 10)},
	}
	dets := []Detection{
		{Image: 0, Class: 0, Score: 0.9, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 0, Score: 0.8, Box: bx(20, 20, 30, 30)},
		{Image: 0, Class: 1, Score: 0.7, Box: bx(0, 0, 10, 9)},
		{Image: 0, Class: 1, Score: 0.1, Box: bx(200, 200, 210, 210)},
		{Image: 0, Class: 0, Score: 0.6, Box: bx(50, 50, 60, 60)},
		{Image: 2, Class: 1, Score: 0.5, Box: bx(0, 0, 10, 10)},
	}
	c := ConfusionMatrix(dets, gts, []string{"cat", "dog"}, 0.25, 0.45)
	want := [][]int{
		{1, 1, 0},
		{0, 0, 2},
		{0, 1, 0},
	}
	for i := range want {
		for j := range want[i] {
			if c.M[i][j] != want[i][j] {
				t.Fatalf("M = %v, want %v", c.M, want)
			}
		}
	}
	if c.Excluded != 1 || strings.Join(c.Names, ",") != "cat,dog,background" {
		t.Errorf("%+v", c)
	}
}

// TestReadScores: the headline numbers read back from MarshalJSON's output.
func TestReadScores(t *testing.T) {
	s := Summary{Metric: "voc", VOC: Result{MAP: 0.625, MAP07: 0.5}, COCO: COCOResult{Stats: [12]float64{0.375}}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "eval.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadScores(p)
	if err != nil || got != (Scores{MAP50VOC: 0.625, MAP50VOC07: 0.5, COCOAP: 0.375}) {
		t.Fatalf("ReadScores = %+v, %v", got, err)
	}
}
