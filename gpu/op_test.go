package gpu

// One table of layer-op cases (opCases), run against the CPU ops of package
// model as the reference, as gonum's lapack/testlapack runs one suite against
// every implementation: each case's expected output and input gradients are
// computed by model's own op (model.Activate, BiasAct, BNAct, MaxPool,
// Upsample, GlobalAvgPool, RouteGroups, ScaleChannels: their Do and the
// backward ops their SymDiff returns), in a float64 gorgonia graph on the
// same float32 inputs, with the upstream gradient dy entering through
// cost = sum(y * dy). The GPU side runs the kernels as net.go does for the
// layer. TestOpCasesCPU runs every case's reference without a device (the
// table stays exercised on any machine); TestOpCasesGPU compares the GPU
// with it (skipped without a GPU).
//
// Tolerance: opsTol = 1e-5, relative to max(1, |want|) (near). The kernels
// compute in float32 with a few roundings per element (2^-24 ~ 6e-8 each)
// and sum reductions in double over float32 partials, while the reference
// is float64 throughout; for the activations' transcendental functions
// (expf, tanhf, log1pf: a few ulp) and batch norm's invstd (rounded to
// float32) the error stays below 1e-6 relative, so 1e-5 leaves a margin of
// ten and still catches an indexing or formula error, which is O(1). Inputs
// whose pre-activation lies within 1e-3 of leaky's and relu's kink are
// resampled (bnCaseX), since float32 and float64 may take different sides.

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/dettrain/dettrain/model"
)

// refIn is one input of an op case: its shape and float32 values.
type refIn struct {
	shape []int
	v     []float32
}

// opCase is one layer configuration and input shape.
type opCase struct {
	name string
	// ins makes the inputs (x first).
	ins func(r *rand.Rand) []refIn
	// cpu is model's CPU op on the inputs.
	cpu func(in []*G.Node) (*G.Node, error)
	// forwardOnly: no gradient is checked (inference batch norm).
	forwardOnly bool
	// gpu runs the case on the device: the output, and the gradient of
	// each input for the upstream gradient dy (nil in the list: not
	// computed on the GPU).
	gpu func(g *gt, ins []refIn, in []Ptr, dy Ptr) (y Ptr, dx []Ptr)
}

// opRef is the reference result of a case.
type opRef struct {
	ins    []refIn
	y      []float64
	yShape []int
	dy     []float32
	dx     [][]float64
}

