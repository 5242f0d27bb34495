package tricks

import (
	"math"
	"testing"
)

func TestClassTarget(t *testing.T) {
	// GluonCV: eps = min(1/K, 1/40). K=3 -> eps = 1/40; K=80 -> eps = 1/80.
	for _, tc := range []struct {
		k        int
		pos, neg float64
	}{{3, 1 - 1.0/40, 1.0 / 40}, {80, 1 - 1.0/80, 1.0 / 80}} {
		f, err := ClassTarget("gluoncv", tc.k, 0)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(f(1)-tc.pos) > 1e-15 || math.Abs(f(0)-tc.neg) > 1e-15 {
			t.Errorf("gluoncv K=%d: %v %v, want %v %v", tc.k, f(1), f(0), tc.pos, tc.neg)
		}
	}
	// Darknet with eps 0.1: 1 - 0.05 and 0.05.
	f, _ := ClassTarget("darknet", 5, 0.1)
	if math.Abs(f(1)-0.95) > 1e-15 || math.Abs(f(0)-0.05) > 1e-15 {
		t.Errorf("darknet: %v %v", f(1), f(0))
	}
	if f, err := ClassTarget("none", 5, 0); f != nil || err != nil {
		t.Error("none must be the identity (nil)")
	}
	if _, err := ClassTarget("soft", 5, 0); err == nil {
		t.Error("unknown rule accepted")
	}
}

// TestShapesVisitEverySize: the default list is 320..608 step 32, each block of
// Every iterations has one size, and 1000 blocks visit all 10 sizes.
func TestShapesVisitEverySize(t *testing.T) {
	s := Shapes{Sizes: DefaultSizes(), Every: 10, Seed: 3}
	if len(s.Sizes) != 10 || s.Sizes[0] != 320 || s.Sizes[9] != 608 {
		t.Fatalf("sizes %v", s.Sizes)
	}
	seen := map[int]int{}
	for it := 0; it < 10000; it++ {
		v := s.SizeAt(it)
		if it%10 != 0 && v != s.SizeAt(it-1) {
			t.Fatalf("size changed inside a block at iteration %d", it)
		}
		seen[v]++
	}
	for _, v := range s.Sizes {
		if seen[v] < 500 { // 10000 iterations / 10 sizes = 1000 each on average
			t.Errorf("size %d drawn %d times", v, seen[v])
		}
	}
}
