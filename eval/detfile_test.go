package eval

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
)

// testResolver: images 100..102 by id (indices 0..2) and "seven.jpg"
// (index 7) by name; categories 1 and 90 (indices 0, 1) by id and "dog"
// (index 1) by name.
var testResolver = Resolver{
	ImageByID:   func(id int64) (int, bool) { return int(id) - 100, id >= 100 && id < 103 },
	ImageByName: func(n string) (int, bool) { return 7, n == "seven.jpg" },
	ClassByID:   func(id int64) (int, bool) { return map[int64]int{1: 0, 90: 1}[id], id == 1 || id == 90 },
	ClassByName: func(n string) (int, bool) { return 1, n == "dog" },
}

func TestParseCOCOResults(t *testing.T) {
	r := testResolver
	dets, sk, err := ParseCOCOResults([]byte(`[
	 {"image_id": 101, "category_id": 90, "bbox": [1, 2, 3, 4], "score": 0.5},
	 {"image_id": 5, "file_name": "seven.jpg", "category_id": 7, "category_name": "dog", "bbox": [0, 0, 1, 1], "score": 1},
	 {"image_id": 102.0, "category_id": 1.0, "bbox": [0.5, 0.5, 1, 1], "score": 0}]`), "r.json", r, ReadOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	// bbox [1, 2, 3, 4] is continuous: (1, 2) to (1+3, 2+4); nothing is added.
	want := []Detection{
		{Image: 1, Class: 1, Score: 0.5, Box: box.Box{X1: 1, Y1: 2, X2: 4, Y2: 6}},
		{Image: 7, Class: 1, Score: 1, Box: box.Box{X1: 0, Y1: 0, X2: 1, Y2: 1}},
		{Image: 2, Class: 0, Score: 0, Box: box.Box{X1: 0.5, Y1: 0.5, X2: 1.5, Y2: 1.5}},
	}
	if !reflect.DeepEqual(dets, want) || !sk.Empty() {
		t.Errorf("dets %+v, skipped %+v", dets, sk)
	}
	for text, want := range map[string]string{
		"[\n{\"image_id\": 100,, }]": "r.json: line 2: invalid JSON",
		`[{"image_id": 100, "category_id": 1, "bbox": "1 2 3 4", "score": 1}]`: "r.json: line 1: bbox: wrong type (string)",
		`{"image_id": 100}`: "r.json: line 1: top level: wrong type (object)",
		`[{"image_id": 100, "category_id": 1, "bbox": [1, 2, 3, 4]}]`:                     "r.json: entry 0: no score",
		`[{"image_id": 100, "category_id": 1, "bbox": [1, 2, -3, 4], "score": 1}]`:        "r.json: entry 0: bbox [1 2 -3 4] has a negative width or height",
		`[{"image_id": 100, "category_id": 1, "bbox": [1e308, 2, 1e308, 4], "score": 1}]`: "r.json: entry 0: bbox [1e+308 2 1e+308 4]: x+width or y+height is beyond the float64 range",
		`[{"image_id": 100, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 1}]`:         "r.json: entry 0: category_id 2 is not a category of the data set",
		`[{"image_id": 100, "category_id": 1.5, "bbox": [1, 2, 3, 4], "score": 1}]`:       "r.json: entry 0: category_id 1.5 is not a category id",
		`[{"image_id": 100, "category_name": "cat", "bbox": [1, 2, 3, 4], "score": 1}]`:   `r.json: entry 0: category_name "cat" is not a class of the data set`,
		`[{"image_id": "x", "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]`:         `r.json: entry 0: image_id "x" is not an image of the split`,
		`[{"file_name": "x.jpg", "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]`:    `r.json: entry 0: file_name "x.jpg" is not an image of the split`,
		`[{"image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]`:          `r.json: entry 0: image_id 99 is not an image of the split`,
		`[{"image_id": true, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]`:        `r.json: entry 0: image_id true is not an image id`,
		`[{"category_id": 1, "bbox": [1, 2, 3], "score": 1}]`:                             "r.json: entry 0: no image_id",
		`[{"image_id": 100, "bbox": [1, 2, 3, 4], "score": 1}]`:                           "r.json: entry 0: no category_id",
		`[{"image_id": 100, "category_id": null, "bbox": [1, 2, 3, 4], "score": 1}]`:      "r.json: entry 0: no category_id",
		`[{"image_id": null, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]`:        "r.json: entry 0: no image_id",
	} {
		if _, _, err := ParseCOCOResults([]byte(text), "r.json", r, ReadOptions{Strict: true}); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", text, err, want)
		}
	}
}

