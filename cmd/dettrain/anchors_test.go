package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/model"
)

const bccdFastest = "../../configs/bccd-yolo-fastest.yaml"

func needBCCD(t *testing.T) {
	t.Helper()
	for _, p := range []string{"../../../shared/data/bccd", "../../../shared/models/yolo-fastest-1.1-coco/yolo-fastest-1.1.weights"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is absent (../shared is not here?)", p)
		}
	}
}

// TestAnchorsBCCD: k-means anchors for BCCD at 320 fit its boxes better than
// Yolo-Fastest's COCO anchors.
func TestAnchorsBCCD(t *testing.T) {
	needBCCD(t)
	var out, errb bytes.Buffer
	if err := engine.Anchors(&IO{Out: &out, Err: &errb}, &engine.AnchorsOptions{Config: ConfigOptions{File: bccdFastest}}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !regexp.MustCompile(`anchors=(\d+,\d+, ){5}\d+,\d+\n`).MatchString(s) {
		t.Fatalf("no anchors line:\n%s", s)
	}
	iou := regexp.MustCompile(`(cfg|k-means)\s+avg IoU (\S+)  recall (\S+)`).FindAllStringSubmatch(s, -1)
	if len(iou) != 2 || iou[1][2] <= iou[0][2] {
		t.Fatalf("k-means should beat the cfg's anchors:\n%s", s)
	}
	t.Log("\n" + s)
}

// TestPrepareModelFineTune: model.weights from the 80-class model into the
// 3-class network, with anchors: auto and OpenCV's BN epsilon.
func TestPrepareModelFineTune(t *testing.T) {
	needBCCD(t)
	c, err := config.Load(bccdFastest, config.LoadOptions{Env: []string{}, Sets: []string{"model.anchors=auto", "model.bn_eps=1e-6"}})
	if err != nil {
		t.Fatal(err)
	}
	names, _ := c.ClassNames()
	ds, err := engine.LoadDataset(c, c.Data.Train, names, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	net, err := engine.BuildNetwork(c.Model.Cfg, "", len(names), 1)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := engine.PrepareModel(net, c.Model, engine.TrainSize(c.Model, net), ds, &log); err != nil {
		t.Fatal(err)
	}
	s := log.String()
	for _, want := range []string{"loaded 82 of 84 convolutions (the file is this cfg with 80 classes)", "model.anchors: auto: anchors="} {
		if !strings.Contains(s, want) {
			t.Errorf("log lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, ": initialised\n") != 2 {
		t.Errorf("want one line per re-initialised head:\n%s", s)
	}
	if bn := net.Layers[0].(*model.ConvLayer).BN; bn.Eps != 1e-6 {
		t.Errorf("bn eps %v", bn.Eps)
	}
	if !strings.Contains(string(net.Cfg.Text()), "anchors="+engine.AnchorText(net.Heads[0].Anchors)) {
		t.Errorf("the cfg's text lacks the new anchors")
	}
}
