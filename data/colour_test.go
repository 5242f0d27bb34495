package data

import (
	"math"
	"math/rand/v2"
	"testing"
)

// yiqRotate is the hue step written out in float64: RGB -> YIQ with
// GluonCV's coefficients, rotate (I, Q) by deg degrees, YIQ -> RGB.
func yiqRotate(v [3]float64, deg float64) [3]float64 {
	y := 0.299*v[0] + 0.587*v[1] + 0.114*v[2]
	i := 0.596*v[0] - 0.274*v[1] - 0.321*v[2]
	q := 0.211*v[0] - 0.523*v[1] + 0.311*v[2]
	th := deg * math.Pi / 180
	i, q = math.Cos(th)*i-math.Sin(th)*q, math.Sin(th)*i+math.Cos(th)*q
	return [3]float64{y + 0.956*i + 0.621*q, y - 0.272*i - 0.647*q, y - 1.107*i + 1.705*q}
}

// jitterRef applies c to one pixel in float64, step by step as documented
// on ColorJitter (the formulas of GluonCV's random_color_distort).
func jitterRef(c ColorJitter, v [3]float64) [3]float64 {
	for k := range v {
		v[k] += float64(c.Brightness)
	}
	contrast := func() {
		if c.Contrast != 0 {
			for k := range v {
				v[k] *= float64(c.Contrast)
			}
		}
	}
	sat := func() {
		if c.Saturation != 0 {
			a := float64(c.Saturation)
			gray := 0.299*v[0] + 0.587*v[1] + 0.114*v[2]
			for k := range v {
				v[k] = v[k]*a + gray*(1-a)
			}
		}
	}
	hue := func() {
		if c.Hue != 0 {
			v = yiqRotate(v, c.Hue)
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
	return v
}

// TestColorJitterFormulas checks each step alone and together, in both
// orders, against jitterRef (tolerance 1e-3 on values 0..255: float32).
func TestColorJitterFormulas(t *testing.T) {
	pixels := [][3]float32{{0, 0, 0}, {255, 255, 255}, {200, 10, 20}, {12, 130, 240}, {90, 90, 90}}
	cases := []ColorJitter{
		{},
		{Brightness: 17.5},
		{Brightness: -32},
		{Contrast: 0.6},
		{Saturation: 1.4},
		{Saturation: 0.5},
		{Hue: 12},
		{Hue: -18},
		{Brightness: 5, Contrast: 1.3, Saturation: 0.7, Hue: 9},
		{Brightness: 5, Contrast: 1.3, Saturation: 0.7, Hue: 9, ContrastLast: true},
	}
	for _, c := range cases {
		img := NewImage(len(pixels), 1)
		for i, p := range pixels {
			copy(img.Pix[3*i:], p[:])
		}
		c.Apply(img)
		for i, p := range pixels {
			want := jitterRef(c, [3]float64{float64(p[0]), float64(p[1]), float64(p[2])})
			for k := range 3 {
				if got := float64(img.Pix[3*i+k]); math.Abs(got-want[k]) > 1e-3 {
					t.Errorf("%+v on %v: channel %d = %v, want %v", c, p, k, got, want[k])
				}
			}
		}
	}
	// Known values: saturation leaves a gray pixel alone; saturation 0.5 on
	// (200, 10, 20): gray = 0.299*200 + 0.587*10 + 0.114*20 = 67.95,
	// R = 100 + 33.975.
	img := &Image{W: 2, H: 1, Pix: []float32{90, 90, 90, 200, 10, 20}}
	ColorJitter{Saturation: 0.5}.Apply(img)
	if math.Abs(float64(img.Pix[0])-90) > 1e-4 || math.Abs(float64(img.Pix[3])-133.975) > 1e-3 {
		t.Errorf("saturation 0.5: %v", img.Pix)
	}
	// The hue rotation keeps luma Y = 0.299R + 0.587G + 0.114B up to the
	// 3-digit coefficients (Tinv*T = I to about 1e-3).
	img = &Image{W: 1, H: 1, Pix: []float32{200, 10, 20}}
	ColorJitter{Hue: 18}.Apply(img)
	y0 := 0.299*200 + 0.587*10 + 0.114*20
	y1 := 0.299*float64(img.Pix[0]) + 0.587*float64(img.Pix[1]) + 0.114*float64(img.Pix[2])
	if math.Abs(y1-y0) > 0.5 {
		t.Errorf("hue 18: luma %v -> %v", y0, y1)
	}
}

// TestRandomColorJitter: each step is drawn with probability 0.5 within its
// range, both orders occur (20000 draws; 0.5 +- 0.02 is over 5 sigma).
func TestRandomColorJitter(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const n = 20000
	var bright, con, sat, hue, last int
	for range n {
		c := RandomColorJitter(r)
		if c.Brightness != 0 {
			bright++
			if math.Abs(float64(c.Brightness)) > 32 {
				t.Fatalf("brightness %v", c.Brightness)
			}
		}
		if c.Contrast != 0 {
			con++
			if c.Contrast < 0.5 || c.Contrast > 1.5 {
				t.Fatalf("contrast %v", c.Contrast)
			}
		}
		if c.Saturation != 0 {
			sat++
			if c.Saturation < 0.5 || c.Saturation > 1.5 {
				t.Fatalf("saturation %v", c.Saturation)
			}
		}
		if c.Hue != 0 {
			hue++
			if math.Abs(c.Hue) > 18 {
				t.Fatalf("hue %v", c.Hue)
			}
		}
		if c.ContrastLast {
			last++
		}
	}
	for name, k := range map[string]int{"brightness": bright, "contrast": con, "saturation": sat, "hue": hue, "contrast last": last} {
		if f := float64(k) / n; math.Abs(f-0.5) > 0.02 {
			t.Errorf("%s in %.3f of the draws, want 0.5", name, f)
		}
	}
}
