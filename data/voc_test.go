package data

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
)

// vocFixture builds a VOC tree in a temp folder.
type vocFixture struct {
	t    *testing.T
	root string
}

func newVOCFixture(t *testing.T) *vocFixture {
	t.Helper()
	f := &vocFixture{t: t, root: t.TempDir()}
	for _, d := range []string{"JPEGImages", "Annotations", "ImageSets/Main"} {
		if err := os.MkdirAll(filepath.Join(f.root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *vocFixture) write(rel, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// obj is a VOC <object> with its numbers as text.
func obj(name string, difficult int, xmin, ymin, xmax, ymax string) string {
	return fmt.Sprintf(`
	<object>
		<name>%s</name>
		<difficult>%d</difficult>
		<bndbox><xmin>%s</xmin><ymin>%s</ymin><xmax>%s</xmax><ymax>%s</ymax></bndbox>
	</object>`, name, difficult, xmin, ymin, xmax, ymax)
}

// ann is a VOC annotation of a 100x80 image unless size is "".
func ann(filename, size string, objs ...string) string {
	s := "<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>" + filename + "</filename>\n"
	if size != "" {
		s += "\t<size><width>" + strings.Split(size, "x")[0] + "</width><height>" + strings.Split(size, "x")[1] + "</height><depth>3</depth></size>\n"
	}
	return s + strings.Join(objs, "") + "\n</annotation>\n"
}

// fakeProber returns the sizes in its map; a missing path is an error.
type fakeProber map[string][2]int

func (p fakeProber) Probe(path string) (int, int, error) {
	s, ok := p[filepath.Base(path)]
	if !ok {
		return 0, 0, fmt.Errorf("cannot decode image %s", path)
	}
	return s[0], s[1], nil
}

func problemsOf(r *Report, file string) []string {
	var ms []string
	for _, p := range r.Problems {
		if filepath.Base(p.File) == file {
			ms = append(ms, p.Msg)
		}
	}
	return ms
}

func TestLoadVOC(t *testing.T) {
	f := newVOCFixture(t)
	names := []string{"cat", "dog"}
	img := func(name string) { f.write("JPEGImages/"+name, "not really an image") }

	// good: one plain object, one difficult one, one clipped (xmax 110 > 100).
	f.write("Annotations/good.xml", ann("good.jpg", "100x80",
		obj("cat", 0, "11", "21", "40", "50"),
		obj("dog", 1, "1", "1", "10.5", "10"),
		obj("dog", 0, "61", "41", "110", "80")))
	img("good.jpg")
	f.write("Annotations/malformed.xml", "<annotation><size><width>100</width></annotation>")
	img("malformed.jpg")
	f.write("Annotations/noimage.xml", ann("noimage.jpg", "100x80", obj("cat", 0, "1", "1", "5", "5")))
	f.write("Annotations/unknown.xml", ann("unknown.jpg", "100x80", obj("bird", 0, "1", "1", "5", "5")))
	img("unknown.jpg")
	f.write("Annotations/outside.xml", ann("outside.jpg", "100x80", obj("cat", 0, "101", "1", "120", "5")))
	img("outside.jpg")
	f.write("Annotations/zero.xml", ann("zero.jpg", "100x80",
		obj("cat", 0, "50", "10", "50", "20"), obj("dog", 0, "1", "1", "5", "5")))
	img("zero.jpg")
	f.write("Annotations/inverted.xml", ann("inverted.jpg", "100x80", obj("cat", 0, "30", "1", "20", "5")))
	img("inverted.jpg")
	f.write("Annotations/badnum.xml", ann("badnum.jpg", "100x80", obj("cat", 0, "abc", "1", "20", "5")))
	img("badnum.jpg")
	f.write("Annotations/nosize.xml", ann("nosize.jpg", "", obj("cat", 0, "1", "1", "20", "5")))
	img("nosize.jpg")
	// byname: <filename> differs from the id; byext: found by extension.
	f.write("Annotations/byname.xml", ann("other.png", "100x80", obj("cat", 0, "1", "1", "20", "5")))
	img("other.png")
	f.write("Annotations/byext.xml", ann("", "100x80", obj("dog", 0, "1", "1", "20", "5")))
	img("byext.PNG")
	f.write("ImageSets/Main/train.txt", "good\nmalformed\n\nnoimage\nunknown 1\noutside\nzero\ninverted\nbadnum\nnosize\nnoxml\nbyname\nbyext\n")

	l := DefaultVOCLayout(f.root)
	ds, rep, err := LoadVOC(l, "train", names, nil)
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		"malformed.xml": "malformed XML: XML syntax error on line 1",
		"noimage.xml":   "image not found in " + filepath.Join(f.root, "JPEGImages"),
		"unknown.xml":   `line 6: object 1: unknown class "bird" (known: cat, dog)`,
		"outside.xml":   "lies entirely outside the 100x80 image",
		"inverted.xml":  "has xmax < xmin",
		"badnum.xml":    `<bndbox><xmin>: "abc" is not a number`,
		"nosize.xml":    "no <size>",
		"noxml.xml":     "cannot read annotation: no such file",
	}
	for file, msg := range want {
		ms := problemsOf(rep, file)
		if len(ms) != 1 || !strings.Contains(ms[0], msg) {
			t.Errorf("problems of %s = %q, want one containing %q", file, ms, msg)
		}
	}
	if len(rep.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(rep.Problems), len(want), rep.Problems)
	}
	if got := rep.Problems[0].String(); got != filepath.Join(f.root, "Annotations", "malformed.xml")+": malformed XML: XML syntax error on line 1: element <size> closed by </annotation>" {
		t.Errorf("Problem.String() = %q", got)
	}

	var ids []string
	for _, s := range ds.Samples {
		ids = append(ids, s.ID)
	}
	if got := strings.Join(ids, " "); got != "good zero byname byext" {
		t.Errorf("samples %q", got)
	}
	wantRep := Report{Images: 4, Objects: 6, PerClass: []int{2, 4}, Difficult: 1, ZeroAreaDropped: 1, Clipped: 1, Skipped: 8}
	rep.Problems = nil
	if fmt.Sprint(*rep) != fmt.Sprint(wantRep) {
		t.Errorf("report %+v, want %+v", *rep, wantRep)
	}

	good := ds.Samples[0]
	if good.Width != 100 || good.Height != 80 || good.ImagePath != filepath.Join(f.root, "JPEGImages", "good.jpg") ||
		good.AnnPath != filepath.Join(f.root, "Annotations", "good.xml") {
		t.Errorf("good sample %+v", good)
	}
	wantObjs := []Object{
		{Class: 0, Name: "cat", Box: box.Box{X1: 10, Y1: 20, X2: 40, Y2: 50}},
		{Class: 1, Name: "dog", Box: box.Box{X1: 0, Y1: 0, X2: 10.5, Y2: 10}, Difficult: true},
		{Class: 1, Name: "dog", Box: box.Box{X1: 60, Y1: 40, X2: 100, Y2: 80}},
	}
	if fmt.Sprint(good.Objects) != fmt.Sprint(wantObjs) {
		t.Errorf("good objects %v, want %v", good.Objects, wantObjs)
	}
	if p := ds.Samples[2].ImagePath; filepath.Base(p) != "other.png" {
		t.Errorf("byname image %s", p)
	}
	if p := ds.Samples[3].ImagePath; filepath.Base(p) != "byext.PNG" {
		t.Errorf("byext image %s", p)
	}

	// With a prober the size of nosize comes from the image.
	pr := fakeProber{"nosize.jpg": {100, 80}}
	ds, _, err = LoadVOC(l, "train", names, pr)
	if err != nil {
		t.Fatal(err)
	}
	if s := ds.Samples[2]; s.ID != "nosize" || s.Width != 100 || s.Height != 80 {
		t.Errorf("probed sample %+v", s)
	}

	// A missing split is the one returned error.
	if _, _, err := LoadVOC(l, "nosuch", names, nil); err == nil || !strings.Contains(err.Error(), "nosuch.txt") {
		t.Errorf("missing split: err = %v", err)
	}

	var buf bytes.Buffer
	if err := rep.Summary(&buf, names); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"images:", "  cat ", "zero-area boxes dropped:", "problems:"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, buf.String())
		}
	}
}

