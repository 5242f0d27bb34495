package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// predictions reads predictions.json keyed by file name.
func predictions(t *testing.T, out string) map[string][]map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "predictions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res []map[string]any
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	by := map[string][]map[string]any{}
	for _, r := range res {
		name := r["file_name"].(string)
		delete(r, "image_id") // the n-th input: differs between the two runs
		by[name] = append(by[name], r)
	}
	return by
}

// TestPredictSkipsUnreadableImages: in a folder of five images of which
// three are not images (b.png alone in its batch of 2 with a good one, c.png
// and d.png a whole batch), predict warns about each, finishes the others,
// lists the skipped files at the end and exits 1; the two good images get
// exactly the detections (boxes, scores) that a run on each alone gives.
func TestPredictSkipsUnreadableImages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a network; skipped with -short")
	}
	dir := t.TempDir()
	mcfg, w := randomWeights(t, dir)
	in, ref := filepath.Join(dir, "in"), filepath.Join(dir, "ref")
	for _, d := range []string{in, ref} {
		writeFile(t, filepath.Join(d, "a.png"), string(pngBytes(t, 64, 48)))
		writeFile(t, filepath.Join(d, "e.png"), string(pngBytes(t, 48, 64)))
	}
	for _, n := range []string{"b.png", "c.png", "d.png"} {
		writeFile(t, filepath.Join(in, n), "not a PNG")
	}
	args := []string{"predict", "--model", mcfg, "--weights", w, "--size", "64", "--batch", "2", "--conf", "0", "--max-dets", "3", "--save-txt"}
	out := filepath.Join(dir, "pred")
	code, stdout, errs := run(t, append(args, "--out", out, in)...)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, errs)
	}
	tail := errs[strings.Index(errs, "skipped 3 unreadable images:"):]
	for _, n := range []string{"b.png", "c.png", "d.png"} {
		p := filepath.Join(in, n)
		if !strings.Contains(errs, "warning: load "+p) {
			t.Errorf("no warning naming %s:\n%s", p, errs)
		}
		if !strings.Contains(tail, "\n  "+p+": ") {
			t.Errorf("the list at the end does not name %s:\n%s", p, errs)
		}
		if _, err := os.Stat(filepath.Join(out, "labels", strings.TrimSuffix(n, ".png")+".txt")); err == nil {
			t.Errorf("labels written for the unreadable %s", n)
		}
	}
	if !strings.Contains(errs, "3 of 5 images could not be read") || !strings.Contains(stdout, "6 detections in 2 images") {
		t.Errorf("summary: stdout %q, stderr %q", stdout, errs)
	}
	// The reference: each good image predicted alone, at batch slot 0 as it
	// was in the run above. The slot is part of the arithmetic: with a and e
	// in one batch, e (slot 1) came out different in the last float32 bits
	// (about 1e-9 relative, seen when this test was written), so a bit-exact
	// comparison needs the same slot.
	want := map[string][]map[string]any{}
	for _, n := range []string{"a.png", "e.png"} {
		refOut := filepath.Join(dir, "ref-"+n)
		if code, o, e := run(t, append(args, "--out", refOut, filepath.Join(ref, n))...); code != 0 {
			t.Fatalf("reference run: exit %d\n%s\n%s", code, o, e)
		}
		for k, v := range predictions(t, refOut) {
			want[k] = v
		}
	}
	if got := predictions(t, out); len(want) != 2 || !reflect.DeepEqual(got, want) {
		t.Errorf("detections with the unreadable files skipped\n%v\neach image alone\n%v", got, want)
	}
	for _, f := range []string{"a.png", "e.png", "labels/a.txt", "labels/e.txt"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
