package train

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/jpeg"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/synth"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/infer"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/tricks"
)

// stdDecoder decodes with Go's image package: the synthetic images are made
// at the network size, so no resize is needed (and train's tests stay free
// of OpenCV, like the package).
type stdDecoder struct{}

func (stdDecoder) Load(path string, w, h int, dst []float32) (int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	b := img.Bounds()
	if b.Dx() != w || b.Dy() != h {
		return 0, 0, fmt.Errorf("%s: %dx%d, want %dx%d", path, b.Dx(), b.Dy(), w, h)
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			dst[y*w+x] = float32(r>>8) / 255
			dst[h*w+y*w+x] = float32(g>>8) / 255
			dst[2*h*w+y*w+x] = float32(bl>>8) / 255
		}
	}
	return w, h, nil
}

// TestOverfitSynthetic trains the demo model on a few synthetic images and
// requires it to learn them: VOC mAP@0.5 >= 0.9 on those same images.
func TestOverfitSynthetic(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for about half a minute")
	}
	dir := t.TempDir()
	if _, err := synth.Generate(dir, synth.Options{Images: 12, Seed: 5, Size: 128}); err != nil {
		t.Fatal(err)
	}
	ds, rep, err := data.LoadVOC(data.DefaultVOCLayout(dir), "train", synth.Classes, nil)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("%v %v", err, rep.Problems)
	}
	cfg, err := model.ReadCfg("../configs/models/demo-tiny.cfg")
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(cfg, len(synth.Classes))
	if err != nil {
		t.Fatal(err)
	}
	net.Init(1)
	batch := len(ds.Samples)
	loader := data.NewLoader(ds, stdDecoder{}, data.LoaderOptions{Batch: batch, W: 128, Workers: 2, Shuffle: true, Seed: 1})
	defer loader.Close()
	const epochs = 250
	var log bytes.Buffer
	_, err = Run(context.Background(), net, loader, Options{
		Epochs: epochs, Batch: batch, Size: model.Square(128), Momentum: 0.9, Decay: 0.0005,
		Schedule:    tricks.Schedule{Base: 0.005, Warmup: 20, Total: epochs, Kind: "cosine"},
		LogInterval: 50, Dir: t.TempDir(),
	}, nil, io.Discard, &log)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := evalSynth(t, net, ds, nil)
	if r.MAP < 0.9 {
		var b bytes.Buffer
		r.Table(&b)
		t.Fatalf("mAP %.3f < 0.9 after %d epochs:\n%s\nlog:\n%s", r.MAP, epochs, b.String(), log.String())
	}
	t.Logf("mAP@0.5 %.3f on %d training images", r.MAP, len(ds.Samples))
	if _, err := os.Stat(filepath.Join(dir, "JPEGImages")); err != nil {
		t.Fatal(err)
	}
}

// Decode gives the full image (RGB, HWC, 0..255) for augmentation and mixup.
func (stdDecoder) Decode(path string) (*data.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b := img.Bounds()
	m := data.NewImage(b.Dx(), b.Dy())
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := (y*b.Dx() + x) * 3
			m.Pix[i], m.Pix[i+1], m.Pix[i+2] = float32(r>>8), float32(g>>8), float32(bl>>8)
		}
	}
	return m, nil
}

// evalSynth scores net on the synthetic set ds at 128 (VOC mAP@0.5), on the
// CPU or, with gpu set, on the GPU, and returns the detections too.
func evalSynth(t *testing.T, net *model.Network, ds *data.Dataset, gpu *infer.GPU) (eval.Result, []eval.Detection) {
	t.Helper()
	p, err := infer.New(net, 4, model.Square(128), infer.Options{Conf: 0.01, NMS: 0.45, MaxDets: 100, GPU: gpu})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l := data.NewLoader(ds, stdDecoder{}, data.LoaderOptions{Batch: 4, W: 128, Workers: 2})
	defer l.Close()
	dets, err := p.Dataset(l)
	if err != nil {
		t.Fatal(err)
	}
	return eval.VOC(dets, infer.GroundTruth(ds), synth.Classes, 0.5), dets
}
