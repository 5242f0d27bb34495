package data

import "fmt"

// Image is a decoded image at its full size: RGB, interleaved (HWC), one
// float32 per channel holding the 8-bit value 0..255 (not divided by 255):
//
//	Pix[(y*W+x)*3+c], c = 0 (R), 1 (G), 2 (B)
//
// The training augmentations work on Images in that range, as GluonCV's do
// on its HWC NDArrays; colour jitter may take values outside 0..255 and
// nothing clips them (GluonCV does not either).
type Image struct {
	W, H int
	Pix  []float32
}

// NewImage returns a black w x h image.
func NewImage(w, h int) *Image {
	return &Image{W: w, H: h, Pix: make([]float32, 3*w*h)}
}

// At returns channel c of pixel (x, y).
func (m *Image) At(x, y, c int) float32 { return m.Pix[(y*m.W+x)*3+c] }

// Clone returns a copy of m.
func (m *Image) Clone() *Image {
	return &Image{W: m.W, H: m.H, Pix: append([]float32(nil), m.Pix...)}
}

func (m *Image) check() error {
	if m == nil || m.W <= 0 || m.H <= 0 || len(m.Pix) != 3*m.W*m.H {
		if m == nil {
			return fmt.Errorf("nil image")
		}
		return fmt.Errorf("image %dx%d with %d values, want 3*W*H", m.W, m.H, len(m.Pix))
	}
	return nil
}

// FullDecoder is a Decoder that can also decode an image at its full size,
// which the training augmentations and mixup need (they crop, expand and mix
// before resizing). Decode returns a newly allocated Image that belongs to
// the caller; errors name the file. Implementations must be safe for
// concurrent use.
type FullDecoder interface {
	Decoder
	Decode(path string) (*Image, error)
}
