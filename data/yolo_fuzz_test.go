package data

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var yoloProblem = regexp.MustCompile(`^line [0-9]+: `)

// FuzzYOLOLabels reads any bytes as the YOLO label file of a w x h image
// (readYOLOSample, as LoadYOLO does; w, h in 1..4096). Every problem names
// the label file and its line; a sample without problems has its objects
// inside the image with a class in range and positive area, and
// round-trips: written back as "class cx cy w h" (box.Box.RelCXCYWH,
// shortest float64 text) and read again it gives the same classes and
// boxes within 6u·W in x and 6u·H in y (u = 2^-53).
//
// The tolerance, for a corner X in [0, W]: writing, fl(X1+X2) errs by at
// most u·2W and the division by W adds u·1, so cx errs by 2u; fl(X2-X1)
// errs by u·W, /W adds u, so bw errs by 2u and bw/2 by u. Reading, cx -
// bw/2 carries 3u and its rounding u (|cx - bw/2| <= 1), 4u, and the
// product by W adds u·W: 5u·W to first order. 6u·W covers the second-order
// terms (products of u's) and subnormal underflow (2^-1074 absolute per
// operation). Clipping to [0, W] only moves a value towards X.
func FuzzYOLOLabels(f *testing.F) {
	dir := f.TempDir()
	lbl := filepath.Join(dir, "x.txt")
	img := filepath.Join(dir, "x.jpg")
	names := []string{"cat", "dog"}
	read := func(t *testing.T, raw []byte, w, h int) (Sample, []Problem, int) {
		if err := os.WriteFile(lbl, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		s, probs, zero, _ := readYOLOSample(img, lbl, "x", names, fixedProber{w, h})
		return s, probs, zero
	}
	f.Fuzz(func(t *testing.T, raw []byte, w16, h16 uint16) {
		w, h := int(w16)%4096+1, int(h16)%4096+1
		s, probs, _ := read(t, raw, w, h)
		if len(probs) > 0 {
			for _, p := range probs {
				if p.File != lbl || !yoloProblem.MatchString(p.Msg) {
					t.Fatalf("problem %q does not name %s and a line", p, lbl)
				}
			}
			return
		}
		W, H := float64(w), float64(h)
		if s.Width != w || s.Height != h {
			t.Fatalf("size %dx%d, want %dx%d", s.Width, s.Height, w, h)
		}
		var b strings.Builder
		g := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
		for _, o := range s.Objects {
			bb := o.Box
			if o.Class < 0 || o.Class >= len(names) || o.Name != names[o.Class] ||
				!(bb.X1 >= 0 && bb.X1 < bb.X2 && bb.X2 <= W && bb.Y1 >= 0 && bb.Y1 < bb.Y2 && bb.Y2 <= H) {
				t.Fatalf("object %+v in a %dx%d image", o, w, h)
			}
			cx, cy, bw, bh := bb.RelCXCYWH(W, H)
			fmt.Fprintf(&b, "%d %s %s %s %s\n", o.Class, g(cx), g(cy), g(bw), g(bh))
		}
		s2, probs2, zero2 := read(t, []byte(b.String()), w, h)
		if len(probs2) > 0 || zero2 != 0 || len(s2.Objects) != len(s.Objects) {
			t.Fatalf("reading back\n%s\nproblems %v, %d zero-area, %d of %d objects", b.String(), probs2, zero2, len(s2.Objects), len(s.Objects))
		}
		const u = 0x1p-53
		tx, ty := 6*u*W, 6*u*H
		for i, o := range s2.Objects {
			a, c := o.Box, s.Objects[i].Box
			if o.Class != s.Objects[i].Class || math.Abs(a.X1-c.X1) > tx || math.Abs(a.X2-c.X2) > tx || math.Abs(a.Y1-c.Y1) > ty || math.Abs(a.Y2-c.Y2) > ty {
				t.Fatalf("round trip: object %d %+v, want %+v (tolerance %g, %g)", i, o, s.Objects[i], tx, ty)
			}
		}
	})
}
