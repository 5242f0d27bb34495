package main

import (
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/model"
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
	addConfigFlags(cmd, &o.Config)
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
			o.Config.File = filepath.Join(o.Run, engine.RunConfig)
		}
		return o.Config.Load()
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
	return engine.Eval(io, c, engine.EvalInput{Run: o.Run, Weights: o.Weights, Detections: o.Detections, Strict: o.Strict, JSON: o.JSON, Out: o.Out})
}
