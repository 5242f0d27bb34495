package data

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// splitSet is a hand-made set of 20 images: 10 with only class a, 6 with a
// and b, 4 with only c (a is in 16 images, b in 6, c in 4), plus 2 images
// without objects.
func splitSet() *Dataset {
	ds := &Dataset{Names: []string{"a", "b", "c"}}
	add := func(n int, classes ...int) {
		for range n {
			s := Sample{ID: fmt.Sprintf("img%02d", len(ds.Samples))}
			for _, c := range classes {
				s.Objects = append(s.Objects, Object{Class: c})
			}
			ds.Samples = append(ds.Samples, s)
		}
	}
	add(10, 0)
	add(6, 0, 1)
	add(4, 2)
	add(2)
	return ds
}

// TestSplitStratified: with val 0.5 the rarest-class groups are a-only
// (10), b (6), c (4), empty (2); by the rule round(f·C_g) − round(f·C_{g−1})
// worked by hand: a 5, b round(8)−5 = 3, c round(10)−8 = 2, empty
// round(11)−10 = 1, so val holds 11 = round(0.5·22) images, 3 of the 6
// b-images and 2 of the 4 c-images, whatever the seed. With val 0.25 and
// test 0.25: val a round(2.5)=3 (half away from zero), b round(4)−3 = 1,
// c round(5)−4 = 1, empty round(5.5)−5 = 1; test the same.
func TestSplitStratified(t *testing.T) {
	ds := splitSet()
	count := func(idx []int, class int) int {
		n := 0
		for _, i := range idx {
			if len(ds.Samples[i].Objects) > 0 && ds.Samples[i].Objects[len(ds.Samples[i].Objects)-1].Class == class {
				n++
			}
		}
		return n
	}
	for seed := int64(0); seed < 20; seed++ {
		tr, val, te, err := Split(ds, SplitOptions{Val: 0.5, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if len(val) != 11 || len(tr) != 11 || len(te) != 0 || count(val, 1) != 3 || count(val, 2) != 2 {
			t.Fatalf("seed %d: train %v val %v test %v; want 11/11/0 with 3 b and 2 c images in val", seed, tr, val, te)
		}
		all := slices.Concat(tr, val, te)
		slices.Sort(all)
		for i := range all {
			if all[i] != i {
				t.Fatalf("seed %d: the splits are not a partition: %v", seed, all)
			}
		}
		tr, val, te, _ = Split(ds, SplitOptions{Val: 0.25, Test: 0.25, Seed: seed})
		if len(val) != 6 || len(te) != 6 || len(tr) != 10 || count(val, 1) != 1 || count(te, 1) != 1 || count(val, 2) != 1 || count(te, 2) != 1 {
			t.Fatalf("seed %d, 0.25/0.25: train %v val %v test %v", seed, tr, val, te)
		}
	}
	for _, o := range []SplitOptions{{Val: -0.1}, {Val: 0.6, Test: 0.4}, {Val: 1}} {
		if _, _, _, err := Split(ds, o); err == nil {
			t.Errorf("Split %+v: no error", o)
		}
	}
}

// TestSplitDeterministic: the same seed gives the same split; other seeds
// give other ones (of C(10,5)·C(6,3)·C(4,2)·C(2,1) = 60480 possible val
// sets, 20 seeds all drawing the same one would be a broken shuffle).
func TestSplitDeterministic(t *testing.T) {
	ds := splitSet()
	_, v1, _, _ := Split(ds, SplitOptions{Val: 0.5, Seed: 7})
	_, v2, _, _ := Split(ds, SplitOptions{Val: 0.5, Seed: 7})
	if !slices.Equal(v1, v2) {
		t.Fatalf("seed 7 twice: %v and %v", v1, v2)
	}
	distinct := map[string]bool{}
	for seed := int64(0); seed < 20; seed++ {
		_, v, _, _ := Split(ds, SplitOptions{Val: 0.5, Seed: seed})
		distinct[fmt.Sprint(v)] = true
	}
	if len(distinct) < 2 {
		t.Errorf("20 seeds gave %d distinct val splits", len(distinct))
	}
}

// TestSplitListsRoundTrip: LoadAll reads a folder of XMLs and images (no
// lists); the lists WriteSplitLists writes read back through Load as the
// same samples, for VOC, YOLO and COCO; an existing list is not
// overwritten without force.
func TestSplitListsRoundTrip(t *testing.T) {
	names := []string{"a", "b", "c"}
	cocoImgs, cocoAnns := "", ""
	f := newVOCFixture(t)
	probe := fakeProber{}
	for i, s := range splitSet().Samples {
		var objs []string
		yolo := ""
		for _, o := range s.Objects {
			objs = append(objs, obj(names[o.Class], 0, "10", "10", "50", "40"))
			yolo += fmt.Sprintf("%d 0.3 0.3 0.2 0.2\n", o.Class)
			cocoAnns += fmt.Sprintf(`{"id": %d, "image_id": %d, "category_id": %d, "bbox": [10, 10, 40, 30]},`, len(cocoAnns), i+1, o.Class+1)
		}
		f.write("Annotations/"+s.ID+".xml", ann(s.ID+".jpg", "100x80", objs...))
		f.write("JPEGImages/"+s.ID+".jpg", "x")
		f.write("images/"+s.ID+".jpg", "x")
		if yolo != "" {
			f.write("labels/"+s.ID+".txt", yolo)
		}
		cocoImgs += fmt.Sprintf(`{"id": %d, "file_name": "%s.jpg", "width": 100, "height": 80},`, i+1, s.ID)
		probe[s.ID+".jpg"] = [2]int{100, 80}
	}
	f.write("coco/export.json", `{"images": [`+cocoImgs[:len(cocoImgs)-1]+`], "annotations": [`+cocoAnns[:len(cocoAnns)-1]+
		`], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]}`)
	layouts := map[string]VOCLayout{
		FormatVOC:  DefaultVOCLayout(f.root),
		FormatYOLO: {Root: f.root, Images: "images", Annotations: "labels"},
		FormatCOCO: {Root: f.root, Images: "images", Annotations: "coco"},
	}
	for _, format := range Formats {
		l := layouts[format]
		ds, cs, rep, err := LoadAll(format, l, names, probe, true)
		if err != nil || len(rep.Problems) > 0 || len(ds.Samples) != 22 {
			t.Fatalf("%s: LoadAll: %v, %v, %d samples", format, err, rep, len(ds.Samples))
		}
		tr, val, te, _ := Split(ds, SplitOptions{Val: 0.25, Test: 0.25, Seed: 3})
		var lists []SplitList
		for _, sp := range []struct {
			name string
			idx  []int
		}{{"train", tr}, {"val", val}, {"test", te}} {
			sl := SplitList{Name: sp.name, Dataset: ds.Subset(sp.idx)}
			if cs != nil {
				sl.COCO = cs.Subset(sp.idx)
			}
			lists = append(lists, sl)
		}
		files, err := WriteSplitLists(format, l, lists, false)
		if err != nil || len(files) != 3 {
			t.Fatalf("%s: WriteSplitLists: %v %v", format, files, err)
		}
		for _, sl := range lists {
			back, _, rep, err := Load(format, l, sl.Name, names, probe, true)
			if err != nil || len(rep.Problems) > 0 {
				t.Fatalf("%s: read back %s: %v %v", format, sl.Name, err, rep)
			}
			if len(back.Samples) != len(sl.Dataset.Samples) {
				t.Fatalf("%s %s: %d samples back, wrote %d", format, sl.Name, len(back.Samples), len(sl.Dataset.Samples))
			}
			for i, s := range back.Samples {
				w := sl.Dataset.Samples[i]
				if filepath.Clean(s.ImagePath) != filepath.Clean(w.ImagePath) || len(s.Objects) != len(w.Objects) || s.Width != w.Width {
					t.Errorf("%s %s sample %d: %+v, wrote %+v", format, sl.Name, i, s, w)
				}
				for j := range s.Objects {
					if s.Objects[j].Class != w.Objects[j].Class || s.Objects[j].Box != w.Objects[j].Box {
						t.Errorf("%s %s sample %d object %d: %+v, wrote %+v", format, sl.Name, i, j, s.Objects[j], w.Objects[j])
					}
				}
			}
			if !SplitExists(format, l, sl.Name) {
				t.Errorf("%s: SplitExists(%s) = false after writing it", format, sl.Name)
			}
		}
		if _, err := WriteSplitLists(format, l, lists, false); err == nil {
			t.Errorf("%s: lists overwritten without force", format)
		}
		if _, err := WriteSplitLists(format, l, lists, true); err != nil {
			t.Errorf("%s: force: %v", format, err)
		}
	}
}
