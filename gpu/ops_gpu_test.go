package gpu

// Kernel-level tests of the layer-op wrappers (act.go, bnact.go, pool.go,
// route.go, scale.go, dropout.go, sgd.go; kernels/*.cu). The reference for
// each layer op's values is op_test.go's table, computed by model's own CPU
// ops; the tests here check what the CPU ops have no counterpart for: the
// acc (accumulate) and in-place forms, the determinism and the many-part
// split of the reductions, the BN statistics kernels one by one and
// BNActBackwardDx with a synchronized-BN count, the GPU's own dropout masks,
// SGD/EMA's skip flag, CheckFinite, and the host helpers (TestOpsCPU*),
// against float64 formulas written here from the CPU ops' (model/act.go,
// bnact.go, pool.go, route.go, scale.go, dropout.go, train/sgd.go,
// train/ema.go). Every output buffer starts as NaN (poisoned) so that an
// element a kernel fails to write shows up; acc=true is tested by
// pre-filling the output with known values. The GPU tests skip without a
// GPU; the TestOpsCPU* tests run anywhere.

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/model"
)

// opsTol is the relative tolerance of the kernels against float64
// references (near; op_test.go gives its derivation).
const opsTol = 1e-5

var allActs = []model.Activation{model.Linear, model.Leaky, model.ReLU, model.Logistic, model.Mish, model.Swish}

// opShapes are (n, c, h, w): odd sizes, h != w, hw not a multiple of 32,
// and channels long enough to be reduced in several parts.
var opShapes = [][4]int{
	{1, 1, 1, 1},
	{2, 3, 5, 7},
	{3, 4, 13, 13},
	{2, 5, 9, 6},
	{1, 2, 37, 41},
	{2, 3, 40, 30},
	{4, 2, 64, 50},
}

// gt is one GPU test's device state: the buffers it allocated are freed at
// the end.
type gt struct {
	t    *testing.T
	d    *Device
	s    *Stream
	k    *Kernels
	rng  *rand.Rand
	bufs []Ptr
	size []int
}

// runGPU runs f on the test GPU (skipping without one) inside Device.Do.
func runGPU(t *testing.T, f func(g *gt)) {
	t.Helper()
	d, s, k := testGPU(t)
	err := d.Do(func() error {
		g := &gt{t: t, d: d, s: s, k: k, rng: rand.New(rand.NewSource(1))}
		defer g.free()
		f(g)
		return s.Sync()
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (g *gt) free() {
	for i, p := range g.bufs {
		g.d.Free(p, g.size[i])
	}
	g.bufs, g.size = nil, nil
}

func (g *gt) alloc(n int) Ptr {
	g.t.Helper()
	p, err := g.d.AllocF32(max(n, 1))
	if err != nil {
		g.t.Fatal(err)
	}
	g.bufs = append(g.bufs, p)
	g.size = append(g.size, 4*max(n, 1))
	return p
}

// up uploads v into a new buffer.
func (g *gt) up(v []float32) Ptr {
	g.t.Helper()
	p := g.alloc(len(v))
	if err := g.s.Upload(p, v); err != nil {
		g.t.Fatal(err)
	}
	return p
}

// upI32 uploads int32s into a new buffer.
func (g *gt) upI32(v []int32) Ptr {
	g.t.Helper()
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = math.Float32frombits(uint32(x))
	}
	return g.up(f)
}

// poison allocates n float32s filled with NaN.
func (g *gt) poison(n int) Ptr {
	g.t.Helper()
	p := g.alloc(n)
	if err := g.s.Fill32(p, 0x7fc00000, max(n, 1)); err != nil {
		g.t.Fatal(err)
	}
	return p
}

// scratch allocates the (poisoned) scratch of a reduction, or returns 0 when
// it needs none.
func (g *gt) scratch(n, c, hw int) Ptr {
	if f := ReduceScratchFloats(n, c, hw); f > 0 {
		return g.poison(f)
	}
	return 0
}

func (g *gt) down(p Ptr, n int) []float32 {
	g.t.Helper()
	out := make([]float32, n)
	if err := g.s.Download(out, p); err != nil {
		g.t.Fatalf("download after the kernels: %v", err)
	}
	return out
}

func (g *gt) downI32(p Ptr, n int) []int32 {
	g.t.Helper()
	f := g.down(p, n)
	out := make([]int32, n)
	for i, x := range f {
		out[i] = int32(math.Float32bits(x))
	}
	return out
}

// must fails the test when a wrapper returns an error.
func (g *gt) must(what string, err error) {
	g.t.Helper()
	if err != nil {
		g.t.Fatalf("%s: %v", what, err)
	}
}

// uniform returns n float32s uniform in [lo, hi).
func (g *gt) uniform(n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*g.rng.Float64())
	}
	return v
}

