package image

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gocv.io/x/gocv"

	"github.com/dettrain/dettrain/box"
)

// Labelled is one box to draw.
type Labelled struct {
	Box   box.Box // in original image pixels
	Label string
	Score float64 // drawn with two decimals after the label; < 0 draws none
	Class int     // picks the colour
}

// palette holds well separated colours, one per class modulo its length.
var palette = []color.RGBA{
	{230, 25, 75, 255}, {60, 180, 75, 255}, {0, 130, 200, 255}, {245, 130, 48, 255},
	{145, 30, 180, 255}, {70, 240, 240, 255}, {240, 50, 230, 255}, {210, 245, 60, 255},
	{250, 190, 212, 255}, {0, 128, 128, 255}, {170, 110, 40, 255}, {128, 0, 0, 255},
	{170, 255, 195, 255}, {128, 128, 0, 255}, {0, 0, 128, 255}, {255, 225, 25, 255},
}

// ClassColour returns the colour Draw uses for class c.
func ClassColour(c int) color.RGBA {
	if c < 0 {
		c = -c
	}
	return palette[c%len(palette)]
}

// Draw reads the image at path, draws dets on it as DrawMat does, and writes
// the result to out, in the format its extension names.
func Draw(path string, dets []Labelled, out string) error {
	m, err := read(path)
	if err != nil {
		return err
	}
	defer m.Close()
	DrawMat(&m, dets)
	return write(out, m)
}

// DrawMat draws each box on m (8-bit BGR, as gocv decodes) in its class
// colour with its label and score ("label 0.87", white or black text on a
// filled box of the class colour) above it (inside when there is no room).
// Lines are max(1, round(min(W,H)/300)) pixels thick and the text scale is
// max(0.4, min(W,H)/800), so the drawing looks the same at any resolution.
func DrawMat(m *gocv.Mat, dets []Labelled) {
	W, H := m.Cols(), m.Rows()
	thick := max(1, int(math.Round(float64(min(W, H))/300)))
	scale := math.Max(0.4, float64(min(W, H))/800)
	for _, d := range dets {
		c := ClassColour(d.Class)
		b := d.Box.Clip(float64(W), float64(H))
		// gocv draws cv::Rect(x, y, w, h) over pixels x..x+w-1: the
		// continuous corners (X1,Y1)-(X2,Y2) of box.Box, rounded.
		r := image.Rect(int(math.Round(b.X1)), int(math.Round(b.Y1)), int(math.Round(b.X2)), int(math.Round(b.Y2)))
		gocv.RectangleWithParams(m, r, c, thick, gocv.Line8, 0)

		text := d.Label
		if d.Score >= 0 {
			text = fmt.Sprintf("%s %.2f", d.Label, d.Score)
		}
		if text == "" {
			continue
		}
		sz, base := gocv.GetTextSizeWithBaseline(text, gocv.FontHersheySimplex, scale, 1)
		pad := 2
		th := sz.Y + base + 2*pad
		top := r.Min.Y - th
		if top < 0 {
			top = r.Min.Y
		}
		bg := image.Rect(r.Min.X, top, min(r.Min.X+sz.X+2*pad, W), min(top+th, H))
		gocv.RectangleWithParams(m, bg, c, -1, gocv.Line8, 0)
		gocv.PutText(m, text, image.Pt(bg.Min.X+pad, bg.Min.Y+pad+sz.Y), gocv.FontHersheySimplex, scale, textColour(c), 1)
	}
}

// writable lists the extensions write accepts: cv::imencode throws, which
// aborts the process through cgo, for one it has no encoder for.
var writable = map[string]bool{".jpg": true, ".jpeg": true, ".jpe": true, ".png": true, ".bmp": true, ".tif": true, ".tiff": true, ".webp": true}

// write encodes m in the format that out's extension names and writes it.
func write(out string, m gocv.Mat) error {
	ext := strings.ToLower(filepath.Ext(out))
	if !writable[ext] {
		return fmt.Errorf("cannot write image %s: unknown extension %q (want .jpg, .png, .bmp, .tif or .webp)", out, ext)
	}
	buf, err := gocv.IMEncode(gocv.FileExt(ext), m)
	if err != nil {
		return fmt.Errorf("cannot encode image %s: %w", out, err)
	}
	defer buf.Close()
	if buf.Len() == 0 {
		return fmt.Errorf("cannot encode image %s", out)
	}
	return os.WriteFile(out, buf.GetBytes(), 0o644)
}

// textColour is black on light backgrounds and white on dark ones (Rec. 601
// luma against 140).
func textColour(c color.RGBA) color.RGBA {
	if 0.299*float64(c.R)+0.587*float64(c.G)+0.114*float64(c.B) > 140 {
		return color.RGBA{0, 0, 0, 255}
	}
	return color.RGBA{255, 255, 255, 255}
}
