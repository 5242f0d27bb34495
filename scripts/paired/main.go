// Command paired compares two sets of runs paired by seed: it reads each
// run's eval/eval.json and prints mean ± sd of mAP@0.5 (VOC all-point),
// VOC07 and COCO AP for each set, and the paired difference B - A of each
// with its 95% paired-t confidence interval (report.PairedT).
//
//	go run ./scripts/paired -a runs/r1-s1,runs/r1-s2,runs/r1-s3 -b runs/r2-s1,runs/r2-s2,runs/r2-s3
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/report"
)

func main() {
	a := flag.String("a", "", "comma-separated run folders of set A")
	b := flag.String("b", "", "comma-separated run folders of set B, in the same seed order")
	flag.Parse()
	ra, err := read(*a)
	if err == nil {
		var rb [][3]float64
		if rb, err = read(*b); err == nil && len(ra) != len(rb) {
			err = fmt.Errorf("%d runs in A, %d in B", len(ra), len(rb))
		}
		if err == nil {
			for k, name := range []string{"mAP@0.5 (VOC all-point)", "VOC07 11-point", "COCO AP@[.5:.95]"} {
				va, vb := col(ra, k), col(rb, k)
				ma, sa := report.MeanSD(va)
				mb, sb := report.MeanSD(vb)
				iv := report.PairedT(report.Diffs(va, vb), 0.95)
				fmt.Printf("%-24s A %.4f ± %.4f  B %.4f ± %.4f  B-A %+.4f [%+.4f, %+.4f] %s  (per seed A %v, B %v)\n",
					name, ma, sa, mb, sb, iv.Mean, iv.Lo, iv.Hi, report.Verdict(iv), fmtAll(va), fmtAll(vb))
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "paired:", err)
		os.Exit(1)
	}
}

func read(list string) ([][3]float64, error) {
	var out [][3]float64
	for _, d := range strings.Split(list, ",") {
		s, err := eval.ReadScores(filepath.Join(strings.TrimSpace(d), "eval", "eval.json"))
		if err != nil {
			return nil, err
		}
		out = append(out, [3]float64{s.MAP50VOC, s.MAP50VOC07, s.COCOAP})
	}
	return out, nil
}

func col(r [][3]float64, k int) []float64 {
	v := make([]float64, len(r))
	for i := range r {
		v[i] = r[i][k]
	}
	return v
}

func fmtAll(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.4f", x)
	}
	return "[" + strings.Join(s, " ") + "]"
}