// cpuRef runs c's CPU op in a float64 graph: y = op(ins), then (unless
// forwardOnly) the gradients of sum(y*dy) with respect to every input, dy
// uniform in [-2, 2).
func cpuRef(t testing.TB, c opCase, r *rand.Rand) opRef {
	t.Helper()
	ref := opRef{ins: c.ins(r)}
	run := func(dy []float32) (*G.Node, []*G.Node) {
		g := G.NewGraph()
		nodes := make([]*G.Node, len(ref.ins))
		for i, in := range ref.ins {
			d := tensor.New(tensor.WithShape(in.shape...), tensor.WithBacking(f64s(in.v)))
			nodes[i] = G.NewTensor(g, tensor.Float64, len(in.shape), G.WithShape(in.shape...), G.WithValue(d), G.WithName(fmt.Sprintf("in%d", i)))
		}
		y, err := c.cpu(nodes)
		if err != nil {
			t.Fatalf("%s: the CPU op: %v", c.name, err)
		}
		var opts []G.VMOpt
		if dy != nil {
			dyT := tensor.New(tensor.WithShape(y.Shape()...), tensor.WithBacking(f64s(dy)))
			dyN := G.NewTensor(g, tensor.Float64, y.Dims(), G.WithShape(y.Shape()...), G.WithValue(dyT), G.WithName("dy"))
			cost, err := G.Sum(G.Must(G.HadamardProd(y, dyN)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := G.Grad(cost, nodes...); err != nil {
				t.Fatalf("%s: the CPU op's gradient: %v", c.name, err)
			}
			opts = append(opts, G.BindDualValues(nodes...))
		}
		m := G.NewTapeMachine(g, opts...)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatalf("%s: running the CPU op: %v", c.name, err)
		}
		return y, nodes
	}
	y, _ := run(nil)
	ref.yShape = append([]int(nil), y.Shape()...)
	ref.y = append([]float64(nil), y.Value().Data().([]float64)...)
	if c.forwardOnly {
		return ref
	}
	ref.dy = make([]float32, len(ref.y))
	for i := range ref.dy {
		ref.dy[i] = float32(-2 + 4*r.Float64())
	}
	_, nodes := run(ref.dy)
	for i, n := range nodes {
		gv, err := n.Grad()
		if err != nil {
			t.Fatalf("%s: input %d's gradient: %v", c.name, i, err)
		}
		ref.dx = append(ref.dx, append([]float64(nil), gv.Data().([]float64)...))
	}
	return ref
}

// refRand returns n float32s uniform in [lo, hi).
func refRand(r *rand.Rand, n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return v
}

// refActInput is refRand(-3, 3) with the activations' special values
// (mish's softplus thresholds at +-20, large magnitudes, zero) first.
func refActInput(r *rand.Rand, n int) []float32 {
	v := refRand(r, n, -3, 3)
	copy(v, []float32{-25, -20.5, -20, -19.5, 0, 19.5, 20, 20.5, 25, 1e-3, -1e-3, 8, -8})
	return v
}

// bnCaseX returns x (n, c, hw) for batch norm with gamma and beta such that
// no pre-activation u = gamma*(x-mean)*invstd + beta is within 1e-3 of 0,
// mean and invstd being the batch's (train) or given by runMean and runVar
// (inference), all in float64: elements too close are redrawn until none is.
func bnCaseX(r *rand.Rand, n, c, hw int, gamma, beta, runMean, runVar []float32, eps float64) []float32 {
	x := refRand(r, n*c*hw, -3, 3)
	for round := 0; round < 100; round++ {
		mean, inv := make([]float64, c), make([]float64, c)
		for ch := 0; ch < c; ch++ {
			if runMean != nil {
				mean[ch], inv[ch] = float64(runMean[ch]), 1/math.Sqrt(float64(runVar[ch])+eps)
				continue
			}
			var s, q float64
			for b := 0; b < n; b++ {
				for _, v := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
					s += float64(v)
				}
			}
			m := float64(n * hw)
			mean[ch] = s / m
			for b := 0; b < n; b++ {
				for _, v := range x[(b*c+ch)*hw : (b*c+ch+1)*hw] {
					q += (float64(v) - mean[ch]) * (float64(v) - mean[ch])
				}
			}
			inv[ch] = 1 / math.Sqrt(q/m+eps)
		}
		redrawn := 0
		for i, v := range x {
			ch := i / hw % c
			if u := float64(gamma[ch])*(float64(v)-mean[ch])*inv[ch] + float64(beta[ch]); math.Abs(u) < 1e-3 {
				x[i] = float32(r.Float64()*6 - 3)
				redrawn++
			}
		}
		if redrawn == 0 {
			break
		}
	}
	return x
}

// refShapes are (n, c, h, w): odd sizes, h != w, hw not a multiple of 32, and
// channels long enough to be reduced in several parts (opShapes' sizes).
var refShapes = [][4]int{{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 4, 13, 13}, {2, 5, 9, 6}, {1, 2, 37, 41}, {4, 2, 64, 50}}

// refPoolShapes and poolCfgs are the pooling cases (darknet's pools).
var refPoolShapes = [][4]int{{1, 1, 1, 1}, {2, 3, 13, 13}, {1, 2, 7, 10}, {3, 1, 6, 5}, {2, 2, 26, 19}}

var refActs = []model.Activation{model.Linear, model.Leaky, model.ReLU, model.Logistic, model.Mish, model.Swish}

