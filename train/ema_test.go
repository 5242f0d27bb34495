package train

import (
	"math"
	"testing"
)

// TestEMARule checks Ultralytics' ModelEMA rule by hand on one weight:
// decay 0.9, tau 2; after update k, d_k = 0.9*(1-exp(-k/2)) and
// ema_k = d_k*ema_{k-1} + (1-d_k)*w_k.
func TestEMARule(t *testing.T) {
	s := newSmallRun(t)
	net := s.net(t)
	w := net.Params()[0].Value.Float32s()
	e := NewEMA(net, 0.9, 2)
	want := float64(w[0])
	for k, v := range []float32{1, 2, 3} {
		w[0] = v
		e.Update(net)
		d := 0.9 * (1 - math.Exp(-float64(k+1)/2))
		want = d*want + (1-d)*float64(v)
	}
	e.Swap(net)
	if got := float64(w[0]); math.Abs(got-want) > 1e-6 {
		t.Fatalf("EMA = %v, want %v", got, want)
	}
	e.Swap(net)
	if w[0] != 3 {
		t.Fatalf("Swap twice must restore the weights, got %v", w[0])
	}
}
