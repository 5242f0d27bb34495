package main

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/config"
	dimage "github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/engine"
)

// labelImgSet writes a folder of 20 VOC images and XMLs without split
// lists (labelImg's export): 12 with a cat, 8 with a dog, real 32x24 JPEGs.
func labelImgSet(t *testing.T, root string) {
	t.Helper()
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, image.NewRGBA(image.Rect(0, 0, 32, 24)), nil); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		name := "cat"
		if i >= 12 {
			name = "dog"
		}
		id := fmt.Sprintf("p%02d", i)
		writeFile(t, filepath.Join(root, "JPEGImages", id+".jpg"), jb.String())
		writeFile(t, filepath.Join(root, "Annotations", id+".xml"), "<annotation><filename>"+id+".jpg</filename><size><width>32</width><height>24</height></size>"+
			"<object><name>"+name+"</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object></annotation>")
	}
}

func readLines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestDataSplitCommand: data split writes ImageSets/Main lists that
// partition the 20 images with val and test each round(0.25·20) = 5 and
// stratified (cat group 12: val round(3) = 3; dog group: round(5)−3 = 2);
// it refuses to overwrite them without --force.
func TestDataSplitCommand(t *testing.T) {
	root := filepath.Join(t.TempDir(), "set")
	labelImgSet(t, root)
	args := []string{"data", "split", "--root", root, "--format", "voc", "--val", "0.25", "--test", "0.25", "--seed", "3"}
	if code, out, errs := run(t, args...); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	lists := filepath.Join(root, "ImageSets", "Main")
	tr, val, te := readLines(t, filepath.Join(lists, "train.txt")), readLines(t, filepath.Join(lists, "val.txt")), readLines(t, filepath.Join(lists, "test.txt"))
	if len(tr) != 10 || len(val) != 5 || len(te) != 5 {
		t.Fatalf("train %v val %v test %v: want 10/5/5", tr, val, te)
	}
	cats := 0
	for _, id := range val {
		if id < "p12" {
			cats++
		}
	}
	if cats != 3 {
		t.Errorf("val %v has %d cat images, want 3", val, cats)
	}
	all := slices.Concat(tr, val, te)
	slices.Sort(all)
	if len(slices.Compact(all)) != 20 {
		t.Errorf("the lists are not a partition: %v", all)
	}
	code, _, errs := run(t, args...)
	if code != 1 || !strings.Contains(errs, filepath.Join(lists, "train.txt")+" exists already") {
		t.Errorf("second run: exit %d, %q; want 1 naming train.txt", code, errs)
	}
	if code, _, errs := run(t, append(args, "--force")...); code != 0 {
		t.Errorf("--force: exit %d, %s", code, errs)
	}
	if got := readLines(t, filepath.Join(lists, "val.txt")); !slices.Equal(got, val) {
		t.Errorf("the same seed wrote val %v, then %v", val, got)
	}
}

// TestTrainAll: with data.train: all the train split is every image less
// the data.val_fraction share, data.val is that share (round(0.2·20) = 4),
// the missing test split is the val share too, and each is the same on
// every call.
func TestTrainAll(t *testing.T) {
	dir := t.TempDir()
	labelImgSet(t, filepath.Join(dir, "set"))
	p := writeFile(t, filepath.Join(dir, "c.yaml"), "data:\n  root: set\n  names: [cat, dog]\n  train: all\n  val_fraction: 0.2\nmodel:\n  cfg: x.cfg\n")
	c, err := config.Load(p, config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(split string) []string {
		t.Helper()
		ds, _, rep, err := engine.ReadSplit(c, split, []string{"cat", "dog"}, dimage.OpenCV{})
		if err != nil || len(rep.Problems) > 0 {
			t.Fatalf("%s: %v %v", split, err, rep)
		}
		var out []string
		for _, s := range ds.Samples {
			out = append(out, s.ID)
		}
		return out
	}
	tr, val, te := ids("all"), ids(c.Data.Val), ids(c.Data.Test)
	if len(tr) != 16 || len(val) != 4 || !slices.Equal(val, te) || !slices.Equal(val, ids(c.Data.Val)) {
		t.Fatalf("train %v val %v test %v", tr, val, te)
	}
	if all := slices.Sorted(slices.Values(slices.Concat(tr, val))); len(slices.Compact(all)) != 20 {
		t.Errorf("train and val overlap: %v %v", tr, val)
	}
	names, err := engine.ClassNames(c)
	if err != nil || !slices.Equal(names, []string{"cat", "dog"}) {
		t.Errorf("classNames = %v, %v", names, err)
	}
}
