package tricks

import (
	"math"
	"testing"
)

func TestScheduleValues(t *testing.T) {
	c := Schedule{Base: 0.01, Warmup: 100, Total: 1100, Kind: "cosine", Final: 0.001}
	for _, tc := range []struct {
		it   int
		want float64
	}{
		{0, 0.01 * 1 / 100.0},    // first warmup iteration
		{49, 0.01 * 50 / 100.0},  // half-way through warmup
		{99, 0.01},               // end of warmup: the base rate
		{100, 0.01},              // cosine at t=0: Final + (Base-Final)*(1+1)/2
		{600, 0.001 + 0.009*0.5}, // half-way: cos(pi/2) = 0
		{1100, 0.001},            // the end: cos(pi) = -1
	} {
		if got := c.LR(tc.it); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("cosine LR(%d) = %v, want %v", tc.it, got, tc.want)
		}
	}
	s := Schedule{Base: 0.1, Kind: "step", Steps: []int{160, 180}, Total: 200}
	for it, want := range map[int]float64{0: 0.1, 159: 0.1, 160: 0.01, 179: 0.01, 180: 0.001, 199: 0.001} {
		if got := s.LR(it); math.Abs(got-want) > 1e-15 {
			t.Errorf("step LR(%d) = %v, want %v", it, got, want)
		}
	}
	if got := (Schedule{Base: 0.3, Kind: "constant"}).LR(1000); got != 0.3 {
		t.Errorf("constant LR = %v", got)
	}
}
