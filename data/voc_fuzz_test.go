package data

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fixedProber says every image is w x h without opening it.
type fixedProber struct{ w, h int }

func (p fixedProber) Probe(string) (int, int, error) { return p.w, p.h, nil }

// FuzzVOCXML reads any bytes as a VOC annotation (readSample, as LoadVOC
// does, with a prober for XMLs without <size>). Every problem names the
// annotation file and says something; a sample without problems has its
// objects inside the image with a known class and positive area, and
// round-trips: written back as VOC XML (box.Box.VOC corners, shortest
// float64 text) and read again it gives the same size, image and objects,
// bit for bit. (X1 read back is fl(fl(X1+1)-1): exact, because X1 is either
// a clip bound 0 or fl(xmin-1) with xmin in [1, W+1], W <= 2^30, where
// xmin-1 and X1+1 are exact.) Objects narrower or lower than one pixel are
// left out of the round trip: clipping makes them (xmin -5, xmax 0.5 gives
// X1 = 0, X2 = 0.5) and VOC's inclusive corners cannot write them (xmin 1 >
// xmax 0.5).
func FuzzVOCXML(f *testing.F) {
	dir := f.TempDir()
	imgDir := filepath.Join(dir, "JPEGImages")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(imgDir, "x.jpg"), nil, 0o644); err != nil {
		f.Fatal(err)
	}
	ann := filepath.Join(dir, "x.xml")
	names := []string{"cat", "dog"}
	classOf := map[string]int{"cat": 0, "dog": 1}
	probe := fixedProber{100, 80}
	read := func(t *testing.T, raw []byte) sampleResult {
		if err := os.WriteFile(ann, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		return readSample(splitEntry{id: "x", ann: ann, imgDir: imgDir}, names, classOf, probe, false)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := read(t, raw)
		if len(r.problems) > 0 {
			for _, p := range r.problems {
				if p.File != ann || p.Msg == "" {
					t.Fatalf("problem %q does not name %s", p, ann)
				}
			}
			return
		}
		s := r.sample
		if s.ImagePath != filepath.Join(imgDir, "x.jpg") || s.Width <= 0 || s.Height <= 0 {
			t.Fatalf("sample %+v", s)
		}
		W, H := float64(s.Width), float64(s.Height)
		var b strings.Builder
		fmt.Fprintf(&b, "<annotation>\n<filename>x.jpg</filename>\n<size><width>%d</width><height>%d</height><depth>3</depth></size>\n", s.Width, s.Height)
		var kept []Object
		g := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
		for _, o := range s.Objects {
			bb := o.Box
			if o.Class < 0 || o.Class >= len(names) || o.Name != names[o.Class] ||
				!(bb.X1 >= 0 && bb.X1 < bb.X2 && bb.X2 <= W && bb.Y1 >= 0 && bb.Y1 < bb.Y2 && bb.Y2 <= H) {
				t.Fatalf("object %+v in a %dx%d image", o, s.Width, s.Height)
			}
			if bb.W() < 1 || bb.H() < 1 {
				continue
			}
			kept = append(kept, o)
			x1, y1, x2, y2 := bb.VOC()
			var name strings.Builder
			if err := xml.EscapeText(&name, []byte(o.Name)); err != nil {
				t.Fatal(err)
			}
			d := 0
			if o.Difficult {
				d = 1
			}
			fmt.Fprintf(&b, "<object><name>%s</name><difficult>%d</difficult><bndbox><xmin>%s</xmin><ymin>%s</ymin><xmax>%s</xmax><ymax>%s</ymax></bndbox></object>\n",
				name.String(), d, g(x1), g(y1), g(x2), g(y2))
		}
		b.WriteString("</annotation>\n")
		r2 := read(t, []byte(b.String()))
		if len(r2.problems) > 0 || r2.zeroArea != 0 || r2.clipped != 0 {
			t.Fatalf("reading back\n%s\nproblems %v, %d zero-area, %d clipped", b.String(), r2.problems, r2.zeroArea, r2.clipped)
		}
		s2 := r2.sample
		if s2.ImagePath != s.ImagePath || s2.Width != s.Width || s2.Height != s.Height || len(s2.Objects) != len(kept) {
			t.Fatalf("round trip: %+v, want %+v with objects %+v", s2, s, kept)
		}
		for i, o := range s2.Objects {
			if o != kept[i] {
				t.Fatalf("round trip: object %d %+v, want %+v", i, o, kept[i])
			}
		}
	})
}
