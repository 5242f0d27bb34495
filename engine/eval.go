package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/infer"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/progress"
	"github.com/dettrain/dettrain/report"
)

// countingBatches ticks a progress bar for every image a loader hands out.
type countingBatches struct {
	infer.Batches
	bar *progress.Bar
}

func (c countingBatches) Next() (*data.Batch, error) {
	b, err := c.Batches.Next()
	if err == nil {
		c.bar.Add(b.N)
	}
	return b, err
}

// PredictSplit runs the network over ds at the eval size (EvalSize: eval.size,
// else model.size, else the network's own [net] size) with the eval
// thresholds, showing a progress bar on progressW (nil: none).
func PredictSplit(net *model.Network, ds *data.Dataset, c *config.Config, progressW io.Writer) ([]eval.Detection, error) {
	const batch = 8
	dev, _ := config.ParseDevice(c.Train.Device) // validated with the config
	size := EvalSize(c, net)
	p, err := infer.New(net, batch, size, infer.Options{Conf: c.Eval.Conf, NMS: c.Eval.NMS, MaxDets: c.Eval.MaxDets, GPU: InferGPU(dev, c.Train.TF32)})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	l := data.NewLoader(ds, image.OpenCV{}, data.LoaderOptions{Batch: batch, W: size.W, H: size.H, Workers: c.Data.Workers})
	defer l.Close()
	var src infer.Batches = l
	if progressW != nil {
		bar := progress.New(progressW, len(ds.Samples), progress.Options{Label: "eval " + c.Eval.Split, Unit: "img"})
		defer bar.Finish()
		src = countingBatches{l, bar}
	}
	return p.Dataset(src)
}

// Evaluate scores the network on ds with every metric (VOC and COCO;
// c.Eval.Metric names the primary one): the evaluation for training's
// periodic and final evaluations. cs, when the split came from COCO JSON,
// supplies the annotation areas. progressW (nil: none) gets a progress bar.
func Evaluate(net *model.Network, ds *data.Dataset, cs *data.COCOSplit, c *config.Config, names []string, progressW io.Writer) (eval.Summary, []eval.Detection, error) {
	dets, err := PredictSplit(net, ds, c, progressW)
	if err != nil {
		return eval.Summary{}, nil, err
	}
	return eval.Evaluate(dets, GroundTruth(ds, cs), names, c.Eval.Metric), dets, nil
}

// Confusion-matrix thresholds, YOLOv5's defaults (ConfusionMatrix(nc,
// conf=0.25, iou_thres=0.45)).
const (
	confusionConf = 0.25
	confusionIoU  = 0.45
)

// WriteEvalReport writes an evaluation's files into dir: eval.json
// (Summary's JSON), pr_curves.png (per-class COCO 101-point precision at
// IoU .5), confusion.png and summary.md (the numbers, the confusion matrix
// and links to the charts). It returns the paths written.
func WriteEvalReport(dir, title string, s eval.Summary, dets []eval.Detection, gts []eval.GroundTruth, names []string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files, charts []string
	p := filepath.Join(dir, "eval.json")
	if err := WriteJSON(p, s); err != nil {
		return nil, err
	}
	files = append(files, p)
	var curves []report.PRCurve
	for _, c := range s.COCO.PerClass {
		if c.PR50 != nil {
			curves = append(curves, report.PRCurve{Name: c.Name, AP: c.AP50, Precision: c.PR50})
		}
	}
	if len(curves) > 0 {
		p = filepath.Join(dir, "pr_curves.png")
		if err := report.PlotPR(p, "Precision-recall at IoU 0.5 (COCO 101-point, legend: AP50)", curves); err != nil {
			return files, err
		}
		files, charts = append(files, p), append(charts, "pr_curves.png")
	}
	cm := eval.ConfusionMatrix(dets, gts, names, confusionConf, confusionIoU)
	p = filepath.Join(dir, "confusion.png")
	if err := report.PlotConfusion(p, fmt.Sprintf("Confusion matrix (score > %g, IoU > %g)", confusionConf, confusionIoU), cm.M, cm.Names); err != nil {
		return files, err
	}
	files, charts = append(files, p), append(charts, "confusion.png")
	var md strings.Builder
	if err := s.Markdown(&md, title, charts, &cm); err != nil {
		return files, err
	}
	p = filepath.Join(dir, "summary.md")
	if err := os.WriteFile(p, []byte(md.String()), 0o644); err != nil {
		return files, err
	}
	return append(files, p), nil
}