// actInput is n activation inputs in [-3, 3) with the special values of the
// activations (mish's softplus thresholds at +-20, large magnitudes, zero)
// at the start.
func (g *gt) actInput(n int) []float32 {
	v := g.uniform(n, -3, 3)
	specials := []float32{-25, -20.5, -20, -19.5, 0, 19.5, 20, 20.5, 25, 1e-3, -1e-3, 8, -8}
	copy(v, specials)
	return v
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// coords formats flat index i of a tensor of shape dims.
func coords(i int, dims []int) string {
	if len(dims) == 0 {
		return fmt.Sprint(i)
	}
	c := make([]string, len(dims))
	for k := len(dims) - 1; k >= 0; k-- {
		c[k] = fmt.Sprint(i % dims[k])
		i /= dims[k]
	}
	return "[" + strings.Join(c, ",") + "]"
}

// near reports whether got matches want to opsTol relative (absolute below
// 1); an infinite want needs the same infinity, a NaN want is not checked.
func near(got float32, want float64) bool {
	a := float64(got)
	switch {
	case math.IsNaN(want):
		return true
	case math.IsInf(want, 0):
		return a == want
	case math.IsNaN(a) || math.IsInf(a, 0):
		return false
	}
	return math.Abs(a-want) <= opsTol*math.Max(1, math.Abs(want))
}

// check compares got with want element by element and reports the first
// mismatches with their coordinates in dims.
func (g *gt) check(what string, dims []int, got []float32, want []float64) bool {
	g.t.Helper()
	if len(got) != len(want) {
		g.t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return false
	}
	bad := 0
	for i, w := range want {
		if near(got[i], w) {
			continue
		}
		bad++
		if bad <= 5 {
			g.t.Errorf("%s: element %d %s: got %v, want %v", what, i, coords(i, dims), got[i], w)
		}
	}
	if bad > 5 {
		g.t.Errorf("%s: %d of %d elements wrong", what, bad, len(want))
	}
	return bad == 0
}

// checkSame reports elements of got that differ (bitwise) from was: a
// buffer that must not have been written.
func (g *gt) checkSame(what string, got, was []float32) {
	g.t.Helper()
	bad := 0
	for i := range was {
		if math.Float32bits(got[i]) != math.Float32bits(was[i]) {
			bad++
			if bad <= 5 {
				g.t.Errorf("%s: element %d changed to %v, was %v (must not be written)", what, i, got[i], was[i])
			}
		}
	}
}

// ---- float64 references ----

func refSoftplus(z float64) float64 {
	switch {
	case z > 20:
		return z
	case z < -20:
		return math.Exp(z)
	}
	return math.Log1p(math.Exp(z))
}

func refSigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

func refAct(a model.Activation, z float64) float64 {
	switch a {
	case model.Leaky:
		if z > 0 {
			return z
		}
		return 0.1 * z
	case model.ReLU:
		return math.Max(z, 0)
	case model.Logistic:
		return refSigmoid(z)
	case model.Mish:
		return z * math.Tanh(refSoftplus(z))
	case model.Swish:
		return z / (1 + math.Exp(-z))
	}
	return z
}

func refActGrad(a model.Activation, z float64) float64 {
	switch a {
	case model.Leaky:
		if z > 0 {
			return 1
		}
		return 0.1
	case model.ReLU:
		if z > 0 {
			return 1
		}
		return 0
	case model.Logistic:
		s := refSigmoid(z)
		return s * (1 - s)
	case model.Mish:
		t := math.Tanh(refSoftplus(z))
		return t + z*(1-t*t)*refSigmoid(z)
	case model.Swish:
		s := refSigmoid(z)
		return s + z*s*(1-s)
	}
	return 1
}

// ---- activations ----

func TestOpsActForwardBackward(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, n := range []int{1, 13, 1000, 4099} {
			x := g.actInput(n)
			for _, a := range allActs {
				name := fmt.Sprintf("n=%d act=%v", n, a)
				want := make([]float64, n)
				for i, v := range x {
					want[i] = refAct(a, float64(v))
				}
				xp := g.up(x)
				y := g.poison(n)
				g.must("ActForward", g.k.ActForward(g.s, y, xp, n, a))
				g.check("ActForward "+name, nil, g.down(y, n), want)
				// in place
				g.must("ActForward in place", g.k.ActForward(g.s, xp, xp, n, a))
				g.check("ActForward in place "+name, nil, g.down(xp, n), want)

				xp = g.up(x)
				dy := g.uniform(n, -2, 2)
				dyp := g.up(dy)
				wg := make([]float64, n)
				for i := range wg {
					wg[i] = float64(dy[i]) * refActGrad(a, float64(x[i]))
				}
				dx := g.poison(n)
				g.must("ActBackward", g.k.ActBackward(g.s, dx, dyp, xp, n, a, false))
				g.check("ActBackward "+name, nil, g.down(dx, n), wg)
				pre := g.uniform(n, -1, 1)
				dx = g.up(pre)
				g.must("ActBackward acc", g.k.ActBackward(g.s, dx, dyp, xp, n, a, true))
				wacc := make([]float64, n)
				for i := range wacc {
					wacc[i] = float64(pre[i]) + wg[i]
				}
				g.check("ActBackward acc "+name, nil, g.down(dx, n), wacc)
				g.must("ActBackward in place", g.k.ActBackward(g.s, dyp, dyp, xp, n, a, false))
				g.check("ActBackward in place "+name, nil, g.down(dyp, n), wg)
			}
		}
	})
}

// ---- bias + activation ----

func TestOpsBiasAct(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, sh := range opShapes {
			n, c, hw := sh[0], sh[1], sh[2]*sh[3]
			tot := n * c * hw
			dims := []int{n, c, hw}
			x := g.actInput(tot)
			b := g.uniform(c, -1, 1)
			dy := g.uniform(tot, -2, 2)
			for _, a := range allActs {
				name := fmt.Sprintf("shape=%v act=%v", sh, a)
				wy := make([]float64, tot)
				wdx := make([]float64, tot)
				wdb := make([]float64, c)
				for i := range wy {
					ch := i / hw % c
					z := float64(x[i] + b[ch]) // the sum in float32, as the CPU op and the kernel
					wy[i] = refAct(a, z)
					wdx[i] = float64(dy[i]) * refActGrad(a, z)
					wdb[ch] += wdx[i]
				}
				xp, bp := g.up(x), g.up(b)
				y := g.poison(tot)
				g.must("BiasActForward", g.k.BiasActForward(g.s, y, xp, bp, n, c, hw, a))
				g.check("BiasActForward "+name, dims, g.down(y, tot), wy)
				g.must("BiasActForward in place", g.k.BiasActForward(g.s, xp, xp, bp, n, c, hw, a))
				g.check("BiasActForward in place "+name, dims, g.down(xp, tot), wy)

				xp = g.up(x)
				dyp := g.up(dy)
				dx, db := g.poison(tot), g.poison(c)
				g.must("BiasActBackward", g.k.BiasActBackward(g.s, dx, db, dyp, xp, bp, n, c, hw, a, g.scratch(n, c, hw)))
				g.check("BiasActBackward dx "+name, dims, g.down(dx, tot), wdx)
				g.check("BiasActBackward db "+name, nil, g.down(db, c), wdb)
				db = g.poison(c)
				g.must("BiasActBackward in place", g.k.BiasActBackward(g.s, dyp, db, dyp, xp, bp, n, c, hw, a, g.scratch(n, c, hw)))
				g.check("BiasActBackward in place dx "+name, dims, g.down(dyp, tot), wdx)
				g.check("BiasActBackward in place db "+name, nil, g.down(db, c), wdb)
			}
		}
	})
}

// ---- per-channel reductions ----

