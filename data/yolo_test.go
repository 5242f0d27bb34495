package data

import (
	"math"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
)

func nearBox(a, b box.Box, tol float64) bool {
	return math.Abs(a.X1-b.X1) <= tol && math.Abs(a.Y1-b.Y1) <= tol && math.Abs(a.X2-b.X2) <= tol && math.Abs(a.Y2-b.Y2) <= tol
}

func TestLoadYOLO(t *testing.T) {
	f := newVOCFixture(t)
	names := []string{"cat", "dog"}
	img := func(p string) { f.write("images/train/"+p, "x") }
	// a: a plain box and a polygon; b (in a sub-folder): clipped and
	// zero-width boxes; c: no label file (background); bad*: one problem each.
	img("a.jpg")
	f.write("labels/train/a.txt", "0 0.5 0.5 0.2 0.4\n\n1 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3\n")
	img("sub/b.PNG")
	f.write("labels/train/sub/b.txt", "1 0.95 0.5 0.1000001 0.2\n0 0.5 0.5 0 0.2\n")
	img("c.jpg")
	img("badclass.jpg")
	f.write("labels/train/badclass.txt", "2 0.5 0.5 0.1 0.1\n")
	img("badcount.jpg")
	f.write("labels/train/badcount.txt", "0 0.5 0.5 0.1\n")
	img("badnum.jpg")
	f.write("labels/train/badnum.txt", "0 0.5 0.5 0.1 abc\n")
	img("outside.jpg")
	f.write("labels/train/outside.txt", "0 0.5 0.5 0.1 0.1\n0 0.95 0.5 0.2 0.1\n")
	img("negative.jpg")
	f.write("labels/train/negative.txt", "1 0.5 0.5 -0.1 0.1\n")
	img("floatclass.jpg")
	f.write("labels/train/floatclass.txt", "1.0 0.5 0.5 0.1 0.1\n")
	f.write("images/train/notes.txt", "not an image")
	probe := fakeProber{"a.jpg": {200, 100}, "b.PNG": {100, 100}, "c.jpg": {10, 10}, "badclass.jpg": {10, 10}, "badcount.jpg": {10, 10},
		"badnum.jpg": {10, 10}, "outside.jpg": {10, 10}, "negative.jpg": {10, 10}, "floatclass.jpg": {10, 10}}
	l := VOCLayout{Root: f.root, Images: "images", Annotations: "labels"}
	ds, rep, err := LoadYOLO(l, "train", names, probe)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range ds.Samples {
		ids = append(ids, s.ID)
	}
	if strings.Join(ids, ",") != "a,c,sub/b" {
		t.Fatalf("samples %v", ids)
	}
	a := ds.Samples[0]
	if a.Width != 200 || a.Height != 100 || len(a.Objects) != 2 {
		t.Fatalf("a %+v", a)
	}
	// cx .5 cy .5 w .2 h .4 on 200x100: x 80..120, y 30..70.
	if o := a.Objects[0]; o.Class != 0 || o.Name != "cat" || !nearBox(o.Box, box.Box{X1: 80, Y1: 30, X2: 120, Y2: 70}, 1e-9) {
		t.Errorf("a box %+v", o)
	}
	// Polygon (.1,.1) (.3,.1) (.3,.3) (.1,.3): its extent x 20..60, y 10..30.
	if o := a.Objects[1]; o.Class != 1 || !nearBox(o.Box, box.Box{X1: 20, Y1: 10, X2: 60, Y2: 30}, 1e-9) {
		t.Errorf("a polygon %+v", o)
	}
	// b: cx .95 w .1000001 reaches 1.00000005, inside the tolerance, clipped to 100.
	if b := ds.Samples[2]; len(b.Objects) != 1 || b.Objects[0].Box.X2 != 100 {
		t.Errorf("b %+v", b)
	}
	if c := ds.Samples[1]; len(c.Objects) != 0 || c.AnnPath != "" {
		t.Errorf("background c %+v", c)
	}
	if rep.Images != 3 || rep.Objects != 3 || rep.Clipped != 1 || rep.ZeroAreaDropped != 1 || rep.Skipped != 6 {
		t.Errorf("report %+v", rep)
	}
	for file, want := range map[string]string{
		"badclass.txt":   "line 1: class 2 is not in 0..1 (2 names)",
		"badcount.txt":   "line 1: 3 values after the class, want 4 (cx cy w h) or a polygon of 3 or more x y pairs",
		"badnum.txt":     `line 1: "abc" is not a number`,
		"outside.txt":    "line 2: box (cx,cy,w,h)=(0.95,0.5,0.2,0.1) reaches outside the image (relative coordinates must be in [0, 1])",
		"negative.txt":   "line 1: box (cx,cy,w,h)=(0.5,0.5,-0.1,0.1) has a negative size",
		"floatclass.txt": `line 1: class "1.0" is not an integer`,
	} {
		if ms := problemsOf(rep, file); len(ms) != 1 || ms[0] != want {
			t.Errorf("%s: problems %q, want %q", file, ms, want)
		}
	}

	// Roboflow layout: SPLIT/images, SPLIT/labels.
	f.write("valid/images/x.jpg", "x")
	f.write("valid/labels/x.txt", "1 0.5 0.5 1 1\n")
	ds, rep, err = LoadYOLO(l, "valid", names, fakeProber{"x.jpg": {30, 20}})
	if err != nil || len(ds.Samples) != 1 || ds.Samples[0].Objects[0].Box != (box.Box{X2: 30, Y2: 20}) || len(rep.Problems) != 0 {
		t.Errorf("roboflow layout: %v %+v %+v", err, ds, rep)
	}

	// Errors: no such split, no label folder, no prober.
	if _, _, err := LoadYOLO(l, "test", names, probe); err == nil || !strings.Contains(err.Error(), "data.images: images and data.annotations: labels") {
		t.Errorf("missing split: %v", err)
	}
	f.write("images/nolabels/x.jpg", "x")
	if _, _, err := LoadYOLO(l, "nolabels", names, probe); err == nil || !strings.Contains(err.Error(), "label folder") {
		t.Errorf("missing labels: %v", err)
	}
	if _, _, err := LoadYOLO(l, "train", names, nil); err == nil {
		t.Error("no error without a prober")
	}
}
