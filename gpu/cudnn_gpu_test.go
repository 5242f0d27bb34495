package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// convCases cover groups 1, grouped and depthwise, stride 1 and 2, size 1
// and 3, odd heights and widths, and two larger shapes where cuDNN has more
// algorithms to choose from.
var convCases = []ConvShape{
	{N: 2, C: 3, H: 7, W: 9, K: 4, Size: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 1, C: 4, H: 9, W: 7, K: 6, Size: 3, Stride: 2, Pad: 1, Groups: 1},
	{N: 2, C: 5, H: 5, W: 7, K: 3, Size: 1, Stride: 1, Pad: 0, Groups: 1},
	{N: 2, C: 4, H: 7, W: 7, K: 8, Size: 1, Stride: 2, Pad: 0, Groups: 1},
	{N: 1, C: 3, H: 11, W: 9, K: 5, Size: 3, Stride: 2, Pad: 0, Groups: 1},
	{N: 2, C: 6, H: 9, W: 7, K: 6, Size: 3, Stride: 1, Pad: 1, Groups: 6},
	{N: 1, C: 8, H: 11, W: 13, K: 8, Size: 3, Stride: 2, Pad: 1, Groups: 8},
	{N: 2, C: 4, H: 5, W: 7, K: 6, Size: 3, Stride: 1, Pad: 1, Groups: 2},
	{N: 4, C: 32, H: 19, W: 21, K: 48, Size: 3, Stride: 1, Pad: 1, Groups: 1},
	{N: 8, C: 64, H: 15, W: 17, K: 64, Size: 1, Stride: 1, Pad: 0, Groups: 1},
}

// convRef is a direct float64 convolution's results, each with the sum of
// the absolute values of its terms (the scale of float32's rounding error).
type convRef struct {
	y, yS, dx, dxS, dw, dwS []float64
}

func refConv(sh ConvShape, x, w, dy []float32) convRef {
	oh, ow := sh.Out()
	cg, kg := sh.C/sh.Groups, sh.K/sh.Groups
	r := convRef{
		y: make([]float64, sh.N*sh.K*oh*ow), yS: make([]float64, sh.N*sh.K*oh*ow),
		dx: make([]float64, len(x)), dxS: make([]float64, len(x)),
		dw: make([]float64, len(w)), dwS: make([]float64, len(w)),
	}
	for n := range sh.N {
		for k := range sh.K {
			g := k / kg
			for oy := range oh {
				for ox := range ow {
					yi := ((n*sh.K+k)*oh+oy)*ow + ox
					dyv := float64(dy[yi])
					for c := range cg {
						ci := g*cg + c
						for ky := range sh.Size {
							iy := oy*sh.Stride - sh.Pad + ky
							if iy < 0 || iy >= sh.H {
								continue
							}
							for kx := range sh.Size {
								ix := ox*sh.Stride - sh.Pad + kx
								if ix < 0 || ix >= sh.W {
									continue
								}
								xi := ((n*sh.C+ci)*sh.H+iy)*sh.W + ix
								wi := ((k*cg+c)*sh.Size+ky)*sh.Size + kx
								xv, wv := float64(x[xi]), float64(w[wi])
								r.y[yi] += xv * wv
								r.yS[yi] += math.Abs(xv * wv)
								r.dx[xi] += dyv * wv
								r.dxS[xi] += math.Abs(dyv * wv)
								r.dw[wi] += dyv * xv
								r.dwS[wi] += math.Abs(dyv * xv)
							}
						}
					}
				}
			}
		}
	}
	return r
}

// nchw names element i of an NCHW tensor.
func nchw(name string, c, h, w int) func(int) string {
	return func(i int) string {
		return fmt.Sprintf("%s[n=%d][c=%d][y=%d][x=%d]", name, i/(c*h*w), i/(h*w)%c, i/w%h, i%w)
	}
}

// fftOrWinograd reports whether a direction's algorithm transforms the
// data, so that its rounding error scales with the whole tensor's
// magnitude rather than with each output's own terms.
func fftOrWinograd(dir int, algo int32) bool {
	n := algoName(dir, algo)
	return strings.Contains(n, "FFT") || strings.Contains(n, "WINOGRAD")
}

// errScale returns the per-element tolerance scales: each element's own sum
// of |terms| (plus |prefill| when accumulating), or for FFT and Winograd
// algorithms the largest of them for every element.
func errScale(s []float64, prefill []float32, global bool) []float64 {
	out := make([]float64, len(s))
	mx := 0.0
	for _, v := range s {
		mx = max(mx, v)
	}
	for i := range s {
		out[i] = s[i]
		if global {
			out[i] = mx
		}
		if prefill != nil {
			out[i] += math.Abs(float64(prefill[i]))
		}
	}
	return out
}

