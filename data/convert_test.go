package data

import (
	"image"
	_ "image/jpeg"
	_ "image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sameDataset compares two loads of one data set: IDs, sizes and objects
// (class, name, difficult, and boxes to within tol pixels), in sample order.
// withDifficult false expects b to lack a's difficult objects (YOLO).
func sameDataset(t *testing.T, what string, a, b *Dataset, tol float64, withDifficult bool) {
	t.Helper()
	if !slices.Equal(a.Names, b.Names) {
		t.Errorf("%s: names %q vs %q", what, a.Names, b.Names)
	}
	if len(a.Samples) != len(b.Samples) {
		t.Fatalf("%s: %d samples vs %d", what, len(a.Samples), len(b.Samples))
	}
	bad := 0
	for i, sa := range a.Samples {
		sb := b.Samples[i]
		if sa.ID != sb.ID || sa.Width != sb.Width || sa.Height != sb.Height {
			t.Errorf("%s: sample %d: %s %dx%d vs %s %dx%d", what, i, sa.ID, sa.Width, sa.Height, sb.ID, sb.Width, sb.Height)
			bad++
		}
		var oa []Object
		for _, o := range sa.Objects {
			if withDifficult || !o.Difficult {
				oa = append(oa, o)
			}
		}
		if len(oa) != len(sb.Objects) {
			t.Errorf("%s: %s: %d objects vs %d", what, sa.ID, len(oa), len(sb.Objects))
			bad++
			continue
		}
		for j, o := range oa {
			p := sb.Objects[j]
			if o.Class != p.Class || o.Name != p.Name || o.Difficult != p.Difficult || !nearBox(o.Box, p.Box, tol) {
				t.Errorf("%s: %s object %d: %+v vs %+v", what, sa.ID, j, o, p)
				bad++
			}
		}
		if bad > 10 {
			t.Fatalf("%s: too many differences", what)
		}
	}
}

// byID returns a copy of ds with its samples sorted by ID: a YOLO split is
// a folder, read in path order, whatever order it was written in.
func byID(ds *Dataset) *Dataset {
	c := *ds
	c.Samples = slices.Clone(ds.Samples)
	slices.SortStableFunc(c.Samples, func(a, b Sample) int { return strings.Compare(a.ID, b.ID) })
	return &c
}

// stdProber reads image headers with the standard library (JPEG and PNG).
type stdProber struct{}

func (stdProber) Probe(p string) (int, int, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	c, _, err := image.DecodeConfig(f)
	return c.Width, c.Height, err
}

// A VOC set with two splits, a difficult object, a fractional coordinate
// and an image shared by both splits goes to COCO and back to VOC
// unchanged; to YOLO and back it loses only the difficult object (YOLO has
// no such flag) and boxes move by less than 1e-9 pixels.
func TestConvertRoundTrips(t *testing.T) {
	f := newVOCFixture(t)
	names := []string{"cat", "dog"}
	f.write("Annotations/a.xml", ann("a.jpg", "100x80", obj("cat", 0, "11", "21", "40", "50"), obj("dog", 1, "1", "1", "10.5", "10")))
	f.write("Annotations/b.xml", ann("b.png", "64x48", obj("dog", 0, "3", "4", "64", "48")))
	f.write("Annotations/c.xml", ann("c.jpg", "30x30"))
	f.write("JPEGImages/a.jpg", "a")
	f.write("JPEGImages/b.png", "b")
	f.write("JPEGImages/c.jpg", "c")
	f.write("ImageSets/Main/train.txt", "a\nb\n")
	f.write("ImageSets/Main/val.txt", "c\nb\n")
	probe := fakeProber{"a.jpg": {100, 80}, "b.png": {64, 48}, "c.jpg": {30, 30}}
	l := DefaultVOCLayout(f.root)
	load := func(format string, l VOCLayout, split string) (*Dataset, *COCOSplit) {
		t.Helper()
		ds, cs, rep, err := Load(format, l, split, names, probe, false)
		if err != nil || len(rep.Problems) > 0 {
			t.Fatalf("%s %s: %v %v", format, split, err, rep.Problems)
		}
		return ds, cs
	}
	orig := map[string]*Dataset{}
	var splits []SplitData
	for _, s := range []string{"train", "val"} {
		orig[s], _ = load(FormatVOC, l, s)
		splits = append(splits, SplitData{Name: s, Dataset: orig[s]})
	}
	out := t.TempDir()

	// VOC -> COCO -> VOC
	cocoDir := filepath.Join(out, "coco")
	rep, err := Write(FormatCOCO, cocoDir, names, splits)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images != 4 || rep.Objects != 4 || !strings.Contains(rep.Config, "format: coco") {
		t.Errorf("coco write report %+v", rep)
	}
	cl := VOCLayout{Root: cocoDir, Images: "images", Annotations: "annotations"}
	var back []SplitData
	for _, s := range []string{"train", "val"} {
		ds, cs := load(FormatCOCO, cl, s)
		sameDataset(t, "voc->coco "+s, orig[s], ds, 0, true)
		back = append(back, SplitData{Name: s, Dataset: ds, COCO: cs})
	}
	vocDir := filepath.Join(out, "voc")
	if _, err := Write(FormatVOC, vocDir, names, back); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"train", "val"} {
		ds, _ := load(FormatVOC, DefaultVOCLayout(vocDir), s)
		sameDataset(t, "voc->coco->voc "+s, orig[s], ds, 0, true)
	}
	// The XML keeps integers as integers and the fraction as written.
	if x, _ := os.ReadFile(filepath.Join(vocDir, "Annotations", "a.xml")); !strings.Contains(string(x), "<xmax>10.5</xmax>") || !strings.Contains(string(x), "<xmin>11</xmin>") || !strings.Contains(string(x), "<difficult>1</difficult>") {
		t.Errorf("a.xml:\n%s", x)
	}

	// COCO -> COCO keeps the image and category ids and the areas.
	coco2 := filepath.Join(out, "coco2")
	if _, err := Write(FormatCOCO, coco2, names, back); err != nil {
		t.Fatal(err)
	}
	f1, _ := os.ReadFile(filepath.Join(cocoDir, "annotations", "instances_train.json"))
	f2, _ := os.ReadFile(filepath.Join(coco2, "annotations", "instances_train.json"))
	if string(f1) != string(f2) {
		t.Errorf("coco -> coco changed the file:\n%s\n%s", f1, f2)
	}

	// VOC -> YOLO -> VOC
	yoloDir := filepath.Join(out, "yolo")
	rep, err = Write(FormatYOLO, yoloDir, names, splits)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LeftOut != 1 {
		t.Errorf("YOLO left out %d difficult objects, want 1", rep.LeftOut)
	}
	yl := VOCLayout{Root: yoloDir, Images: "images", Annotations: "labels"}
	var fromYOLO []SplitData
	for _, s := range []string{"train", "val"} {
		ds, _ := load(FormatYOLO, yl, s)
		sameDataset(t, "voc->yolo "+s, byID(orig[s]), ds, 1e-9, false)
		fromYOLO = append(fromYOLO, SplitData{Name: s, Dataset: ds})
	}
	voc2 := filepath.Join(out, "voc2")
	if _, err := Write(FormatVOC, voc2, names, fromYOLO); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"train", "val"} {
		ds, _ := load(FormatVOC, DefaultVOCLayout(voc2), s)
		sameDataset(t, "voc->yolo->voc "+s, byID(orig[s]), ds, 1e-9, false)
	}

	// Detect finds each written layout, its splits and its names.
	readNames := func(p string) ([]string, error) { return []string{"from " + filepath.Base(p)}, nil }
	for _, tc := range []struct {
		format, dir string
		names       []string
	}{
		{FormatVOC, vocDir, names},
		{FormatCOCO, cocoDir, names},
		{FormatYOLO, yoloDir, []string{"from data.yaml"}},
	} {
		src, err := Detect(tc.format, tc.dir, nil, readNames)
		if err != nil {
			t.Fatalf("detect %s: %v", tc.format, err)
		}
		if !slices.Equal(src.Splits, []string{"train", "val"}) || !slices.Equal(src.Names, tc.names) {
			t.Errorf("detect %s: splits %q names %q", tc.format, src.Splits, src.Names)
		}
	}

	// The same image id in two splits with different images cannot share
	// VOC's single image folder.
	other := &Dataset{Names: names, Samples: []Sample{{ID: "a", ImagePath: filepath.Join(f.root, "JPEGImages", "c.jpg"), Width: 30, Height: 30}}}
	_, err = Write(FormatVOC, filepath.Join(out, "clash"), names, []SplitData{splits[0], {Name: "x", Dataset: other}})
	if err == nil || !strings.Contains(err.Error(), `image id "a" is in split train`) {
		t.Errorf("clash: %v", err)
	}
}

