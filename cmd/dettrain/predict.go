package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/infer"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/progress"
)

// PredictOptions are predict's flags.
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

func newPredictCmd(io *IO, runF func(*PredictOptions) error) *cobra.Command {
	o := &PredictOptions{}
	cmd := &cobra.Command{
		Use:   "predict (--run RUN | --model CFG --weights FILE) --out DIR IMAGE|DIR|GLOB|VIDEO...",
		Short: "Detect objects in images and videos: COCO predictions.json, YOLO txt, annotated copies",
		Long: `predict runs a model over images (files, folders, glob patterns such as
'photos/*.jpg' — quote them so that dettrain expands them) and video files (.mp4, .avi,
.mov, .mkv, .webm, read with OpenCV's VideoCapture), in batches of --batch, at the model's
own input size (the cfg's [net] width x height, unless --size), and writes to --out:

  predictions.json  COCO results: image_id (n-th image, from 1), category_id (class
                    index + 1), bbox [x, y, w, h], score, plus file_name and
                    category_name; dettrain eval --detections reads it back
  NAME.ext          each image with its boxes drawn (unless --no-draw)
  labels/NAME.txt   with --save-txt: YOLO lines "class cx cy w h" (relative to the
                    image size; --save-conf appends the score)
  NAME.mp4          each video with its boxes drawn, and with --save-txt
                    labels/NAME_FRAME.txt per frame`,
		Example: `  dettrain predict --run runs/demo --out runs/demo/pred demo/shapes/JPEGImages
  dettrain predict --model yolo-fastest-1.1.cfg --weights yolo-fastest-1.1.weights --names coco.names --out pred dog.jpg
  dettrain predict --model m.cfg --weights w.weights --names data.yaml --out pred --save-txt 'test/*.jpg' clip.mp4`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Inputs = args
			switch {
			case o.Out == "":
				return usagef("--out is required")
			case o.Run == "" && o.Weights == "":
				return usagef("give --run RUN_DIR, or --weights (with --model unless the weights are in a run folder)")
			case len(args) == 0:
				return usagef("name at least one image, folder, glob pattern or video")
			case o.Conf < 0 || o.Conf >= 1 || o.NMS <= 0 || o.NMS > 1:
				return usagef("--conf must be in [0,1) and --nms in (0,1]")
			case o.Batch < 1 || o.Batch > 256:
				return usagef("--batch %d: must be between 1 and 256", o.Batch)
			case o.MaxDets < 1:
				return usagef("--max-dets %d: must be >= 1", o.MaxDets)
			}
			if runF != nil {
				return runF(o)
			}
			return predictRun(io, o)
		},
	}
	cmd.Flags().StringVar(&o.Run, "run", "", "a training run's folder: its model.cfg, names.txt and weights/best.weights")
	cmd.Flags().StringVar(&o.Model, "model", "", "darknet .cfg (default with --run, or with weights inside a run: the run's model.cfg)")
	cmd.Flags().StringVar(&o.Weights, "weights", "", "darknet .weights (default with --run: RUN/weights/best.weights)")
	cmd.Flags().StringVar(&o.Names, "names", "", "class names: one per line, or a YAML with names (default: the run's names.txt, else class0, class1, ...)")
	cmd.Flags().Var(sizeFlag{&o.Size}, "size", "network input size, N or WxH (default: the cfg's [net] width x height)")
	cmd.Flags().IntVar(&o.Batch, "batch", 8, "images per forward pass")
	cmd.Flags().Float64Var(&o.Conf, "conf", 0.25, "minimum score")
	cmd.Flags().Float64Var(&o.NMS, "nms", 0.45, "NMS IoU threshold")
	cmd.Flags().BoolVar(&o.BestClass, "best-class", false, "keep only each box's best class, as OpenCV's DNN does (default: every class above --conf, as darknet)")
	cmd.Flags().IntVar(&o.MaxDets, "max-dets", 300, "most detections kept per image")
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder (required)")
	cmd.Flags().BoolVar(&o.SaveTxt, "save-txt", false, "also write YOLO txt labels to OUT/labels")
	cmd.Flags().BoolVar(&o.SaveConf, "save-conf", false, "with --save-txt, append the score to each line")
	cmd.Flags().BoolVar(&o.NoDraw, "no-draw", false, "do not write annotated images")
	cmd.Flags().StringVar(&o.Device, "device", "cpu", `where the network runs: "cpu", "cuda" or "cuda:N"`)
	return cmd
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

func predictRun(io *IO, o *PredictOptions) error {
	images, videos, err := listInputs(o.Inputs)
	if err != nil {
		return err
	}
	run, err := engine.ResolveModel(o.Run, &o.Model, &o.Weights, io.Err)
	if err != nil {
		return err
	}
	net, err := engine.BuildNetwork(o.Model, o.Weights, 0, 1)
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
		if names, err = engine.ReadNames(o.Names); err != nil {
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
		return usagef("--device %q: %v", o.Device, err)
	}
	p, err := infer.New(net, o.Batch, o.Size, infer.Options{Conf: o.Conf, NMS: o.NMS, MaxDets: o.MaxDets, BestClass: o.BestClass, GPU: engine.InferGPU(dev, true)})
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
	if err := engine.WriteJSON(filepath.Join(o.Out, "predictions.json"), results); err != nil {
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
