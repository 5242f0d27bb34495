package model

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gradCheck builds a float64 graph with build(g, params) -> scalar cost,
// computes the symbolic gradient with gorgonia's tape machine, and compares
// it with central differences (step 1e-6) for every element of every param.
// Tolerance: |analytic - numeric| <= tol * max(1, |numeric|), tol 1e-5 as in
// gonum's optimize/functions (defaultFDGradTol).
func gradCheck(t *testing.T, shapes [][]int, build func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error)) {
	t.Helper()
	r := rand.New(rand.NewSource(7))
	vals := make([]*tensor.Dense, len(shapes))
	for i, s := range shapes {
		d := tensor.New(tensor.WithShape(s...), tensor.Of(tensor.Float64))
		for j := range d.Float64s() {
			d.Float64s()[j] = r.NormFloat64()
		}
		vals[i] = d
	}
	run := func(withGrad bool) (float64, []*tensor.Dense) {
		g := G.NewGraph()
		ps := make([]*G.Node, len(vals))
		for i, v := range vals {
			ps[i] = G.NewTensor(g, tensor.Float64, len(shapes[i]), G.WithShape(shapes[i]...), G.WithValue(v), G.WithName(string(rune('a'+i))))
		}
		cost, err := build(g, ps)
		if err != nil {
			t.Fatal(err)
		}
		var opts []G.VMOpt
		if withGrad {
			if _, err := G.Grad(cost, ps...); err != nil {
				t.Fatal(err)
			}
			opts = append(opts, G.BindDualValues(ps...))
		}
		m := G.NewTapeMachine(g, opts...)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		c := cost.Value().Data().(float64)
		if !withGrad {
			return c, nil
		}
		grads := make([]*tensor.Dense, len(ps))
		for i, p := range ps {
			gv, err := p.Grad()
			if err != nil {
				t.Fatal(err)
			}
			grads[i] = gv.(*tensor.Dense).Clone().(*tensor.Dense)
		}
		return c, grads
	}
	_, grads := run(true)
	const h = 1e-6
	for i, v := range vals {
		data := v.Float64s()
		an := grads[i].Float64s()
		for j := range data {
			old := data[j]
			data[j] = old + h
			cp, _ := run(false)
			data[j] = old - h
			cm, _ := run(false)
			data[j] = old
			num := (cp - cm) / (2 * h)
			if math.Abs(an[j]-num) > 1e-5*math.Max(1, math.Abs(num)) {
				t.Fatalf("param %d element %d: analytic %.9g, numeric %.9g", i, j, an[j], num)
			}
		}
	}
}

// weighted returns sum(x * r) for a fixed random r, so that every output
// element gets a different upstream gradient.
func weighted(g *G.ExprGraph, x *G.Node, seed int64) (*G.Node, error) {
	r := rand.New(rand.NewSource(seed))
	d := tensor.New(tensor.WithShape(x.Shape()...), tensor.Of(tensor.Float64))
	for j := range d.Float64s() {
		d.Float64s()[j] = r.NormFloat64()
	}
	c := G.NewTensor(g, tensor.Float64, x.Dims(), G.WithShape(x.Shape()...), G.WithValue(d), G.WithName("r"))
	m, err := G.HadamardProd(x, c)
	if err != nil {
		return nil, err
	}
	return G.Sum(m)
}

// convPaths runs f with the per-image convolution (whole images, and bands
// of one output row), and with the batched one (convbatch.go), for every size.
func convPaths(t *testing.T, f func(t *testing.T)) {
	oldB, oldT, oldM, oldC, oldS := convBatchMaxHW, convTileElems, convTileMinCols, convChunkCols, convSmallPlane
	defer func() {
		convBatchMaxHW, convTileElems, convTileMinCols, convChunkCols, convSmallPlane = oldB, oldT, oldM, oldC, oldS
	}()
	for _, p := range []struct {
		name                            string
		limit, tile, cols, chunk, small int
	}{
		{"per-image", -1, 1 << 30, 1, 0, smallPlane},
		{"per-image general im2col", -1, 1 << 30, 1, 0, 0},
		{"per-image bands", -1, 1, 1, 0, smallPlane},
		{"per-image bands general im2col", -1, 1, 1, 0, 0},
		{"chunks", -1, 1 << 30, 1, 1 << 30, smallPlane},
		{"batched", 1 << 30, 1 << 30, 1, 0, smallPlane},
		{"batched general im2col", 1 << 30, 1 << 30, 1, 0, 0},
	} {
		convBatchMaxHW, convTileElems, convTileMinCols, convChunkCols, convSmallPlane = p.limit, p.tile, p.cols, p.chunk, p.small
		t.Run(p.name, f)
	}
}

