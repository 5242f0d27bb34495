package model

import (
	"math"
	"math/rand"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bnNet is conv 3x3 -> BN+leaky -> conv 1x1 -> BN+linear, with the cost
// sum(r*y)/N over its N images (so that averaging replica gradients gives
// the gradient of the mean over all images).
type bnNet struct {
	g                         *G.ExprGraph
	x, w1, g1, b1, w2, g2, b2 *G.Node
	y, cost                   *G.Node
	bn1, bn2                  *BNState
}

func newBNNet(t *testing.T, xv, rv *tensor.Dense, params []*tensor.Dense, coll Collective) *bnNet {
	t.Helper()
	n := &bnNet{g: G.NewGraph()}
	mk := func(v *tensor.Dense, name string) *G.Node {
		return G.NewTensor(n.g, tensor.Float64, v.Dims(), G.WithShape(v.Shape()...), G.WithValue(v.Clone()), G.WithName(name))
	}
	n.x = mk(xv, "x")
	n.w1, n.g1, n.b1, n.w2, n.g2, n.b2 = mk(params[0], "w1"), mk(params[1], "g1"), mk(params[2], "b1"), mk(params[3], "w2"), mk(params[4], "g2"), mk(params[5], "b2")
	n.bn1 = &BNState{Mean: make([]float32, 4), Var: []float32{1, 1, 1, 1}, Momentum: 0.1, Eps: 1e-5}
	n.bn2 = &BNState{Mean: make([]float32, 3), Var: []float32{1, 1, 1}, Momentum: 0.1, Eps: 1e-5}
	must := func(v *G.Node, err error) *G.Node {
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	c1 := must(Conv2D(n.x, n.w1, 3, 1, 1, 1))
	a1 := must(BNActSync(c1, n.g1, n.b1, Leaky, n.bn1, true, coll))
	c2 := must(Conv2D(a1, n.w2, 1, 1, 0, 1))
	n.y = must(BNActSync(c2, n.g2, n.b2, Linear, n.bn2, true, coll))
	r := G.NewTensor(n.g, tensor.Float64, 4, G.WithShape(rv.Shape()...), G.WithValue(rv), G.WithName("r"))
	s := must(G.Sum(must(G.HadamardProd(n.y, r))))
	n.cost = must(G.Div(s, G.NewConstant(float64(xv.Shape()[0]))))
	if _, err := G.Grad(n.cost, n.params()...); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *bnNet) params() G.Nodes { return G.Nodes{n.w1, n.g1, n.b1, n.w2, n.g2, n.b2} }

func randDense(r *rand.Rand, shape ...int) *tensor.Dense {
	d := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float64))
	for i := range d.Float64s() {
		d.Float64s()[i] = r.NormFloat64()
	}
	return d
}

func sliceImages(d *tensor.Dense, lo, hi int) *tensor.Dense {
	s := d.Shape()
	per := s[1] * s[2] * s[3]
	return tensor.New(tensor.WithShape(hi-lo, s[1], s[2], s[3]), tensor.WithBacking(append([]float64(nil), d.Float64s()[lo*per:hi*per]...)))
}

func relErr(a, b float64) float64 { return math.Abs(a-b) / math.Max(1e-3, math.Abs(b)) }

// TestSyncBNEqualsWholeBatch: SyncBN over 2 replicas of 3 images gives the
// same outputs, averaged gradients and running statistics as plain BN over
// the 6 images (relative error <= 1e-5); local BN over the shards does not.
func TestSyncBNEqualsWholeBatch(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	const R, b = 2, 3
	x := randDense(r, R*b, 3, 6, 6)
	rv := randDense(r, R*b, 3, 6, 6)
	params := []*tensor.Dense{randDense(r, 4, 3, 3, 3), randDense(r, 4), randDense(r, 4), randDense(r, 3, 4, 1, 1), randDense(r, 3), randDense(r, 3)}

	whole := newBNNet(t, x, rv, params, nil)
	m := G.NewTapeMachine(whole.g, G.BindDualValues(whole.params()...))
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}

	run := func(coll func(rank int) Collective) []*bnNet {
		reps := make([]*bnNet, R)
		var wg sync.WaitGroup
		errs := make([]error, R)
		for i := range reps {
			reps[i] = newBNNet(t, sliceImages(x, i*b, (i+1)*b), sliceImages(rv, i*b, (i+1)*b), params, coll(i))
		}
		for i, rep := range reps {
			wg.Add(1)
			go func(i int, rep *bnNet) {
				defer wg.Done()
				m := G.NewTapeMachine(rep.g, G.BindDualValues(rep.params()...))
				errs[i] = m.RunAll()
			}(i, rep)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return reps
	}
	group := NewSyncGroup(R)
	synced := run(func(rank int) Collective { return group.Member(rank) })
	local := run(func(int) Collective { return nil })

	worst := func(reps []*bnNet) (out, grad, stats float64) {
		wy := whole.y.Value().(*tensor.Dense).Float64s()
		for i, rep := range reps {
			for j, v := range rep.y.Value().(*tensor.Dense).Float64s() {
				out = math.Max(out, relErr(v, wy[i*len(rep.y.Value().(*tensor.Dense).Float64s())+j]))
			}
		}
		for k, p := range whole.params() {
			wg, _ := p.Grad()
			want := wg.(*tensor.Dense).Float64s()
			for j := range want {
				avg := 0.0
				for _, rep := range reps {
					g, _ := rep.params()[k].Grad()
					avg += g.(*tensor.Dense).Float64s()[j] / R
				}
				grad = math.Max(grad, relErr(avg, want[j]))
			}
		}
		for k, st := range []*BNState{reps[0].bn1, reps[0].bn2} {
			want := []*BNState{whole.bn1, whole.bn2}[k]
			for j := range st.Mean {
				stats = math.Max(stats, relErr(float64(st.Mean[j]), float64(want.Mean[j])))
				stats = math.Max(stats, relErr(float64(st.Var[j]), float64(want.Var[j])))
			}
		}
		return
	}
	o, g, s := worst(synced)
	if o > 1e-5 || g > 1e-5 || s > 1e-5 {
		t.Fatalf("SyncBN vs whole batch: output %.2g, gradient %.2g, running stats %.2g (want <= 1e-5)", o, g, s)
	}
	lo, lg, ls := worst(local)
	if lo < 1e-3 || lg < 1e-3 || ls < 1e-3 {
		t.Fatalf("local BN should differ from the whole batch: output %.2g, gradient %.2g, stats %.2g", lo, lg, ls)
	}
	t.Logf("SyncBN max rel. error: output %.1e, gradient %.1e, stats %.1e; local BN: %.1e, %.1e, %.1e", o, g, s, lo, lg, ls)
}

// TestSyncGroupAbort: a waiting replica is released with ErrAborted.
func TestSyncGroupAbort(t *testing.T) {
	g := NewSyncGroup(2)
	done := make(chan error)
	go func() { done <- g.Member(0).AllReduce([]float64{1}) }()
	g.Abort()
	if err := <-done; err != ErrAborted {
		t.Fatalf("got %v", err)
	}
	g.Reset()
	var wg sync.WaitGroup
	out := make([][]float64, 2)
	for i := range out {
		out[i] = []float64{float64(i + 1), 10}
		wg.Add(1)
		go func(i int) { defer wg.Done(); g.Member(i).AllReduce(out[i]) }(i)
	}
	wg.Wait()
	if out[0][0] != 3 || out[1][1] != 20 {
		t.Fatalf("sums %v", out)
	}
}
