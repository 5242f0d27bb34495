package eval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCOCOResults(t *testing.T) {
	r := Resolver{
		ImageByID:   func(id int64) (int, bool) { return int(id) - 100, id >= 100 && id < 103 },
		ImageByName: func(n string) (int, bool) { return 7, n == "seven.jpg" },
		ClassByID:   func(id int64) (int, bool) { return map[int64]int{1: 0, 90: 1}[id], id == 1 || id == 90 },
		ClassByName: func(n string) (int, bool) { return 1, n == "dog" },
	}
	dets, err := ParseCOCOResults([]byte(`[
	 {"image_id": 101, "category_id": 90, "bbox": [1, 2, 3, 4], "score": 0.5},
	 {"image_id": 5, "file_name": "seven.jpg", "category_id": 7, "category_name": "dog", "bbox": [0, 0, 1, 1], "score": 1}]`), "r.json", r)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 2 || dets[0].Image != 1 || dets[0].Class != 1 || dets[0].Box.X2 != 4 || dets[0].Box.Y2 != 6 || dets[1].Image != 7 || dets[1].Class != 1 {
		t.Errorf("dets %+v", dets)
	}
	for text, want := range map[string]string{
		"[\n{\"image_id\": 100,, }]": "r.json: line 2: invalid JSON",
		`[{"image_id": 100, "category_id": 1, "bbox": "1 2 3 4", "score": 1}]`:     "r.json: line 1: bbox: wrong type (string)",
		`[{"image_id": 100, "category_id": 1, "bbox": [1, 2, 3, 4]}]`:              "r.json: entry 0: no score",
		`[{"image_id": 100, "category_id": 1, "bbox": [1, 2, -3, 4], "score": 1}]`: "r.json: entry 0: bbox [1 2 -3 4] has a negative width or height",
		`[{"image_id": 100, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 1}]`:  "r.json: entry 0: category_id 2 is not a category of the data set",
		`[{"image_id": "x", "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]`:  `r.json: entry 0: image_id "x" is not an image of the split`,
		`[{"category_id": 1, "bbox": [1, 2, 3], "score": 1}]`:                      "r.json: entry 0: no image_id",
	} {
		if _, err := ParseCOCOResults([]byte(text), "r.json", r); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", text, err, want)
		}
	}
}

func TestReadTxtDetections(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.txt", "cat 0.5 1 2 3 4\n\n1 0.25 0 0 10 10\n")
	write("sub/b.txt", "dog 1 0 0 1 1\n")
	byName := func(n string) (int, bool) { return map[string]int{"cat": 0, "dog": 1}[n], n == "cat" || n == "dog" }
	dets, err := ReadTxtDetections(dir, []string{"a", "sub/b", "c"}, byName, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 3 || dets[0] != (Detection{Image: 0, Class: 0, Score: 0.5, Box: bx(1, 2, 3, 4)}) || dets[1].Class != 1 || dets[2].Image != 1 {
		t.Errorf("dets %+v", dets)
	}
	write("zzz.txt", "cat 1 0 0 1 1\n")
	if _, err := ReadTxtDetections(dir, []string{"a", "sub/b"}, byName, 2); err == nil || !strings.Contains(err.Error(), "zzz.txt: no image zzz in the split") {
		t.Errorf("unknown file: %v", err)
	}
	os.Remove(filepath.Join(dir, "zzz.txt"))
	write("a.txt", "bird 0.5 1 2 3 4\n")
	if _, err := ReadTxtDetections(dir, []string{"a", "sub/b"}, byName, 2); err == nil || !strings.Contains(err.Error(), `a.txt:1: class "bird" is neither a class name nor an index in 0..1`) {
		t.Errorf("bad class: %v", err)
	}
}