func plus(ref []float64, prefill []float32) []float64 {
	out := make([]float64, len(ref))
	for i := range ref {
		out[i] = ref[i] + float64(prefill[i])
	}
	return out
}

// TestConvGPU checks Conv's three directions against a direct float64
// convolution on every convCases shape, in full FP32 (error <= 1e-5 of each
// output's sum of |terms|) and with TF32 (1e-3): outputs poisoned with NaN
// before each overwriting call, pre-filled before each accumulating one.
func TestConvGPU(t *testing.T) {
	d, s, _ := testGPU(t)
	var dnn *DNN
	if err := d.Do(func() error {
		var err error
		dnn, err = NewDNN(s)
		if err != nil {
			return err
		}
		v, path, _ := DNNVersion()
		t.Logf("cuDNN %s (%s)", v, path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer d.Do(dnn.Close)
	for _, tf32 := range []bool{false, true} {
		rel := 1e-5
		if tf32 {
			rel = 1e-3 // the bound; 1.7e-4 at most seen on an H200 (docs/GPU.md)
		}
		for ci, sh := range convCases {
			t.Run(fmt.Sprintf("%v/tf32=%v", sh, tf32), func(t *testing.T) {
				err := d.Do(func() error {
					bufs := &devBufs{d: d}
					defer bufs.free()
					rng := rand.New(rand.NewPCG(uint64(ci), 7))
					oh, ow := sh.Out()
					nx, nw, ny := sh.N*sh.C*sh.H*sh.W, sh.K*sh.C/sh.Groups*sh.Size*sh.Size, sh.N*sh.K*oh*ow
					x, w, dy := randF32(rng, nx), randF32(rng, nw), randF32(rng, ny)
					ref := refConv(sh, x, w, dy)
					xp, wp, dyp := bufs.up(t, s, x), bufs.up(t, s, w), bufs.up(t, s, dy)
					yp, dxp, dwp := bufs.nan(t, s, ny), bufs.nan(t, s, nx), bufs.nan(t, s, nw)
					c, err := dnn.NewConv(sh, tf32, xp, wp, yp, dxp, dwp, true, 256<<20)
					if err != nil {
						return err
					}
					defer c.Close()
					t.Logf("%s; workspace %d B", c.Algos(), c.Workspace())
					ws := bufs.alloc(t, c.Workspace())
					// NewConv's search wrote into y, dx and dw: poison them again.
					for _, b := range []struct {
						p Ptr
						n int
					}{{yp, ny}, {dxp, nx}, {dwp, nw}} {
						if err := s.Fill32(b.p, 0x7fc00000, b.n); err != nil {
							return err
						}
					}
					what := func(dir int, acc bool) string {
						return fmt.Sprintf("%v tf32=%v %s %s acc=%v", sh, tf32, dirNames[dir], algoName(dir, c.ch.dir[dir].algo), acc)
					}

					if err := c.Forward(xp, wp, yp, ws); err != nil {
						return err
					}
					compareScaled(t, what(dirFwd, false), download(t, s, yp, ny), ref.y,
						errScale(ref.yS, nil, fftOrWinograd(dirFwd, c.ch.dir[dirFwd].algo)), rel, nchw("y", sh.K, oh, ow))

					gd := fftOrWinograd(dirBwdData, c.ch.dir[dirBwdData].algo)
					if err := c.BackwardData(wp, dyp, dxp, ws, false); err != nil {
						return err
					}
					dx1 := download(t, s, dxp, nx)
					compareScaled(t, what(dirBwdData, false), dx1, ref.dx, errScale(ref.dxS, nil, gd), rel, nchw("dx", sh.C, sh.H, sh.W))
					if err := sameBitsAgain(t, what(dirBwdData, false), c.ch.dir[dirBwdData].det, dx1, s, dxp, func() error { return c.BackwardData(wp, dyp, dxp, ws, false) }); err != nil {
						return err
					}
					pre := randF32(rng, nx)
					if err := s.Upload(dxp, pre); err != nil {
						return err
					}
					if err := c.BackwardData(wp, dyp, dxp, ws, true); err != nil {
						return err
					}
					compareScaled(t, what(dirBwdData, true), download(t, s, dxp, nx), plus(ref.dx, pre), errScale(ref.dxS, pre, gd), rel, nchw("dx", sh.C, sh.H, sh.W))

					gf := fftOrWinograd(dirBwdFilter, c.ch.dir[dirBwdFilter].algo)
					wpos := nchw("dw", sh.C/sh.Groups, sh.Size, sh.Size)
					if err := c.BackwardFilter(xp, dyp, dwp, ws, false); err != nil {
						return err
					}
					dw1 := download(t, s, dwp, nw)
					compareScaled(t, what(dirBwdFilter, false), dw1, ref.dw, errScale(ref.dwS, nil, gf), rel, wpos)
					if err := sameBitsAgain(t, what(dirBwdFilter, false), c.ch.dir[dirBwdFilter].det, dw1, s, dwp, func() error { return c.BackwardFilter(xp, dyp, dwp, ws, false) }); err != nil {
						return err
					}
					pre = randF32(rng, nw)
					if err := s.Upload(dwp, pre); err != nil {
						return err
					}
					if err := c.BackwardFilter(xp, dyp, dwp, ws, true); err != nil {
						return err
					}
					compareScaled(t, what(dirBwdFilter, true), download(t, s, dwp, nw), plus(ref.dw, pre), errScale(ref.dwS, pre, gf), rel, wpos)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// sameBitsAgain reruns an overwriting pass whose algorithm cuDNN calls
// deterministic and checks that it reproduces first bit for bit.
func sameBitsAgain(t testing.TB, what string, det bool, first []float32, s *Stream, p Ptr, run func() error) error {
	t.Helper()
	if !det {
		t.Logf("%s: non-deterministic algorithm chosen, reproducibility not checked", what)
		return nil
	}
	if err := s.Fill32(p, 0x7fc00000, len(first)); err != nil {
		return err
	}
	if err := run(); err != nil {
		return err
	}
	again := download(t, s, p, len(first))
	for i := range first {
		if math.Float32bits(first[i]) != math.Float32bits(again[i]) {
			t.Errorf("%s: a deterministic algorithm gave %g, then %g at element %d", what, first[i], again[i], i)
			return nil
		}
	}
	return nil
}

// TestConvCacheGPU checks that a second NewConv of a shape reuses the
// first one's algorithms without searching, and that needDx false skips
// the backward-data search.
func TestConvCacheGPU(t *testing.T) {
	d, s, _ := testGPU(t)
	err := d.Do(func() error {
		bufs := &devBufs{d: d}
		defer bufs.free()
		dnn, err := NewDNN(s)
		if err != nil {
			return err
		}
		defer dnn.Close()
		sh := convCases[0]
		oh, ow := sh.Out()
		nx, nw, ny := sh.N*sh.C*sh.H*sh.W, sh.K*sh.C/sh.Groups*sh.Size*sh.Size, sh.N*sh.K*oh*ow
		xp, wp, yp, dwp := bufs.nan(t, s, nx), bufs.nan(t, s, nw), bufs.nan(t, s, ny), bufs.nan(t, s, nw)
		for _, p := range []struct {
			p Ptr
			n int
		}{{xp, nx}, {wp, nw}} {
			if err := s.FillF32(p.p, 0.5, p.n); err != nil {
				return err
			}
		}
		first, err := dnn.NewConv(sh, false, xp, wp, yp, 0, dwp, false, 64<<20)
		if err != nil {
			return err
		}
		defer first.Close()
		if dnn.searches != 1 {
			t.Errorf("first NewConv: %d searches, want 1", dnn.searches)
		}
		if !strings.Contains(first.Algos(), "bwd-data skipped") {
			t.Errorf("needDx false: Algos() = %q, want bwd-data skipped", first.Algos())
		}
		if err := first.BackwardData(wp, yp, xp, 0, false); err == nil || !strings.Contains(err.Error(), "needDx false") {
			t.Errorf("BackwardData on a needDx=false Conv: got %v, want an error saying so", err)
		}
		second, err := dnn.NewConv(sh, false, xp, wp, yp, 0, dwp, false, 64<<20)
		if err != nil {
			return err
		}
		defer second.Close()
		if dnn.searches != 1 || second.Algos() != first.Algos() {
			t.Errorf("second NewConv of the same shape: %d searches (want 1), algos %q vs %q", dnn.searches, second.Algos(), first.Algos())
		}
		dxp := bufs.nan(t, s, nx)
		third, err := dnn.NewConv(sh, false, xp, wp, yp, dxp, dwp, true, 64<<20)
		if err != nil {
			return err
		}
		defer third.Close()
		if dnn.searches != 2 || strings.Contains(third.Algos(), "skipped") {
			t.Errorf("NewConv with needDx after one without: %d searches (want 2: backward data only), algos %q", dnn.searches, third.Algos())
		}
		t.Logf("%s", third.Algos())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The tests below need no GPU.

func TestConvPerfLayout(t *testing.T) {
	var p convPerf
	got := []uintptr{unsafe.Sizeof(p), unsafe.Offsetof(p.Status), unsafe.Offsetof(p.Time), unsafe.Offsetof(p.Memory),
		unsafe.Offsetof(p.Determinism), unsafe.Offsetof(p.MathType), unsafe.Offsetof(p.Reserved)}
	want := []uintptr{48, 4, 8, 16, 24, 28, 32}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("convPerf layout (size, then offsets of status, time, memory, determinism, mathType, reserved) = %v, want cudnn_cnn.h's %v", got, want)
		}
	}
}

func TestPickAlgo(t *testing.T) {
	perf := func(algo int32, ms float32, mem uint64, det, math int32) convPerf {
		return convPerf{Algo: algo, Time: ms, Memory: mem, Determinism: det, MathType: math}
	}
	fma, tc := int32(cudnnFMAMath), int32(cudnnTensorOpMath)
	for _, c := range []struct {
		name    string
		perfs   []convPerf
		limit   int
		tf32    bool
		want    int32
		wantErr bool
	}{
		{"fastest", []convPerf{perf(1, 1.0, 0, 1, fma), perf(0, 0.5, 0, 1, fma)}, 0, false, 0, false},
		{"deterministic within 5%", []convPerf{perf(0, 1.00, 0, 0, fma), perf(1, 1.04, 0, 1, fma)}, 0, false, 1, false},
		{"non-deterministic when much faster", []convPerf{perf(0, 1.0, 0, 0, fma), perf(1, 1.2, 0, 1, fma)}, 0, false, 0, false},
		{"2 µs slack on tiny times", []convPerf{perf(0, 0.004, 0, 0, fma), perf(1, 0.0055, 0, 1, fma)}, 0, false, 1, false},
		{"workspace limit", []convPerf{perf(4, 0.1, 1<<30, 1, fma), perf(1, 1.0, 100, 1, fma)}, 1000, false, 1, false},
		{"failed status", []convPerf{{Algo: 2, Status: 3000, Time: 0.01, Determinism: 1}, perf(1, 1.0, 0, 1, fma)}, 0, false, 1, false},
		{"no tensor ops without tf32", []convPerf{perf(1, 0.1, 0, 1, tc), perf(0, 1.0, 0, 1, fma)}, 0, false, 0, false},
		{"tensor ops with tf32", []convPerf{perf(1, 0.1, 0, 1, tc), perf(0, 1.0, 0, 1, 0)}, 0, true, 1, false},
		{"none fits", []convPerf{perf(1, 0.1, 100, 1, fma)}, 10, false, 0, true},
	} {
		got, ok := pickAlgo(c.perfs, c.limit, c.tf32)
		if ok == c.wantErr || (ok && got.algo != c.want) {
			t.Errorf("%s: got algo %d (ok %v), want %d (ok %v)", c.name, got.algo, ok, c.want, !c.wantErr)
		}
	}
}

func TestConvShape(t *testing.T) {
	sh := ConvShape{N: 1, C: 4, H: 9, W: 7, K: 6, Size: 3, Stride: 2, Pad: 1, Groups: 2}
	if oh, ow := sh.Out(); oh != 5 || ow != 4 {
		t.Errorf("Out() = %d, %d, want 5, 4", oh, ow)
	}
	if err := sh.validate(); err != nil {
		t.Error(err)
	}
	for _, bad := range []ConvShape{
		{N: 1, C: 4, H: 9, W: 7, K: 6, Size: 3, Stride: 1, Pad: 0, Groups: 3},
		{N: 1, C: 4, H: 2, W: 7, K: 6, Size: 3, Stride: 1, Pad: 0, Groups: 1},
		{N: 1, C: 4, H: 9, W: 7, K: 6, Size: 3, Stride: 0, Pad: 0, Groups: 1},
	} {
		if bad.validate() == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestCUDNNVersionString(t *testing.T) {
	for v, want := range map[int]string{90600: "9.6.0", 91001: "9.10.1", 8907: "8.9.7"} {
		if got := cudnnVersionString(v); got != want {
			t.Errorf("cudnnVersionString(%d) = %s, want %s", v, got, want)
		}
	}
}