func TestCheck(t *testing.T) {
	f := newVOCFixture(t)
	f.write("Annotations/a.xml", ann("a.jpg", "100x80", obj("cat", 0, "1", "1", "90", "70")))
	f.write("Annotations/b.xml", ann("b.jpg", "100x80", obj("cat", 0, "1", "1", "90", "70")))
	f.write("Annotations/c.xml", ann("c.jpg", "100x80", obj("cat", 0, "1", "1", "90", "70")))
	for _, n := range []string{"a.jpg", "b.jpg", "c.jpg"} {
		f.write("JPEGImages/"+n, "x")
	}
	f.write("ImageSets/Main/val.txt", "a\nb\nc\n")
	pr := fakeProber{"a.jpg": {100, 80}, "b.jpg": {50, 40}} // c unreadable
	_, rep, err := Check(DefaultVOCLayout(f.root), "val", []string{"cat"}, pr)
	if err != nil {
		t.Fatal(err)
	}
	if ms := problemsOf(rep, "b.xml"); len(ms) != 1 || ms[0] != "<size> says 100x80 but the image is 50x40; using the image's size" {
		t.Errorf("b: %q", ms)
	}
	if ms := problemsOf(rep, "c.jpg"); len(ms) != 1 || !strings.Contains(ms[0], "unreadable image: cannot decode image") {
		t.Errorf("c: %q", ms)
	}
	if rep.Images != 1 || len(rep.Problems) != 2 {
		t.Errorf("report %+v", rep)
	}
	if _, _, err := Check(DefaultVOCLayout(f.root), "val", []string{"cat"}, nil); err == nil {
		t.Error("Check without a prober: no error")
	}
}

