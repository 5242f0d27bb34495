package model

// Float32 kernels of the element-wise loops that dominate the non-GEMM time
// of a training step (batch norm, col2im, sums of gradients). On amd64 with
// AVX2 they run simd_amd64.s over the multiple of 8 (or 16) elements and the
// Go loop below over the rest; elsewhere the Go loop does everything. The
// element-wise kernels give the Go loop's results bit for bit; the sums add
// in another order (16 partial sums), so they differ in the last bits.

// affine32 sets y = a*x + b, followed by leaky ReLU (slope 0.1) when leaky.
func affine32(x, y []float32, a, b float32, leaky bool) {
	y = y[:len(x)]
	j := 0
	if useAVX2 && len(x) >= 8 {
		affineLeakyAVX2(x, y, a, b, leaky)
		j = len(x) &^ 7
	}
	if leaky {
		for ; j < len(x); j++ {
			z := a*x[j] + b
			y[j] = max(z, 0.1*z)
		}
		return
	}
	for ; j < len(x); j++ {
		y[j] = a*x[j] + b
	}
}

// sum32 is the float64 sum of x.
func sum32(x []float32) float64 {
	if !useAVX2 || len(x) < 16 {
		return sum4(x)
	}
	n := len(x) &^ 15
	return sumAVX2(x) + sum4(x[n:])
}

// sqDev32 is the float64 sum of (x-mean)^2.
func sqDev32(x []float32, mean float64) float64 {
	if !useAVX2 || len(x) < 16 {
		return sqDev4(x, mean)
	}
	n := len(x) &^ 15
	return sqDevAVX2(x, mean) + sqDev4(x[n:], mean)
}

// axpbyc32 sets g = a*g + b*x + c.
func axpbyc32(g, x []float32, a, b, c float32) {
	x = x[:len(g)]
	j := 0
	if useAVX2 && len(g) >= 8 {
		axpbycAVX2(g, x, a, b, c)
		j = len(g) &^ 7
	}
	for ; j < len(g); j++ {
		g[j] = a*g[j] + b*x[j] + c
	}
}

// addTo32 sets dst += src.
func addTo32(dst, src []float32) {
	src = src[:len(dst)]
	j := 0
	if useAVX2 && len(dst) >= 8 {
		addToAVX2(dst, src)
		j = len(dst) &^ 7
	}
	for ; j < len(dst); j++ {
		dst[j] += src[j]
	}
}

// addTo adds src to dst, with addTo32 for float32.
func addTo[T float](dst, src []T) {
	if d, ok := any(dst).([]float32); ok {
		addTo32(d, any(src).([]float32))
		return
	}
	src = src[:len(dst)]
	for j := range dst {
		dst[j] += src[j]
	}
}
