package engine

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/progress"
)

// DataCheckOptions are data check's flags.
type DataCheckOptions struct {
	Config ConfigOptions
}

// DataCheck reads every split of a config's data set, image headers
// included, and lists its problems and statistics.
func DataCheck(io *IO, o *DataCheckOptions) error {
	c, err := o.Config.Load()
	if err != nil {
		return err
	}
	names, err := ClassNames(c)
	if err != nil {
		return err
	}
	var splits []string
	for _, s := range []string{c.Data.Train, c.Data.Val, c.Data.Test} {
		if c.Data.Train == data.AllSplit && s != data.AllSplit && !data.SplitExists(c.Data.Format, Layout(c), s) {
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
			_, _, rep, err = data.LoadAll(c.Data.Format, Layout(c), names, image.OpenCV{}, true)
		} else {
			_, _, rep, err = data.Load(c.Data.Format, Layout(c), split, names, image.OpenCV{}, true)
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

// DataConvert converts a data set between VOC, COCO and YOLO txt.
func DataConvert(io *IO, o *DataConvertOptions) error {
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
				return Usagef("--splits: %q is not a split of %s (found: %s)", s, o.In, strings.Join(src.Splits, ", "))
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
				return fmt.Errorf("split %q has %d problems (--skip-bad leaves those images out):%s", s, len(rep.Problems), ProblemList(rep.Problems))
			}
			fmt.Fprintf(io.Err, "warning: leaving out %d images of split %q with problems:%s\n", rep.Skipped, s, ProblemList(rep.Problems))
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

// DataSplit writes a seeded, class-stratified train/val/test split of a
// data set as split lists in its format's layout.
func DataSplit(io *IO, o *DataSplitOptions) error {
	format, l := o.Format, splitLayout(o)
	var names []string
	if o.Config.File != "" {
		c, err := o.Config.Load()
		if err != nil {
			return err
		}
		format, l = c.Data.Format, Layout(c)
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
			return fmt.Errorf("%s has %d problems (--skip-bad leaves those images out of every list):%s", l.Root, len(rep.Problems), ProblemList(rep.Problems))
		}
		fmt.Fprintf(io.Err, "warning: leaving out %d images with problems:%s\n", rep.Skipped, ProblemList(rep.Problems))
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
		d, c := Subset(ds, cs, sp.idx)
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
