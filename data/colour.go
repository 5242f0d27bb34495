package data

import (
	"math"
	"math/rand/v2"
)

// ColorJitter is one draw of GluonCV's random_color_distort
// (gluoncv/data/transforms/experimental/image.py), the colour part of its
// YOLOv3 training transform. The zero value changes nothing. On a pixel
// v = (R, G, B) in 0..255, in this order:
//
//	brightness: v += Brightness                      (Brightness != 0)
//	then contrast, saturation, hue, or (ContrastLast) saturation, hue, contrast:
//	contrast:   v *= Contrast                        (Contrast != 0)
//	saturation: v = v*Saturation + gray*(1-Saturation), gray = 0.299R + 0.587G + 0.114B
//	                                                 (Saturation != 0)
//	hue:        v = Tinv * Rot(Hue) * T * v          (Hue != 0)
//
// where T is RGB->YIQ, Tinv YIQ->RGB, both with GluonCV's 3-digit
// coefficients, and Rot(θ) rotates the (I, Q) plane by θ degrees. Contrast
// is GluonCV's current definition (a gain on all channels, as SSD's
// RandomContrast), not a blend with the mean.
type ColorJitter struct {
	Brightness   float32 // added to every channel; 0: not applied
	Contrast     float32 // gain; 0: not applied
	Saturation   float32 // blend factor with the gray value; 0: not applied
	Hue          float64 // rotation of the YIQ chroma plane in degrees; 0: not applied
	ContrastLast bool    // saturation and hue before contrast
}

// GluonCV's random_color_distort defaults.
const (
	JitterBrightnessDelta = 32  // brightness delta drawn from U(-32, 32)
	JitterContrastLow     = 0.5 // contrast gain from U(0.5, 1.5)
	JitterContrastHigh    = 1.5
	JitterSaturationLow   = 0.5 // saturation factor from U(0.5, 1.5)
	JitterSaturationHigh  = 1.5
	JitterHueDelta        = 18 // hue rotation from U(-18, 18) degrees
)

// RandomColorJitter draws a ColorJitter as random_color_distort does, from
// r in this order: u < 0.5 or brightness delta; the order (an integer in
// {0, 1}: 1 contrast first, 0 contrast last); then for each of the three
// steps in the order chosen, u < 0.5 (skipped) or its parameter. Each step
// is applied with probability 0.5 (GluonCV: np.random.uniform(0, 1) > 0.5).
//
// Deviation: GluonCV computes the hue rotation as cos(alpha*pi) for alpha in
// [-18, 18], i.e. multiples of pi radians, which makes the hue change
// arbitrary; the angle here is alpha degrees, the ±18° the freebies spec
// asks for.
func RandomColorJitter(r *rand.Rand) ColorJitter {
	var c ColorJitter
	uniform := func(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }
	if r.Float64() > 0.5 {
		c.Brightness = float32(uniform(-JitterBrightnessDelta, JitterBrightnessDelta))
	}
	c.ContrastLast = r.IntN(2) == 0
	contrast := func() {
		if r.Float64() > 0.5 {
			c.Contrast = float32(uniform(JitterContrastLow, JitterContrastHigh))
		}
	}
	saturation := func() {
		if r.Float64() > 0.5 {
			c.Saturation = float32(uniform(JitterSaturationLow, JitterSaturationHigh))
		}
	}
	hue := func() {
		if r.Float64() > 0.5 {
			c.Hue = uniform(-JitterHueDelta, JitterHueDelta)
		}
	}
	if c.ContrastLast {
		saturation()
		hue()
		contrast()
	} else {
		contrast()
		saturation()
		hue()
	}
	return c
}

// GluonCV's RGB->YIQ and YIQ->RGB matrices.
var (
	rgbToYIQ = [3][3]float64{{0.299, 0.587, 0.114}, {0.596, -0.274, -0.321}, {0.211, -0.523, 0.311}}
	yiqToRGB = [3][3]float64{{1.0, 0.956, 0.621}, {1.0, -0.272, -0.647}, {1.0, -1.107, 1.705}}
)

// HueMatrix returns M = Tinv * Rot * T for a rotation of deg degrees, such
// that the hue step maps v to M*v (GluonCV computes t = M^T and src . t).
// The product is taken in float64 and rounded to float32 once, as GluonCV
// builds it with numpy and hands it to mxnet as float32.
func HueMatrix(deg float64) [3][3]float32 {
	th := deg * math.Pi / 180
	u, w := math.Cos(th), math.Sin(th)
	rot := [3][3]float64{{1, 0, 0}, {0, u, -w}, {0, w, u}}
	m := mul3(mul3(yiqToRGB, rot), rgbToYIQ)
	var out [3][3]float32
	for i := range 3 {
		for j := range 3 {
			out[i][j] = float32(m[i][j])
		}
	}
	return out
}

func mul3(a, b [3][3]float64) [3][3]float64 {
	var c [3][3]float64
	for i := range 3 {
		for j := range 3 {
			for k := range 3 {
				c[i][j] += a[i][k] * b[k][j]
			}
		}
	}
	return c
}

// Matrix returns the jitter as one affine map v -> M*v + o: every step
// after the brightness is linear (contrast a*I, saturation a*I + (1-a)*1*g^T
// with g the gray weights, hue HueMatrix), so M is their product in the
// order of application and o = M*(Brightness, Brightness, Brightness).
// Computed in float64.
func (c ColorJitter) Matrix() (m [3][3]float64, o [3]float64) {
	id := [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	m = id
	contrast := func() {
		if c.Contrast != 0 {
			a := float64(c.Contrast)
			m = mul3([3][3]float64{{a, 0, 0}, {0, a, 0}, {0, 0, a}}, m)
		}
	}
	sat := func() {
		if c.Saturation != 0 {
			a := float64(c.Saturation)
			var s [3][3]float64
			for i := range 3 {
				for j := range 3 {
					s[i][j] = (1 - a) * rgbToYIQ[0][j]
				}
				s[i][i] += a
			}
			m = mul3(s, m)
		}
	}
	hue := func() {
		if c.Hue != 0 {
			h := HueMatrix(c.Hue)
			var hm [3][3]float64
			for i := range 3 {
				for j := range 3 {
					hm[i][j] = float64(h[i][j])
				}
			}
			m = mul3(hm, m)
		}
	}
	if c.ContrastLast {
		sat()
		hue()
		contrast()
	} else {
		contrast()
		sat()
		hue()
	}
	b := float64(c.Brightness)
	for i := range 3 {
		o[i] = (m[i][0] + m[i][1] + m[i][2]) * b
	}
	return m, o
}

// Apply changes img in place: v -> M*v + o (Matrix) in float32, one pass,
// nothing to do for the zero value. Equal to the steps one by one up to
// float32 rounding (TestColorJitterFormulas).
func (c ColorJitter) Apply(img *Image) {
	if c == (ColorJitter{}) {
		return
	}
	m64, o64 := c.Matrix()
	var m [3][3]float32
	var o [3]float32
	for i := range 3 {
		o[i] = float32(o64[i])
		for j := range 3 {
			m[i][j] = float32(m64[i][j])
		}
	}
	p := img.Pix
	for i := 0; i+2 < len(p); i += 3 {
		r, g, b := p[i], p[i+1], p[i+2]
		p[i] = m[0][0]*r + m[0][1]*g + m[0][2]*b + o[0]
		p[i+1] = m[1][0]*r + m[1][1]*g + m[1][2]*b + o[1]
		p[i+2] = m[2][0]*r + m[2][1]*g + m[2][2]*b + o[2]
	}
}
