package image

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
)

func writeFile(t *testing.T, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func encode(t *testing.T, img image.Image, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func noise(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewSource(1))
	r.Read(img.Pix)
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	return img
}

// bmp24 is a minimal bottom-up 24-bit BMP (BITMAPINFOHEADER) of w x h black
// pixels.
func bmp24(w, h int) []byte {
	stride := (w*3 + 3) / 4 * 4
	b := make([]byte, 54+stride*h)
	le := binary.LittleEndian
	copy(b, "BM")
	le.PutUint32(b[2:], uint32(len(b)))
	le.PutUint32(b[10:], 54)
	le.PutUint32(b[14:], 40)
	le.PutUint32(b[18:], uint32(w))
	le.PutUint32(b[22:], uint32(h))
	le.PutUint16(b[26:], 1)
	le.PutUint16(b[28:], 24)
	le.PutUint32(b[34:], uint32(stride*h))
	return b
}

// TestLoadPNGNamedJPG decodes a PNG saved as .jpg: imread goes by the
// content. The 4x2 image is two 2x2 blocks, red-ish and blue-ish; at full
// size the pixels come back exactly (value/255, RGB order), and a 2x
// downscale with INTER_LINEAR samples at source x = 2x+0.5, the mean of each
// block, which the blocks being uniform makes exact.
func TestLoadPNGNamedJPG(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 4, 2))
	for y := range 2 {
		for x := range 4 {
			c := color.RGBA{200, 10, 20, 255}
			if x >= 2 {
				c = color.RGBA{0, 50, 250, 255}
			}
			img.Set(x, y, c)
		}
	}
	p := writeFile(t, filepath.Join(t.TempDir(), "png.jpg"), encode(t, img, "png"))
	var dec OpenCV
	dst := make([]float32, 3*4*2)
	w, h, err := dec.Load(p, 4, 2, dst)
	if err != nil {
		t.Fatal(err)
	}
	if w != 4 || h != 2 {
		t.Errorf("size %dx%d, want 4x2", w, h)
	}
	// CHW: plane c, row y, column x.
	at := func(d []float32, W, H, c, y, x int) float32 { return d[(c*H+y)*W+x] }
	if at(dst, 4, 2, 0, 1, 0) != 200.0/255 || at(dst, 4, 2, 1, 0, 1) != 10.0/255 || at(dst, 4, 2, 2, 1, 3) != 250.0/255 {
		t.Errorf("full size pixels %v", dst)
	}
	small := make([]float32, 3*2*1)
	if _, _, err := dec.Load(p, 2, 1, small); err != nil {
		t.Fatal(err)
	}
	want := []float32{200.0 / 255, 0, 10.0 / 255, 50.0 / 255, 20.0 / 255, 250.0 / 255}
	for i := range want {
		if math.Abs(float64(small[i]-want[i])) > 1e-6 {
			t.Errorf("2x1 resize %v, want %v", small, want)
			break
		}
	}
}

func TestCorrupt(t *testing.T) {
	dir := t.TempDir()
	jpg := encode(t, noise(64, 48), "jpeg")
	cases := map[string][]byte{
		"text.jpg":      []byte("this is not an image\n"),
		"truncated.jpg": jpg[:len(jpg)/2],
		"header.jpg":    jpg[:20],
		"empty.png":     nil,
		"truncated.png": encode(t, noise(30, 20), "png")[:200],
		"truncated.bmp": bmp24(30, 20)[:300],
	}
	var dec OpenCV
	for name, b := range cases {
		p := writeFile(t, filepath.Join(dir, name), b)
		if _, _, err := dec.Probe(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Probe %s: err = %v, want an error naming the file", name, err)
		}
	}
	p := filepath.Join(dir, "text.jpg")
	if _, _, err := dec.Load(p, 8, 8, make([]float32, 3*8*8)); err == nil || err.Error() != "cannot decode image "+p {
		t.Errorf("Load text.jpg: err = %v", err)
	}
	if _, _, err := dec.Probe(filepath.Join(dir, "missing.jpg")); err == nil || !strings.Contains(err.Error(), "missing.jpg") {
		t.Errorf("Probe missing: err = %v", err)
	}
}

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	img := noise(37, 23)
	ppm := append([]byte("P6\n37 23\n255\n"), make([]byte, 37*23*3)...)
	for name, b := range map[string][]byte{
		"a.jpg":   encode(t, img, "jpeg"),
		"a.png":   encode(t, img, "png"),
		"a.gif":   encode(t, img, "gif"),
		"a.bmp":   bmp24(37, 23),
		"a.ppm":   ppm, // no Go decoder: OpenCV decodes it in full
		"jpg.png": append(encode(t, img, "jpeg"), 0, 0, '\n'),
	} {
		p := writeFile(t, filepath.Join(dir, name), b)
		w, h, err := Size(p)
		if err != nil || w != 37 || h != 23 {
			t.Errorf("Size %s = %dx%d, %v; want 37x23", name, w, h, err)
		}
	}
	// The decoder agrees on the BMP (bottom-up, padded rows).
	if w, h, err := (OpenCV{}).Load(filepath.Join(dir, "a.bmp"), 5, 5, make([]float32, 75)); err != nil || w != 37 || h != 23 {
		t.Errorf("Load a.bmp: %dx%d, %v", w, h, err)
	}
}

func TestDraw(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, filepath.Join(dir, "in.jpg"), encode(t, noise(120, 90), "jpeg"))
	dets := []Labelled{
		{Box: box.Box{X1: 10, Y1: 30, X2: 60, Y2: 80}, Label: "cat", Score: 0.87, Class: 0},
		{Box: box.Box{X1: 0, Y1: 0, X2: 200, Y2: 20}, Label: "dog", Score: 0.5, Class: 5},
		{Box: box.Box{X1: 70, Y1: 40, X2: 71, Y2: 41}, Label: "", Score: -1, Class: 17},
	}
	for _, name := range []string{"out.jpg", "out.png"} {
		out := filepath.Join(dir, name)
		if err := Draw(in, dets, out); err != nil {
			t.Fatal(err)
		}
		w, h, err := Size(out)
		if err != nil || w != 120 || h != 90 {
			t.Errorf("%s: %dx%d, %v", name, w, h, err)
		}
	}
	// The box edge of the first detection has its class colour (lossless PNG).
	f, err := os.Open(filepath.Join(dir, "out.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if c := color.RGBAModel.Convert(got.At(10, 60)).(color.RGBA); c != ClassColour(0) {
		t.Errorf("left edge of the cat box %v, want %v", c, ClassColour(0))
	}
	if err := Draw(in, dets, filepath.Join(dir, "out.xyz")); err == nil || !strings.Contains(err.Error(), "out.xyz") {
		t.Errorf("unknown extension: err = %v", err)
	}
	if err := Draw(filepath.Join(dir, "none.jpg"), dets, filepath.Join(dir, "o.png")); err == nil || !strings.Contains(err.Error(), "none.jpg") {
		t.Errorf("missing input: err = %v", err)
	}
	if err := Draw(in, dets, filepath.Join(dir, "no", "such", "o.png")); err == nil || !strings.Contains(err.Error(), "o.png") {
		t.Errorf("unwritable output: err = %v", err)
	}
}
