package eval

import (
	"cmp"
	"slices"

	"github.com/dettrain/dettrain/box"
)

// Confusion is a detection confusion matrix in the style of YOLOv5's
// ConfusionMatrix (utils/metrics.py): M has n+1 rows and columns for n
// classes, the last standing for "background". M[p][t] counts detections of
// class p matched to a ground truth of class t; M[n][t] the ground truths
// of class t that no detection matched (missed); M[p][n] the detections of
// class p that matched nothing (false alarms).
type Confusion struct {
	Names    []string // the n class names, then "background"
	Conf     float64  // detections scoring <= Conf are left out
	IoU      float64  // a match needs IoU > IoU
	M        [][]int
	Excluded int // detections matched to a difficult (crowd) ground truth: not counted
}

// ConfusionMatrix builds the matrix per image as YOLOv5's process_batch:
// detections scoring > conf are matched to ground truths regardless of
// class; every (gt, det) pair with IoU > iou is a candidate; candidates are
// taken by IoU, highest first (ties by gt then det input order), each gt
// and each det at most once. A matched pair counts in M[det class][gt
// class], an unmatched gt in the background row, an unmatched det in the
// background column. Difficult ground truths take part in the matching, but
// neither they nor the detections they take are counted (they are
// Excluded). Unlike YOLOv5, unmatched detections are counted also in images
// where nothing matched.
func ConfusionMatrix(dets []Detection, gts []GroundTruth, names []string, conf, iou float64) Confusion {
	n := len(names)
	for _, d := range dets {
		n = max(n, d.Class+1)
	}
	for _, g := range gts {
		n = max(n, g.Class+1)
	}
	c := Confusion{Conf: conf, IoU: iou, M: make([][]int, n+1)}
	for i := range n {
		c.Names = append(c.Names, className(names, i))
	}
	c.Names = append(c.Names, "background")
	for i := range c.M {
		c.M[i] = make([]int, n+1)
	}
	dOf := map[int][]Detection{}
	gOf := map[int][]GroundTruth{}
	var images []int
	for _, d := range dets {
		if d.Score > conf && d.Class >= 0 {
			if _, ok := dOf[d.Image]; !ok {
				if _, ok := gOf[d.Image]; !ok {
					images = append(images, d.Image)
				}
			}
			dOf[d.Image] = append(dOf[d.Image], d)
		}
	}
	for _, g := range gts {
		if g.Class < 0 {
			continue
		}
		if _, ok := gOf[g.Image]; !ok {
			if _, ok := dOf[g.Image]; !ok {
				images = append(images, g.Image)
			}
		}
		gOf[g.Image] = append(gOf[g.Image], g)
	}
	type pair struct {
		g, d int
		iou  float64
	}
	for _, im := range images {
		ds, gs := dOf[im], gOf[im]
		var cands []pair
		for gi, g := range gs {
			for di, d := range ds {
				if v := box.IoU(g.Box, d.Box); v > iou {
					cands = append(cands, pair{gi, di, v})
				}
			}
		}
		slices.SortStableFunc(cands, func(a, b pair) int { return cmp.Compare(b.iou, a.iou) })
		gm := make([]int, len(gs))
		dm := make([]bool, len(ds))
		for i := range gm {
			gm[i] = -1
		}
		for _, p := range cands {
			if gm[p.g] >= 0 || dm[p.d] {
				continue
			}
			gm[p.g], dm[p.d] = p.d, true
		}
		for gi, g := range gs {
			switch {
			case g.Difficult:
				if gm[gi] >= 0 {
					c.Excluded++
				}
			case gm[gi] >= 0:
				c.M[ds[gm[gi]].Class][g.Class]++
			default:
				c.M[n][g.Class]++
			}
		}
		for di, d := range ds {
			if !dm[di] {
				c.M[d.Class][n]++
			}
		}
	}
	return c
}
