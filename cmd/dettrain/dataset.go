package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/eval"
)

// loadDataset reads one split in the config's data.format (voc, coco or
// yolo) and the header of every image; with problems it refuses (unless
// data.skip_bad, then it warns on errw and skips those images).
func loadDataset(c *config.Config, split string, names []string, errw io.Writer) (*data.Dataset, error) {
	ds, _, err := loadDatasetCOCO(c, split, names, errw)
	return ds, err
}

// loadDatasetCOCO is loadDataset that also returns, for data.format coco,
// the split's COCO ids and annotation areas (nil for the other formats).
func loadDatasetCOCO(c *config.Config, split string, names []string, errw io.Writer) (*data.Dataset, *data.COCOSplit, error) {
	ds, cs, rep, err := data.Load(c.Data.Format, layout(c), split, names, image.OpenCV{}, true)
	if err != nil {
		return nil, nil, err
	}
	if len(rep.Problems) > 0 {
		if !c.Data.SkipBad {
			return nil, nil, fmt.Errorf("split %q of %s has %d problems (set data.skip_bad: true to skip those images):%s", split, c.Data.Root, len(rep.Problems), problemList(rep.Problems))
		}
		fmt.Fprintf(errw, "warning: skipping %d images of split %q with problems:%s\n", len(rep.Problems), split, problemList(rep.Problems))
	}
	if len(ds.Samples) == 0 {
		return nil, nil, fmt.Errorf("split %q of %s has no usable images", split, c.Data.Root)
	}
	return ds, cs, nil
}

// groundTruth lists the objects of ds for eval (difficult or crowd ones
// flagged), with the COCO annotation areas when cs is not nil, so that
// COCO's area ranges use them as pycocotools does.
func groundTruth(ds *data.Dataset, cs *data.COCOSplit) []eval.GroundTruth {
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

// problemList formats a data set's problems, one per line, the first 20.
func problemList(ps []data.Problem) string {
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
