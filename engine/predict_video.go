package engine

import (
	"fmt"
	goimage "image"
	"os"
	"path/filepath"
	"strings"

	"gocv.io/x/gocv"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/infer"
	"github.com/dettrain/dettrain/progress"
)

// predictVideo reads a video with OpenCV's VideoCapture, predicts its frames
// in batches of o.Batch (each frame resized to o.Size.W x o.Size.H with bilinear
// interpolation and scaled to RGB/255, as image.OpenCV.Load does for
// images), and writes OUT/NAME.mp4 (codec mp4v, the input's frame rate)
// with the boxes drawn, and with --save-txt OUT/labels/NAME_FRAME.txt per
// frame (FRAME from 0, six digits).
func predictVideo(io *IO, o *PredictOptions, p *infer.Predictor, path string, names []string) error {
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		return fmt.Errorf("%s: cannot open video: %w", path, err)
	}
	defer vc.Close()
	if !vc.IsOpened() {
		return fmt.Errorf("%s: cannot open video", path)
	}
	fps := vc.Get(gocv.VideoCaptureFPS)
	if !(fps > 0 && fps < 1000) {
		fps = 25
	}
	total := int(vc.Get(gocv.VideoCaptureFrameCount))
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	outPath := filepath.Join(o.Out, stem+".mp4")
	var vw *gocv.VideoWriter
	defer func() {
		if vw != nil {
			vw.Close()
		}
	}()
	bar := progress.New(io.Err, max(total, 0), progress.Options{Label: "predict " + filepath.Base(path), Unit: "frame"})
	defer bar.Finish()

	size := o.Size
	plane := size.W * size.H
	b := &data.Batch{C: 3, H: size.H, W: size.W, Images: make([]float32, o.Batch*3*plane)}
	frames := make([]gocv.Mat, 0, o.Batch)
	small := gocv.NewMat()
	defer small.Close()
	frameNo, ndet := 0, 0
	flush := func() error {
		if len(frames) == 0 {
			return nil
		}
		b.N = len(frames)
		b.Images = b.Images[:b.N*3*plane]
		dets, err := p.Batch(b)
		if err != nil {
			return err
		}
		per := make([][]eval.Detection, b.N)
		for _, d := range dets {
			per[d.Image] = append(per[d.Image], d)
		}
		for i := range frames {
			m := &frames[i]
			if vw == nil {
				if vw, err = gocv.VideoWriterFile(outPath, "mp4v", fps, m.Cols(), m.Rows(), true); err != nil {
					return fmt.Errorf("%s: cannot write video: %w", outPath, err)
				}
				if !vw.IsOpened() {
					return fmt.Errorf("%s: cannot write video (no mp4v encoder?)", outPath)
				}
			}
			drawMat(m, per[i], names)
			if err := vw.Write(*m); err != nil {
				return err
			}
			if o.SaveTxt {
				n := frameNo - len(frames) + i
				lp := filepath.Join(o.Out, "labels", fmt.Sprintf("%s_%06d.txt", stem, n))
				if err := writeLabels(lp, per[i], [2]int{m.Cols(), m.Rows()}, o.SaveConf); err != nil {
					return err
				}
			}
			ndet += len(per[i])
			m.Close()
		}
		bar.Add(len(frames))
		frames = frames[:0]
		return nil
	}
	for {
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			break
		}
		i := len(frames)
		gocv.Resize(m, &small, goimage.Pt(size.W, size.H), 0, 0, gocv.InterpolationLinear)
		px, err := small.DataPtrUint8()
		if err != nil {
			m.Close()
			return err
		}
		dst := b.Images[i*3*plane : (i+1)*3*plane]
		for k := range plane {
			dst[k] = float32(px[3*k+2]) / 255
			dst[plane+k] = float32(px[3*k+1]) / 255
			dst[2*plane+k] = float32(px[3*k]) / 255
		}
		b.Index = append(b.Index[:i], i)
		b.OrigW = append(b.OrigW[:i], m.Cols())
		b.OrigH = append(b.OrigH[:i], m.Rows())
		frames = append(frames, m)
		frameNo++
		if len(frames) == o.Batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if frameNo == 0 {
		return fmt.Errorf("%s: no frame could be read", path)
	}
	if _, err := os.Stat(outPath); err != nil {
		return fmt.Errorf("%s: the video was not written: %w", outPath, err)
	}
	fmt.Fprintf(io.Out, "%d detections in %d frames of %s; wrote %s\n", ndet, frameNo, path, outPath)
	return nil
}

// drawMat draws each detection on m as image.Draw draws on an image file:
// the box in its class colour and "name score" on a filled label above it.
func drawMat(m *gocv.Mat, dets []eval.Detection, names []string) {
	ls := make([]image.Labelled, len(dets))
	for i, d := range dets {
		ls[i] = image.Labelled{Box: d.Box, Label: names[d.Class], Score: d.Score, Class: d.Class}
	}
	image.DrawMat(m, ls)
}
