package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/infer"
)

// PredictOptions are predict's flags.
type PredictOptions struct {
	Model, Weights, Names, Out string
	Size                       int
	Conf, NMS                  float64
	Inputs                     []string
}

func newPredictCmd(io *IO, runF func(*PredictOptions) error) *cobra.Command {
	o := &PredictOptions{}
	cmd := &cobra.Command{
		Use:   "predict --model CFG --weights FILE --out DIR IMAGE|DIR...",
		Short: "Detect objects in images: COCO-style predictions.json and annotated copies",
		Example: `  dettrain predict --model runs/demo/model.cfg --weights runs/demo/weights/best.weights \
      --names demo/shapes/classes.txt --size 128 --out runs/demo/pred demo/shapes/JPEGImages`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Inputs = args
			switch {
			case o.Model == "" || o.Weights == "" || o.Out == "":
				return usagef("--model, --weights and --out are required")
			case len(args) == 0:
				return usagef("name at least one image or folder")
			case o.Size < 32 || o.Size%32 != 0:
				return usagef("--size %d: must be a positive multiple of 32", o.Size)
			case o.Conf < 0 || o.Conf >= 1 || o.NMS <= 0 || o.NMS > 1:
				return usagef("--conf must be in [0,1) and --nms in (0,1]")
			}
			if runF != nil {
				return runF(o)
			}
			return predictRun(io, o)
		},
	}
	cmd.Flags().StringVar(&o.Model, "model", "", "darknet .cfg (required)")
	cmd.Flags().StringVar(&o.Weights, "weights", "", "darknet .weights (required)")
	cmd.Flags().StringVar(&o.Names, "names", "", "class names, one per line (default: class0, class1, ...)")
	cmd.Flags().IntVar(&o.Size, "size", 416, "network input size")
	cmd.Flags().Float64Var(&o.Conf, "conf", 0.25, "minimum score")
	cmd.Flags().Float64Var(&o.NMS, "nms", 0.45, "NMS IoU threshold")
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder (required)")
	return cmd
}

var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true, ".tif": true, ".tiff": true, ".webp": true}

func listImages(inputs []string) ([]string, error) {
	var out []string
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, in)
			continue
		}
		ents, err := os.ReadDir(in)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if !e.IsDir() && imageExts[strings.ToLower(filepath.Ext(e.Name()))] {
				out = append(out, filepath.Join(in, e.Name()))
			}
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("no images found in %s", strings.Join(inputs, ", "))
	}
	return out, nil
}

func readNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no class names", path)
	}
	return names, sc.Err()
}

// cocoResult is one entry of predictions.json (COCO results format plus the
// file and class names).
type cocoResult struct {
	FileName     string     `json:"file_name"`
	CategoryID   int        `json:"category_id"`
	CategoryName string     `json:"category_name"`
	BBox         [4]float64 `json:"bbox"`
	Score        float64    `json:"score"`
}

func predictRun(io *IO, o *PredictOptions) error {
	paths, err := listImages(o.Inputs)
	if err != nil {
		return err
	}
	net, err := buildNetwork(o.Model, o.Weights, 0, 1)
	if err != nil {
		return err
	}
	var names []string
	if o.Names != "" {
		if names, err = readNames(o.Names); err != nil {
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
	ds := &data.Dataset{Names: names}
	for _, p := range paths {
		ds.Samples = append(ds.Samples, data.Sample{ID: filepath.Base(p), ImagePath: p})
	}
	const batch = 4
	p, err := infer.New(net, batch, o.Size, infer.Options{Conf: o.Conf, NMS: o.NMS, MaxDets: 300})
	if err != nil {
		return err
	}
	defer p.Close()
	l := data.NewLoader(ds, image.OpenCV{}, data.LoaderOptions{Batch: batch, Size: o.Size, Workers: 2})
	defer l.Close()
	dets, err := p.Dataset(l)
	if err != nil {
		return err
	}
	results := []cocoResult{}
	perImage := make([][]image.Labelled, len(paths))
	for _, d := range dets {
		results = append(results, cocoResult{FileName: filepath.Base(paths[d.Image]), CategoryID: d.Class, CategoryName: names[d.Class], BBox: d.Box.XYWH(), Score: d.Score})
		perImage[d.Image] = append(perImage[d.Image], image.Labelled{Box: d.Box, Label: names[d.Class], Score: d.Score, Class: d.Class})
	}
	for i, path := range paths {
		if err := image.Draw(path, perImage[i], filepath.Join(o.Out, filepath.Base(path))); err != nil {
			return err
		}
	}
	if err := writeJSON(filepath.Join(o.Out, "predictions.json"), results); err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "%d detections in %d images; wrote %s and annotated images to %s\n", len(results), len(paths), filepath.Join(o.Out, "predictions.json"), o.Out)
	return nil
}
