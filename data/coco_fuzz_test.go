package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCOCO: ReadCOCO never panics; its error names the file; a file that
// parses and turns into a split (probe-free: sizes from the JSON) writes
// back through the COCO writer (Write, convert.go) and reads back with the
// same samples: image sizes exactly, boxes to 1e-9 relative (the writer's
// floats are the shortest decimals that parse back to the same float64,
// so the only loss is box.FromXYWH's x+w then XYWH's x2−x1 rounding, one
// ulp of the coordinate's magnitude).
func FuzzCOCO(f *testing.F) {
	f.Add([]byte(cocoJSON))
	f.Add([]byte(`{"images": [], "categories": []}`))
	f.Add([]byte(`{"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}], "categories": [{"id": 1, "name": "cat"}]}`))
	f.Add([]byte(`{"images": [{"id": "x"}]}`))
	f.Add([]byte(`[1, 2]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		dir := t.TempDir()
		file := filepath.Join(dir, "annotations", "instances_train.json")
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		cf, err := ReadCOCO(file)
		if err != nil {
			if !strings.HasPrefix(err.Error(), file+": ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(cf.Images) > 50 || len(cf.Annotations) > 200 {
			return // keep each run short: the reader was exercised above
		}
		// Every image file the JSON names that stays inside the folder.
		for _, im := range cf.Images {
			if n := filepath.FromSlash(im.FileName); n != "" && !filepath.IsAbs(n) && within(filepath.Join(dir, "images", n), filepath.Join(dir, "images")) && len(n) < 100 {
				p := filepath.Join(dir, "images", n)
				if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
					_ = os.WriteFile(p, []byte("x"), 0o644)
				}
			}
		}
		l := VOCLayout{Root: dir, Images: "images", Annotations: "annotations"}
		names := cf.COCONames()
		for _, n := range names {
			if n == "" {
				return // no class of that name can be written
			}
		}
		cs, _, err := LoadCOCO(l, "train", names, nil)
		if err != nil {
			t.Fatalf("LoadCOCO after ReadCOCO succeeded: %v", err)
		}
		for _, s := range cs.Samples {
			if strings.ContainsAny(s.ID, "\\x00") || s.ID == "" || strings.Contains(s.ID, "..") {
				return // not an id the writer can place
			}
		}
		out := filepath.Join(dir, "out")
		if _, err := Write(FormatCOCO, out, names, []SplitData{{Name: "train", Dataset: cs.Dataset, COCO: cs}}); err != nil {
			return // a sample the writer cannot place (two ids, one name): not a reader property
		}
		back, _, err := LoadCOCO(VOCLayout{Root: out, Images: "images", Annotations: "annotations"}, "train", names, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(back.Samples) != len(cs.Samples) {
			t.Fatalf("%d samples written, %d read back", len(cs.Samples), len(back.Samples))
		}
		for i, s := range cs.Samples {
			b := back.Samples[i]
			if b.Width != s.Width || b.Height != s.Height || len(b.Objects) != len(s.Objects) {
				t.Fatalf("sample %d: %+v read back as %+v", i, s, b)
			}
			for j, o := range s.Objects {
				g := b.Objects[j]
				for k, v := range [4]float64{o.Box.X1, o.Box.Y1, o.Box.X2, o.Box.Y2} {
					w := [4]float64{g.Box.X1, g.Box.Y1, g.Box.X2, g.Box.Y2}[k]
					if d := v - w; d > 1e-9*(1+abs(v)) || -d > 1e-9*(1+abs(v)) || o.Class != g.Class || o.Difficult != g.Difficult {
						t.Fatalf("sample %d object %d: %+v read back as %+v", i, j, o, g)
					}
				}
			}
		}
	})
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