func TestOpsChannelSumSqDev(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, sh := range opShapes {
			n, c, hw := sh[0], sh[1], sh[2]*sh[3]
			tot := n * c * hw
			x := g.uniform(tot, -1, 3)
			mean := g.uniform(c, 0, 2)
			ws, wq := make([]float64, c), make([]float64, c)
			for i, v := range x {
				ch := i / hw % c
				ws[ch] += float64(v)
				d := float64(v) - float64(mean[ch])
				wq[ch] += d * d
			}
			name := fmt.Sprintf("shape=%v splits=%d", sh, first(redSplits(n, c, hw)))
			xp, mp := g.up(x), g.up(mean)
			out := g.poison(c)
			g.must("ChannelSum", g.k.ChannelSum(g.s, out, xp, n, c, hw, g.scratch(n, c, hw)))
			got := g.down(out, c)
			g.check("ChannelSum "+name, nil, got, ws)
			// deterministic: the same bits again
			out2 := g.poison(c)
			g.must("ChannelSum", g.k.ChannelSum(g.s, out2, xp, n, c, hw, g.scratch(n, c, hw)))
			g.checkSame("ChannelSum rerun (determinism) "+name, g.down(out2, c), got)

			out = g.poison(c)
			g.must("ChannelSqDev", g.k.ChannelSqDev(g.s, out, xp, mp, n, c, hw, g.scratch(n, c, hw)))
			g.check("ChannelSqDev "+name, nil, g.down(out, c), wq)
		}
	})
}

func first(a, _ int) int { return a }

// TestOpsChannelSumHuge sums channels of 600000 elements (many parts).
func TestOpsChannelSumHuge(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, sh := range [][3]int{{2, 1, 300000}, {2, 3, 300000}, {1, 2, 1 << 20}} {
			n, c, hw := sh[0], sh[1], sh[2]
			tot := n * c * hw
			x := g.uniform(tot, -0.5, 1.5)
			ws := make([]float64, c)
			for i, v := range x {
				ws[i/hw%c] += float64(v)
			}
			out := g.poison(c)
			g.must("ChannelSum", g.k.ChannelSum(g.s, out, g.up(x), n, c, hw, g.scratch(n, c, hw)))
			got := g.down(out, c)
			for ch := range ws {
				if r := math.Abs(float64(got[ch])-ws[ch]) / math.Abs(ws[ch]); !(r <= 1e-5) {
					t.Errorf("ChannelSum n=%d c=%d hw=%d (splits %d) channel %d: got %v, want %v (relative error %.2g)",
						n, c, hw, first(redSplits(n, c, hw)), ch, got[ch], ws[ch], r)
				}
			}
		}
	})
}

// ---- batch norm ----

func TestOpsBNStats(t *testing.T) {
	runGPU(t, func(g *gt) {
		c := 37
		sum := g.uniform(c, -50, 50)
		for _, m := range []float64{1, 2, 1000} {
			wm := make([]float64, c)
			for i := range wm {
				wm[i] = float64(sum[i]) / m
			}
			mean := g.poison(c)
			g.must("BNMean", g.k.BNMean(g.s, mean, g.up(sum), c, m))
			g.check(fmt.Sprintf("BNMean m=%v", m), nil, g.down(mean, c), wm)

			mn := g.uniform(c, -1, 1)
			sq := g.uniform(c, 0, 30)
			rm, rv := g.uniform(c, -1, 1), g.uniform(c, 0.1, 2)
			const mo, eps = 0.1, 1e-5
			wi, wrm, wrv := make([]float64, c), make([]float64, c), make([]float64, c)
			for i := range wi {
				s := float64(sq[i])
				wi[i] = 1 / math.Sqrt(s/m+eps)
				u := s / m
				if m > 1 {
					u = s / (m - 1)
				}
				wrm[i] = (1-mo)*float64(rm[i]) + mo*float64(mn[i])
				wrv[i] = (1-mo)*float64(rv[i]) + mo*u
			}
			for _, update := range []bool{false, true} {
				name := fmt.Sprintf("BNFinalize m=%v update=%v", m, update)
				inv, rmp, rvp := g.poison(c), g.up(rm), g.up(rv)
				g.must("BNFinalize", g.k.BNFinalize(g.s, inv, rmp, rvp, g.up(mn), g.up(sq), c, m, mo, eps, update))
				g.check(name+" invstd", nil, g.down(inv, c), wi)
				if update {
					g.check(name+" runMean", nil, g.down(rmp, c), wrm)
					g.check(name+" runVar", nil, g.down(rvp, c), wrv)
				} else {
					g.checkSame(name+" runMean", g.down(rmp, c), rm)
					g.checkSame(name+" runVar", g.down(rvp, c), rv)
				}
			}
		}
		rm, rv := g.uniform(c, -1, 1), g.uniform(c, 0, 2)
		wm, wi := make([]float64, c), make([]float64, c)
		for i := range wm {
			wm[i] = float64(rm[i])
			wi[i] = 1 / math.Sqrt(float64(rv[i])+1e-3)
		}
		mean, inv := g.poison(c), g.poison(c)
		g.must("BNInference", g.k.BNInference(g.s, mean, inv, g.up(rm), g.up(rv), c, 1e-3))
		g.check("BNInference mean", nil, g.down(mean, c), wm)
		g.check("BNInference invstd", nil, g.down(inv, c), wi)
	})
}

// bnCase is random batch-norm inputs whose pre-activation u is never within
// 1e-3 of 0 (where leaky and relu's derivative jumps and float rounding could
// pick the other side).
type bnCase struct {
	x, dy, mean, invstd, gamma, beta []float32
}

func (g *gt) bnCase(n, c, hw int) bnCase {
	b := bnCase{mean: g.uniform(c, -1, 1), invstd: g.uniform(c, 0.5, 2), gamma: g.uniform(c, -1.5, 1.5),
		beta: g.uniform(c, -1, 1)}
	b.x = make([]float32, n*c*hw)
	for i := range b.x {
		ch := i / hw % c
		for {
			v := float32(g.rng.Float64()*6 - 3)
			if math.Abs(b.u(i, ch, v)) >= 1e-3 {
				b.x[i] = v
				break
			}
		}
	}
	b.dy = g.uniform(n*c*hw, -2, 2)
	return b
}

func (b *bnCase) xhat(ch int, v float32) float64 {
	return (float64(v) - float64(b.mean[ch])) * float64(b.invstd[ch])
}

func (b *bnCase) u(i, ch int, v float32) float64 {
	return float64(b.gamma[ch])*b.xhat(ch, v) + float64(b.beta[ch])
}

