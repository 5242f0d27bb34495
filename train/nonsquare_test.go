package train

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/synth"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/infer"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/tricks"
)

// TestOverfitNonSquare is TestOverfitSynthetic on a non-square network input
// (160x96: every head's grid is 5x3, 10x6, ...), trained with random shapes
// that keep the aspect (tricks.Shapes.SizeAtAspect: 128x64, 160x96, 192x128)
// and evaluated at 160x96: it must learn its images (VOC mAP@0.5 >= 0.9, the
// square test's bar). A width/height mix-up anywhere (graph shape, loss
// grid, loader resize, box scaling, decode) would keep it far below.
func TestOverfitNonSquare(t *testing.T) {
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
	size := model.Size{W: 160, H: 96}
	shapes := tricks.Shapes{Sizes: []int{128, 160, 192}, Every: 1, Seed: 3}
	seen := map[model.Size]bool{}
	batch := len(ds.Samples)
	loader := data.NewLoader(ds, nearestDecoder{}, data.LoaderOptions{Batch: batch, W: size.W, H: size.H, Workers: 2, Shuffle: true, Seed: 1,
		SizeAt: func(e, k int) (int, int) { return shapes.SizeAtAspect(e+k, size.W, size.H) }})
	defer loader.Close()
	const epochs = 250
	var log bytes.Buffer
	_, err = Run(context.Background(), net, loader, Options{
		Epochs: epochs, Batch: batch, Size: size, Momentum: 0.9, Decay: 0.0005,
		Schedule:    tricks.Schedule{Base: 0.005, Warmup: 20, Total: epochs, Kind: "cosine"},
		LogInterval: 50, Dir: t.TempDir(), MaxGraphs: 3,
	}, nil, io.Discard, &log)
	if err != nil {
		t.Fatal(err)
	}
	for e := 0; e < epochs; e++ {
		w, h := shapes.SizeAtAspect(e, size.W, size.H)
		seen[model.Size{W: w, H: h}] = true
	}
	for _, want := range []model.Size{{W: 128, H: 64}, {W: 160, H: 96}, {W: 192, H: 128}} {
		if !seen[want] {
			t.Errorf("random shapes never drew %s (drew %v)", want, seen)
		}
	}
	p, err := infer.New(net, 4, size, infer.Options{Conf: 0.01, NMS: 0.45, MaxDets: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l := data.NewLoader(ds, nearestDecoder{}, data.LoaderOptions{Batch: 4, W: size.W, H: size.H, Workers: 2})
	defer l.Close()
	dets, err := p.Dataset(l)
	if err != nil {
		t.Fatal(err)
	}
	r := eval.VOC(dets, infer.GroundTruth(ds), synth.Classes, 0.5)
	if r.MAP < 0.9 {
		var b bytes.Buffer
		r.Table(&b)
		t.Fatalf("mAP %.3f < 0.9 after %d epochs at %s:\n%s\nlog:\n%s", r.MAP, epochs, size, b.String(), log.String())
	}
	t.Logf("mAP@0.5 %.3f on %d training images at %s", r.MAP, len(ds.Samples), size)
}

// nearestDecoder loads any image at any w x h by nearest-neighbour
// resizing of stdDecoder's full decode (RGB/255, CHW), reporting the
// image's own size.
type nearestDecoder struct{}

func (nearestDecoder) Load(path string, w, h int, dst []float32) (int, int, error) {
	img, err := stdDecoder{}.Decode(path)
	if err != nil {
		return 0, 0, err
	}
	for c := 0; c < 3; c++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				sx, sy := x*img.W/w, y*img.H/h
				dst[(c*h+y)*w+x] = img.Pix[(sy*img.W+sx)*3+c] / 255
			}
		}
	}
	return img.W, img.H, nil
}