func TestConvGradient(t *testing.T) {
	convPaths(t, func(t *testing.T) {
		for _, tc := range []struct {
			name                          string
			n, c, f, size, stride, pad, g int
			h, w                          int
		}{
			{"3x3s1", 2, 3, 4, 3, 1, 1, 1, 6, 5},
			{"3x3s2", 2, 3, 4, 3, 2, 1, 1, 6, 5},
			{"1x1", 2, 4, 3, 1, 1, 0, 1, 6, 5},
			{"depthwise", 2, 4, 4, 3, 1, 1, 4, 6, 5},
			{"grouped s2", 2, 4, 6, 3, 2, 1, 2, 6, 5},
			{"3x3s1 one image", 1, 3, 4, 3, 1, 1, 1, 6, 5},
			{"1x1 one image grouped", 1, 4, 6, 1, 1, 0, 2, 6, 5},
			{"1x1 three images", 3, 4, 3, 1, 1, 0, 1, 6, 5},
			{"3x3 pad 2 three images", 3, 2, 3, 3, 1, 2, 1, 6, 5},
			{"3x3s2 grouped five images", 5, 4, 6, 3, 2, 1, 2, 6, 5},
			{"3x3s1 8x8 (8-wide rows)", 2, 2, 3, 3, 1, 1, 1, 8, 8},
			{"3x3s1 16x16 (16-wide rows)", 2, 1, 2, 3, 1, 1, 1, 16, 16},
		} {
			t.Run(tc.name, func(t *testing.T) {
				gradCheck(t, [][]int{{tc.n, tc.c, tc.h, tc.w}, {tc.f, tc.c / tc.g, tc.size, tc.size}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
					y, err := Conv2D(ps[0], ps[1], tc.size, tc.stride, tc.pad, tc.g)
					if err != nil {
						return nil, err
					}
					return weighted(g, y, 1)
				})
			})
		}
	})
}

// TestConvMatchesDirect checks the im2col+GEMM forward against the defining sum.
func TestConvMatchesDirect(t *testing.T) { convPaths(t, testConvMatchesDirect) }

func testConvMatchesDirect(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	geo := convGeom{size: 3, stride: 2, pad: 1, groups: 2}
	n, c, h, w, f := 2, 4, 7, 6, 6
	x := make([]float64, n*c*h*w)
	wt := make([]float64, f*(c/2)*9)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	for i := range wt {
		wt[i] = r.NormFloat64()
	}
	ho, wo := geo.out(h), geo.out(w)
	y := make([]float64, n*f*ho*wo)
	convForward(geo, tensor.Shape{n, c, h, w}, tensor.Shape{f, c / 2, 3, 3}, x, wt, y)
	for i := 0; i < n; i++ {
		for fo := 0; fo < f; fo++ {
			gi := fo / (f / 2)
			for oy := 0; oy < ho; oy++ {
				for ox := 0; ox < wo; ox++ {
					var s float64
					for cc := 0; cc < c/2; cc++ {
						for u := 0; u < 3; u++ {
							for v := 0; v < 3; v++ {
								yy, xx := oy*2+u-1, ox*2+v-1
								if yy < 0 || yy >= h || xx < 0 || xx >= w {
									continue
								}
								s += wt[((fo*(c/2)+cc)*3+u)*3+v] * x[((i*c+gi*(c/2)+cc)*h+yy)*w+xx]
							}
						}
					}
					if got := y[((i*f+fo)*ho+oy)*wo+ox]; math.Abs(got-s) > 1e-12 {
						t.Fatalf("y[%d,%d,%d,%d] = %v, want %v", i, fo, oy, ox, got, s)
					}
				}
			}
		}
	}
}