func TestOpsBNActForward(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, sh := range opShapes {
			n, c, hw := sh[0], sh[1], sh[2]*sh[3]
			tot := n * c * hw
			b := g.bnCase(n, c, hw)
			for _, a := range allActs {
				name := fmt.Sprintf("shape=%v act=%v", sh, a)
				want := make([]float64, tot)
				for i, v := range b.x {
					want[i] = refAct(a, b.u(i, i/hw%c, v))
				}
				xp := g.up(b.x)
				mp, ip, gp, bp := g.up(b.mean), g.up(b.invstd), g.up(b.gamma), g.up(b.beta)
				y := g.poison(tot)
				g.must("BNActForward", g.k.BNActForward(g.s, y, xp, mp, ip, gp, bp, n, c, hw, a))
				g.check("BNActForward "+name, []int{n, c, hw}, g.down(y, tot), want)
				g.must("BNActForward in place", g.k.BNActForward(g.s, xp, xp, mp, ip, gp, bp, n, c, hw, a))
				g.check("BNActForward in place "+name, []int{n, c, hw}, g.down(xp, tot), want)
			}
		}
	})
}

func TestOpsBNActBackward(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, sh := range opShapes {
			n, c, hw := sh[0], sh[1], sh[2]*sh[3]
			tot := n * c * hw
			dims := []int{n, c, hw}
			b := g.bnCase(n, c, hw)
			for _, a := range allActs {
				name := fmt.Sprintf("shape=%v act=%v", sh, a)
				gr := make([]float64, tot)
				wsg, wsgx := make([]float64, c), make([]float64, c)
				for i, v := range b.x {
					ch := i / hw % c
					gr[i] = float64(b.dy[i]) * refActGrad(a, b.u(i, ch, v))
					wsg[ch] += gr[i]
					wsgx[ch] += gr[i] * b.xhat(ch, v)
				}
				xp, dyp := g.up(b.x), g.up(b.dy)
				mp, ip, gp, bp := g.up(b.mean), g.up(b.invstd), g.up(b.gamma), g.up(b.beta)
				sg, sgx := g.poison(c), g.poison(c)
				g.must("BNActBackwardReduce", g.k.BNActBackwardReduce(g.s, sg, sgx, dyp, xp, mp, ip, gp, bp, n, c, hw, a,
					g.scratch(n, c, hw)))
				g.check("BNActBackwardReduce sumG "+name, nil, g.down(sg, c), wsg)
				g.check("BNActBackwardReduce sumGX "+name, nil, g.down(sgx, c), wsgx)

				// dx from given sums (the float32 ones a real step would pass),
				// with the local count and with a larger, synchronized-BN count.
				sgf, sgxf := make([]float32, c), make([]float32, c)
				for ch := range sgf {
					sgf[ch], sgxf[ch] = float32(wsg[ch]), float32(wsgx[ch])
				}
				sgp, sgxp := g.up(sgf), g.up(sgxf)
				for _, m := range []float64{float64(n * hw), float64(3 * n * hw)} {
					wdx := make([]float64, tot)
					for i, v := range b.x {
						ch := i / hw % c
						k := float64(b.gamma[ch]) * float64(b.invstd[ch]) / m
						wdx[i] = k * (m*gr[i] - float64(sgf[ch]) - b.xhat(ch, v)*float64(sgxf[ch]))
					}
					nm := fmt.Sprintf("%s m=%v", name, m)
					dx := g.poison(tot)
					g.must("BNActBackwardDx", g.k.BNActBackwardDx(g.s, dx, dyp, xp, mp, ip, gp, bp, sgp, sgxp, n, c, hw, a, m, false))
					g.check("BNActBackwardDx "+nm, dims, g.down(dx, tot), wdx)

					pre := g.uniform(tot, -1, 1)
					dx = g.up(pre)
					g.must("BNActBackwardDx acc", g.k.BNActBackwardDx(g.s, dx, dyp, xp, mp, ip, gp, bp, sgp, sgxp, n, c, hw, a, m, true))
					wacc := make([]float64, tot)
					for i := range wacc {
						wacc[i] = float64(pre[i]) + wdx[i]
					}
					g.check("BNActBackwardDx acc "+nm, dims, g.down(dx, tot), wacc)

					d2 := g.up(b.dy)
					g.must("BNActBackwardDx in place", g.k.BNActBackwardDx(g.s, d2, d2, xp, mp, ip, gp, bp, sgp, sgxp, n, c, hw, a, m, false))
					g.check("BNActBackwardDx in place "+nm, dims, g.down(d2, tot), wdx)
				}
			}
		}
	})
}

// ---- pooling ----

type poolCfg struct{ size, stride, pad int }

// darknet's pools: 2/2 (pad 1, the default size-1; and pad 0), yolov3-tiny's
// last 2/1, 3/2 pad 2, 3/1, the SPP 5/1.
var poolCfgs = []poolCfg{{2, 2, 1}, {2, 2, 0}, {2, 1, 1}, {3, 2, 2}, {3, 1, 2}, {5, 1, 4}}

var poolShapes = [][4]int{{1, 1, 1, 1}, {2, 3, 13, 13}, {1, 2, 7, 10}, {3, 1, 6, 5}, {2, 2, 26, 19}}

// refMaxPool is model/pool.go's general loop.
func refMaxPool(x []float32, planes, h, w int, p poolCfg) (y []float32, arg []int32) {
	ho, wo := PoolOutDim(h, p.size, p.stride, p.pad), PoolOutDim(w, p.size, p.stride, p.pad)
	off := -p.pad / 2
	y, arg = make([]float32, planes*ho*wo), make([]int32, planes*ho*wo)
	for pl := 0; pl < planes; pl++ {
		xp := x[pl*h*w:]
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				best, a := float32(math.Inf(-1)), int32(-1)
				for u := 0; u < p.size; u++ {
					yy := i*p.stride + off + u
					if yy < 0 || yy >= h {
						continue
					}
					for v := 0; v < p.size; v++ {
						xx := j*p.stride + off + v
						if xx < 0 || xx >= w {
							continue
						}
						if val := xp[yy*w+xx]; a < 0 || val > best {
							best, a = val, int32(yy*w+xx)
						}
					}
				}
				k := (pl*ho+i)*wo + j
				y[k], arg[k] = best, a
			}
		}
	}
	return y, arg
}

