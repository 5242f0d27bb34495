package main

import (
	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/engine"
)

func newPredictCmd(io *IO, runF func(*engine.PredictOptions) error) *cobra.Command {
	o := &engine.PredictOptions{}
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
			return engine.Predict(io, o)
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
