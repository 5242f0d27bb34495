package data

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
)

// cocoJSON is a small COCO file: categories with non-contiguous ids listed
// out of order (3 dog, 1 cat, 90 bird), four images, and annotations that
// exercise every rule of LoadCOCO.
const cocoJSON = `{
  "info": {"description": "test"},
  "images": [
    {"id": 10, "file_name": "a.jpg", "width": 100, "height": 80},
    {"id": 11, "file_name": "sub/b.png", "width": 100, "height": 80},
    {"id": 12, "file_name": "empty.jpg", "width": 50, "height": 50},
    {"id": 13, "file_name": "bad.jpg", "width": 100, "height": 80},
    {"id": 14, "file_name": "missing.jpg", "width": 100, "height": 80}
  ],
  "annotations": [
    {"id": 1, "image_id": 10, "category_id": 3, "bbox": [10, 20, 30, 40], "area": 1000, "iscrowd": 0},
    {"id": 2, "image_id": 10, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2000, "iscrowd": 1},
    {"id": 3, "image_id": 10, "category_id": 1, "bbox": [90, 70, 20, 20], "area": 100, "iscrowd": 0},
    {"id": 4, "image_id": 10, "category_id": 1, "bbox": [5, 5, 0, 10], "area": 0, "iscrowd": 0},
    {"id": 5, "image_id": 11, "category_id": 90, "bbox": [1.5, 2.5, 10.25, 20], "area": 205, "iscrowd": 0},
    {"id": 6, "image_id": 13, "category_id": 3, "bbox": [10, 20, 30], "iscrowd": 0},
    {"id": 7, "image_id": 13, "category_id": 2, "bbox": [10, 20, 30, 30], "iscrowd": 0},
    {"id": 8, "image_id": 13, "category_id": 1, "bbox": [200, 20, 30, 30], "iscrowd": 0},
    {"id": 9, "image_id": 99, "category_id": 1, "bbox": [1, 1, 3, 3], "iscrowd": 0}
  ],
  "categories": [
    {"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}, {"id": 90, "name": "bird"}, {"id": 2, "name": "zebra"}
  ]
}`

func TestLoadCOCO(t *testing.T) {
	f := newVOCFixture(t)
	f.write("annotations/instances_train.json", cocoJSON)
	for _, p := range []string{"images/train/a.jpg", "images/train/sub/b.png", "images/empty.jpg", "images/train/bad.jpg"} {
		f.write(p, "x")
	}
	l := VOCLayout{Root: f.root, Images: "images", Annotations: "annotations"}
	names := []string{"cat", "dog", "bird"}
	cs, rep, err := LoadCOCO(l, "train", names, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Samples: a, sub/b, empty (bad and missing have problems).
	if len(cs.Samples) != 3 || cs.Samples[0].ID != "a" || cs.Samples[1].ID != "sub/b" || cs.Samples[2].ID != "empty" {
		t.Fatalf("samples %+v", cs.Samples)
	}
	if got := cs.ImageIDs; len(got) != 3 || got[0] != 10 || got[1] != 11 || got[2] != 12 {
		t.Errorf("ImageIDs %v", got)
	}
	if got := cs.CategoryIDs; len(got) != 3 || got[0] != 1 || got[1] != 3 || got[2] != 90 {
		t.Errorf("CategoryIDs %v, want [1 3 90] (cat dog bird mapped by name)", got)
	}
	a := cs.Samples[0]
	if a.Width != 100 || a.Height != 80 || filepath.Base(a.ImagePath) != "a.jpg" || len(a.Objects) != 3 {
		t.Fatalf("a: %+v", a)
	}
	want := []Object{
		{Class: 1, Name: "dog", Box: box.Box{X1: 10, Y1: 20, X2: 40, Y2: 60}},
		{Class: 0, Name: "cat", Box: box.Box{X1: 0, Y1: 0, X2: 50, Y2: 50}, Difficult: true}, // iscrowd
		{Class: 0, Name: "cat", Box: box.Box{X1: 90, Y1: 70, X2: 100, Y2: 80}},               // clipped
	}
	for i, o := range want {
		if a.Objects[i] != o {
			t.Errorf("a object %d = %+v, want %+v", i, a.Objects[i], o)
		}
	}
	if cs.Areas[0][0] != 1000 || cs.Areas[0][1] != 2000 || cs.Areas[1][0] != 205 {
		t.Errorf("areas %v", cs.Areas)
	}
	if b := cs.Samples[1].Objects[0]; b.Class != 2 || b.Box != (box.Box{X1: 1.5, Y1: 2.5, X2: 11.75, Y2: 22.5}) {
		t.Errorf("b: %+v", b)
	}
	if rep.Images != 3 || rep.Objects != 4 || rep.PerClass[0] != 2 || rep.Difficult != 1 || rep.Clipped != 1 || rep.ZeroAreaDropped != 1 || rep.Skipped != 2 {
		t.Errorf("report %+v", rep)
	}
	var msgs []string
	for _, p := range rep.Problems {
		msgs = append(msgs, filepath.Base(p.File)+": "+p.Msg)
	}
	all := strings.Join(msgs, "\n")
	for _, w := range []string{
		"instances_train.json: line 19: annotations[8] (id 9): image_id 99 is not in images",
		"instances_train.json: line 16: annotations[5] (id 6): bbox has 3 numbers, want 4",
		`instances_train.json: line 17: annotations[6] (id 7): unknown class "zebra" (category 2; known: cat, dog, bird)`,
		"instances_train.json: line 18: annotations[7] (id 8): bbox [200, 20, 30, 30] lies entirely outside the 100x80 image",
		"instances_train.json: line 8: images[4] (id 14): image missing.jpg not found in",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("problems lack %q:\n%s", w, all)
		}
	}
	if len(rep.Problems) != 5 {
		t.Errorf("%d problems:\n%s", len(rep.Problems), all)
	}

	// Check probes every image: the fake files are not images.
	_, rep, err = CheckCOCO(l, "train", names, fakeProber{"a.jpg": {100, 80}, "b.png": {200, 80}, "empty.jpg": {50, 50}})
	if err != nil {
		t.Fatal(err)
	}
	if ms := problemsOf(rep, "instances_train.json"); !strings.Contains(strings.Join(ms, "\n"), "images[1] (id 11) says 100x80 but the image is 200x80") {
		t.Errorf("size mismatch not reported: %q", ms)
	}
}