func TestOpsMaxPool(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, sh := range poolShapes {
			n, c, h, w := sh[0], sh[1], sh[2], sh[3]
			for _, p := range poolCfgs {
				for _, ties := range []bool{false, true} {
					name := fmt.Sprintf("shape=%v size=%d stride=%d pad=%d ties=%v", sh, p.size, p.stride, p.pad, ties)
					ho, wo := PoolOutDim(h, p.size, p.stride, p.pad), PoolOutDim(w, p.size, p.stride, p.pad)
					if ho < 1 || wo < 1 {
						continue
					}
					x := g.uniform(n*c*h*w, -3, 3)
					if ties { // few distinct values: the first maximum must win
						for i := range x {
							x[i] = float32(math.Floor(float64(x[i])))
						}
					}
					wy, warg := refMaxPool(x, n*c, h, w, p)
					to := n * c * ho * wo
					y, arg := g.poison(to), g.poison(to)
					g.must("MaxPoolForward", g.k.MaxPoolForward(g.s, y, arg, g.up(x), n, c, h, w, p.size, p.stride, p.pad))
					g.check("MaxPoolForward y "+name, []int{n, c, ho, wo}, g.down(y, to), f64s(wy))
					ga := g.downI32(arg, to)
					bad := 0
					for i := range warg {
						if ga[i] != warg[i] {
							if bad++; bad <= 5 {
								t.Errorf("MaxPoolForward arg %s: element %d %s: got %d, want %d", name, i,
									coords(i, []int{n, c, ho, wo}), ga[i], warg[i])
							}
						}
					}

					// backward from the reference argmax (uploaded), as model/pool.go's scatter
					dy := g.uniform(to, -2, 2)
					wdx := make([]float64, n*c*h*w)
					for i, a := range warg {
						if a >= 0 {
							wdx[i/(ho*wo)*h*w+int(a)] += float64(dy[i])
						}
					}
					dyp, argp := g.up(dy), g.upI32(warg)
					dx := g.poison(n * c * h * w)
					g.must("MaxPoolBackward", g.k.MaxPoolBackward(g.s, dx, dyp, argp, n, c, h, w, p.size, p.stride, p.pad, false))
					g.check("MaxPoolBackward "+name, []int{n, c, h, w}, g.down(dx, n*c*h*w), wdx)
					pre := g.uniform(n*c*h*w, -1, 1)
					dx = g.up(pre)
					g.must("MaxPoolBackward acc", g.k.MaxPoolBackward(g.s, dx, dyp, argp, n, c, h, w, p.size, p.stride, p.pad, true))
					for i := range wdx {
						wdx[i] += float64(pre[i])
					}
					g.check("MaxPoolBackward acc "+name, []int{n, c, h, w}, g.down(dx, n*c*h*w), wdx)
				}
			}
		}
	})
}

func TestOpsUpsample(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, sh := range poolShapes {
			n, c, h, w := sh[0], sh[1], sh[2], sh[3]
			for _, s := range []int{1, 2, 3} {
				name := fmt.Sprintf("shape=%v stride=%d", sh, s)
				ho, wo := h*s, w*s
				x := g.uniform(n*c*h*w, -3, 3)
				wy := make([]float64, n*c*ho*wo)
				for i := range wy {
					j, r, p := i%wo, i/wo%ho, i/(wo*ho)
					wy[i] = float64(x[(p*h+r/s)*w+j/s])
				}
				y := g.poison(len(wy))
				g.must("UpsampleForward", g.k.UpsampleForward(g.s, y, g.up(x), n, c, h, w, s))
				g.check("UpsampleForward "+name, []int{n, c, ho, wo}, g.down(y, len(wy)), wy)

				dy := g.uniform(len(wy), -2, 2)
				wdx := make([]float64, n*c*h*w)
				for i, v := range dy {
					j, r, p := i%wo, i/wo%ho, i/(wo*ho)
					wdx[(p*h+r/s)*w+j/s] += float64(v)
				}
				dyp := g.up(dy)
				dx := g.poison(len(wdx))
				g.must("UpsampleBackward", g.k.UpsampleBackward(g.s, dx, dyp, n, c, h, w, s, false))
				g.check("UpsampleBackward "+name, []int{n, c, h, w}, g.down(dx, len(wdx)), wdx)
				pre := g.uniform(len(wdx), -1, 1)
				dx = g.up(pre)
				g.must("UpsampleBackward acc", g.k.UpsampleBackward(g.s, dx, dyp, n, c, h, w, s, true))
				for i := range wdx {
					wdx[i] += float64(pre[i])
				}
				g.check("UpsampleBackward acc "+name, []int{n, c, h, w}, g.down(dx, len(wdx)), wdx)
			}
		}
	})
}

func TestOpsGlobalAvg(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, sh := range append(opShapes, [4]int{2, 3, 1, 1}, [4]int{1, 2, 1, 40}, [4]int{2, 2, 100, 100}) {
			n, c, hw := sh[0], sh[1], sh[2]*sh[3]
			name := fmt.Sprintf("shape=%v", sh)
			x := g.uniform(n*c*hw, -1, 3)
			wy := make([]float64, n*c)
			for i, v := range x {
				wy[i/hw] += float64(v)
			}
			for p := range wy {
				wy[p] /= float64(hw)
			}
			y := g.poison(n * c)
			g.must("GlobalAvgForward", g.k.GlobalAvgForward(g.s, y, g.up(x), n, c, hw))
			g.check("GlobalAvgForward "+name, []int{n, c}, g.down(y, n*c), wy)

			dy := g.uniform(n*c, -2, 2)
			wdx := make([]float64, n*c*hw)
			for i := range wdx {
				wdx[i] = float64(dy[i/hw] / float32(hw))
			}
			dyp := g.up(dy)
			dx := g.poison(len(wdx))
			g.must("GlobalAvgBackward", g.k.GlobalAvgBackward(g.s, dx, dyp, n, c, hw, false))
			g.check("GlobalAvgBackward "+name, []int{n, c, hw}, g.down(dx, len(wdx)), wdx)
			pre := g.uniform(len(wdx), -1, 1)
			dx = g.up(pre)
			g.must("GlobalAvgBackward acc", g.k.GlobalAvgBackward(g.s, dx, dyp, n, c, hw, true))
			for i := range wdx {
				wdx[i] += float64(pre[i])
			}
			g.check("GlobalAvgBackward acc "+name, []int{n, c, hw}, g.down(dx, len(wdx)), wdx)
		}
	})
}

// ---- route, shortcut ----

