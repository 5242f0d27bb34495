package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/infer"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/progress"
)

// PredictOptions are what `dettrain predict` does: its flags.
type PredictOptions struct {
	BestClass                  bool   // keep only each box's best class (OpenCV's rule)
	Run                        string // --run DIR: DIR/model.cfg, names.txt, weights/best.weights
	Model, Weights, Names, Out string
	Size                       model.Size // zero: the cfg's [net] width x height
	Batch                      int
	Conf, NMS                  float64
	MaxDets                    int
	SaveTxt, SaveConf, NoDraw  bool
	Inputs                     []string
	Device                     string
}

var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true, ".tif": true, ".tiff": true, ".webp": true}

var videoExts = map[string]bool{".mp4": true, ".avi": true, ".mov": true, ".mkv": true, ".webm": true, ".m4v": true, ".mpg": true, ".mpeg": true}

// listInputs expands the inputs: a folder gives its images (not its
// sub-folders), a pattern with * ? or [ is expanded by filepath.Glob, a file
// is an image, or a video when its extension is one of videoExts. Images are
// sorted and deduplicated; videos keep their order.
func listInputs(inputs []string) (images, videos []string, err error) {
	seen := map[string]bool{}
	add := func(p string) {
		if videoExts[strings.ToLower(filepath.Ext(p))] {
			videos = append(videos, p)
		} else if !seen[p] {
			seen[p] = true
			images = append(images, p)
		}
	}
	for _, in := range inputs {
		if strings.ContainsAny(in, "*?[") {
			ms, err := filepath.Glob(in)
			if err != nil {
				return nil, nil, fmt.Errorf("pattern %q: %w", in, err)
			}
			n := 0
			for _, m := range ms {
				ext := strings.ToLower(filepath.Ext(m))
				if st, err := os.Stat(m); err == nil && !st.IsDir() && (imageExts[ext] || videoExts[ext]) {
					add(m)
					n++
				}
			}
			if n == 0 {
				return nil, nil, fmt.Errorf("pattern %q matches no image or video", in)
			}
			continue
		}
		st, err := os.Stat(in)
		if err != nil {
			return nil, nil, err
		}
		if !st.IsDir() {
			add(in)
			continue
		}
		ents, err := os.ReadDir(in)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range ents {
			if !e.IsDir() && imageExts[strings.ToLower(filepath.Ext(e.Name()))] {
				add(filepath.Join(in, e.Name()))
			}
		}
	}
	slices.Sort(images)
	if len(images) == 0 && len(videos) == 0 {
		return nil, nil, fmt.Errorf("no images or videos found in %s", strings.Join(inputs, ", "))
	}
	return images, videos, nil
}

