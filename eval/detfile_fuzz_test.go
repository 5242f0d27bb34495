package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
)

// Seed corpora: testdata/fuzz/FuzzParseTxtDetections and
// testdata/fuzz/FuzzParseCOCOResults.

var txtErr = regexp.MustCompile(`^f\.txt:[0-9]+: `)

// FuzzParseTxtDetections: any input either is an error naming the file and
// line, or parses to detections that (1) account for every non-blank line
// (kept or skipped), (2) round-trip exactly through the txt format written
// back with the shortest float64 text, (3) read with VOCPixels are exactly
// box.FromVOC of the continuous reading, and (4) are what a strict read
// gives when nothing was skipped (a strict read fails otherwise).
func FuzzParseTxtDetections(f *testing.F) {
	names := []string{"cat", "dog"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		dc, sk, err := ParseTxtDetections(raw, "f.txt", 3, catDog, 2, ReadOptions{})
		dv, skv, errv := ParseTxtDetections(raw, "f.txt", 3, catDog, 2, ReadOptions{Corners: VOCPixels})
		ds, _, errs := ParseTxtDetections(raw, "f.txt", 3, catDog, 2, ReadOptions{Strict: true})
		if err != nil {
			if !txtErr.MatchString(err.Error()) {
				t.Fatalf("error does not name the file and line: %v", err)
			}
			if errv == nil || errv.Error() != err.Error() || errs == nil {
				t.Fatalf("continuous %v, voc %v, strict %v: want the same error", err, errv, errs)
			}
			return
		}
		if errv != nil || !reflect.DeepEqual(sk, skv) {
			t.Fatalf("voc corners: %v, skipped %+v vs %+v", errv, skv, sk)
		}
		lines := 0
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(nil, len(raw)+1)
		for sc.Scan() {
			if len(strings.Fields(sc.Text())) > 0 {
				lines++
			}
		}
		if lines != len(dc)+sk.Classes || len(sk.ImageNames) != 0 || sk.Images != 0 {
			t.Fatalf("%d non-blank lines, %d detections, skipped %+v", lines, len(dc), sk)
		}
		if sk.Empty() {
			if errs != nil || !reflect.DeepEqual(ds, dc) {
				t.Fatalf("strict read: %v, %+v", errs, ds)
			}
		} else if errs == nil || !txtErr.MatchString(errs.Error()) || !strings.Contains(errs.Error(), "is neither a class name nor an index") {
			t.Fatalf("strict read with unknown classes %v: error %v", sk.ClassNames, errs)
		}
		var out strings.Builder
		for i, d := range dc {
			b := d.Box
			if d.Image != 3 || d.Class < 0 || d.Class > 1 || !(b.X2 >= b.X1) || !(b.Y2 >= b.Y1) || math.IsInf(b.X1, 0) || math.IsInf(b.X2, 0) || math.IsNaN(d.Score) {
				t.Fatalf("detection %+v", d)
			}
			if want := box.FromVOC(b.X1, b.Y1, b.X2, b.Y2); dv[i].Box != want || dv[i].Score != d.Score || dv[i].Class != d.Class {
				t.Fatalf("voc corners: %+v, want box %+v", dv[i], want)
			}
			g := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
			fmt.Fprintf(&out, "%s %s %s %s %s %s\n", names[d.Class], g(d.Score), g(b.X1), g(b.Y1), g(b.X2), g(b.Y2))
		}
		back, sk2, err := ParseTxtDetections([]byte(out.String()), "f.txt", 3, catDog, 2, ReadOptions{Strict: true})
		if err != nil || !sk2.Empty() || len(back) != len(dc) {
			t.Fatalf("reading back %q: %v, %d detections, skipped %+v", out.String(), err, len(back), sk2)
		}
		for i := range back {
			if back[i] != dc[i] {
				t.Fatalf("round trip: %+v, want %+v", back[i], dc[i])
			}
		}
	})
}