// Malformed files give one error naming the file, the line and the key.
func TestCOCOMalformed(t *testing.T) {
	f := newVOCFixture(t)
	l := VOCLayout{Root: f.root, Images: "images", Annotations: "annotations"}
	for _, tc := range []struct{ text, want string }{
		{"{\n  \"images\": [\n    {\"id\": 1,, \"file_name\": \"a.jpg\"}\n  ]\n}", "val.json: line 3: invalid JSON: invalid character ','"},
		{"{\"images\": [], \"categories\": [],\n\"annotations\": [\n {\"id\": 1, \"bbox\": \"10 20 30 40\"}]}", "val.json: line 3: annotations[0].bbox: a string where a list belongs"},
		{"{\"images\": [{\"id\": \"one\"}], \"categories\": []}", "val.json: line 1: images[0].id: a string where a number belongs"},
		{"{\"images\": [", "val.json: line 1: invalid JSON: the file ends too early"},
		{"{\"images\": [],\n \"categories\": [],\n \"annotations\": [\n  {\"id\": 1,\n   \"image_id\": 1},\n  {\"id\": 2,\n   \"bbox\": [1, 2, \"x\", 4]}\n]}",
			"val.json: line 7: annotations[1].bbox: a string where a number belongs"},
		{"{\"images\": [],\n \"categories\": [],\n \"annotations\": [\n  {\"id\": 1},\n  {\"id\": 2,\n   \"bbox\": [1, 2 3]}\n]}",
			"val.json: line 6: invalid JSON: invalid character '3' after array element"},
		{"[1, 2]", "val.json: line 1: not a COCO file: the top level must be a JSON object"},
		{"{\"annotations\": []}", `val.json: not a COCO detection file: no "images" or no "categories"`},
		{"{\"images\": 3, \"categories\": []}", "val.json: line 1: images must be a list"},
	} {
		f.write("annotations/val.json", tc.text)
		_, _, err := LoadCOCO(l, "val", []string{"a"}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.text, err, tc.want)
		}
	}
	_, _, err := LoadCOCO(l, "nosuch", []string{"a"}, nil)
	if err == nil || !strings.Contains(err.Error(), `split "nosuch": no COCO annotation file (tried `) {
		t.Errorf("missing split: %v", err)
	}
}

// Roboflow's export: SPLIT/_annotations.coco.json with the images beside it.
func TestCOCORoboflowLayout(t *testing.T) {
	f := newVOCFixture(t)
	f.write("valid/_annotations.coco.json", `{"images": [{"id": 0, "file_name": "x.jpg", "width": 20, "height": 20}],
		"annotations": [{"id": 0, "image_id": 0, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0}],
		"categories": [{"id": 0, "name": "cards"}, {"id": 1, "name": "ace"}]}`)
	f.write("valid/x.jpg", "x")
	cs, rep, err := LoadCOCO(VOCLayout{Root: f.root, Images: "images", Annotations: "annotations"}, "valid", []string{"ace"}, nil)
	if err != nil || len(rep.Problems) != 0 || len(cs.Samples) != 1 || len(cs.Samples[0].Objects) != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
}
