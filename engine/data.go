package engine

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/eval"
)

// ClassNames returns the config's class names (c.ClassNames), or, for
// data.format coco with neither data.names nor data.names_file, the
// categories of the training split's annotation file sorted by id
// (data.COCONames; with train: all, the file of data.COCOAllFile).
func ClassNames(c *config.Config) ([]string, error) {
	if c.Data.Format == data.FormatCOCO && len(c.Data.Names) == 0 && c.Data.NamesFile == "" {
		return data.COCONames(Layout(c), c.Data.Train)
	}
	return c.ClassNames()
}

// LoadDataset reads one split in the config's data.format (voc, coco or
// yolo) and the header of every image; with problems it refuses (unless
// data.skip_bad, then it warns on errw and skips those images).
func LoadDataset(c *config.Config, split string, names []string, errw io.Writer) (*data.Dataset, error) {
	ds, _, err := LoadDatasetCOCO(c, split, names, errw)
	return ds, err
}

// LoadDatasetCOCO is LoadDataset that also returns, for data.format coco,
// the split's COCO ids and annotation areas (nil for the other formats).
//
// With data.train: all (a data set without split lists), split "all" is
// every annotated image (data.LoadAll) less a data.val_fraction share, and
// data.val is that share: data.Split's class-stratified split seeded with
// train.seed, made in memory on each call (the same on each). The test
// split, when no split of that name exists on disk, is the val share too;
// when one exists it is read as it is and its images are left out of the
// other two.
func LoadDatasetCOCO(c *config.Config, split string, names []string, errw io.Writer) (*data.Dataset, *data.COCOSplit, error) {
	ds, cs, rep, err := ReadSplit(c, split, names, image.OpenCV{})
	if err != nil {
		return nil, nil, err
	}
	if len(rep.Problems) > 0 {
		if !c.Data.SkipBad {
			return nil, nil, fmt.Errorf("split %q of %s has %d problems (set data.skip_bad: true to skip those images):%s", split, c.Data.Root, len(rep.Problems), ProblemList(rep.Problems))
		}
		fmt.Fprintf(errw, "warning: skipping %d images of split %q with problems:%s\n", len(rep.Problems), split, ProblemList(rep.Problems))
	}
	if len(ds.Samples) == 0 {
		return nil, nil, fmt.Errorf("split %q of %s has no usable images", split, c.Data.Root)
	}
	return ds, cs, nil
}

// ReadSplit reads split as LoadDatasetCOCO describes, without judging its
// problems.
func ReadSplit(c *config.Config, split string, names []string, probe data.Prober) (*data.Dataset, *data.COCOSplit, *data.Report, error) {
	f, l := c.Data.Format, Layout(c)
	if c.Data.Train != data.AllSplit {
		return data.Load(f, l, split, names, probe, true)
	}
	isTrain, isVal := split == data.AllSplit, c.Data.Val != "" && split == c.Data.Val
	if !isTrain && !isVal && (split != c.Data.Test || data.SplitExists(f, l, split)) {
		return data.Load(f, l, split, names, probe, true)
	}
	ds, cs, rep, err := data.LoadAll(f, l, names, probe, true)
	if err != nil {
		return nil, nil, nil, err
	}
	if c.Data.Test != "" && data.SplitExists(f, l, c.Data.Test) {
		test, _, _, err := data.Load(f, l, c.Data.Test, names, probe, false)
		if err != nil {
			return nil, nil, nil, err
		}
		inTest := map[string]bool{}
		for _, s := range test.Samples {
			inTest[filepath.Clean(s.ImagePath)] = true
		}
		var keep []int
		for i, s := range ds.Samples {
			if !inTest[filepath.Clean(s.ImagePath)] {
				keep = append(keep, i)
			}
		}
		ds, cs = Subset(ds, cs, keep)
	}
	tr, val, _, err := data.Split(ds, data.SplitOptions{Val: c.Data.ValFraction, Seed: c.Train.Seed})
	if err != nil {
		return nil, nil, nil, err
	}
	idx := val
	if isTrain {
		idx = tr
	} else if len(val) == 0 {
		return nil, nil, nil, fmt.Errorf("split %q of %s: data.val_fraction %g of %d images holds out none (train: all)", split, c.Data.Root, c.Data.ValFraction, len(ds.Samples))
	}
	ds, cs = Subset(ds, cs, idx)
	return ds, cs, rep, nil
}

// Subset keeps the samples idx of ds (and of cs, for COCO).
func Subset(ds *data.Dataset, cs *data.COCOSplit, idx []int) (*data.Dataset, *data.COCOSplit) {
	if cs != nil {
		cs = cs.Subset(idx)
		return cs.Dataset, cs
	}
	return ds.Subset(idx), nil
}

// GroundTruth lists the objects of ds for eval (difficult or crowd ones
// flagged), with the COCO annotation areas when cs is not nil, so that
// COCO's area ranges use them as pycocotools does.
func GroundTruth(ds *data.Dataset, cs *data.COCOSplit) []eval.GroundTruth {
	var gts []eval.GroundTruth
	for i, s := range ds.Samples {
		for j, o := range s.Objects {
			g := eval.GroundTruth{Image: i, Class: o.Class, Box: o.Box, Difficult: o.Difficult}
			if cs != nil && i < len(cs.Areas) && j < len(cs.Areas[i]) {
				g.Area = cs.Areas[i][j]
			}
			gts = append(gts, g)
		}
	}
	return gts
}

// ProblemList formats a data set's problems, one per line, the first 20.
func ProblemList(ps []data.Problem) string {
	var b strings.Builder
	for i, p := range ps {
		if i == 20 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(ps)-20)
			break
		}
		fmt.Fprintf(&b, "\n  %s", p)
	}
	return b.String()
}

// Layout is the data section's folder layout.
func Layout(c *config.Config) data.VOCLayout {
	return data.VOCLayout{Root: c.Data.Root, Images: c.Data.Images, Annotations: c.Data.Annotations, Splits: c.Data.Splits, AllowOutside: c.Data.AllowOutside}
}