func TestOpsCopyChannels(t *testing.T) {
	runGPU(t, func(g *gt) {
		// (n, hw, dstC, dstOff, srcC, srcOff, count): route concat slots,
		// a groups=2 id=1 route (second half of the source), whole tensors.
		cases := [][7]int{
			{2, 35, 7, 0, 3, 0, 3},
			{2, 35, 7, 3, 4, 0, 4},
			{3, 169, 4, 0, 8, 4, 4},
			{1, 1, 5, 2, 6, 1, 3},
			{4, 52, 6, 0, 6, 0, 6},
			{2, 1517, 3, 1, 5, 2, 2},
		}
		for _, cs := range cases {
			n, hw, dc, do, sc, so, k := cs[0], cs[1], cs[2], cs[3], cs[4], cs[5], cs[6]
			src := g.uniform(n*sc*hw, -3, 3)
			for _, acc := range []bool{false, true} {
				name := fmt.Sprintf("n=%d hw=%d dst %d+[%d,%d) src %d+[%d,%d) acc=%v", n, hw, dc, do, do+k, sc, so, so+k, acc)
				pre := make([]float32, n*dc*hw)
				for i := range pre {
					pre[i] = float32(math.NaN())
				}
				want := make([]float64, len(pre))
				if acc {
					pre = g.uniform(len(pre), -1, 1)
				}
				for i := range want {
					want[i] = float64(pre[i])
				}
				for b := 0; b < n; b++ {
					for ch := 0; ch < k; ch++ {
						for j := 0; j < hw; j++ {
							d := (b*dc+do+ch)*hw + j
							v := float64(src[(b*sc+so+ch)*hw+j])
							if acc {
								want[d] += v
							} else {
								want[d] = v
							}
						}
					}
				}
				dst := g.up(pre)
				g.must("CopyChannels", g.k.CopyChannels(g.s, dst, g.up(src), n, hw, dc, do, sc, so, k, acc))
				got := g.down(dst, len(pre))
				g.check("CopyChannels "+name, []int{n, dc, hw}, got, want)
				// channels outside the slot must be untouched (still NaN / the pre-fill)
				bad := 0
				for i := range pre {
					ch := i / hw % dc
					if (ch < do || ch >= do+k) && math.Float32bits(got[i]) != math.Float32bits(pre[i]) {
						if bad++; bad <= 3 {
							t.Errorf("CopyChannels %s: element %d %s outside the slot changed to %v", name, i,
								coords(i, []int{n, dc, hw}), got[i])
						}
					}
				}
			}
		}
	})
}

func TestOpsAddAccumulate(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, n := range []int{1, 31, 1000, 70001} {
			a, b := g.uniform(n, -3, 3), g.uniform(n, -3, 3)
			want := make([]float64, n)
			for i := range want {
				want[i] = float64(a[i] + b[i])
			}
			ap, bp := g.up(a), g.up(b)
			y := g.poison(n)
			g.must("Add", g.k.Add(g.s, y, ap, bp, n))
			g.check(fmt.Sprintf("Add n=%d", n), nil, g.down(y, n), want)
			g.must("Add y=a", g.k.Add(g.s, ap, ap, bp, n))
			g.check(fmt.Sprintf("Add y=a n=%d", n), nil, g.down(ap, n), want)
			ap = g.up(a)
			g.must("Add y=b", g.k.Add(g.s, bp, ap, bp, n))
			g.check(fmt.Sprintf("Add y=b n=%d", n), nil, g.down(bp, n), want)

			bp = g.up(b)
			d := g.poison(n)
			g.must("Accumulate", g.k.Accumulate(g.s, d, bp, n, false))
			g.check(fmt.Sprintf("Accumulate n=%d", n), nil, g.down(d, n), f64s(b))
			d = g.up(a)
			g.must("Accumulate acc", g.k.Accumulate(g.s, d, bp, n, true))
			g.check(fmt.Sprintf("Accumulate acc n=%d", n), nil, g.down(d, n), want)
		}
	})
}

// ---- scale_channels ----

func TestOpsScaleChannels(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, sh := range append(opShapes, [4]int{2, 4, 1, 1}, [4]int{2, 3, 20, 20}) {
			n, c, hw := sh[0], sh[1], sh[2]*sh[3]
			tot := n * c * hw
			dims := []int{n, c, hw}
			name := fmt.Sprintf("shape=%v", sh)
			x, sc := g.uniform(tot, -3, 3), g.uniform(n*c, -2, 2)
			wy := make([]float64, tot)
			for i, v := range x {
				wy[i] = float64(v * sc[i/hw])
			}
			xp, scp := g.up(x), g.up(sc)
			y := g.poison(tot)
			g.must("ScaleChannelsForward", g.k.ScaleChannelsForward(g.s, y, xp, scp, n, c, hw))
			g.check("ScaleChannelsForward "+name, dims, g.down(y, tot), wy)

			dy := g.uniform(tot, -2, 2)
			wdx, wds := make([]float64, tot), make([]float64, n*c)
			for i := range wdx {
				wdx[i] = float64(dy[i] * sc[i/hw])
				wds[i/hw] += float64(dy[i] * x[i])
			}
			dyp := g.up(dy)
			for _, accX := range []bool{false, true} {
				for _, accS := range []bool{false, true} {
					nm := fmt.Sprintf("%s accX=%v accS=%v", name, accX, accS)
					dx, ds := g.poison(tot), g.poison(n*c)
					wx, ws := append([]float64(nil), wdx...), append([]float64(nil), wds...)
					if accX {
						pre := g.uniform(tot, -1, 1)
						dx = g.up(pre)
						for i := range wx {
							wx[i] += float64(pre[i])
						}
					}
					if accS {
						pre := g.uniform(n*c, -1, 1)
						ds = g.up(pre)
						for i := range ws {
							ws[i] += float64(pre[i])
						}
					}
					g.must("ScaleChannelsBackward", g.k.ScaleChannelsBackward(g.s, dx, ds, dyp, xp, scp, n, c, hw, accX, accS))
					g.check("ScaleChannelsBackward dx "+nm, dims, g.down(dx, tot), wx)
					g.check("ScaleChannelsBackward dscale "+nm, []int{n, c}, g.down(ds, n*c), ws)
				}
			}
			// dx over dy
			ds := g.poison(n * c)
			d2 := g.up(dy)
			g.must("ScaleChannelsBackward in place", g.k.ScaleChannelsBackward(g.s, d2, ds, d2, xp, scp, n, c, hw, false, false))
			g.check("ScaleChannelsBackward in place dx "+name, dims, g.down(d2, tot), wdx)
			g.check("ScaleChannelsBackward in place dscale "+name, []int{n, c}, g.down(ds, n*c), wds)
		}
	})
}

// ---- dropout ----

