package synth

import (
	"bytes"
	"image/color"
	"image/jpeg"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
	"github.com/dettrain/dettrain/data"
)

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestDeterministic(t *testing.T) {
	o := Options{Images: 40, Seed: 5}
	a, b := t.TempDir(), t.TempDir()
	if _, err := Generate(a, o); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(b, o); err != nil {
		t.Fatal(err)
	}
	fa, fb := readTree(t, a), readTree(t, b)
	if len(fa) != 40*2+3+2 || len(fa) != len(fb) {
		t.Fatalf("%d and %d files, want 85", len(fa), len(fb))
	}
	for name, x := range fa {
		if !bytes.Equal(x, fb[name]) {
			t.Errorf("%s differs between two runs", name)
		}
	}
	c := t.TempDir()
	if _, err := Generate(c, Options{Images: 40, Seed: 6}); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(fa["JPEGImages/000001.jpg"], readTree(t, c)["JPEGImages/000001.jpg"]) {
		t.Error("seeds 5 and 6 give the same first image")
	}
}

// TestBoxes renders images and checks each box against the pixels: it lies
// inside the image, every pixel the shape shows is inside it, and each of its
// four border lines holds a pixel of the shape's colour (exact, before JPEG).
// It also checks the written XML boxes and, loosely, the JPEG colours.
func TestBoxes(t *testing.T) {
	const size, n = 160, 60
	dir := t.TempDir()
	if _, err := Generate(dir, Options{Images: n, Seed: 3, Size: size}); err != nil {
		t.Fatal(err)
	}
	ds, rep, err := data.LoadVOC(data.DefaultVOCLayout(dir), "train", Classes, nil)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("LoadVOC: %v %v", err, rep.Problems)
	}
	xmlBoxes := map[string][]data.Object{}
	for _, s := range ds.Samples {
		xmlBoxes[s.ID] = s.Objects
	}
	shapes := 0
	for i := range n {
		sc := render(imageRand(3, i), size)
		img := sc.img
		jf, err := os.Open(filepath.Join(dir, "JPEGImages", ID(i)+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		jp, err := jpeg.Decode(jf)
		jf.Close()
		if err != nil {
			t.Fatal(err)
		}
		for k, s := range sc.shapes {
			shapes++
			if s.minX < 0 || s.minY < 0 || s.maxX >= size || s.maxY >= size || s.minX > s.maxX || s.minY > s.maxY {
				t.Fatalf("image %d shape %d: box %d,%d-%d,%d outside the image", i, k, s.minX, s.minY, s.maxX, s.maxY)
			}
			has := func(x0, y0, x1, y1 int) bool {
				for y := y0; y <= y1; y++ {
					for x := x0; x <= x1; x++ {
						if img.RGBAAt(x, y) == s.col {
							return true
						}
					}
				}
				return false
			}
			if !has(s.minX, s.minY, s.maxX, s.minY) || !has(s.minX, s.maxY, s.maxX, s.maxY) ||
				!has(s.minX, s.minY, s.minX, s.maxY) || !has(s.maxX, s.minY, s.maxX, s.maxY) {
				t.Errorf("image %d shape %d: a border line of box %d,%d-%d,%d lacks the shape's colour", i, k, s.minX, s.minY, s.maxX, s.maxY)
			}
			for y := range size {
				for x := range size {
					if int(sc.owner[y*size+x]) == k && (x < s.minX || x > s.maxX || y < s.minY || y > s.maxY) {
						t.Fatalf("image %d shape %d: pixel %d,%d outside its box", i, k, x, y)
					}
				}
			}
			// An interior pixel (3x3 neighbourhood owned) decodes near the
			// shape's colour: JPEG at quality 92 moves it by < 60.
			for y := s.minY + 1; y < s.maxY; y++ {
				found := false
				for x := s.minX + 1; x < s.maxX && !found; x++ {
					if ownedAround(sc, size, x, y, k) {
						r, g, b, _ := jp.At(x, y).RGBA()
						c := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}
						if d := colourDist(c, s.col); d > 60 {
							t.Errorf("image %d shape %d: JPEG pixel %d,%d is %v, drawn %v", i, k, x, y, c, s.col)
						}
						found = true
					}
				}
				if found {
					break
				}
			}
			if objs, ok := xmlBoxes[ID(i)]; ok {
				want := box.FromVOC(float64(s.minX+1), float64(s.minY+1), float64(s.maxX+1), float64(s.maxY+1))
				if objs[k].Box != want || objs[k].Class != s.class {
					t.Errorf("image %d: XML object %d %v, drawn %s %v", i, k, objs[k], Classes[s.class], want)
				}
			}
		}
	}
	if shapes < n {
		t.Errorf("only %d shapes in %d images", shapes, n)
	}
}

func ownedAround(sc *scene, size, x, y, k int) bool {
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			if int(sc.owner[(y+dy)*size+x+dx]) != k {
				return false
			}
		}
	}
	return true
}

// TestDefault generates the default set and reads it back with LoadVOC.
func TestDefault(t *testing.T) {
	dir := t.TempDir()
	sum, err := Generate(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Images != 600 || sum.Train != 420 || sum.Val != 90 || sum.Test != 90 {
		t.Errorf("summary %+v", sum)
	}
	b, err := os.ReadFile(filepath.Join(dir, "classes.txt"))
	if err != nil || string(b) != "circle\nsquare\ntriangle\ncross\n" {
		t.Errorf("classes.txt %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "README.txt")); err != nil || !strings.Contains(string(b), "--images 600 --seed 1") {
		t.Errorf("README.txt %q, %v", b, err)
	}
	total := data.Report{PerClass: make([]int, 4)}
	ids := map[string]bool{}
	empty := 0
	for _, split := range []string{"train", "val", "test"} {
		ds, rep, err := data.LoadVOC(data.DefaultVOCLayout(dir), split, Classes, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) != 0 || rep.ZeroAreaDropped != 0 || rep.Clipped != 0 {
			t.Errorf("%s: %+v", split, rep)
		}
		total.Images += rep.Images
		total.Objects += rep.Objects
		for c, n := range rep.PerClass {
			total.PerClass[c] += n
		}
		for _, s := range ds.Samples {
			if ids[s.ID] {
				t.Errorf("%s in two splits", s.ID)
			}
			ids[s.ID] = true
			if len(s.Objects) == 0 {
				empty++
			}
			if s.Width != 160 || s.Height != 160 {
				t.Errorf("%s: size %dx%d", s.ID, s.Width, s.Height)
			}
		}
	}
	if total.Images != 600 || total.Objects != sum.Objects {
		t.Errorf("read back %d images %d objects, generated %+v", total.Images, total.Objects, sum)
	}
	for c, n := range sum.PerClass {
		if total.PerClass[c] != n || n < 200 {
			t.Errorf("class %s: %d generated, %d read back", Classes[c], n, total.PerClass[c])
		}
	}
	// About 8% empty: 48 expected of 600, binomial sd 6.6.
	if empty < 25 || empty > 75 {
		t.Errorf("%d empty images of 600", empty)
	}
	t.Logf("%+v, %d empty", sum, empty)
	// All 600 ids present.
	for i := range 600 {
		if !ids[ID(i)] {
			t.Fatalf("%s in no split", ID(i))
		}
	}
}