var cocoErr = regexp.MustCompile(`^r\.json: (line [0-9]+|entry [0-9]+): `)

// FuzzParseCOCOResults: any input either is an error naming the file and
// the line or entry, or parses to detections that (1) with the skipped
// ones account for every entry of the list, (2) resolve to the
// resolver's images and classes with finite boxes, (3) are what a strict
// read gives when nothing was skipped (a strict read fails otherwise), and
// (4) round-trip through a results file written back: the same image,
// class and score, and the box box.FromXYWH of the written bbox (x, y
// exact; x+w is recomputed, which may differ from the first x2 in the last
// bit, so the written [x, y, w, h] is what is compared).
func FuzzParseCOCOResults(f *testing.F) {
	imageIDs := map[int]int64{0: 100, 1: 101, 2: 102}
	catIDs := []int64{1, 90}
	f.Fuzz(func(t *testing.T, raw []byte) {
		dets, sk, err := ParseCOCOResults(raw, "r.json", testResolver, ReadOptions{})
		ds, _, errs := ParseCOCOResults(raw, "r.json", testResolver, ReadOptions{Strict: true})
		if err != nil {
			if !cocoErr.MatchString(err.Error()) {
				t.Fatalf("error does not name the file: %v", err)
			}
			if errs == nil {
				t.Fatalf("strict read accepts what the lenient one refuses (%v)", err)
			}
			return
		}
		var entries []json.RawMessage
		if err := json.Unmarshal(raw, &entries); err != nil {
			t.Fatalf("parsed, but is not a JSON list: %v", err)
		}
		if len(dets)+sk.Total() != len(entries) {
			t.Fatalf("%d entries, %d detections, skipped %+v", len(entries), len(dets), sk)
		}
		if sk.Empty() {
			if errs != nil || !reflect.DeepEqual(ds, dets) {
				t.Fatalf("strict read: %v, %+v", errs, ds)
			}
		} else if errs == nil || !cocoErr.MatchString(errs.Error()) || !strings.Contains(errs.Error(), " is not a") {
			t.Fatalf("strict read with skipped %+v: error %v", sk, errs)
		}
		type entry struct {
			ImageID    int64      `json:"image_id,omitempty"`
			FileName   string     `json:"file_name,omitempty"`
			CategoryID int64      `json:"category_id"`
			BBox       [4]float64 `json:"bbox"`
			Score      float64    `json:"score"`
		}
		out := make([]entry, len(dets))
		for i, d := range dets {
			b := d.Box
			for _, v := range []float64{b.X1, b.Y1, b.X2, b.Y2, d.Score} {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("detection %+v is not finite", d)
				}
			}
			if _, ok := imageIDs[d.Image]; !ok && d.Image != 7 || d.Class < 0 || d.Class > 1 || b.X2 < b.X1 || b.Y2 < b.Y1 {
				t.Fatalf("detection %+v", d)
			}
			out[i] = entry{ImageID: imageIDs[d.Image], CategoryID: catIDs[d.Class], BBox: b.XYWH(), Score: d.Score}
			if d.Image == 7 {
				out[i].FileName = "seven.jpg"
			}
		}
		text, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("writing back %+v: %v", out, err)
		}
		back, sk2, err := ParseCOCOResults(text, "r.json", testResolver, ReadOptions{Strict: true})
		if err != nil || !sk2.Empty() || len(back) != len(dets) {
			t.Fatalf("reading back %s: %v, %d detections", text, err, len(back))
		}
		for i, d := range back {
			w := out[i].BBox
			if d.Image != dets[i].Image || d.Class != dets[i].Class || d.Score != dets[i].Score ||
				d.Box != box.FromXYWH(w[0], w[1], w[2], w[3]) || d.Box.X1 != dets[i].Box.X1 || d.Box.Y1 != dets[i].Box.Y1 {
				t.Fatalf("round trip: %+v, want %+v", d, dets[i])
			}
		}
	})
}
