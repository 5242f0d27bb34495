package model

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/dettrain/dettrain/blas"
)

// BenchmarkDepthwise times the direct depthwise kernels (forward, data and
// filter gradients) in float32 at Yolo-Fastest-like shapes (batch 4, 320x320
// input): a 3x3 stride-1 layer of 24 channels at 80x80 (the dw3 kernels),
// a 3x3 stride-2 one of 48 channels at 40x40 and a 5x5 stride-1 one of 24
// channels at 40x40 (the general loops). One thread, so that timings and
// instruction counts (callgrind) compare across commits.
func BenchmarkDepthwise(b *testing.B) {
	defer blas.SetThreads(blas.Threads())
	blas.SetThreads(1)
	for _, cs := range []struct {
		geo        convGeom
		n, c, h, w int
	}{
		{convGeom{3, 1, 1, 24}, 4, 24, 80, 80},
		{convGeom{3, 2, 1, 48}, 4, 48, 40, 40},
		{convGeom{5, 1, 2, 24}, 4, 24, 40, 40},
	} {
		g, n, c, h, w := cs.geo, cs.n, cs.c, cs.h, cs.w
		r := rand.New(rand.NewSource(1))
		x := make([]float32, n*c*h*w)
		dx := make([]float32, len(x))
		wt := make([]float32, c*g.size*g.size)
		dw := make([]float32, len(wt))
		y := make([]float32, n*c*g.out(h)*g.out(w))
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		for i := range wt {
			wt[i] = float32(r.NormFloat64())
		}
		for i := range y {
			y[i] = float32(r.NormFloat64())
		}
		name := fmt.Sprintf("%dx%ds%d_c%d_%dx%d", g.size, g.size, g.stride, c, h, w)
		b.Run(name+"/forward", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dwConv(g, n, c, h, w, wt, x, y, false)
			}
		})
		b.Run(name+"/backdata", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dwConv(g, n, c, h, w, wt, y, dx, true)
			}
		})
		b.Run(name+"/backfilter", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dwBackFilter(g, n, c, h, w, x, y, dw)
			}
		})
	}
}
