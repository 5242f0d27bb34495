package main

import (
	"slices"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/engine"
)

func newDataCmd(io *IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Inspect and convert data sets (VOC, COCO, YOLO)",
	}
	cmd.AddCommand(newDataCheckCmd(io, nil), newDataConvertCmd(io, nil), newDataSplitCmd(io, nil))
	return cmd
}

func newDataCheckCmd(io *IO, runF func(*engine.DataCheckOptions) error) *cobra.Command {
	o := &engine.DataCheckOptions{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate every split of a data set: images, boxes per class, problems",
		Long: `check reads every annotation and the header of every image of the train, val and
test splits, in the config's data.format (voc, coco or yolo), and lists what is
wrong: missing or corrupt images, malformed XML, JSON or txt labels, unknown
classes, boxes outside the image. It exits 1 when it finds problems.`,
		Example: `  dettrain data check --config configs/bccd-yolov3-tiny.yaml
  dettrain data check -c my.yaml --set data.format=yolo --set data.images=images --set data.annotations=labels`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return engine.DataCheck(io, o)
		},
	}
	addConfigFlags(cmd, &o.Config)
	return cmd
}

func newDataConvertCmd(io *IO, runF func(*engine.DataConvertOptions) error) *cobra.Command {
	o := &engine.DataConvertOptions{}
	cmd := &cobra.Command{
		Use:   "convert --from F --to G --in DIR --out DIR",
		Short: "Convert a data set between VOC, COCO and YOLO layouts",
		Long: `convert reads a data set of format --from in --in, finding its layout, splits and
class names, and writes it in format --to to --out, images hard-linked (or copied):

  voc   JPEGImages/ (or images/), Annotations/ (or annotations/), split lists in
        ImageSets/Main/ (or splits/Main/, splits/) or split sub-folders of the XML folder
  coco  annotations/[instances_]SPLIT.json with images in images/[SPLIT/] or the
        folder itself, or Roboflow's SPLIT/_annotations.coco.json
  yolo  images/SPLIT/ + labels/SPLIT/ (Ultralytics) or SPLIT/images/ + SPLIT/labels/
        (Roboflow), names from data.yaml, classes.txt or *.names

Class names: --names, else the format's own (VOC: every <name>, sorted; COCO: the
categories by id; YOLO: the names file). Boxes are kept exactly where the formats allow
(VOC integers stay integers, YOLO keeps full float precision); VOC difficult and COCO
iscrowd map to each other; YOLO has no such flag, so those objects are left out of YOLO
labels (as Ultralytics' converters do). It prints a data: config section for the output.`,
		Example: `  dettrain data convert --from voc --to yolo --in ../shared/data/playing-cards --out cards-yolo
  dettrain data convert --from coco --to voc --in coco2017 --out coco-voc --splits val2017
  dettrain data convert --from yolo --to coco --in my-yolo-set --out my-coco --names my-yolo-set/data.yaml`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.From == "" || o.To == "" || o.In == "" || o.Out == "":
				return usagef("--from, --to, --in and --out are required")
			case !slices.Contains(data.Formats, o.From):
				return usagef("--from %q: want voc, coco or yolo", o.From)
			case !slices.Contains(data.Formats, o.To):
				return usagef("--to %q: want voc, coco or yolo", o.To)
			}
			if runF != nil {
				return runF(o)
			}
			return engine.DataConvert(io, o)
		},
	}
	cmd.Flags().StringVar(&o.From, "from", "", "input format: voc, coco or yolo (required)")
	cmd.Flags().StringVar(&o.To, "to", "", "output format: voc, coco or yolo (required)")
	cmd.Flags().StringVar(&o.In, "in", "", "input data set folder (required)")
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder (required)")
	cmd.Flags().StringVar(&o.Names, "names", "", "class names file (default: found in the input)")
	cmd.Flags().StringSliceVar(&o.Splits, "splits", nil, "splits to convert (default: every split found)")
	cmd.Flags().BoolVar(&o.SkipBad, "skip-bad", false, "leave out images with problems instead of stopping")
	return cmd
}

func newDataSplitCmd(io *IO, runF func(*engine.DataSplitOptions) error) *cobra.Command {
	o := &engine.DataSplitOptions{}
	cmd := &cobra.Command{
		Use:   "split (--config FILE | --root DIR --format F)",
		Short: "Write train/val/test lists for a data set that has none (seeded, class-stratified)",
		Long: `split reads every annotated image of a data set without split lists (a folder of
images and XMLs from labelImg or CVAT, a single COCO JSON, a YOLO images/ + labels/
pair), divides it into train, val and test (data.Split: seeded, stratified by each
image's rarest class) and writes the lists in the format's own layout:

  voc   SPLITS/train.txt, val.txt, test.txt (data.splits, default ImageSets/Main): ids
  yolo  ROOT/train.txt, val.txt, test.txt: image paths ("./images/a.jpg")
  coco  ANNOTATIONS/instances_train.json, ... : the source JSON cut by image

Existing lists are not overwritten without --force. A config's data.val_fraction and
train.seed are the defaults of --val and --seed. Images with problems stop it
(--skip-bad leaves them out of every list).`,
		Example: `  dettrain data split --root my-labelimg-export --format voc --val 0.1 --test 0.1
  dettrain data split -c my.yaml --seed 7`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ValSet, o.SeedSet = cmd.Flags().Changed("val"), cmd.Flags().Changed("seed")
			switch {
			case o.Config.File == "" && (o.Root == "" || o.Format == ""):
				return usagef("give --config, or --root and --format")
			case o.Config.File != "" && (o.Root != "" || o.Format != ""):
				return usagef("give --config or --root/--format, not both")
			case o.Format != "" && !slices.Contains(data.Formats, o.Format):
				return usagef("--format %q: want voc, coco or yolo", o.Format)
			case !(o.Val >= 0 && o.Test >= 0 && o.Val+o.Test < 1):
				return usagef("--val %g and --test %g: each must be >= 0 and their sum < 1", o.Val, o.Test)
			}
			if runF != nil {
				return runF(o)
			}
			return engine.DataSplit(io, o)
		},
	}
	addConfigFlags(cmd, &o.Config)
	cmd.Flags().StringVar(&o.Root, "root", "", "data set folder (instead of --config)")
	cmd.Flags().StringVar(&o.Format, "format", "", "voc, coco or yolo (with --root)")
	cmd.Flags().StringVar(&o.Images, "images", "", "image folder below the root (default JPEGImages for voc, images for coco and yolo)")
	cmd.Flags().StringVar(&o.Annotations, "annotations", "", "annotation folder below the root (default Annotations for voc, annotations for coco, labels for yolo)")
	cmd.Flags().StringVar(&o.List, "splits", "", "voc: folder of the lists below the root (default ImageSets/Main)")
	cmd.Flags().StringVar(&o.Names, "names", "", "class names file (default: found in the data set)")
	cmd.Flags().Float64Var(&o.Val, "val", 0.1, "share of the images for val (default data.val_fraction with --config)")
	cmd.Flags().Float64Var(&o.Test, "test", 0, "share of the images for test")
	cmd.Flags().Int64Var(&o.Seed, "seed", 1, "shuffle seed (default train.seed with --config)")
	cmd.Flags().BoolVar(&o.Force, "force", false, "overwrite existing lists")
	cmd.Flags().BoolVar(&o.SkipBad, "skip-bad", false, "leave out images with problems instead of stopping")
	return cmd
}
