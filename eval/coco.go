package eval

import (
	"cmp"
	"math"
	"slices"

	"github.com/dettrain/dettrain/box"
)

// This file computes the COCO box metric exactly as pycocotools' COCOeval
// (PythonAPI/pycocotools/cocoeval.py, iouType "bbox") computes it: evaluate()
// (computeIoU and evaluateImg per image, category and area range),
// accumulate() and summarize(). The docs of cocoEval, evalImage and
// accumulate below follow those functions step by step.

// COCO area ranges (COCOeval Params.setDetParams: areaRng and areaRngLbl):
// an area a is in [lo, hi] when lo <= a <= hi, both ends included.
var cocoAreaRanges = [...][2]float64{
	{0, 1e5 * 1e5}, // all
	{0, 32 * 32},   // small
	{32 * 32, 96 * 96},
	{96 * 96, 1e5 * 1e5}, // large
}

// COCO area range names, in the order of cocoAreaRanges.
var cocoAreaNames = [...]string{"all", "small", "medium", "large"}

// cocoMaxDets is Params.maxDets, ascending.
var cocoMaxDets = [...]int{1, 10, 100}

// linspace is numpy.linspace(start, stop, num) with endpoint=True, value for
// value: step = (stop-start)/(num-1), y[i] = i*step + start, y[num-1] = stop.
// The explicit float64 conversion keeps Go from fusing the multiply-add,
// which would round differently from numpy.
func linspace(start, stop float64, num int) []float64 {
	y := make([]float64, num)
	step := (stop - start) / float64(num-1)
	for i := range y {
		y[i] = float64(float64(i)*step) + start
	}
	y[num-1] = stop
	return y
}

// COCO IoU thresholds .50:.05:.95 and recall points 0:.01:1, built as
// Params.setDetParams builds them:
// np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1) and
// np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1).
var (
	cocoIoUs    = linspace(0.5, 0.95, 10)
	cocoRecalls = linspace(0, 1, 101)
)

// COCOStatNames names COCOResult.Stats in pycocotools' summarize() order.
var COCOStatNames = [12]string{
	"AP@[.50:.95]", "AP@.50", "AP@.75", "AP small", "AP medium", "AP large",
	"AR@1", "AR@10", "AR@100", "AR small", "AR medium", "AR large",
}

// COCOClass is the COCO result for one class (area "all", 100 detections per
// image), as Detectron2's COCOEvaluator derives per-category APs from
// COCOeval.eval["precision"].
type COCOClass struct {
	Class int
	Name  string
	// NumGT counts the class's ground truths that are not crowd (not
	// Difficult); NumCrowd the others; NumDet the detections, all of them.
	NumGT, NumCrowd, NumDet int
	// AP is the mean of the interpolated precision over the 10 IoU
	// thresholds and 101 recall points; AP50 and AP75 over the recall
	// points at IoU .5 and .75; AR100 the mean over the IoU thresholds of
	// the recall reached with 100 detections per image. All four are -1
	// when the class has no ground truth that is not crowd.
	AP, AP50, AP75, AR100 float64
	// PR50 is the 101-point interpolated precision at IoU .5 (recall 0,
	// .01, ..., 1); nil when AP is -1.
	PR50 []float64
}

// COCOResult is the COCO evaluation of a set of detections.
type COCOResult struct {
	// Stats are COCOeval.stats: AP@[.50:.95], AP@.50, AP@.75, AP small,
	// medium and large (100 detections per image), AR@1, AR@10, AR@100, AR
	// small, medium and large (100 detections); see COCOStatNames. Each is
	// -1 when no class has ground truth in that area range.
	Stats    [12]float64
	PerClass []COCOClass
}

// AP returns Stats[0], the COCO mAP@[.50:.95].
func (r COCOResult) AP() float64 { return r.Stats[0] }

// AP50 returns Stats[1], COCO's AP at IoU .5 (101-point interpolation).
func (r COCOResult) AP50() float64 { return r.Stats[1] }