func TestBNActGradient(t *testing.T) {
	for _, a := range []Activation{Leaky, Linear, Logistic} {
		t.Run(a.String(), func(t *testing.T) {
			bn := &BNState{Mean: make([]float32, 3), Var: []float32{1, 1, 1}, Momentum: 0.01, Eps: 1e-5}
			gradCheck(t, [][]int{{2, 3, 4, 3}, {3}, {3}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
				y, err := BNAct(ps[0], ps[1], ps[2], a, bn, true)
				if err != nil {
					return nil, err
				}
				return weighted(g, y, 2)
			})
		})
	}
}

func TestBiasActGradient(t *testing.T) {
	gradCheck(t, [][]int{{2, 3, 4, 3}, {3}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
		y, err := BiasAct(ps[0], ps[1], Leaky)
		if err != nil {
			return nil, err
		}
		return weighted(g, y, 3)
	})
}

func TestPoolUpsampleGradient(t *testing.T) {
	for _, tc := range []struct{ size, stride, pad int }{{2, 2, 1}, {2, 1, 1}, {3, 1, 2}, {5, 1, 4}, {3, 2, 2}} {
		gradCheck(t, [][]int{{2, 2, 6, 5}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
			y, err := MaxPool(ps[0], tc.size, tc.stride, tc.pad)
			if err != nil {
				return nil, err
			}
			u, err := Upsample(y, 2)
			if err != nil {
				return nil, err
			}
			return weighted(g, u, 4)
		})
	}
}

