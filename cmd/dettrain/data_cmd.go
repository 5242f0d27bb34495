package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/progress"
)

func newDataCmd(io *IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Inspect and convert data sets (VOC, COCO, YOLO)",
	}
	cmd.AddCommand(newDataCheckCmd(io, nil), newDataConvertCmd(io, nil), newDataSplitCmd(io, nil))
	return cmd
}

// DataCheckOptions are data check's flags.
type DataCheckOptions struct {
	Config ConfigOptions
}

func newDataCheckCmd(io *IO, runF func(*DataCheckOptions) error) *cobra.Command {
	o := &DataCheckOptions{}
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
			return dataCheckRun(io, o)
		},
	}
	o.Config.addFlags(cmd)
	return cmd
}

func dataCheckRun(io *IO, o *DataCheckOptions) error {
	c, err := o.Config.load()
	if err != nil {
		return err
	}
	names, err := engine.ClassNames(c)
	if err != nil {
		return err
	}
	var splits []string
	for _, s := range []string{c.Data.Train, c.Data.Val, c.Data.Test} {
		if c.Data.Train == data.AllSplit && s != data.AllSplit && !data.SplitExists(c.Data.Format, engine.Layout(c), s) {
			continue // a share of "all", checked with it
		}
		if s != "" && !slices.Contains(splits, s) {
			splits = append(splits, s)
		}
	}
	bar := progress.New(io.Err, len(splits), progress.Options{Label: "data check " + c.Data.Format, Unit: "split"})
	problems := 0
	for _, split := range splits {
		bar.SetSuffix("split " + split)
		var rep *data.Report
		if split == data.AllSplit {
			_, _, rep, err = data.LoadAll(c.Data.Format, engine.Layout(c), names, image.OpenCV{}, true)
		} else {
			_, _, rep, err = data.Load(c.Data.Format, engine.Layout(c), split, names, image.OpenCV{}, true)
		}
		if err != nil {
			bar.Finish()
			return err
		}
		bar.Add(1)
		fmt.Fprintf(io.Out, "== split %s (%s)\n", split, c.Data.Format)
		if err := rep.Summary(io.Out, names); err != nil {
			return err
		}
		problems += len(rep.Problems)
	}
	bar.SetSuffix("")
	bar.Finish()
	if problems > 0 {
		return fmt.Errorf("%d problems found", problems)
	}
	fmt.Fprintln(io.Out, "no problems found")
	return nil
}

// DataConvertOptions are data convert's flags.
type DataConvertOptions struct {
	From, To, In, Out string
	Names             string // a names file (one per line, or a YAML "names")
	Splits            []string
	SkipBad           bool
}

func newDataConvertCmd(io *IO, runF func(*DataConvertOptions) error) *cobra.Command {
	o := &DataConvertOptions{}
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
			return dataConvertRun(io, o)
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

func dataConvertRun(io *IO, o *DataConvertOptions) error {
	var names []string
	if o.Names != "" {
		n, err := config.ReadNamesFile(o.Names)
		if err != nil {
			return err
		}
		names = n
	}
	src, err := data.Detect(o.From, o.In, names, config.ReadNamesFile)
	if err != nil {
		return err
	}
	splits := src.Splits
	if len(o.Splits) > 0 {
		for _, s := range o.Splits {
			if !slices.Contains(src.Splits, s) {
				return usagef("--splits: %q is not a split of %s (found: %s)", s, o.In, strings.Join(src.Splits, ", "))
			}
		}
		splits = o.Splits
	}
	fmt.Fprintf(io.Out, "%s data set in %s: splits %s; %d classes from %s: %s\n", o.From, o.In, strings.Join(splits, ", "),
		len(src.Names), src.NamesFrom, strings.Join(src.Names, ", "))
	bar := progress.New(io.Err, len(splits), progress.Options{Label: "reading", Unit: "split"})
	var sd []data.SplitData
	for _, s := range splits {
		ds, cs, rep, err := data.Load(o.From, src.Layout, s, src.Names, image.OpenCV{}, false)
		if err != nil {
			bar.Finish()
			return err
		}
		bar.Add(1)
		if len(rep.Problems) > 0 {
			if !o.SkipBad {
				bar.Finish()
				return fmt.Errorf("split %q has %d problems (--skip-bad leaves those images out):%s", s, len(rep.Problems), engine.ProblemList(rep.Problems))
			}
			fmt.Fprintf(io.Err, "warning: leaving out %d images of split %q with problems:%s\n", rep.Skipped, s, engine.ProblemList(rep.Problems))
		}
		fmt.Fprintf(io.Out, "  %s: %d images, %d objects\n", s, rep.Images, rep.Objects)
		sd = append(sd, data.SplitData{Name: s, Dataset: ds, COCO: cs})
	}
	bar.Finish()
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	wr, err := data.Write(o.To, out, src.Names, sd)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "wrote %d images and %d objects as %s to %s\n", wr.Images, wr.Objects, o.To, o.Out)
	if wr.LeftOut > 0 {
		fmt.Fprintf(io.Out, "left out %d difficult/crowd objects (YOLO labels have no such flag)\n", wr.LeftOut)
	}
	fmt.Fprintf(io.Out, "config for the converted set:\n%s", wr.Config)
	return nil
}