// opCases is the table: every layer op net.go runs, for each activation,
// shape and pooling configuration.
func opCases() []opCase {
	var cs []opCase
	for _, sh := range refShapes {
		n, c, h, w := sh[0], sh[1], sh[2], sh[3]
		hw, tot := h*w, sh[0]*sh[1]*sh[2]*sh[3]
		x4 := []int{n, c, h, w}
		for _, a := range refActs {
			cs = append(cs, opCase{
				name: fmt.Sprintf("act %v %v", a, sh),
				ins:  func(r *rand.Rand) []refIn { return []refIn{{x4, refActInput(r, tot)}} },
				cpu:  func(in []*G.Node) (*G.Node, error) { return model.Activate(in[0], a) },
				gpu: func(g *gt, _ []refIn, in []Ptr, dy Ptr) (Ptr, []Ptr) {
					y, dx := g.poison(tot), g.poison(tot)
					g.must("ActForward", g.k.ActForward(g.s, y, in[0], tot, a))
					g.must("ActBackward", g.k.ActBackward(g.s, dx, dy, in[0], tot, a, false))
					return y, []Ptr{dx}
				},
			}, opCase{
				name: fmt.Sprintf("bias+act %v %v", a, sh),
				ins: func(r *rand.Rand) []refIn {
					return []refIn{{x4, refActInput(r, tot)}, {[]int{c}, refRand(r, c, -1, 1)}}
				},
				cpu: func(in []*G.Node) (*G.Node, error) { return model.BiasAct(in[0], in[1], a) },
				gpu: func(g *gt, _ []refIn, in []Ptr, dy Ptr) (Ptr, []Ptr) {
					y, dx, db := g.poison(tot), g.poison(tot), g.poison(c)
					g.must("BiasActForward", g.k.BiasActForward(g.s, y, in[0], in[1], n, c, hw, a))
					g.must("BiasActBackward", g.k.BiasActBackward(g.s, dx, db, dy, in[0], in[1], n, c, hw, a, g.scratch(n, c, hw)))
					return y, []Ptr{dx, db}
				},
			}, bnTrainCase(a, sh), bnInferenceCase(a, sh))
		}
		cs = append(cs, opCase{
			name: fmt.Sprintf("avgpool %v", sh),
			ins:  func(r *rand.Rand) []refIn { return []refIn{{x4, refRand(r, tot, -1, 3)}} },
			cpu:  func(in []*G.Node) (*G.Node, error) { return model.GlobalAvgPool(in[0]) },
			gpu: func(g *gt, _ []refIn, in []Ptr, dy Ptr) (Ptr, []Ptr) {
				y, dx := g.poison(n*c), g.poison(tot)
				g.must("GlobalAvgForward", g.k.GlobalAvgForward(g.s, y, in[0], n, c, hw))
				g.must("GlobalAvgBackward", g.k.GlobalAvgBackward(g.s, dx, dy, n, c, hw, false))
				return y, []Ptr{dx}
			},
		}, opCase{
			name: fmt.Sprintf("scale_channels %v", sh),
			ins: func(r *rand.Rand) []refIn {
				return []refIn{{x4, refRand(r, tot, -3, 3)}, {[]int{n, c, 1, 1}, refRand(r, n*c, -2, 2)}}
			},
			cpu: func(in []*G.Node) (*G.Node, error) { return model.ScaleChannels(in[0], in[1]) },
			gpu: func(g *gt, _ []refIn, in []Ptr, dy Ptr) (Ptr, []Ptr) {
				y, dx, ds := g.poison(tot), g.poison(tot), g.poison(n*c)
				g.must("ScaleChannelsForward", g.k.ScaleChannelsForward(g.s, y, in[0], in[1], n, c, hw))
				g.must("ScaleChannelsBackward", g.k.ScaleChannelsBackward(g.s, dx, ds, dy, in[0], in[1], n, c, hw, false, false))
				return y, []Ptr{dx, ds}
			},
		})
	}
	for _, sh := range refPoolShapes {
		n, c, h, w := sh[0], sh[1], sh[2], sh[3]
		tot, x4 := n*c*h*w, []int{n, c, h, w}
		for _, p := range poolCfgs {
			ho, wo := PoolOutDim(h, p.size, p.stride, p.pad), PoolOutDim(w, p.size, p.stride, p.pad)
			if ho < 1 || wo < 1 {
				continue
			}
			for _, ties := range []bool{false, true} {
				cs = append(cs, opCase{
					name: fmt.Sprintf("maxpool size=%d stride=%d pad=%d ties=%v %v", p.size, p.stride, p.pad, ties, sh),
					ins: func(r *rand.Rand) []refIn {
						x := refRand(r, tot, -3, 3)
						if ties { // few distinct values: the first maximum must win
							for i := range x {
								x[i] = float32(math.Floor(float64(x[i])))
							}
						}
						return []refIn{{x4, x}}
					},
					cpu: func(in []*G.Node) (*G.Node, error) { return model.MaxPool(in[0], p.size, p.stride, p.pad) },
					gpu: func(g *gt, _ []refIn, in []Ptr, dy Ptr) (Ptr, []Ptr) {
						to := n * c * ho * wo
						y, arg, dx := g.poison(to), g.poison(to), g.poison(tot)
						g.must("MaxPoolForward", g.k.MaxPoolForward(g.s, y, arg, in[0], n, c, h, w, p.size, p.stride, p.pad))
						g.must("MaxPoolBackward", g.k.MaxPoolBackward(g.s, dx, dy, arg, n, c, h, w, p.size, p.stride, p.pad, false))
						return y, []Ptr{dx}
					},
				})
			}
		}
		for _, s := range []int{1, 2, 3} {
			cs = append(cs, opCase{
				name: fmt.Sprintf("upsample stride=%d %v", s, sh),
				ins:  func(r *rand.Rand) []refIn { return []refIn{{x4, refRand(r, tot, -3, 3)}} },
				cpu:  func(in []*G.Node) (*G.Node, error) { return model.Upsample(in[0], s) },
				gpu: func(g *gt, _ []refIn, in []Ptr, dy Ptr) (Ptr, []Ptr) {
					y, dx := g.poison(tot*s*s), g.poison(tot)
					g.must("UpsampleForward", g.k.UpsampleForward(g.s, y, in[0], n, c, h, w, s))
					g.must("UpsampleBackward", g.k.UpsampleBackward(g.s, dx, dy, n, c, h, w, s, false))
					return y, []Ptr{dx}
				},
			})
		}
	}
	// route: (n, h, w, the inputs' channels, groups, group id), as net.go's
	// routeOp copies them (CopyChannels per input, in order).
	for _, rc := range []struct {
		n, h, w    int
		chans      []int
		groups, id int
	}{
		{2, 5, 7, []int{3, 4}, 1, 0},
		{3, 13, 13, []int{8}, 2, 1},
		{2, 6, 9, []int{4, 6}, 2, 0},
		{1, 1, 1, []int{5, 1, 2}, 1, 0},
		{2, 37, 41, []int{6}, 3, 2},
	} {
		n, hw := rc.n, rc.h*rc.w
		cs = append(cs, opCase{
			name: fmt.Sprintf("route groups=%d id=%d channels %v of %dx%d, n=%d", rc.groups, rc.id, rc.chans, rc.h, rc.w, n),
			ins: func(r *rand.Rand) []refIn {
				var ins []refIn
				for _, ch := range rc.chans {
					ins = append(ins, refIn{[]int{n, ch, rc.h, rc.w}, refRand(r, n*ch*hw, -3, 3)})
				}
				return ins
			},
			cpu: func(in []*G.Node) (*G.Node, error) { return model.RouteGroups(rc.groups, rc.id, in...) },
			gpu: func(g *gt, _ []refIn, in []Ptr, dy Ptr) (Ptr, []Ptr) {
				outC := 0
				for _, ch := range rc.chans {
					outC += ch / rc.groups
				}
				y := g.poison(n * outC * hw)
				var dxs []Ptr
				off := 0
				for i, ch := range rc.chans {
					cnt := ch / rc.groups
					g.must("CopyChannels", g.k.CopyChannels(g.s, y, in[i], n, hw, outC, off, ch, rc.id*cnt, cnt, false))
					dx := g.alloc(n * ch * hw)
					g.must("Zero", g.s.Zero(dx, n*ch*hw))
					g.must("CopyChannels back", g.k.CopyChannels(g.s, dx, dy, n, hw, ch, rc.id*cnt, outC, off, cnt, false))
					dxs = append(dxs, dx)
					off += cnt
				}
				return y, dxs
			},
		})
	}
	return cs
}

