package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/infer"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/progress"
	"github.com/dettrain/dettrain/report"
)

// EvalOptions are eval's flags.
type EvalOptions struct {
	Config     ConfigOptions
	DataConfig string // --data-config: a config read for its data section only
	Run        string // --run DIR: a training run's model.cfg, names and (without --config) config.yaml
	Weights    string // default with --run: DIR/weights/best.weights
	Size       model.Size
	Detections string // a COCO results JSON or a folder of txt files
	Split      string
	JSON       string
	Out        string
	Device     string
	Strict     bool // --strict: a detection of an unknown image or class is an error, not skipped
}

func newEvalCmd(io *IO, runF func(*EvalOptions) error) *cobra.Command {
	o := &EvalOptions{}
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Score weights or a detection file on a split: VOC mAP@0.5 and COCO AP@[.5:.95]",
		Long: `eval scores a model (--weights) or any detector's output (--detections) against the
ground truth of a split (eval.split, or --split) and prints per-class APs, VOC07
11-point and all-point mAP@0.5 and the twelve COCO numbers, computed as pycocotools'
COCOeval computes them. eval.metric (voc07, voc or coco) picks the headline number.

--detections takes a COCO results JSON ([{"image_id", "category_id", "bbox": [x,y,w,h],
"score"}]; for a COCO data set the ids are the annotation file's, otherwise image_id n
is the n-th image of the split and category_id k the k-th class, both from 1; a
"file_name" or "category_name" field wins over the id) or a folder with one txt per
image, ID.txt, lines "class score x1 y1 x2 y2" (class name or 0-based index, box
corners in pixels). No model is needed then: --data-config (or --config) is read for
its data and eval sections only.

--out DIR writes eval.json, summary.md, pr_curves.png (COCO's 101-point precision
at IoU .5 per class) and confusion.png there.`,
		Example: `  dettrain eval --config configs/demo.yaml --weights runs/demo/weights/best.weights
  dettrain eval -c configs/bccd-yolov3-tiny.yaml --weights best.weights --split val --json val.json --out runs/bccd/eval-val
  dettrain eval --data-config configs/bccd-yolov3-tiny.yaml --detections detections.json --json scores.json
  dettrain eval --data-config data.yaml --detections runs/other-detector/txt --set eval.metric=coco`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.Weights == "" && o.Run == "" && o.Detections == "":
				return usagef("--run, --weights or --detections is required")
			case (o.Weights != "" || o.Run != "") && o.Detections != "":
				return usagef("give --run/--weights or --detections, not both")
			case o.Run == "" && o.Detections == "" && o.Config.File == "":
				return usagef("--weights goes with --config (or use --run RUN_DIR)")
			case o.DataConfig != "" && o.Config.File != "":
				return usagef("give --config or --data-config, not both")
			case o.DataConfig != "" && o.Detections == "":
				return usagef("--data-config goes with --detections; with --weights use --config")
			}
			if o.Device != "" {
				o.Config.Sets = append(o.Config.Sets, "train.device="+o.Device)
			}
			if runF != nil {
				return runF(o)
			}
			return evalRun(io, o)
		},
	}
	o.Config.addFlags(cmd)
	cmd.Flags().StringVar(&o.DataConfig, "data-config", "", "config file read for its data and eval sections (with --detections)")
	cmd.Flags().StringVar(&o.Run, "run", "", "a training run's folder: its model.cfg, names.txt, config.yaml (unless --config) and weights/best.weights (unless --weights)")
	cmd.Flags().StringVar(&o.Weights, "weights", "", "darknet .weights file to score (inside a run's weights/ folder: that run's model.cfg and names are used)")
	cmd.Flags().Var(sizeFlag{&o.Size}, "size", "input size, N or WxH (default: eval.size, else model.size, else the model cfg's [net] width x height)")
	cmd.Flags().StringVar(&o.Detections, "detections", "", "COCO results JSON or folder of ID.txt files to score instead of a model")
	cmd.Flags().StringVar(&o.Split, "split", "", "split to score (default: eval.split from the config)")
	cmd.Flags().StringVar(&o.JSON, "json", "", "also write the result as JSON to this file")
	cmd.Flags().StringVar(&o.Out, "out", "", "write eval.json, summary.md, pr_curves.png and confusion.png to this folder")
	cmd.Flags().BoolVar(&o.Strict, "strict", false, "with --detections: a detection of an image not in the split or of a class not in the data set is an error (default: skipped and counted in one warning)")
	cmd.Flags().StringVar(&o.Device, "device", "", `where the network runs: "cpu", "cuda" or "cuda:N" (default: train.device)`)
	return cmd
}

// loadConfig reads the config. With --detections the model section is not
// used, so a config (or a file with only data:) without model.cfg is
// accepted: a placeholder fills it before validation.
func (o *EvalOptions) loadConfig() (*config.Config, error) {
	if o.Detections == "" {
		if o.Config.File == "" && o.Run != "" {
			o.Config.File = filepath.Join(o.Run, runConfig)
		}
		return o.Config.load()
	}
	file := o.Config.File
	if o.DataConfig != "" {
		file = o.DataConfig
	}
	if file == "" {
		return nil, usagef("--data-config (or --config) is required")
	}
	return config.Load(file, config.LoadOptions{Sets: append([]string{"model.cfg=unused"}, o.Config.Sets...)})
}

