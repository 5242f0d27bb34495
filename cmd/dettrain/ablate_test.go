package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/data/synth"
)

// TestAblateSeeds: ablate trains every variant with every seed, pairs them
// by seed in the table (mean ± sd, paired intervals, verdicts), reuses a
// variant whose config equals the previous one's (+syncbn with one replica)
// and, run again, reuses every finished run instead of training it again.
func TestAblateSeeds(t *testing.T) {
	dir := t.TempDir()
	if _, err := synth.Generate(filepath.Join(dir, "ds"), synth.Options{Images: 24, Seed: 4, Size: 64}); err != nil {
		t.Fatal(err)
	}
	mcfg, _ := filepath.Abs("../../configs/models/demo-tiny.cfg")
	cfg := writeFile(t, filepath.Join(dir, "c.yaml"), fmt.Sprintf(`model:
  cfg: %s
  size: 64
data:
  root: ds
  names: [circle, square, triangle, cross]
  val: ""
train:
  epochs: 3
  batch: 4
  lr: 0.004
  eval_interval: 0
  log_interval: 1000
output:
  dir: run
`, mcfg))
	out := filepath.Join(dir, "abl")
	args := []string{"ablate", "--config", cfg, "--steps", "baseline,+syncbn,+cosine", "--seeds", "2", "--out", out}
	code, stdout, errs := run(t, args...)
	if code != 0 {
		t.Fatalf("ablate: exit %d\n%s\n%s", code, stdout, errs)
	}
	f, err := os.Open(filepath.Join(out, "ablation.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 1+3*2 {
		t.Fatalf("ablation.csv: %d records (%v), want a header and 6 runs", len(recs), err)
	}
	seeds := map[string]int{}
	learnt := false
	for _, r := range recs[1:] {
		seeds[r[0]+"/"+r[1]]++
		learnt = learnt || (r[2] != "0.000000" && r[2] != "")
	}
	if !learnt {
		t.Fatalf("every run scored mAP 0: the reuse check below could not tell runs apart:\n%v", recs)
	}
	for _, v := range []string{"baseline", "+syncbn", "+cosine"} {
		for _, s := range []string{"1", "2"} {
			if seeds[v+"/"+s] != 1 {
				t.Errorf("no run of %s with seed %s in ablation.csv", v, s)
			}
		}
	}
	// +syncbn with one replica is the baseline's config: its runs are the
	// baseline's, not trained again.
	for _, r := range recs[1:] {
		if r[0] == "+syncbn" && !strings.Contains(r[6], "same config as baseline") {
			t.Errorf("+syncbn seed %s was not taken from the baseline: %q", r[1], r[6])
		}
	}
	if _, err := os.Stat(filepath.Join(out, "syncbn")); err == nil {
		t.Errorf("+syncbn was trained although its config equals the baseline's")
	}
	md, err := os.ReadFile(filepath.Join(out, "ablation.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--seeds 2", "| baseline |", "| +cosine |", " ± ", "no-op with 1 replica", "paired-t"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("ablation.md lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(string(md), "within noise") && !strings.Contains(string(md), "helps") && !strings.Contains(string(md), "hurts") {
		t.Errorf("ablation.md has no verdict:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(out, "ablation.png")); err != nil {
		t.Error(err)
	}
	// Again: every run is found and reused, with the scores it had.
	code, stdout, errs = run(t, args...)
	if code != 0 || strings.Count(stdout, "reused ") != 4 {
		t.Fatalf("second ablate: exit %d, %d runs reused, want 4:\n%s\n%s", code, strings.Count(stdout, "reused "), stdout, errs)
	}
	f, err = os.Open(filepath.Join(out, "ablation.csv"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(again) != len(recs) {
		t.Fatalf("second ablation.csv: %d records, %v", len(again), err)
	}
	for i := range recs {
		if strings.Join(recs[i][:5], ",") != strings.Join(again[i][:5], ",") {
			t.Errorf("reused run %d: %v, trained %v", i, again[i][:5], recs[i][:5])
		}
	}
}