// bnTrainCase is a training batch norm + activation: the batch statistics
// as bnStats computes them (ChannelSum, BNMean, ChannelSqDev, BNFinalize),
// BNActForward, and the backward of convOp (BNActBackwardReduce, whose sums
// are dbeta and dgamma, then BNActBackwardDx with the local count), against
// model.BNAct in training mode.
func bnTrainCase(a model.Activation, sh [4]int) opCase {
	n, c, h, w := sh[0], sh[1], sh[2], sh[3]
	hw, tot := h*w, n*c*h*w
	const eps, mo = 1e-5, 0.1
	return opCase{
		name: fmt.Sprintf("bn+act train %v %v", a, sh),
		ins: func(r *rand.Rand) []refIn {
			gamma, beta := refRand(r, c, -1.5, 1.5), refRand(r, c, -1, 1)
			x := bnCaseX(r, n, c, hw, gamma, beta, nil, nil, eps)
			return []refIn{{[]int{n, c, h, w}, x}, {[]int{c}, gamma}, {[]int{c}, beta}}
		},
		cpu: func(in []*G.Node) (*G.Node, error) {
			bn := &model.BNState{Mean: make([]float32, c), Var: make([]float32, c), Momentum: mo, Eps: eps}
			return model.BNAct(in[0], in[1], in[2], a, bn, true)
		},
		gpu: func(g *gt, _ []refIn, in []Ptr, dy Ptr) (Ptr, []Ptr) {
			x, gamma, beta := in[0], in[1], in[2]
			m := float64(n * hw)
			mean, inv, sum, sq := g.poison(c), g.poison(c), g.poison(c), g.poison(c)
			rm, rv := g.up(make([]float32, c)), g.up(make([]float32, c))
			g.must("ChannelSum", g.k.ChannelSum(g.s, sum, x, n, c, hw, g.scratch(n, c, hw)))
			g.must("BNMean", g.k.BNMean(g.s, mean, sum, c, m))
			g.must("ChannelSqDev", g.k.ChannelSqDev(g.s, sq, x, mean, n, c, hw, g.scratch(n, c, hw)))
			g.must("BNFinalize", g.k.BNFinalize(g.s, inv, rm, rv, mean, sq, c, m, mo, eps, true))
			y := g.poison(tot)
			g.must("BNActForward", g.k.BNActForward(g.s, y, x, mean, inv, gamma, beta, n, c, hw, a))
			sg, sgx, dx := g.poison(c), g.poison(c), g.poison(tot)
			g.must("BNActBackwardReduce", g.k.BNActBackwardReduce(g.s, sg, sgx, dy, x, mean, inv, gamma, beta, n, c, hw, a, g.scratch(n, c, hw)))
			g.must("BNActBackwardDx", g.k.BNActBackwardDx(g.s, dx, dy, x, mean, inv, gamma, beta, sg, sgx, n, c, hw, a, m, false))
			return y, []Ptr{dx, sgx, sg}
		},
	}
}