// DataSplitOptions are data split's flags.
type DataSplitOptions struct {
	Config                    ConfigOptions
	Root, Format              string
	Images, Annotations, List string // layout folders; "" for the format's default
	Names                     string // a names file
	Val, Test                 float64
	Seed                      int64
	// ValSet, SeedSet: the flags were given (else a config's values).
	ValSet, SeedSet bool
	Force, SkipBad  bool
}

func newDataSplitCmd(io *IO, runF func(*DataSplitOptions) error) *cobra.Command {
	o := &DataSplitOptions{}
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
			return dataSplitRun(io, o)
		},
	}
	o.Config.addFlags(cmd)
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

// splitLayout is the layout data split reads: the config's, or the
// format's usual one below --root with the flags' folders.
func splitLayout(o *DataSplitOptions) data.VOCLayout {
	l := data.VOCLayout{Root: o.Root, Images: "images", Annotations: "annotations", Splits: filepath.Join("ImageSets", "Main")}
	switch o.Format {
	case data.FormatVOC:
		l = data.DefaultVOCLayout(o.Root)
	case data.FormatYOLO:
		l.Annotations = "labels"
	}
	for _, f := range []struct {
		dst *string
		v   string
	}{{&l.Images, o.Images}, {&l.Annotations, o.Annotations}, {&l.Splits, o.List}} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	return l
}

func dataSplitRun(io *IO, o *DataSplitOptions) error {
	format, l := o.Format, splitLayout(o)
	var names []string
	if o.Config.File != "" {
		c, err := o.Config.load()
		if err != nil {
			return err
		}
		format, l = c.Data.Format, engine.Layout(c)
		if !o.ValSet {
			o.Val = c.Data.ValFraction
		}
		if !o.SeedSet {
			o.Seed = c.Train.Seed
		}
		if format != data.FormatCOCO || len(c.Data.Names) > 0 || c.Data.NamesFile != "" {
			if names, err = c.ClassNames(); err != nil {
				return err
			}
		}
	}
	if o.Names != "" {
		n, err := config.ReadNamesFile(o.Names)
		if err != nil {
			return err
		}
		names = n
	}
	if names == nil {
		n, err := data.AllNames(format, l, config.ReadNamesFile)
		if err != nil {
			return err
		}
		names = n
	}
	ds, cs, rep, err := data.LoadAll(format, l, names, image.OpenCV{}, true)
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		if !o.SkipBad {
			return fmt.Errorf("%s has %d problems (--skip-bad leaves those images out of every list):%s", l.Root, len(rep.Problems), engine.ProblemList(rep.Problems))
		}
		fmt.Fprintf(io.Err, "warning: leaving out %d images with problems:%s\n", rep.Skipped, engine.ProblemList(rep.Problems))
	}
	if len(ds.Samples) == 0 {
		return fmt.Errorf("%s: no usable images", l.Root)
	}
	tr, val, te, err := data.Split(ds, data.SplitOptions{Val: o.Val, Test: o.Test, Seed: o.Seed})
	if err != nil {
		return err
	}
	var lists []data.SplitList
	for _, sp := range []struct {
		name string
		idx  []int
	}{{"train", tr}, {"val", val}, {"test", te}} {
		if len(sp.idx) == 0 && sp.name != "train" {
			continue
		}
		d, c := engine.Subset(ds, cs, sp.idx)
		lists = append(lists, data.SplitList{Name: sp.name, Dataset: d, COCO: c})
	}
	files, err := data.WriteSplitLists(format, l, lists, o.Force)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "%d images of %s split with seed %d (val %g, test %g), stratified by each image's rarest class:\n", len(ds.Samples), l.Root, o.Seed, o.Val, o.Test)
	for i, sl := range lists {
		per := make([]int, len(names))
		for _, s := range sl.Dataset.Samples {
			seen := map[int]bool{}
			for _, ob := range s.Objects {
				if !seen[ob.Class] {
					seen[ob.Class] = true
					per[ob.Class]++
				}
			}
		}
		var parts []string
		for c, n := range names {
			parts = append(parts, fmt.Sprintf("%s %d", n, per[c]))
		}
		fmt.Fprintf(io.Out, "  %-5s %5d images (images per class: %s) -> %s\n", sl.Name, len(sl.Dataset.Samples), strings.Join(parts, ", "), files[i])
	}
	return nil
}
