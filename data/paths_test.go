package data

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAbsoluteLayoutPaths: an absolute data.images, data.annotations or
// data.splits is used as it is, not joined under Root (/data/set + /lists
// would be /data/set/lists), for each format. The folders lie outside
// Root, so a join under Root finds nothing.
func TestAbsoluteLayoutPaths(t *testing.T) {
	f := newVOCFixture(t) // Root: holds nothing the layout names
	other := t.TempDir()
	w := func(rel, content string) {
		t.Helper()
		p := filepath.Join(other, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w("lists/train.txt", "a\n")
	w("xml/a.xml", ann("a.jpg", "100x80", obj("cat", 0, "1", "1", "10", "10")))
	w("jpg/a.jpg", "x")
	l := VOCLayout{Root: f.root, Images: filepath.Join(other, "jpg"), Annotations: filepath.Join(other, "xml"), Splits: filepath.Join(other, "lists")}
	ds, rep, err := LoadVOC(l, "train", []string{"cat"}, nil)
	if err != nil || len(rep.Problems) > 0 || len(ds.Samples) != 1 || ds.Samples[0].ImagePath != filepath.Join(other, "jpg", "a.jpg") {
		t.Fatalf("VOC: %v, %v, %+v", err, rep, ds)
	}

	w("ann/instances_val.json", `{"images": [{"id": 1, "file_name": "b.jpg", "width": 20, "height": 10}],
	  "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]}], "categories": [{"id": 7, "name": "cat"}]}`)
	w("img/val/b.jpg", "x")
	l = VOCLayout{Root: f.root, Images: filepath.Join(other, "img"), Annotations: filepath.Join(other, "ann")}
	cs, rep, err := LoadCOCO(l, "val", []string{"cat"}, nil)
	if err != nil || len(rep.Problems) > 0 || len(cs.Samples) != 1 || cs.Samples[0].ImagePath != filepath.Join(other, "img", "val", "b.jpg") {
		t.Fatalf("COCO: %v, %v, %+v", err, rep, cs)
	}

	w("yimg/train/c.jpg", "x")
	w("ylbl/train/c.txt", "0 0.5 0.5 0.2 0.2\n")
	l = VOCLayout{Root: f.root, Images: filepath.Join(other, "yimg"), Annotations: filepath.Join(other, "ylbl")}
	ds, rep, err = LoadYOLO(l, "train", []string{"cat"}, fakeProber{"c.jpg": {100, 50}})
	if err != nil || len(rep.Problems) > 0 || len(ds.Samples) != 1 || ds.Samples[0].AnnPath != filepath.Join(other, "ylbl", "train", "c.txt") {
		t.Fatalf("YOLO: %v, %v, %+v", err, rep, ds)
	}
	if got, want := l.Path("/abs/x"), "/abs/x"; got != want {
		t.Errorf("Path(/abs/x) = %s", got)
	}
	if got, want := l.Path("rel"), filepath.Join(f.root, "rel"); got != want {
		t.Errorf("Path(rel) = %s, want %s", got, want)
	}
}

// TestCOCOSplitAsFile: a COCO split may be the path of its JSON, relative
// to Root or absolute, with its images in COCO 2017's Root/val2017; the
// class names default to the categories sorted by id (ids 5, 2, 9 listed
// out of order: car, bus, van by name order would be bus, car, van).
func TestCOCOSplitAsFile(t *testing.T) {
	f := newVOCFixture(t)
	f.write("annotations/instances_val2017.json", `{"images": [{"id": 1, "file_name": "p.jpg", "width": 20, "height": 10}],
	  "annotations": [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [1, 1, 5, 5]}],
	  "categories": [{"id": 5, "name": "car"}, {"id": 2, "name": "van"}, {"id": 9, "name": "bus"}]}`)
	f.write("val2017/p.jpg", "x")
	l := VOCLayout{Root: f.root, Images: "JPEGImages", Annotations: "Annotations"}
	for _, split := range []string{"annotations/instances_val2017.json", filepath.Join(f.root, "annotations", "instances_val2017.json")} {
		names, err := COCONames(l, split)
		if err != nil || !slices.Equal(names, []string{"van", "car", "bus"}) {
			t.Fatalf("COCONames(%s) = %v, %v; want [van car bus] (ids 2, 5, 9)", split, names, err)
		}
		cs, rep, err := LoadCOCO(l, split, names, nil)
		if err != nil || len(rep.Problems) > 0 || len(cs.Samples) != 1 || cs.Samples[0].Objects[0].Class != 2 {
			t.Fatalf("LoadCOCO(%s): %v, %v, %+v", split, err, rep, cs)
		}
		if !SplitExists(FormatCOCO, l, split) {
			t.Errorf("SplitExists(%s) = false", split)
		}
	}
	if _, err := COCONames(l, "nope.json"); err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Errorf("a missing JSON: %v, want an error naming it", err)
	}
	f.write("annotations/empty.json", `{"images": [], "categories": []}`)
	if _, err := COCONames(l, "annotations/empty.json"); err == nil || !strings.Contains(err.Error(), "empty.json: no categories") {
		t.Errorf("no categories: %v", err)
	}
}

// TestOutsideRoot: a COCO file_name with "../" (or an absolute path
// elsewhere) and a VOC list id with "../" are problems naming the file and
// the entry, and are read with AllowOutside; a plain or absolute path
// inside Root is fine either way.
func TestOutsideRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "set")
	write := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(parent, "secret.jpg"), "x")
	write(filepath.Join(root, "images", "in.jpg"), "x")
	abs := filepath.Join(root, "images", "in.jpg")
	write(filepath.Join(root, "annotations", "train.json"), `{"images": [
	  {"id": 1, "file_name": "../../secret.jpg", "width": 20, "height": 10},
	  {"id": 2, "file_name": "in.jpg", "width": 20, "height": 10},
	  {"id": 3, "file_name": "`+filepath.ToSlash(abs)+`", "width": 20, "height": 10},
	  {"id": 4, "file_name": "`+filepath.ToSlash(filepath.Join(parent, "secret.jpg"))+`", "width": 20, "height": 10}],
	  "annotations": [], "categories": [{"id": 1, "name": "cat"}]}`)
	l := VOCLayout{Root: root, Images: "images", Annotations: "annotations"}
	cs, rep, err := LoadCOCO(l, "train", []string{"cat"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Samples) != 2 || len(rep.Problems) != 2 {
		t.Fatalf("samples %+v, problems %v; want in.jpg twice and 2 problems", cs.Samples, rep.Problems)
	}
	for i, want := range []string{"line 2: images[0] (id 1): file_name \"../../secret.jpg\": the image", "line 5: images[3] (id 4)"} {
		p := rep.Problems[i]
		if p.File != filepath.Join(root, "annotations", "train.json") || !strings.HasPrefix(p.Msg, want) || !strings.Contains(p.Msg, "leads outside the data set's root") {
			t.Errorf("problem %d: %s; want the file and %q", i, p, want)
		}
	}
	l.AllowOutside = true
	cs, rep, err = LoadCOCO(l, "train", []string{"cat"}, nil)
	if err != nil || len(cs.Samples) != 4 || len(rep.Problems) != 0 || cs.Samples[0].ImagePath != filepath.Join(parent, "secret.jpg") {
		t.Fatalf("allow_outside: %v, %+v, %v", err, cs.Samples, rep.Problems)
	}

	// VOC: an id of a split list that climbs out of Root.
	write(filepath.Join(root, "ImageSets", "Main", "train.txt"), "ok\n../../evil\n")
	write(filepath.Join(root, "Annotations", "ok.xml"), ann("ok.jpg", "100x80"))
	write(filepath.Join(root, "JPEGImages", "ok.jpg"), "x")
	write(filepath.Join(parent, "evil.xml"), ann("ok.jpg", "100x80"))
	vl := DefaultVOCLayout(root)
	ds, rep, err := LoadVOC(vl, "train", []string{"cat"}, nil)
	if err != nil || len(ds.Samples) != 1 || len(rep.Problems) != 1 {
		t.Fatalf("VOC: %v, %+v, %v", err, ds, rep.Problems)
	}
	if p := rep.Problems[0]; p.File != filepath.Join(root, "ImageSets", "Main", "train.txt") || !strings.HasPrefix(p.Msg, `line 2: id "../../evil": annotation`) {
		t.Errorf("VOC problem %s", p)
	}
	vl.AllowOutside = true
	if ds, rep, err = LoadVOC(vl, "train", []string{"cat"}, nil); err != nil || len(ds.Samples) != 2 || len(rep.Problems) != 0 {
		t.Errorf("VOC allow_outside: %v, %+v, %v", err, ds, rep.Problems)
	}
}