func TestOpsDropout(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, n := range []int{1, 100, 4097} {
			for _, p := range []float64{0, 0.1, 0.5, 0.9} {
				seed := uint32(12345 + n)
				name := fmt.Sprintf("n=%d p=%v", n, p)
				x := g.uniform(n, -3, 3)
				sc := float32(1 / (1 - p))
				wy := make([]float64, n)
				for i := range wy {
					if DropoutKeep(seed, i, p) {
						wy[i] = float64(x[i] * sc)
					}
				}
				xp := g.up(x)
				y := g.poison(n)
				g.must("DropoutForward", g.k.DropoutForward(g.s, y, xp, n, p, seed))
				g.check("DropoutForward "+name, nil, g.down(y, n), wy)
				dx := g.poison(n)
				g.must("DropoutBackward", g.k.DropoutBackward(g.s, dx, xp, n, p, seed, false))
				g.check("DropoutBackward "+name, nil, g.down(dx, n), wy)
				pre := g.uniform(n, -1, 1)
				dx = g.up(pre)
				g.must("DropoutBackward acc", g.k.DropoutBackward(g.s, dx, xp, n, p, seed, true))
				for i := range wy {
					wy[i] += float64(pre[i])
				}
				g.check("DropoutBackward acc "+name, nil, g.down(dx, n), wy)
			}
		}
	})
}

// TestOpsCPUDropoutMask checks the host mask (the kernel's hash): the kept
// fraction is 1-p, and different seeds give unrelated masks.
func TestOpsCPUDropoutMask(t *testing.T) {
	const n = 200000
	for _, p := range []float64{0, 0.1, 0.5, 0.9} {
		kept := 0
		for i := 0; i < n; i++ {
			if DropoutKeep(7, i, p) {
				kept++
			}
		}
		if f := float64(kept) / n; math.Abs(f-(1-p)) > 0.005 {
			t.Errorf("p=%v: kept fraction %.4f, want %.4f", p, f, 1-p)
		}
	}
	same := 0
	for i := 0; i < n; i++ {
		if DropoutKeep(1, i, 0.5) == DropoutKeep(2, i, 0.5) {
			same++
		}
	}
	if f := float64(same) / n; math.Abs(f-0.5) > 0.005 {
		t.Errorf("seeds 1 and 2 agree on %.4f of the elements, want about 0.5", f)
	}
	if DropoutKeep(1, 0, 1) || DropoutKeep(1, 0, -0.1) {
		t.Errorf("DropoutKeep with p outside [0,1) should keep nothing")
	}
}

// ---- optimizer ----

func TestOpsSGDEMA(t *testing.T) {
	runGPU(t, func(g *gt) {
		for _, n := range []int{1, 77, 5000} {
			w, v, gr := g.uniform(n, -1, 1), g.uniform(n, -0.1, 0.1), g.uniform(n, -1, 1)
			const lr, mo, dec = float32(0.01), float32(0.9), float32(5e-4)
			ww, wv := make([]float64, n), make([]float64, n)
			for i := range ww {
				vi := mo*v[i] - lr*(gr[i]+dec*w[i])
				wv[i], ww[i] = float64(vi), float64(w[i]+vi)
			}
			gp := g.up(gr)
			skip0, skip1 := g.upI32([]int32{0}), g.upI32([]int32{1})
			for _, sk := range []struct {
				name string
				p    Ptr
				skip bool
			}{{"no flag", 0, false}, {"flag 0", skip0, false}, {"flag 1", skip1, true}} {
				name := fmt.Sprintf("n=%d skip %s", n, sk.name)
				wp, vp := g.up(w), g.up(v)
				g.must("SGDStep", g.k.SGDStep(g.s, wp, vp, gp, n, lr, mo, dec, sk.p))
				if sk.skip {
					g.checkSame("SGDStep w "+name, g.down(wp, n), w)
					g.checkSame("SGDStep v "+name, g.down(vp, n), v)
				} else {
					g.check("SGDStep w "+name, nil, g.down(wp, n), ww)
					g.check("SGDStep v "+name, nil, g.down(vp, n), wv)
				}

				e := g.uniform(n, -1, 1)
				const a, b = float32(0.99), float32(0.01)
				we := make([]float64, n)
				for i := range we {
					we[i] = float64(a*e[i] + b*w[i])
				}
				ep := g.up(e)
				g.must("EMAUpdate", g.k.EMAUpdate(g.s, ep, g.up(w), n, a, b, sk.p))
				if sk.skip {
					g.checkSame("EMAUpdate "+name, g.down(ep, n), e)
				} else {
					g.check("EMAUpdate "+name, nil, g.down(ep, n), we)
				}
			}
		}
	})
}

func TestOpsCheckFiniteScale(t *testing.T) {
	runGPU(t, func(g *gt) {
		n := 10000
		x := g.uniform(n, -3, 3)
		flag := g.upI32([]int32{0})
		g.must("CheckFinite", g.k.CheckFinite(g.s, g.up(x), n, flag))
		if f := g.downI32(flag, 1)[0]; f != 0 {
			t.Errorf("CheckFinite on finite data set the flag to %d", f)
		}
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			y := append([]float32(nil), x...)
			y[n-3] = bad
			flag := g.upI32([]int32{0})
			g.must("CheckFinite", g.k.CheckFinite(g.s, g.up(y), n, flag))
			if f := g.downI32(flag, 1)[0]; f != 1 {
				t.Errorf("CheckFinite with %v at %d: flag %d, want 1", bad, n-3, f)
			}
		}
		flag = g.upI32([]int32{1})
		g.must("CheckFinite", g.k.CheckFinite(g.s, g.up(x), n, flag))
		if f := g.downI32(flag, 1)[0]; f != 1 {
			t.Errorf("CheckFinite cleared a set flag (now %d)", f)
		}

		xp := g.up(x)
		g.must("Scale", g.k.Scale(g.s, xp, n, 0.25))
		want := make([]float64, n)
		for i := range want {
			want[i] = float64(x[i] * 0.25)
		}
		g.check("Scale", nil, g.down(xp, n), want)
	})
}

// ---- without a GPU ----

// TestOpsCPURedSplits checks the reduction partition: every element in
// exactly one part, no empty part, enough blocks for big tensors, and the
// scratch size.
func TestOpsCPURedSplits(t *testing.T) {
	for _, sh := range [][3]int{{1, 1, 1}, {0, 3, 5}, {2, 3, 0}, {16, 32, 416 * 416}, {16, 1024, 169}, {2, 1, 300000},
		{64, 3, 608 * 608}, {1, 2048, 1}, {7, 5, 2047}, {16, 255, 52 * 52}} {
		n, c, hw := sh[0], sh[1], sh[2]
		s, ch := redSplits(n, c, hw)
		l := n * hw
		if s < 1 || s > 65535 {
			t.Errorf("%v: %d splits", sh, s)
			continue
		}
		if l > 0 && (s*ch < l || (s-1)*ch >= l) {
			t.Errorf("%v: %d splits of %d do not cover %d elements exactly", sh, s, ch, l)
		}
		if l >= redMinChunk && s*c < min(redTargetBlocks, l/redMinChunk*c) {
			t.Errorf("%v: only %d blocks (%d splits)", sh, s*c, s)
		}
		want := 0
		if s > 1 {
			want = 2 * c * s
		}
		if f := ReduceScratchFloats(n, c, hw); f != want {
			t.Errorf("%v: ReduceScratchFloats %d, want %d", sh, f, want)
		}
	}
}