// COCO scores dets against gts with the COCO box metric, as pycocotools'
// COCOeval(cocoGt, cocoDt, "bbox") with its default parameters followed by
// evaluate(), accumulate() and summarize():
//
//   - Images are the distinct Image values of dets and gts (pycocotools
//     takes every image of the ground-truth file; an image with neither
//     ground truth nor detections changes nothing). Classes are 0..n-1,
//     n = max(len(names), 1 + the largest class index), as in VOC; a class
//     with no ground truth that is not crowd gets -1 everywhere and is left
//     out of the means.
//   - A ground truth with Difficult set is a crowd region (COCO iscrowd=1;
//     data sets read from COCO JSON load iscrowd as Difficult, and a VOC
//     difficult object is treated the same way). Its Area is the
//     annotation's area (COCO's segmentation area); 0 means the box's area.
//     A detection's area is its box's area (COCO.loadRes: w*h).
//   - IoU is box.IoU, except with a crowd ground truth, where it is
//     |d∩g| / |d| (maskApi.c bbIou with iscrowd).
//   - Per image and class the detections are sorted by score (stable: ties
//     keep input order) and only the first 100 kept; matching, per IoU
//     threshold t and area range, is evaluateImg's greedy one described at
//     evalImage. accumulate pools the images (in ascending Image order,
//     then a stable sort by score, so ties across images go to the lower
//     Image) and interpolates precision at 101 recall points.
//
// The inputs are not modified.
func COCO(dets []Detection, gts []GroundTruth, names []string) COCOResult {
	n := classCount(names, dets, gts)
	g := groupGT(gts, n)
	dtOf := make(map[imageClass][]Detection)
	imageSet := make(map[int]bool)
	res := COCOResult{PerClass: make([]COCOClass, n)}
	for c := range n {
		res.PerClass[c] = COCOClass{Class: c, Name: className(names, c), NumGT: g.numGT[c], NumCrowd: g.numDifficult[c], AP: -1, AP50: -1, AP75: -1, AR100: -1}
	}
	for k := range g.of {
		imageSet[k.image] = true
	}
	for _, d := range dets {
		if d.Class < 0 {
			continue
		}
		k := imageClass{d.Image, d.Class}
		dtOf[k] = append(dtOf[k], d)
		imageSet[d.Image] = true
		res.PerClass[d.Class].NumDet++
	}
	images := make([]int, 0, len(imageSet))
	for im := range imageSet {
		images = append(images, im)
	}
	slices.Sort(images)

	T, R, A, M := len(cocoIoUs), len(cocoRecalls), len(cocoAreaRanges), len(cocoMaxDets)
	// precision[k][a][m][t] is the 101-point curve or nil (pycocotools' -1);
	// recall[k][a][m][t] is -1 where precision is nil.
	precision := make([][][][][]float64, n)
	recall := make([][][][]float64, n)
	evals := make([]*imageEval, 0, len(images))
	for k := range n {
		precision[k] = make([][][][]float64, A)
		recall[k] = make([][][]float64, A)
		// The per-image work of evaluate(): IoUs once, then each area range.
		type perImage struct {
			dt   []Detection
			gt   []GroundTruth
			ious [][]float64 // [d][g]
		}
		var ims []perImage
		for _, im := range images {
			idx, dt := g.of[imageClass{im, k}], dtOf[imageClass{im, k}]
			if len(idx) == 0 && len(dt) == 0 {
				continue // evaluateImg returns None
			}
			gt := make([]GroundTruth, len(idx))
			for i, j := range idx {
				gt[i] = gts[j]
			}
			dt = slices.Clone(dt)
			slices.SortStableFunc(dt, byScoreDesc)
			dt = dt[:min(len(dt), cocoMaxDets[M-1])]
			ims = append(ims, perImage{dt: dt, gt: gt, ious: cocoIoUMatrix(dt, gt)})
		}
		for a := range A {
			precision[k][a] = make([][][]float64, M)
			recall[k][a] = make([][]float64, M)
			evals = evals[:0]
			for _, pi := range ims {
				evals = append(evals, evalImage(pi.dt, pi.gt, pi.ious, cocoAreaRanges[a]))
			}
			for m := range M {
				precision[k][a][m] = make([][]float64, T)
				recall[k][a][m] = make([]float64, T)
				for t := range T {
					recall[k][a][m][t] = -1
				}
				accumulate(evals, cocoMaxDets[m], precision[k][a][m], recall[k][a][m], R)
			}
		}
	}

	// summarize(): means over every (threshold, recall point, class) or
	// (threshold, class) entry that is not -1.
	meanP := func(ts []int, a, m int) float64 {
		sum, cnt := 0.0, 0
		for k := range n {
			for _, t := range ts {
				if q := precision[k][a][m][t]; q != nil {
					for _, v := range q {
						sum += v
					}
					cnt += len(q)
				}
			}
		}
		return meanOrMinus1(sum, cnt)
	}
	meanR := func(a, m int) float64 {
		sum, cnt := 0.0, 0
		for k := range n {
			for t := range T {
				if v := recall[k][a][m][t]; v > -1 {
					sum += v
					cnt++
				}
			}
		}
		return meanOrMinus1(sum, cnt)
	}
	all := make([]int, T)
	for t := range all {
		all[t] = t
	}
	t50, t75 := thresholdIndex(0.5), thresholdIndex(0.75)
	last := M - 1
	res.Stats = [12]float64{
		meanP(all, 0, last), meanP([]int{t50}, 0, last), meanP([]int{t75}, 0, last),
		meanP(all, 1, last), meanP(all, 2, last), meanP(all, 3, last),
		meanR(0, 0), meanR(0, 1), meanR(0, last),
		meanR(1, last), meanR(2, last), meanR(3, last),
	}
	for k := range n {
		q := precision[k][0][last]
		if q[0] == nil {
			continue
		}
		c := &res.PerClass[k]
		c.PR50 = slices.Clone(q[t50])
		sum := 0.0
		for t := range T {
			for _, v := range q[t] {
				sum += v
			}
		}
		c.AP = sum / float64(T*R)
		c.AP50 = mean(q[t50])
		c.AP75 = mean(q[t75])
		rs := 0.0
		for t := range T {
			rs += recall[k][0][last][t]
		}
		c.AR100 = rs / float64(T)
	}
	return res
}

