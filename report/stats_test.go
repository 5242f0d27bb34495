package report

import (
	"math"
	"testing"
)

// TestPairedT on hand-worked numbers. d = {1, 2, 3}: mean 2, sd
// sqrt(((1-2)²+0+(3-2)²)/2) = 1, se = 1/sqrt(3) = 0.5773503;
// t_{0.975, 2} = 4.302653 (Student's t table, e.g. NIST/SEMATECH e-Handbook
// 1.3.6.7.2), so the 95% interval is 2 ± 2.484138. d = {0.5, 0.7, 0.4,
// 0.6}: mean 0.55, sd sqrt(0.05/3) = 0.1290994, t_{0.975,3} = 3.182446,
// half-width 3.182446*0.1290994/2 = 0.2054260. The bounds 1e-6 are the
// table's six significant digits.
func TestPairedT(t *testing.T) {
	cases := []struct {
		d              []float64
		mean, half, sd float64
		verdict        string
	}{
		{[]float64{1, 2, 3}, 2, 2.484138, 1, "within noise"},
		{[]float64{0.5, 0.7, 0.4, 0.6}, 0.55, 0.2054260, 0.1290994, "helps"},
		{[]float64{-0.5, -0.7, -0.4, -0.6}, -0.55, 0.2054260, 0.1290994, "hurts"},
	}
	for _, c := range cases {
		iv := PairedT(c.d, 0.95)
		_, sd := MeanSD(c.d)
		if math.Abs(iv.Mean-c.mean) > 1e-12 || math.Abs((iv.Hi-iv.Lo)/2-c.half) > 1e-6 || math.Abs(sd-c.sd) > 1e-6 {
			t.Errorf("%v: mean %v half-width %v sd %v, want %v %v %v", c.d, iv.Mean, (iv.Hi-iv.Lo)/2, sd, c.mean, c.half, c.sd)
		}
		if v := Verdict(iv); v != c.verdict {
			t.Errorf("%v: verdict %q, want %q", c.d, v, c.verdict)
		}
	}
	one := PairedT([]float64{0.3}, 0.95)
	if one.Defined() || Verdict(one) != "one seed" || one.Mean != 0.3 {
		t.Errorf("one value: %+v %q", one, Verdict(one))
	}
	if d := Diffs([]float64{1, 2}, []float64{1.5, 1}); d[0] != 0.5 || d[1] != -1 {
		t.Errorf("Diffs = %v", d)
	}
}