// TestOpsCPUFastDiv checks the kernels' division by multiply-shift against
// Go's division.
func TestOpsCPUFastDiv(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	ds := []int{1, 2, 3, 4, 5, 6, 7, 13, 169, 255, 256, 1517, 43264, 173056, 1<<30 - 1, 1 << 30, 1<<31 - 1}
	for i := 0; i < 200; i++ {
		ds = append(ds, 1+rng.Intn(1<<31-1), 1+rng.Intn(5000))
	}
	for _, d := range ds {
		m, sh := fastDiv(d)
		xs := []int{0, 1, d - 1, d, d + 1, 2*d - 1, 1<<31 - 1, 1<<31 - 2}
		for k := 0; k < 300; k++ {
			xs = append(xs, rng.Intn(1<<31), rng.Intn(1<<31)/d*d, rng.Intn(1<<31)/d*d-1)
		}
		for _, x := range xs {
			if x < 0 || x >= 1<<31 {
				continue
			}
			if got := int((uint64(x) * uint64(m)) >> sh); got != x/d {
				t.Fatalf("fastDiv(%d) = (%d, %d): %d/%d gives %d, want %d", d, m, sh, x, d, got, x/d)
			}
		}
	}
}

func TestOpsCPUPoolOutDim(t *testing.T) {
	for _, c := range [][5]int{{13, 2, 1, 1, 13}, {26, 2, 2, 1, 13}, {416, 2, 2, 1, 208}, {13, 5, 1, 4, 13}, {13, 3, 2, 2, 7}, {7, 2, 2, 0, 3}} {
		if got := PoolOutDim(c[0], c[1], c[2], c[3]); got != c[4] {
			t.Errorf("PoolOutDim(%d, size %d, stride %d, pad %d) = %d, want %d", c[0], c[1], c[2], c[3], got, c[4])
		}
	}
}

// ---- timing (go test -run XXX -bench Ops ./gpu) ----

func BenchmarkOps(b *testing.B) {
	d, s, k := testGPU(b)
	const n, c, h, w = 16, 64, 208, 208
	tot := n * c * h * w
	err := d.Do(func() error {
		var ps []Ptr
		var sz []int
		alloc := func(m int) Ptr {
			p, err := d.AllocF32(m)
			if err != nil {
				b.Fatal(err)
			}
			ps, sz = append(ps, p), append(sz, 4*m)
			s.Zero(p, m)
			return p
		}
		defer func() {
			for i, p := range ps {
				d.Free(p, sz[i])
			}
		}()
		x, y, dy := alloc(tot), alloc(tot), alloc(tot)
		vec := alloc(4 * c)
		mean, inv, gam, bet := vec, vec.F32(c), vec.F32(2*c), vec.F32(3*c)
		sg, sgx := alloc(c), alloc(c)
		scratch := alloc(max(ReduceScratchFloats(n, c, h*w), 1))
		s.FillF32(x, 0.5, tot)
		s.FillF32(inv, 1, c)
		s.FillF32(gam, 1, c)
		arg := alloc(tot / 4)
		hw := h * w
		cases := []struct {
			name  string
			bytes int // moved per run
			f     func() error
		}{
			{"ChannelSum", 4 * tot, func() error { return k.ChannelSum(s, sg, x, n, c, hw, scratch) }},
			{"BNActForward/leaky", 8 * tot, func() error { return k.BNActForward(s, y, x, mean, inv, gam, bet, n, c, hw, model.Leaky) }},
			{"BNActForward/mish", 8 * tot, func() error { return k.BNActForward(s, y, x, mean, inv, gam, bet, n, c, hw, model.Mish) }},
			{"BNActBackwardReduce/leaky", 8 * tot, func() error {
				return k.BNActBackwardReduce(s, sg, sgx, dy, x, mean, inv, gam, bet, n, c, hw, model.Leaky, scratch)
			}},
			{"BNActBackwardDx/leaky", 12 * tot, func() error {
				return k.BNActBackwardDx(s, y, dy, x, mean, inv, gam, bet, sg, sgx, n, c, hw, model.Leaky, float64(n*hw), false)
			}},
			{"BiasActBackward/linear", 12 * tot, func() error {
				return k.BiasActBackward(s, y, sg, dy, x, bet, n, c, hw, model.Linear, scratch)
			}},
			{"MaxPool2x2Forward", 4*tot + 2*tot/4*4, func() error { return k.MaxPoolForward(s, y, arg, x, n, c, h, w, 2, 2, 1) }},
			{"MaxPool2x2Backward", 4*tot + 2*tot/4*4, func() error { return k.MaxPoolBackward(s, y, dy, arg, n, c, h, w, 2, 2, 1, false) }},
			{"Upsample2Forward", 4*tot/4 + 4*tot, func() error { return k.UpsampleForward(s, y, x, n, c, h/2, w/2, 2) }},
			{"Add", 12 * tot, func() error { return k.Add(s, y, x, dy, tot) }},
			{"ActBackward/mish", 12 * tot, func() error { return k.ActBackward(s, y, dy, x, tot, model.Mish, false) }},
			{"CopyChannels", 8 * tot / 2, func() error { return k.CopyChannels(s, y, x, n, hw, c, 0, c, c/2, c/2, false) }},
		}
		e0, _ := NewEvent()
		e1, _ := NewEvent()
		for _, cs := range cases {
			b.Run(cs.name, func(b *testing.B) {
				for i := 0; i < 3; i++ {
					if err := cs.f(); err != nil {
						b.Fatal(err)
					}
				}
				e0.Record(s)
				for i := 0; i < b.N; i++ {
					cs.f()
				}
				e1.Record(s)
				if err := e1.Sync(); err != nil {
					b.Fatal(err)
				}
				ms, _ := e1.Since(e0)
				per := ms / float64(b.N)
				b.ReportMetric(per*1000, "us/op")
				b.ReportMetric(float64(cs.bytes)/(per/1000)/1e9, "GB/s")
			})
		}
		return s.Sync()
	})
	if err != nil {
		b.Fatal(err)
	}
}