// bnInferenceCase is an inference batch norm + activation (BNInference from
// the running statistics, then BNActForward) against model.BNAct in
// inference mode; forward only, as inference has no backward.
func bnInferenceCase(a model.Activation, sh [4]int) opCase {
	n, c, h, w := sh[0], sh[1], sh[2], sh[3]
	hw, tot := h*w, n*c*h*w
	const eps = 1e-3
	return opCase{
		name:        fmt.Sprintf("bn+act inference %v %v", a, sh),
		forwardOnly: true,
		ins: func(r *rand.Rand) []refIn {
			gamma, beta := refRand(r, c, -1.5, 1.5), refRand(r, c, -1, 1)
			rm, rv := refRand(r, c, -1, 1), refRand(r, c, 0.25, 4)
			x := bnCaseX(r, n, c, hw, gamma, beta, rm, rv, eps)
			return []refIn{{[]int{n, c, h, w}, x}, {[]int{c}, gamma}, {[]int{c}, beta}, {[]int{c}, rm}, {[]int{c}, rv}}
		},
		cpu: func(in []*G.Node) (*G.Node, error) {
			bn := &model.BNState{Mean: f32sOf(in[3]), Var: f32sOf(in[4]), Momentum: 0.1, Eps: eps}
			return model.BNAct(in[0], in[1], in[2], a, bn, false)
		},
		gpu: func(g *gt, _ []refIn, in []Ptr, _ Ptr) (Ptr, []Ptr) {
			mean, inv, y := g.poison(c), g.poison(c), g.poison(tot)
			g.must("BNInference", g.k.BNInference(g.s, mean, inv, in[3], in[4], c, eps))
			g.must("BNActForward", g.k.BNActForward(g.s, y, in[0], mean, inv, in[1], in[2], n, c, hw, a))
			return y, nil
		},
	}
}