// The real playing-cards set (VOC, split folders, mixed .JPG/.jpg) through
// COCO and YOLO and back.
func TestConvertPlayingCards(t *testing.T) {
	root := filepath.Join("..", "..", "shared", "data", "playing-cards")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("playing-cards data set not found at %s: %v", root, err)
	}
	if testing.Short() {
		t.Skip("reads 363 images; skipped with -short")
	}
	src, err := Detect(FormatVOC, root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(src.Splits, []string{"train", "test"}) || len(src.Names) != 6 {
		t.Fatalf("detected %+v", src)
	}
	var splits []SplitData
	for _, s := range src.Splits {
		ds, _, rep, err := Load(FormatVOC, src.Layout, s, src.Names, stdProber{}, false)
		if err != nil || len(rep.Problems) > 0 {
			t.Fatalf("%s: %v %v", s, err, rep.Problems)
		}
		splits = append(splits, SplitData{Name: s, Dataset: ds})
	}
	out := t.TempDir()
	for _, format := range []string{FormatCOCO, FormatYOLO} {
		dir := filepath.Join(out, format)
		if _, err := Write(format, dir, src.Names, splits); err != nil {
			t.Fatal(err)
		}
		l := VOCLayout{Root: dir, Images: "images", Annotations: "annotations"}
		if format == FormatYOLO {
			l.Annotations = "labels"
		}
		var back []SplitData
		for i, s := range src.Splits {
			ds, cs, rep, err := Load(format, l, s, src.Names, stdProber{}, false)
			if err != nil || len(rep.Problems) > 0 {
				t.Fatalf("%s %s: %v %v", format, s, err, rep.Problems)
			}
			sameDataset(t, "playing-cards voc->"+format+" "+s, byID(splits[i].Dataset), byID(ds), 1e-9, format != FormatYOLO)
			back = append(back, SplitData{Name: s, Dataset: ds, COCO: cs})
		}
		vocDir := filepath.Join(out, format+"-voc")
		if _, err := Write(FormatVOC, vocDir, src.Names, back); err != nil {
			t.Fatal(err)
		}
		for i, s := range src.Splits {
			ds, _, _, err := Load(FormatVOC, DefaultVOCLayout(vocDir), s, src.Names, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			sameDataset(t, "playing-cards voc->"+format+"->voc "+s, byID(splits[i].Dataset), byID(ds), 1e-9, format != FormatYOLO)
		}
	}
}