// ReadDetections reads a detection file or folder for the samples of ds
// (see eval's --help for the formats). Txt corners are in the data set's
// pixel convention: VOC devkit corners (box.FromVOC, as the XML) when
// format is voc, continuous otherwise; COCO JSON bboxes are continuous.
// Detections of images or classes the data set does not have are skipped
// with one warning line on warn counting them, or with strict an error.
func ReadDetections(path string, ds *data.Dataset, cs *data.COCOSplit, names []string, format string, warn io.Writer, strict bool) ([]eval.Detection, error) {
	byName := map[string]int{}
	ids := make([]string, len(ds.Samples))
	for i := len(ds.Samples) - 1; i >= 0; i-- { // the first sample wins a clash
		s := ds.Samples[i]
		ids[i] = s.ID
		byName[s.ID] = i
		byName[filepath.Base(s.ImagePath)] = i
		byName[s.ID+filepath.Ext(s.ImagePath)] = i
	}
	classOf := map[string]int{}
	for i, n := range names {
		classOf[n] = i
	}
	classByName := func(n string) (int, bool) { c, ok := classOf[n]; return c, ok }
	ro := eval.ReadOptions{Strict: strict}
	if format == data.FormatVOC {
		ro.Corners = eval.VOCPixels
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	var (
		dets []eval.Detection
		sk   eval.Skipped
	)
	if st.IsDir() {
		dets, sk, err = eval.ReadTxtDetections(path, ids, classByName, len(names), ro)
	} else {
		dets, sk, err = readCOCODetections(path, ds, cs, names, byName, classByName, ro)
	}
	if err != nil {
		return nil, err
	}
	if !sk.Empty() {
		fmt.Fprintf(warn, "warning: %s: %s\n", path, sk)
	}
	return dets, nil
}

// readCOCODetections reads a COCO results JSON for ReadDetections.
func readCOCODetections(path string, ds *data.Dataset, cs *data.COCOSplit, names []string, byName map[string]int, classByName func(string) (int, bool), ro eval.ReadOptions) ([]eval.Detection, eval.Skipped, error) {
	r := eval.Resolver{
		ImageByName: func(n string) (int, bool) {
			if i, ok := byName[n]; ok {
				return i, true
			}
			i, ok := byName[filepath.Base(n)]
			return i, ok
		},
		ClassByName: classByName,
		ImageByID: func(id int64) (int, bool) {
			if id < 1 || id > int64(len(ds.Samples)) {
				return 0, false
			}
			return int(id - 1), true
		},
		ClassByID: func(id int64) (int, bool) {
			if id < 1 || id > int64(len(names)) {
				return 0, false
			}
			return int(id - 1), true
		},
	}
	if cs != nil {
		imgOf := map[int64]int{}
		for i, id := range cs.ImageIDs {
			imgOf[id] = i
		}
		catOf := map[int64]int{}
		for c, id := range cs.CategoryIDs {
			if id != 0 {
				catOf[id] = c
			}
		}
		r.ImageByID = func(id int64) (int, bool) { i, ok := imgOf[id]; return i, ok }
		r.ClassByID = func(id int64) (int, bool) { c, ok := catOf[id]; return c, ok }
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, eval.Skipped{}, err
	}
	return eval.ParseCOCOResults(raw, path, r, ro)
}

// WriteJSON writes v as indented JSON to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// InferGPU is infer's GPU option for a device ordinal (-1: the CPU, nil).
func InferGPU(dev int, tf32 bool) *infer.GPU {
	if dev < 0 {
		return nil
	}
	return &infer.GPU{Device: dev, TF32: tf32}
}

// EvalInput is what `dettrain eval` scores: a model (a run folder, or
// weights with the config's model section) or a detection file, and where
// the results go.
type EvalInput struct {
	Run        string // a run folder ("" : none)
	Weights    string // a weights file (inside Run/weights: that run's cfg and names)
	Detections string // a detection file instead of a model
	Strict     bool   // unknown images or classes in Detections are errors
	JSON       string // eval.json path ("": none)
	Out        string // report folder ("": none)
}

// Eval scores a model or a detection file on the eval split (eval.split) of
// c's data set, prints the table and writes the files in asks for.
func Eval(ios *IO, c *config.Config, in EvalInput) error {
	var err error
	// The model: a run's (--run, or --weights inside a run), else the
	// config's model section, refused when its anchors were fitted in
	// training.
	var run *Run
	if in.Detections == "" {
		if run, err = ResolveRun(in.Run, &in.Weights, ios.Err); err != nil {
			return err
		}
		if run == nil {
			if err := CheckAnchors(c, in.Weights); err != nil {
				return err
			}
		}
	}
	var names []string
	if run != nil {
		names = run.Names
	} else if names, err = ClassNames(c); err != nil {
		return err
	}
	ds, cs, err := LoadDatasetCOCO(c, c.Eval.Split, names, ios.Err)
	if err != nil {
		return err
	}
	var (
		dets []eval.Detection
		what string
	)
	if in.Detections != "" {
		if dets, err = ReadDetections(in.Detections, ds, cs, names, c.Data.Format, ios.Err, in.Strict); err != nil {
			return err
		}
		what = "detections " + in.Detections
	} else {
		SetThreads(c.Train)
		cfg := c.Model.Cfg
		if run != nil {
			cfg = run.Cfg
		}
		net, err := BuildNetwork(cfg, in.Weights, len(names), c.Train.Seed)
		if err != nil {
			return err
		}
		net.SetBNEps(c.Model.BNEps)
		if dets, err = PredictSplit(net, ds, c, ios.Err); err != nil {
			return err
		}
		what = fmt.Sprintf("size %s, weights %s", EvalSize(c, net), in.Weights)
	}
	gts := GroundTruth(ds, cs)
	s := eval.Evaluate(dets, gts, names, c.Eval.Metric)
	fmt.Fprintf(ios.Out, "%s split (%d images), %s\n", c.Eval.Split, len(ds.Samples), what)
	if err := s.Table(ios.Out); err != nil {
		return err
	}
	if in.JSON != "" {
		if err := WriteJSON(in.JSON, s); err != nil {
			return err
		}
	}
	if in.Out != "" {
		files, err := WriteEvalReport(in.Out, fmt.Sprintf("%s split of %s (%s)", c.Eval.Split, c.Data.Root, what), s, dets, gts, names)
		if err != nil {
			return err
		}
		fmt.Fprintf(ios.Out, "wrote %s\n", strings.Join(files, ", "))
	}
	return nil
}