// TestMaxPoolDarknetPadding: darknet's size-2 stride-1 pool on [[1..9]] pads
// bottom/right and gives [5 6 6 8 9 9 8 9 9] (darknet's output on this
// input; gorgonia's MaxPool2D with padding {0,1,0,1} pads top/left instead).
func TestMaxPoolDarknetPadding(t *testing.T) {
	g := G.NewGraph()
	x := tensor.New(tensor.WithShape(1, 1, 3, 3), tensor.WithBacking([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9}))
	xn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(1, 1, 3, 3), G.WithValue(x))
	y, err := MaxPool(xn, 2, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	want := []float64{5, 6, 6, 8, 9, 9, 8, 9, 9}
	got := y.Value().(*tensor.Dense).Float64s()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// TestNetworkPiecesGradient chains the ops the way a YOLO network does:
// fan-out, a shortcut (Add) and a route (Concat), so gorgonia's own gradient
// accumulation nodes are exercised with ours.
func TestNetworkPiecesGradient(t *testing.T) {
	bn1 := &BNState{Mean: make([]float32, 4), Var: []float32{1, 1, 1, 1}, Momentum: 0.01, Eps: 1e-5}
	bn2 := &BNState{Mean: make([]float32, 4), Var: []float32{1, 1, 1, 1}, Momentum: 0.01, Eps: 1e-5}
	gradCheck(t, [][]int{{2, 3, 8, 8}, {4, 3, 3, 3}, {4}, {4}, {4, 4, 1, 1}, {4}, {4}, {5, 8, 1, 1}, {5}},
		func(g *G.ExprGraph, p []*G.Node) (*G.Node, error) {
			c1, err := Conv2D(p[0], p[1], 3, 2, 1, 1)
			if err != nil {
				return nil, err
			}
			a1, err := BNAct(c1, p[2], p[3], Leaky, bn1, true)
			if err != nil {
				return nil, err
			}
			c2, err := Conv2D(a1, p[4], 1, 1, 0, 1)
			if err != nil {
				return nil, err
			}
			a2, err := BNAct(c2, p[5], p[6], Leaky, bn2, true)
			if err != nil {
				return nil, err
			}
			sc, err := G.Add(a1, a2) // [shortcut] from=-2
			if err != nil {
				return nil, err
			}
			pool, err := MaxPool(sc, 2, 2, 1)
			if err != nil {
				return nil, err
			}
			up, err := Upsample(pool, 2)
			if err != nil {
				return nil, err
			}
			rt, err := G.Concat(1, up, a1) // [route] layers=-1,-4
			if err != nil {
				return nil, err
			}
			c3, err := Conv2D(rt, p[7], 1, 1, 0, 1)
			if err != nil {
				return nil, err
			}
			out, err := BiasAct(c3, p[8], Linear)
			if err != nil {
				return nil, err
			}
			return weighted(g, out, 5)
		})
}

func TestActivationGradients(t *testing.T) {
	for _, a := range []Activation{Leaky, ReLU, Logistic, Mish, Swish} {
		t.Run(a.String(), func(t *testing.T) {
			bn := &BNState{Mean: make([]float32, 3), Var: []float32{1, 1, 1}, Momentum: 0.1, Eps: 1e-5}
			gradCheck(t, [][]int{{2, 3, 4, 3}, {3}, {3}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
				y, err := BNAct(ps[0], ps[1], ps[2], a, bn, true)
				if err != nil {
					return nil, err
				}
				return weighted(g, y, 2)
			})
			gradCheck(t, [][]int{{2, 3, 4, 3}, {3}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
				y, err := BiasAct(ps[0], ps[1], a)
				if err != nil {
					return nil, err
				}
				return weighted(g, y, 3)
			})
			gradCheck(t, [][]int{{2, 3, 4, 3}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
				y, err := Activate(ps[0], a)
				if err != nil {
					return nil, err
				}
				return weighted(g, y, 4)
			})
		})
	}
}

// TestActivationValues checks mish and swish against values computed by hand
// from their definitions (Misra 2019; Ramachandran et al. 2017):
// mish(1) = tanh(ln(1+e)) = 0.8650983882673103, swish(1) = 1/(1+1/e) = 0.7310585786300049.
func TestActivationValues(t *testing.T) {
	for _, tc := range []struct {
		a    Activation
		x, y float64
	}{
		{Mish, 1, 0.8650983882673103}, {Mish, -1, -0.30340146137410895}, {Mish, 30, 30},
		{Swish, 1, 0.7310585786300049}, {Swish, -2, -0.2384058440442351},
		{Leaky, -2, -0.2}, {ReLU, -2, 0}, {Logistic, 0, 0.5},
	} {
		if got := act(tc.a, tc.x); math.Abs(got-tc.y) > 1e-12 {
			t.Errorf("%v(%v) = %.16g, want %.16g", tc.a, tc.x, got, tc.y)
		}
	}
}

func TestDropoutGradient(t *testing.T) {
	gradCheck(t, [][]int{{2, 3, 4, 3}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
		y, err := Dropout(ps[0], 0.3, 11) // same seed, same mask in every graph gradCheck builds
		if err != nil {
			return nil, err
		}
		return weighted(g, y, 5)
	})
}

// TestDropoutMask: the kept fraction is about 1-p and kept values are scaled by 1/(1-p).
func TestDropoutMask(t *testing.T) {
	g := G.NewGraph()
	x := tensor.New(tensor.WithShape(1, 1, 100, 100), tensor.Of(tensor.Float32))
	for i := range x.Float32s() {
		x.Float32s()[i] = 1
	}
	xn := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, 1, 100, 100), G.WithValue(x))
	y, err := Dropout(xn, 0.2, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, v := range y.Value().(*tensor.Dense).Float32s() {
		switch v {
		case 0:
		case 1.25:
			kept++
		default:
			t.Fatalf("value %v, want 0 or 1/(1-0.2)", v)
		}
	}
	if f := float64(kept) / 1e4; math.Abs(f-0.8) > 0.02 {
		t.Fatalf("kept %.3f, want about 0.8", f)
	}
}

func TestAvgPoolScaleRouteGradient(t *testing.T) {
	t.Run("avgpool", func(t *testing.T) {
		gradCheck(t, [][]int{{2, 3, 4, 5}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
			y, err := GlobalAvgPool(ps[0])
			if err != nil {
				return nil, err
			}
			return weighted(g, y, 6)
		})
	})
	t.Run("scale_channels", func(t *testing.T) {
		gradCheck(t, [][]int{{2, 3, 4, 5}, {2, 3, 1, 1}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
			y, err := ScaleChannels(ps[0], ps[1])
			if err != nil {
				return nil, err
			}
			return weighted(g, y, 7)
		})
	})
	t.Run("route groups", func(t *testing.T) {
		gradCheck(t, [][]int{{2, 4, 3, 3}, {2, 6, 3, 3}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
			y, err := RouteGroups(2, 1, ps[0], ps[1], ps[0])
			if err != nil {
				return nil, err
			}
			return weighted(g, y, 8)
		})
	})
	t.Run("squeeze-excite", func(t *testing.T) {
		// EfficientNet's block: avgpool -> conv -> logistic -> scale_channels.
		gradCheck(t, [][]int{{2, 3, 4, 5}, {3, 3, 1, 1}, {3}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
			p, err := GlobalAvgPool(ps[0])
			if err != nil {
				return nil, err
			}
			c, err := Conv2D(p, ps[1], 1, 1, 0, 1)
			if err != nil {
				return nil, err
			}
			s, err := BiasAct(c, ps[2], Logistic)
			if err != nil {
				return nil, err
			}
			y, err := ScaleChannels(ps[0], s)
			if err != nil {
				return nil, err
			}
			y, err = Activate(y, Swish)
			if err != nil {
				return nil, err
			}
			return weighted(g, y, 9)
		})
	})
}