func evalRun(io *IO, o *EvalOptions) error {
	c, err := o.loadConfig()
	if err != nil {
		return err
	}
	if o.Split != "" {
		c.Eval.Split = o.Split
	}
	if !o.Size.IsZero() {
		c.Eval.Size = config.Size{W: o.Size.W, H: o.Size.H}
	}
	// The model: a run's (--run, or --weights inside a run), else the
	// config's model section, refused when its anchors were fitted in
	// training.
	var run *trainedRun
	if o.Detections == "" {
		if run, err = resolveRun(o.Run, &o.Weights, io.Err); err != nil {
			return err
		}
		if run == nil {
			if err := checkAnchors(c, o.Weights); err != nil {
				return err
			}
		}
	}
	var names []string
	if run != nil {
		names = run.Names
	} else if names, err = classNames(c); err != nil {
		return err
	}
	ds, cs, err := loadDatasetCOCO(c, c.Eval.Split, names, io.Err)
	if err != nil {
		return err
	}
	var (
		dets []eval.Detection
		what string
	)
	if o.Detections != "" {
		if dets, err = readDetections(o.Detections, ds, cs, names, c.Data.Format, io.Err, o.Strict); err != nil {
			return err
		}
		what = "detections " + o.Detections
	} else {
		setThreads(c.Train)
		cfg := c.Model.Cfg
		if run != nil {
			cfg = run.Cfg
		}
		net, err := buildNetwork(cfg, o.Weights, len(names), c.Train.Seed)
		if err != nil {
			return err
		}
		net.SetBNEps(c.Model.BNEps)
		if dets, err = predictSplit(net, ds, c, io.Err); err != nil {
			return err
		}
		what = fmt.Sprintf("size %s, weights %s", evalSize(c, net), o.Weights)
	}
	gts := groundTruth(ds, cs)
	s := eval.Evaluate(dets, gts, names, c.Eval.Metric)
	fmt.Fprintf(io.Out, "%s split (%d images), %s\n", c.Eval.Split, len(ds.Samples), what)
	if err := s.Table(io.Out); err != nil {
		return err
	}
	if o.JSON != "" {
		if err := writeJSON(o.JSON, s); err != nil {
			return err
		}
	}
	if o.Out != "" {
		files, err := writeEvalReport(o.Out, fmt.Sprintf("%s split of %s (%s)", c.Eval.Split, c.Data.Root, what), s, dets, gts, names)
		if err != nil {
			return err
		}
		fmt.Fprintf(io.Out, "wrote %s\n", strings.Join(files, ", "))
	}
	return nil
}

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

// predictSplit runs the network over ds at the eval size (evalSize: eval.size,
// else model.size, else the network's own [net] size) with the eval
// thresholds, showing a progress bar on progressW (nil: none).
func predictSplit(net *model.Network, ds *data.Dataset, c *config.Config, progressW io.Writer) ([]eval.Detection, error) {
	const batch = 8
	dev, _ := config.ParseDevice(c.Train.Device) // validated with the config
	size := evalSize(c, net)
	p, err := infer.New(net, batch, size, infer.Options{Conf: c.Eval.Conf, NMS: c.Eval.NMS, MaxDets: c.Eval.MaxDets, GPU: inferGPU(dev, c.Train.TF32)})
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

// evaluateSummary scores the network on ds with every metric (VOC and COCO;
// c.Eval.Metric names the primary one): the evaluation for training's
// periodic and final evaluations. cs, when the split came from COCO JSON,
// supplies the annotation areas. progressW (nil: none) gets a progress bar.
func evaluateSummary(net *model.Network, ds *data.Dataset, cs *data.COCOSplit, c *config.Config, names []string, progressW io.Writer) (eval.Summary, []eval.Detection, error) {
	dets, err := predictSplit(net, ds, c, progressW)
	if err != nil {
		return eval.Summary{}, nil, err
	}
	return eval.Evaluate(dets, groundTruth(ds, cs), names, c.Eval.Metric), dets, nil
}

// Confusion-matrix thresholds, YOLOv5's defaults (ConfusionMatrix(nc,
// conf=0.25, iou_thres=0.45)).
const (
	confusionConf = 0.25
	confusionIoU  = 0.45
)

// writeEvalReport writes an evaluation's files into dir: eval.json
// (Summary's JSON), pr_curves.png (per-class COCO 101-point precision at
// IoU .5), confusion.png and summary.md (the numbers, the confusion matrix
// and links to the charts). It returns the paths written.
func writeEvalReport(dir, title string, s eval.Summary, dets []eval.Detection, gts []eval.GroundTruth, names []string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files, charts []string
	p := filepath.Join(dir, "eval.json")
	if err := writeJSON(p, s); err != nil {
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

// readDetections reads a detection file or folder for the samples of ds
// (see eval's --help for the formats). Txt corners are in the data set's
// pixel convention: VOC devkit corners (box.FromVOC, as the XML) when
// format is voc, continuous otherwise; COCO JSON bboxes are continuous.
// Detections of images or classes the data set does not have are skipped
// with one warning line on warn counting them, or with strict an error.
func readDetections(path string, ds *data.Dataset, cs *data.COCOSplit, names []string, format string, warn io.Writer, strict bool) ([]eval.Detection, error) {
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

// readCOCODetections reads a COCO results JSON for readDetections.
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

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func writeCfg(net *model.Network, path string) error {
	return os.WriteFile(path, net.Cfg.Text(), 0o644)
}

// inferGPU is infer's GPU option for a device ordinal (-1: the CPU, nil).
func inferGPU(dev int, tf32 bool) *infer.GPU {
	if dev < 0 {
		return nil
	}
	return &infer.GPU{Device: dev, TF32: tf32}
}