// Without Strict, entries of unknown images and classes are left out and
// counted; malformed entries are still errors.
func TestParseCOCOResultsSkipsUnknown(t *testing.T) {
	text := `[
	 {"image_id": 100, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9},
	 {"image_id": 100, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.8},
	 {"image_id": 101, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.7},
	 {"image_id": 101, "category_name": "cat", "bbox": [1, 2, 3, 4], "score": 0.7},
	 {"image_id": 99, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.6},
	 {"file_name": "x.jpg", "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
	 {"image_id": "x.jpg", "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
	 {"image_id": 102, "category_id": 90, "bbox": [1, 2, 3, 4], "score": 0.4}]`
	dets, sk, err := ParseCOCOResults([]byte(text), "r.json", testResolver, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Kept: entries 0 and 7. Classes: entries 1, 2 (category 3) and 3
	// ("cat"). Images: entry 4 (99, counted there although its category is
	// unknown too), 5 and 6 (x.jpg twice, named once).
	if len(dets) != 2 || dets[0].Image != 0 || dets[1].Image != 2 || dets[1].Class != 1 {
		t.Errorf("dets %+v", dets)
	}
	want := Skipped{Images: 3, ImageNames: []string{"99", "x.jpg"}, Classes: 3, ClassNames: []string{"3", "cat"}}
	if !reflect.DeepEqual(sk, want) {
		t.Errorf("skipped %+v, want %+v", sk, want)
	}
	if got, want := sk.String(), `skipped 6 detections: 3 of 2 classes not in the data set ("3", "cat"), 3 of 2 images not in the split ("99", "x.jpg") (--strict makes this an error)`; got != want {
		t.Errorf("warning\n%s\nwant\n%s", got, want)
	}
	bad := `[{"image_id": 99, "category_id": 3, "bbox": [1, 2, 3], "score": 0.6}]`
	if _, _, err := ParseCOCOResults([]byte(bad), "r.json", testResolver, ReadOptions{}); err == nil || !strings.HasPrefix(err.Error(), "r.json: entry 0: bbox has 3 numbers") {
		t.Errorf("malformed entry of an unknown image: %v", err)
	}
}

func TestSkippedString(t *testing.T) {
	if s := (Skipped{}).String(); s != "" {
		t.Errorf("empty: %q", s)
	}
	// A file of an unknown image with no lines still names the image.
	if got, want := (Skipped{ImageNames: []string{"a"}}).String(), `skipped 0 detections: 0 of 1 image not in the split ("a") (--strict makes this an error)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s := Skipped{Classes: 7, ClassNames: []string{"a", "b", "c", "d", "e", "f", "g"}}
	if got, want := s.String(), `skipped 7 detections: 7 of 7 classes not in the data set ("a", "b", "c", "d", "e", and 2 more) (--strict makes this an error)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s = Skipped{Images: 1, ImageNames: []string{"x"}}
	if got, want := s.String(), `skipped 1 detection: 1 of 1 image not in the split ("x") (--strict makes this an error)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func writeTxt(t *testing.T, dir, rel, text string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

var catDog = func(n string) (int, bool) { return map[string]int{"cat": 0, "dog": 1}[n], n == "cat" || n == "dog" }

func TestReadTxtDetections(t *testing.T) {
	dir := t.TempDir()
	writeTxt(t, dir, "a.txt", "cat 0.5 1 2 3 4\n\n1 0.25 0 0 10 10\n")
	writeTxt(t, dir, "sub/b.txt", "dog 1 0 0 1 1\n")
	dets, sk, err := ReadTxtDetections(dir, []string{"a", "sub/b", "c"}, catDog, 2, ReadOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []Detection{
		{Image: 0, Class: 0, Score: 0.5, Box: bx(1, 2, 3, 4)},
		{Image: 0, Class: 1, Score: 0.25, Box: bx(0, 0, 10, 10)},
		{Image: 1, Class: 1, Score: 1, Box: bx(0, 0, 1, 1)},
	}
	if !reflect.DeepEqual(dets, want) || !sk.Empty() {
		t.Errorf("continuous: dets %+v, skipped %+v", dets, sk)
	}
	// VOC devkit corners: 1-based inclusive, read as box.FromVOC.
	dets, _, err = ReadTxtDetections(dir, []string{"a", "sub/b", "c"}, catDog, 2, ReadOptions{Corners: VOCPixels, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i].Box = box.FromVOC(want[i].Box.X1, want[i].Box.Y1, want[i].Box.X2, want[i].Box.Y2)
	}
	// "cat 0.5 1 2 3 4" covers VOC pixels 1..3 x 2..4: continuous (0, 1) to (3, 4).
	if !reflect.DeepEqual(dets, want) || dets[0].Box != bx(0, 1, 3, 4) {
		t.Errorf("voc: dets %+v", dets)
	}
	writeTxt(t, dir, "zzz.txt", "cat 1 0 0 1 1\n")
	if _, _, err := ReadTxtDetections(dir, []string{"a", "sub/b"}, catDog, 2, ReadOptions{Strict: true}); err == nil || !strings.Contains(err.Error(), "zzz.txt: no image zzz in the split") {
		t.Errorf("unknown file: %v", err)
	}
	os.Remove(filepath.Join(dir, "zzz.txt"))
	writeTxt(t, dir, "a.txt", "bird 0.5 1 2 3 4\n")
	if _, _, err := ReadTxtDetections(dir, []string{"a", "sub/b"}, catDog, 2, ReadOptions{Strict: true}); err == nil || !strings.Contains(err.Error(), `a.txt:1: class "bird" is neither a class name nor an index in 0..1`) {
		t.Errorf("bad class: %v", err)
	}
	for text, want := range map[string]string{
		"cat 0.5 1 2 3\n":        "a.txt:1: 5 fields, want 6: class score x1 y1 x2 y2",
		"\ncat 0.5 1 2 3 NaN\n":  `a.txt:2: "NaN" is not a number`,
		"cat 0.5 1 2 0 4\n":      "a.txt:1: x2 < x1 or y2 < y1",
		"bird 0.5 1 2 3 4 5\n":   "a.txt:1: 7 fields, want 6",
		"bird high 1 2 3 4\n":    `a.txt:1: "high" is not a number`,
		"7 0.5 1 2 3 4\ncat 1\n": "a.txt:2: 2 fields, want 6",
	} {
		writeTxt(t, dir, "a.txt", text)
		if _, _, err := ReadTxtDetections(dir, []string{"a", "sub/b"}, catDog, 2, ReadOptions{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", text, err, want)
		}
	}
	if _, _, err := ReadTxtDetections(filepath.Join(dir, "a.txt"), nil, catDog, 2, ReadOptions{}); err == nil || !strings.Contains(err.Error(), "a.txt: not a folder of detection txt files") {
		t.Errorf("a file: %v", err)
	}
}

// Without Strict, lines of unknown classes (names or indices) and files of
// unknown images are left out and counted.
func TestReadTxtDetectionsSkipsUnknown(t *testing.T) {
	dir := t.TempDir()
	writeTxt(t, dir, "a.txt", "cat 0.5 1 2 3 4\nbird 0.4 1 2 3 4\n2 0.3 1 2 3 4\nbird 0.2 1 2 3 4\n")
	writeTxt(t, dir, "zzz.txt", "cat 1 0 0 1 1\nemu 1 0 0 1 1\n")
	writeTxt(t, dir, "sub/yyy.txt", "")
	dets, sk, err := ReadTxtDetections(dir, []string{"a", "b"}, catDog, 2, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 || dets[0] != (Detection{Image: 0, Class: 0, Score: 0.5, Box: bx(1, 2, 3, 4)}) {
		t.Errorf("dets %+v", dets)
	}
	// a.txt: bird twice and index 2 (of 0..1); zzz.txt: 2 lines, its emu
	// counted with its image; sub/yyy.txt: empty but named. WalkDir visits
	// sub/yyy.txt before zzz.txt (lexical order).
	want := Skipped{Images: 2, ImageNames: []string{"sub/yyy", "zzz"}, Classes: 3, ClassNames: []string{"bird", "2"}}
	if !reflect.DeepEqual(sk, want) {
		t.Errorf("skipped %+v, want %+v", sk, want)
	}
	// A malformed line in a file of an unknown image is still an error.
	writeTxt(t, dir, "zzz.txt", "cat 1 0 0 1\n")
	if _, _, err := ReadTxtDetections(dir, []string{"a", "b"}, catDog, 2, ReadOptions{}); err == nil || !strings.Contains(err.Error(), "zzz.txt:1: 5 fields") {
		t.Errorf("malformed unknown file: %v", err)
	}
}

// The boundary case, worked by hand. Ground truth (VOC XML)
// (xmin, ymin, xmax, ymax) = (2, 63, 134, 215), a detection line with
// corners (19, 90, 143, 182) on a VOC data set. The VOC devkit
// (voc_eval.py) computes, with its +1 widths on both boxes as written:
//
//	gt area  (134-2+1) * (215-63+1)  = 133 * 153 = 20349
//	det area (143-19+1) * (182-90+1) = 125 * 93  = 11625
//	iw = min(134,143) - max(2,19) + 1   = 134 - 19 + 1 = 116
//	ih = min(215,182) - max(63,90) + 1  = 182 - 90 + 1 = 93
//	inter = 116 * 93 = 10788, union = 20349 + 11625 - 10788 = 21186
//	IoU = 10788 / 21186 = 0.50920... > 0.5: a true positive.
//
// (The issue says 0.506; the arithmetic above gives 0.5092.) Read as
// continuous corners instead, the detection is (19, 90)-(143, 182): area
// 124 * 92 = 11408, against the ground truth's continuous (1, 62)-(134,
// 215): inter 115 * 92 = 10580, union 20349 + 11408 - 10580 = 21177, IoU
// 0.49960 < 0.5: a false positive, which is what dettrain did before the
// txt corners of a VOC data set went through box.FromVOC.
func TestTxtVOCBoundaryCase(t *testing.T) {
	dir := t.TempDir()
	writeTxt(t, dir, "img.txt", "cat 0.9 19 90 143 182\n")
	gts := []GroundTruth{{Image: 0, Class: 0, Box: box.FromVOC(2, 63, 134, 215)}}
	for _, c := range []struct {
		corners Corners
		iou, ap float64
	}{
		{VOCPixels, 10788.0 / 21186, 1},
		{Continuous, 10580.0 / 21177, 0},
	} {
		dets, _, err := ReadTxtDetections(dir, []string{"img"}, catDog, 2, ReadOptions{Corners: c.corners, Strict: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(dets) != 1 {
			t.Fatalf("dets %+v", dets)
		}
		// Integer operands: the quotient is the one rounding, so equality is exact.
		if got := box.IoU(dets[0].Box, gts[0].Box); got != c.iou {
			t.Errorf("corners %d: IoU %.6f, want %.6f", c.corners, got, c.iou)
		}
		r := VOC(dets, gts, []string{"cat", "dog"}, 0.5)
		// One ground truth, one detection: AP is 1 for a true positive, 0 for
		// a false one; all-point AP is the single product (1-0)*1, exact;
		// the 11-point AP adds 1/11 eleven times, each addition rounding
		// by at most 2^-53 (relative, on a sum <= 1).
		if r.PerClass[0].AP != c.ap || math.Abs(r.PerClass[0].AP07-c.ap) > 11*0x1p-53 {
			t.Errorf("corners %d: AP %v, AP07 %v, want %v", c.corners, r.PerClass[0].AP, r.PerClass[0].AP07, c.ap)
		}
	}
}