// TestRouteGroupsValues: groups=2 group_id=1 of channels [0 1 2 3] is [2 3].
func TestRouteGroupsValues(t *testing.T) {
	g := G.NewGraph()
	x := tensor.New(tensor.WithShape(1, 4, 1, 2), tensor.WithBacking([]float64{0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5}))
	xn := G.NewTensor(g, tensor.Float64, 4, G.WithShape(1, 4, 1, 2), G.WithValue(x))
	y, err := RouteGroups(2, 1, xn)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := y.Value().(*tensor.Dense).Float64s()
	want := []float64{2, 2.5, 3, 3.5}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// TestDepthwiseMatchesDirect checks the direct depthwise kernels (forward,
// and by gradCheck below the backward ones) against the defining sum, for
// the sizes, strides and paddings of MobileNet-style models.
func TestDepthwiseMatchesDirect(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	type tc struct {
		geo  convGeom
		h, w int
	}
	var cases []tc
	for _, geo := range []convGeom{{3, 1, 1, 4}, {3, 2, 1, 4}, {5, 1, 2, 4}, {5, 2, 2, 4}, {3, 2, 0, 4}, {1, 1, 0, 4}} {
		cases = append(cases, tc{geo, 9, 7})
	}
	// The 3x3 stride-1 kernels' edges: one row, the narrowest plane they take, one too narrow.
	cases = append(cases, tc{convGeom{3, 1, 1, 4}, 1, 3}, tc{convGeom{3, 1, 1, 4}, 2, 4}, tc{convGeom{3, 1, 1, 4}, 3, 2})
	for _, cs := range cases {
		geo := cs.geo
		n, c, h, w := 2, 4, cs.h, cs.w
		x := make([]float64, n*c*h*w)
		wt := make([]float64, c*geo.size*geo.size)
		for i := range x {
			x[i] = r.NormFloat64()
		}
		for i := range wt {
			wt[i] = r.NormFloat64()
		}
		ho, wo := geo.out(h), geo.out(w)
		y := make([]float64, n*c*ho*wo)
		convForward(geo, tensor.Shape{n, c, h, w}, tensor.Shape{c, 1, geo.size, geo.size}, x, wt, y)
		k := geo.size
		for i := 0; i < n; i++ {
			for ch := 0; ch < c; ch++ {
				for oy := 0; oy < ho; oy++ {
					for ox := 0; ox < wo; ox++ {
						var s float64
						for u := 0; u < k; u++ {
							for v := 0; v < k; v++ {
								yy, xx := oy*geo.stride+u-geo.pad, ox*geo.stride+v-geo.pad
								if yy >= 0 && yy < h && xx >= 0 && xx < w {
									s += wt[(ch*k+u)*k+v] * x[((i*c+ch)*h+yy)*w+xx]
								}
							}
						}
						if got := y[((i*c+ch)*ho+oy)*wo+ox]; math.Abs(got-s) > 1e-12 {
							t.Fatalf("%+v: y[%d,%d,%d,%d] = %v, want %v", geo, i, ch, oy, ox, got, s)
						}
					}
				}
			}
		}
		gradCheck(t, [][]int{{n, c, h, w}, {c, 1, k, k}}, func(g *G.ExprGraph, ps []*G.Node) (*G.Node, error) {
			y, err := Conv2D(ps[0], ps[1], geo.size, geo.stride, geo.pad, geo.groups)
			if err != nil {
				return nil, err
			}
			return weighted(g, y, 10)
		})
	}
}