// Predict runs a model (a run folder's, or a cfg and weights) over images
// and videos and writes o.Out: predictions.json (COCO results), annotated
// copies, and with o.SaveTxt YOLO labels. Unreadable images are skipped,
// listed and make the error at the end; the others' results are written.
func Predict(io *IO, o *PredictOptions) error {
	images, videos, err := listInputs(o.Inputs)
	if err != nil {
		return err
	}
	run, err := ResolveModel(o.Run, &o.Model, &o.Weights, io.Err)
	if err != nil {
		return err
	}
	net, err := BuildNetwork(o.Model, o.Weights, 0, 1)
	if err != nil {
		return err
	}
	if o.Size.IsZero() {
		o.Size = net.InputSize()
	}
	var names []string
	if o.Names == "" && run != nil {
		if len(run.Names) != net.Classes {
			return fmt.Errorf("run %s has %d names but %s has %d classes", run.Dir, len(run.Names), o.Model, net.Classes)
		}
		names = run.Names
	} else if o.Names != "" {
		if names, err = ReadNames(o.Names); err != nil {
			return err
		}
		if len(names) != net.Classes {
			return fmt.Errorf("%s has %d names but %s has %d classes", o.Names, len(names), o.Model, net.Classes)
		}
	} else {
		for i := 0; i < net.Classes; i++ {
			names = append(names, fmt.Sprintf("class%d", i))
		}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	if o.SaveTxt {
		if err := os.MkdirAll(filepath.Join(o.Out, "labels"), 0o755); err != nil {
			return err
		}
	}
	dev, err := config.ParseDevice(o.Device)
	if err != nil {
		return Usagef("--device %q: %v", o.Device, err)
	}
	p, err := infer.New(net, o.Batch, o.Size, infer.Options{Conf: o.Conf, NMS: o.NMS, MaxDets: o.MaxDets, BestClass: o.BestClass, GPU: InferGPU(dev, true)})
	if err != nil {
		return err
	}
	defer p.Close()
	var skipped []*data.LoadError
	if len(images) > 0 {
		if skipped, err = predictImages(io, o, p, images, names); err != nil {
			return err
		}
	}
	for _, v := range videos {
		if err := predictVideo(io, o, p, v, names); err != nil {
			return err
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(io.Err, "skipped %d unreadable images:\n", len(skipped))
		for _, le := range skipped {
			fmt.Fprintf(io.Err, "  %s: %v\n", le.Path, le.Err)
		}
		return fmt.Errorf("%d of %d images could not be read and were skipped (listed above); the results of the others are in %s", len(skipped), len(images), o.Out)
	}
	return nil
}

// outName is the output name of input path: its base name, made unique
// among the inputs by prefixing the parent folder when two share it.
func outNames(paths []string) []string {
	count := map[string]int{}
	for _, p := range paths {
		count[filepath.Base(p)]++
	}
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
		if count[out[i]] > 1 {
			out[i] = filepath.Base(filepath.Dir(p)) + "_" + out[i]
		}
	}
	return out
}

// predictImages runs p over the images of paths and writes the results. An
// image that cannot be read is skipped with a warning and returned, and the
// others go on.
func predictImages(io *IO, o *PredictOptions, p *infer.Predictor, paths, names []string) ([]*data.LoadError, error) {
	ds := &data.Dataset{Names: names}
	for _, path := range paths {
		ds.Samples = append(ds.Samples, data.Sample{ID: filepath.Base(path), ImagePath: path})
	}
	l := data.NewLoader(ds, image.OpenCV{}, data.LoaderOptions{Batch: o.Batch, W: o.Size.W, H: o.Size.H, Workers: 2, SkipBad: true})
	defer l.Close()
	bar := progress.New(io.Err, len(paths), progress.Options{Label: "predict", Unit: "img"})
	sizes := make([][2]int, len(paths))
	sk := &skipBatches{Batches: l, bar: bar}
	dets, err := p.Dataset(sizeRecorder{sk, sizes})
	bar.Finish()
	if err != nil {
		return nil, err
	}
	bad := map[string]bool{}
	for _, le := range sk.skipped {
		bad[le.Path] = true
	}
	outs := outNames(paths)
	results := eval.COCODetections(dets, outs, names)
	perImage := make([][]eval.Detection, len(paths))
	for _, d := range dets {
		perImage[d.Image] = append(perImage[d.Image], d)
	}
	for i, path := range paths {
		if bad[path] {
			continue
		}
		if !o.NoDraw {
			var ls []image.Labelled
			for _, d := range perImage[i] {
				ls = append(ls, image.Labelled{Box: d.Box, Label: names[d.Class], Score: d.Score, Class: d.Class})
			}
			if err := image.Draw(path, ls, filepath.Join(o.Out, outs[i])); err != nil {
				return nil, err
			}
		}
		if o.SaveTxt {
			if err := writeLabels(filepath.Join(o.Out, "labels", strings.TrimSuffix(outs[i], filepath.Ext(outs[i]))+".txt"), perImage[i], sizes[i], o.SaveConf); err != nil {
				return nil, err
			}
		}
	}
	if err := WriteJSON(filepath.Join(o.Out, "predictions.json"), results); err != nil {
		return nil, err
	}
	fmt.Fprintf(io.Out, "%d detections in %d images; wrote %s", len(results), len(paths)-len(sk.skipped), filepath.Join(o.Out, "predictions.json"))
	if !o.NoDraw {
		fmt.Fprintf(io.Out, ", annotated images")
	}
	if o.SaveTxt {
		fmt.Fprintf(io.Out, ", labels/*.txt")
	}
	fmt.Fprintf(io.Out, " in %s\n", o.Out)
	return sk.skipped, nil
}

// skipBatches passes on a loader's batches (loaded with SkipBad) without
// the images that failed to load: it warns about each on the progress bar,
// keeps them in skipped, drops their slots from the batch, and goes past a
// batch none of whose images loaded. It ticks the bar for every image.
type skipBatches struct {
	infer.Batches
	bar     *progress.Bar
	skipped []*data.LoadError
}

func (s *skipBatches) Next() (*data.Batch, error) {
	for {
		b, err := s.Batches.Next()
		if err != nil {
			les := loadErrors(err)
			if len(les) == 0 {
				return nil, err
			}
			s.skip(les)
			continue
		}
		s.bar.Add(b.N)
		if len(b.Skipped) == 0 {
			return b, nil
		}
		s.skip(b.Skipped)
		return dropSlots(b, b.Skipped), nil
	}
}

func (s *skipBatches) skip(les []*data.LoadError) {
	for _, le := range les {
		s.bar.Log(fmt.Sprintf("warning: %v: skipped", le))
	}
	s.skipped = append(s.skipped, les...)
}

// loadErrors lists the *data.LoadError in err: one, or those joined by a
// loader for a batch none of whose images loaded.
func loadErrors(err error) []*data.LoadError {
	var le *data.LoadError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*data.LoadError
		for _, e := range j.Unwrap() {
			if errors.As(e, &le) {
				out = append(out, le)
			} else {
				return nil // something else went wrong too
			}
		}
		return out
	}
	if errors.As(err, &le) {
		return []*data.LoadError{le}
	}
	return nil
}

// dropSlots returns b without the images of skipped (by Slot).
func dropSlots(b *data.Batch, skipped []*data.LoadError) *data.Batch {
	drop := map[int]bool{}
	for _, le := range skipped {
		drop[le.Slot] = true
	}
	plane := b.C * b.H * b.W
	out := &data.Batch{C: b.C, H: b.H, W: b.W}
	for n := range b.N {
		if drop[n] {
			continue
		}
		out.N++
		out.Images = append(out.Images, b.Images[n*plane:(n+1)*plane]...)
		out.Targets = append(out.Targets, b.Targets[n])
		out.Index = append(out.Index, b.Index[n])
		out.OrigW = append(out.OrigW, b.OrigW[n])
		out.OrigH = append(out.OrigH, b.OrigH[n])
	}
	return out
}

// writeLabels writes YOLO label lines for one image of size wh.
func writeLabels(path string, dets []eval.Detection, wh [2]int, conf bool) error {
	var b strings.Builder
	for _, d := range dets {
		b.WriteString(data.YOLOLabelLine(d.Class, d.Box, wh[0], wh[1], d.Score, conf))
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// sizeRecorder notes each image's original size as batches go by.
type sizeRecorder struct {
	infer.Batches
	sizes [][2]int
}

func (s sizeRecorder) Next() (*data.Batch, error) {
	b, err := s.Batches.Next()
	if err == nil {
		for i := 0; i < b.N; i++ {
			s.sizes[b.Index[i]] = [2]int{b.OrigW[i], b.OrigH[i]}
		}
	}
	return b, err
}
