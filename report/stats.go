package report

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// MeanSD is the sample mean and the sample standard deviation (n-1 in the
// denominator) of v; sd is 0 for fewer than two values, NaN mean for none.
func MeanSD(v []float64) (mean, sd float64) {
	if len(v) == 0 {
		return math.NaN(), 0
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// Interval is a mean with a two-sided confidence interval.
type Interval struct {
	Mean, Lo, Hi float64
	N            int // values it was computed from
}

// Defined reports whether the interval exists (n >= 2).
func (i Interval) Defined() bool { return i.N >= 2 }

// PairedT is the paired-t confidence interval of the mean difference d
// (d[k] = b[k] - a[k] for seed k) at the given level (0.95):
//
//	mean(d) ± t_{(1+level)/2, n-1} * sd(d)/sqrt(n)
//
// (Student, 1908; e.g. Montgomery, Design and Analysis of Experiments, 2.5.1).
// With n < 2 the interval is undefined (Lo = Hi = Mean, N < 2).
func PairedT(d []float64, level float64) Interval {
	m, sd := MeanSD(d)
	iv := Interval{Mean: m, Lo: m, Hi: m, N: len(d)}
	if len(d) < 2 {
		return iv
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(d) - 1)}.Quantile((1 + level) / 2)
	h := t * sd / math.Sqrt(float64(len(d)))
	iv.Lo, iv.Hi = m-h, m+h
	return iv
}

// Verdict reads a paired interval of "after - before": "helps" when the
// whole interval is above 0, "hurts" when it is below, "within noise" when it
// holds 0, and "one seed" when there is no interval.
func Verdict(iv Interval) string {
	switch {
	case !iv.Defined():
		return "one seed"
	case iv.Lo > 0:
		return "helps"
	case iv.Hi < 0:
		return "hurts"
	}
	return "within noise"
}

// Diffs returns b[k] - a[k].
func Diffs(a, b []float64) []float64 {
	d := make([]float64, min(len(a), len(b)))
	for k := range d {
		d[k] = b[k] - a[k]
	}
	return d
}
