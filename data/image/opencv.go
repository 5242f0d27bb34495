// Package image decodes, probes and draws images with OpenCV (gocv). It is
// the only dettrain package that needs cgo and the OpenCV libraries; the rest
// of dettrain reaches it through data.Decoder and data.Prober.
package image

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"

	"github.com/dettrain/dettrain/data"
)

// OpenCV decodes and probes images with OpenCV. The zero value is ready to
// use and safe for concurrent use.
type OpenCV struct{}

var (
	_ data.FullDecoder = OpenCV{}
	_ data.Prober      = OpenCV{}
)

// Load reads path with cv::imread(IMREAD_COLOR), whatever its extension says,
// resizes it to w x h with bilinear interpolation (cv::resize INTER_LINEAR, a
// plain resize as in cv::dnn::blobFromImage, no letterbox) and writes it to
// dst as RGB float32 in CHW order, value/255:
//
//	dst[c*h*w + y*w + x] = BGR[y][x][2-c] / 255
//
// It returns the size before resizing.
func (OpenCV) Load(path string, w, h int, dst []float32) (origW, origH int, err error) {
	if len(dst) != 3*w*h {
		return 0, 0, fmt.Errorf("load %s: dst has %d floats, want 3*%d*%d", path, len(dst), w, h)
	}
	m, err := read(path)
	if err != nil {
		return 0, 0, err
	}
	defer m.Close()
	origW, origH = m.Cols(), m.Rows()
	small := m
	if origW != w || origH != h {
		small = gocv.NewMat()
		defer small.Close()
		gocv.Resize(m, &small, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	}
	if !small.IsContinuous() {
		c := small.Clone()
		defer c.Close()
		small = c
	}
	px, err := small.DataPtrUint8()
	if err != nil {
		return 0, 0, fmt.Errorf("load %s: %w", path, err)
	}
	plane := w * h
	for i := range plane {
		dst[i] = float32(px[3*i+2]) / 255         // R
		dst[plane+i] = float32(px[3*i+1]) / 255   // G
		dst[2*plane+i] = float32(px[3*i+0]) / 255 // B
	}
	return origW, origH, nil
}

// Decode reads path with cv::imread(IMREAD_COLOR), whatever its extension
// says, and returns it at full size as a data.Image: RGB, HWC, float32
// values 0..255,
//
//	img.Pix[(y*W+x)*3+c] = BGR[y][x][2-c]
//
// so that Decode followed by data.Resize(..., data.InterpBilinear) and /255
// gives what Load gives, up to OpenCV's fixed-point rounding of 8-bit
// INTER_LINEAR.
func (OpenCV) Decode(path string) (*data.Image, error) {
	m, err := read(path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if !m.IsContinuous() {
		c := m.Clone()
		defer c.Close()
		m = c
	}
	px, err := m.DataPtrUint8()
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	img := data.NewImage(m.Cols(), m.Rows())
	p := img.Pix
	for i := 0; i+2 < len(p); i += 3 {
		p[i], p[i+1], p[i+2] = float32(px[i+2]), float32(px[i+1]), float32(px[i])
	}
	return img, nil
}

// read decodes path to a 3-channel BGR Mat; the caller closes it.
func read(path string) (gocv.Mat, error) {
	m := gocv.IMRead(path, gocv.IMReadColor)
	if m.Empty() {
		m.Close()
		return gocv.Mat{}, fmt.Errorf("cannot decode image %s", path)
	}
	if m.Type() != gocv.MatTypeCV8UC3 {
		t := m.Type()
		m.Close()
		return gocv.Mat{}, fmt.Errorf("image %s: decoded to Mat type %v, want 8UC3", path, t)
	}
	return m, nil
}