// f32sOf is the float32 copy of a float64 input node's value (the running
// statistics of an inference case, which model.BNState holds as float32).
func f32sOf(n *G.Node) []float32 {
	v := n.Value().Data().([]float64)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// TestOpCasesCPU computes every case's reference on the CPU: the table and
// the reference harness run on any machine; the output has the size the
// GPU side will be compared over, and every value is finite.
func TestOpCasesCPU(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	cases := opCases()
	for _, c := range cases {
		ref := cpuRef(t, c, r)
		for _, v := range ref.y {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s: the CPU op's output holds %v", c.name, v)
			}
		}
		n := 1
		for _, d := range ref.yShape {
			n *= d
		}
		if len(ref.y) != n || n == 0 {
			t.Fatalf("%s: %d output values for shape %v", c.name, len(ref.y), ref.yShape)
		}
		if c.forwardOnly {
			continue
		}
		if len(ref.dx) != len(ref.ins) || len(ref.dy) != n {
			t.Fatalf("%s: %d input gradients for %d inputs, dy of %d for %d outputs", c.name, len(ref.dx), len(ref.ins), len(ref.dy), n)
		}
		for i, dx := range ref.dx {
			if len(dx) != len(ref.ins[i].v) {
				t.Fatalf("%s: gradient of input %d has %d values, the input %d", c.name, i, len(dx), len(ref.ins[i].v))
			}
		}
	}
	t.Logf("%d op cases", len(cases))
}

// TestOpCasesGPU runs every case on the GPU and compares its output and
// input gradients with the CPU op's (opsTol; see the top of this file).
func TestOpCasesGPU(t *testing.T) {
	runGPU(t, func(g *gt) {
		r := rand.New(rand.NewSource(1))
		for _, c := range opCases() {
			ref := cpuRef(t, c, r)
			in := make([]Ptr, len(ref.ins))
			for i, x := range ref.ins {
				in[i] = g.up(x.v)
			}
			var dy Ptr
			if !c.forwardOnly {
				dy = g.up(ref.dy)
			}
			y, dx := c.gpu(g, ref.ins, in, dy)
			g.check(c.name+" output", ref.yShape, g.down(y, len(ref.y)), ref.y)
			for i, p := range dx {
				if p == 0 || c.forwardOnly {
					continue
				}
				g.check(fmt.Sprintf("%s gradient of input %d", c.name, i), ref.ins[i].shape, g.down(p, len(ref.dx[i])), ref.dx[i])
			}
			g.free()
		}
	})
}