// thresholdIndex finds iouThr in the thresholds as summarize() does
// (np.where(iouThr == p.iouThrs)): by equality.
func thresholdIndex(iou float64) int {
	i := slices.Index(cocoIoUs, iou)
	if i < 0 {
		panic("eval: COCO IoU threshold not on the grid")
	}
	return i
}

func meanOrMinus1(sum float64, n int) float64 {
	if n == 0 {
		return -1
	}
	return sum / float64(n)
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// cocoIoU is maskApi.c's bbIou for one pair: |d∩g| / |d∪g|, or |d∩g| / |d|
// when g is a crowd region; 0 when the boxes do not overlap. The areas are
// the boxes' areas (not the annotation's area field).
func cocoIoU(d, g box.Box, crowd bool) float64 {
	w := math.Min(d.X2, g.X2) - math.Max(d.X1, g.X1)
	if w <= 0 {
		return 0
	}
	h := math.Min(d.Y2, g.Y2) - math.Max(d.Y1, g.Y1)
	if h <= 0 {
		return 0
	}
	i := w * h
	da := (d.X2 - d.X1) * (d.Y2 - d.Y1)
	if crowd {
		return i / da
	}
	return i / (da + (g.X2-g.X1)*(g.Y2-g.Y1) - i)
}

// cocoIoUMatrix is computeIoU: ious[d][g] for the sorted, truncated dt.
func cocoIoUMatrix(dt []Detection, gt []GroundTruth) [][]float64 {
	ious := make([][]float64, len(dt))
	for i, d := range dt {
		ious[i] = make([]float64, len(gt))
		for j, g := range gt {
			ious[i][j] = cocoIoU(d.Box, g.Box, g.Difficult)
		}
	}
	return ious
}

// gtArea is the area used for the area ranges: the annotation's, or the box's.
func gtArea(g GroundTruth) float64 {
	if g.Area > 0 {
		return g.Area
	}
	return g.Box.Area()
}

// imageEval is what evaluateImg returns for one image, class and area range.
type imageEval struct {
	scores    []float64 // dtScores, sorted descending
	matched   [][]bool  // [t][d]: dtMatches != 0
	ignored   [][]bool  // [t][d]: dtIgnore
	nNotIgnGT int       // count of gtIgnore == 0
}

// evalImage is evaluateImg for one image and class (dt already sorted by
// score and cut to 100, ious[d][g] in the input order of gt) and one area
// range [lo, hi]:
//
//  1. a ground truth is ignored when it is a crowd or its area is outside
//     the range; the ground truths are reordered, stably, not-ignored first;
//  2. for each IoU threshold t and each detection in score order, the best
//     match starts at iou = min(t, 1-1e-10) and m = none; the ground truths
//     are scanned in the new order: one already matched at this t is
//     skipped unless it is a crowd; the scan stops at the first ignored one
//     once a not-ignored match was found; one with IoU < iou is skipped;
//     otherwise it becomes m and iou its IoU (so a later equal IoU wins
//     the tie). A detection matched to an ignored ground truth is ignored;
//     else it is a true positive and m is marked matched;
//  3. an unmatched detection whose area is outside the range is ignored.
func evalImage(dt []Detection, gt []GroundTruth, ious [][]float64, rng [2]float64) *imageEval {
	outside := func(a float64) bool { return a < rng[0] || a > rng[1] }
	G, D, T := len(gt), len(dt), len(cocoIoUs)
	order := make([]int, G)
	for i := range order {
		order[i] = i
	}
	ign := make([]bool, G)
	for i, g := range gt {
		ign[i] = g.Difficult || outside(gtArea(g))
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(b2i(ign[a]), b2i(ign[b])) })

	e := &imageEval{scores: make([]float64, D), matched: make([][]bool, T), ignored: make([][]bool, T)}
	for _, g := range ign {
		if !g {
			e.nNotIgnGT++
		}
	}
	for d := range dt {
		e.scores[d] = dt[d].Score
	}
	gtm := make([]bool, G)
	for t, thr := range cocoIoUs {
		clear(gtm)
		e.matched[t] = make([]bool, D)
		e.ignored[t] = make([]bool, D)
		for d := range dt {
			iou, m := min(thr, 1-1e-10), -1
			for _, g := range order {
				if gtm[g] && !gt[g].Difficult {
					continue
				}
				if m > -1 && !ign[m] && ign[g] {
					break
				}
				if ious[d][g] < iou {
					continue
				}
				iou, m = ious[d][g], g
			}
			if m == -1 {
				continue
			}
			e.ignored[t][d] = ign[m]
			e.matched[t][d] = true
			gtm[m] = true
		}
		for d := range dt {
			if !e.matched[t][d] && outside(dt[d].Box.Area()) {
				e.ignored[t][d] = true
			}
		}
	}
	return e
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// accumulate is COCOeval.accumulate for one class, area range and maxDet:
//
//   - each image contributes its first maxDet detections; they are pooled
//     in image order and sorted by score, descending, with a stable sort;
//   - npig is the number of ground truths not ignored; with none (or no
//     image at all) precision stays nil and recall -1;
//   - per IoU threshold, over the pooled detections: tp = matched and not
//     ignored, fp = not matched and not ignored (ignored ones add to
//     neither but still make a point of the curve); with cumulative sums
//     rc = tp/npig, pr = tp/(tp+fp+2^-52) (np.spacing(1));
//     recall = the last rc, 0 without detections;
//   - pr is made non-increasing from the right (pr[i-1] = max(pr[i-1],
//     pr[i])), and precision at recall point r is pr[i] for the first i
//     with rc[i] >= r (np.searchsorted(rc, r, side="left")), 0 when there
//     is none.
func accumulate(evals []*imageEval, maxDet int, precision [][]float64, recall []float64, R int) {
	if len(evals) == 0 {
		return
	}
	type ref struct {
		e   *imageEval
		d   int
		pos int // position in the concatenation, for the stable sort
	}
	var pool []ref
	npig := 0
	for _, e := range evals {
		for d := range min(maxDet, len(e.scores)) {
			pool = append(pool, ref{e, d, len(pool)})
		}
		npig += e.nNotIgnGT
	}
	if npig == 0 {
		return
	}
	slices.SortStableFunc(pool, func(a, b ref) int { return cmp.Compare(b.e.scores[b.d], a.e.scores[a.d]) })
	nd := len(pool)
	rc := make([]float64, nd)
	pr := make([]float64, nd)
	for t := range precision {
		var tp, fp float64
		for i, p := range pool {
			if !p.e.ignored[t][p.d] {
				if p.e.matched[t][p.d] {
					tp++
				} else {
					fp++
				}
			}
			rc[i] = tp / float64(npig)
			pr[i] = tp / (fp + tp + eps)
		}
		if nd > 0 {
			recall[t] = rc[nd-1]
		} else {
			recall[t] = 0
		}
		for i := nd - 1; i > 0; i-- {
			if pr[i] > pr[i-1] {
				pr[i-1] = pr[i]
			}
		}
		q := make([]float64, R)
		i := 0
		for ri, r := range cocoRecalls {
			for i < nd && rc[i] < r {
				i++
			}
			if i == nd {
				break
			}
			q[ri] = pr[i]
		}
		precision[t] = q
	}
}