func TestLoadVOCFolderSplit(t *testing.T) {
	f := newVOCFixture(t)
	f.write("Annotations/train/b.xml", ann("b.jpg", "100x80", obj("cat", 0, "1", "1", "9", "9")))
	f.write("Annotations/train/a.xml", ann("a.jpg", "100x80", obj("cat", 0, "1", "1", "9", "9")))
	f.write("Annotations/train/notes.txt", "ignored")
	f.write("JPEGImages/train/a.jpg", "x")
	f.write("JPEGImages/train/b.jpg", "x")
	ds, rep, err := LoadVOC(DefaultVOCLayout(f.root), "train", []string{"cat"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || len(ds.Samples) != 2 {
		t.Fatalf("samples %v, problems %v", ds.Samples, rep.Problems)
	}
	s := ds.Samples[0]
	if s.ID != "a" || s.ImagePath != filepath.Join(f.root, "JPEGImages", "train", "a.jpg") ||
		s.AnnPath != filepath.Join(f.root, "Annotations", "train", "a.xml") {
		t.Errorf("sample %+v", s)
	}
	if _, _, err := LoadVOC(DefaultVOCLayout(f.root), "val", []string{"cat"}, nil); err == nil {
		t.Error("missing split folder: no error")
	}
}

// TestLoadBCCD reads the BCCD data set that configs/bccd-yolov3-tiny.yaml
// trains on (its data.root, /work/shared/data/bccd when the repository is
// /work/main); skipped where it is absent. The expected numbers were
// counted with a short Python script (xml.etree) over the same files: split
// sizes from ImageSets/Main/*.txt, objects per class leaving out the two
// boxes with xmin == xmax (BloodImage_00338 in val, _00343 in train).
func TestLoadBCCD(t *testing.T) {
	root := "/work/shared/data/bccd"
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		t.Skip("/work/shared/data/bccd not found")
	}
	l := VOCLayout{Root: root, Images: "images", Annotations: "annotations", Splits: "splits/Main"}
	names := []string{"RBC", "WBC", "Platelets"}
	want := map[string]Report{
		"train": {Images: 205, Objects: 2804, PerClass: []int{2381, 214, 209}, ZeroAreaDropped: 1},
		"val":   {Images: 87, Objects: 1137, PerClass: []int{967, 87, 83}, ZeroAreaDropped: 1},
		"test":  {Images: 72, Objects: 945, PerClass: []int{805, 71, 69}},
	}
	zero := 0
	for split, w := range want {
		ds, rep, err := LoadVOC(l, split, names, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) != 0 {
			t.Errorf("%s: problems %v", split, rep.Problems)
		}
		if fmt.Sprint(*rep) != fmt.Sprint(w) || len(ds.Samples) != w.Images {
			t.Errorf("%s: report %+v, want %+v", split, *rep, w)
		}
		zero += rep.ZeroAreaDropped
		// 14 and 12 objects in the XML, one of them a click.
		for _, s := range ds.Samples {
			if n, ok := map[string]int{"BloodImage_00338": 13, "BloodImage_00343": 11}[s.ID]; ok && len(s.Objects) != n {
				t.Errorf("%s: %d objects, want %d", s.ID, len(s.Objects), n)
			}
		}
	}
	if zero != 2 {
		t.Errorf("%d zero-area boxes dropped, want 2", zero)
	}
}
