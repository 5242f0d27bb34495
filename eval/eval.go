package eval

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/dettrain/dettrain/box"
)

// Detection is one scored box for one image.
type Detection struct {
	Image int     // image index (any integer identifying the image)
	Class int     // 0-based class index
	Score float64 // confidence; higher ranks first
	Box   box.Box
}

// GroundTruth is one annotated object.
type GroundTruth struct {
	Image int // image index, the same numbering as Detection.Image
	Class int // 0-based class index
	Box   box.Box
	// Difficult is VOC's <difficult>1</difficult> or COCO's iscrowd=1: a
	// region where detections are neither rewarded nor penalised (see VOC
	// and COCO for how each metric treats it).
	Difficult bool
	// Area is the annotation's area, used by COCO's small/medium/large
	// ranges (COCO JSON's "area", the segmentation's area on COCO itself);
	// 0 means the box's area.
	Area float64
}

// ClassAP is the VOC result for one class.
type ClassAP struct {
	Class  int
	Name   string
	NumGT  int // ground-truth objects of the class that are not difficult (voc_eval's npos)
	NumDet int // detections of the class, all of them
	// AP07 is the VOC2007 11-point interpolated AP and AP the all-point
	// (VOC2010+) AP; both are -1 when NumGT is 0.
	AP07, AP float64
}

// Result is the VOC evaluation of a set of detections.
type Result struct {
	IoU      float64 // the IoU threshold (a match needs IoU > IoU)
	PerClass []ClassAP
	// MAP07 and MAP are the means of AP07 and AP over the classes whose AP is
	// not -1 (classes with non-difficult ground truth); 0 when there is none.
	MAP07, MAP float64
}

// eps is np.finfo(np.float64).eps, voc_eval's guard against 0/0 precision.
const eps = 0x1p-52

// byScoreDesc orders detections by score, highest first; used with a stable
// sort so that equal scores keep their input order. NaN scores sort last.
func byScoreDesc(a, b Detection) int { return cmp.Compare(b.Score, a.Score) }

// VOC scores dets against gts at the IoU threshold iou (0.5 for PASCAL VOC),
// one class at a time, exactly as voc_eval.py's voc_eval followed by voc_ap:
//
//   - The class's detections are sorted by score, descending (a stable sort:
//     ties keep their input order).
//   - In that order each detection d is compared with every ground truth g of
//     the same image and class (difficult and already matched ones included);
//     ovmax = max IoU(d, g), jmax its first arg-max in input order. If
//     ovmax > iou (strictly, so IoU exactly 0.5 is a miss): if g[jmax] is
//     difficult, d is neither TP nor FP; else if g[jmax] is not yet matched,
//     d is a TP and g[jmax] becomes matched; else d is a FP (a duplicate).
//     Otherwise (ovmax <= iou, or no ground truth) d is a FP.
//   - With tp, fp the cumulative sums over the sorted detections and npos the
//     number of non-difficult ground truths of the class:
//     recall[i] = tp[i]/npos, precision[i] = tp[i]/max(tp[i]+fp[i], eps)
//     (eps = 2^-52, np.finfo(np.float64).eps; ignored detections still make
//     a point of the curve, as in voc_eval).
//   - AP07 is the VOC2007 11-point AP and AP the all-point VOC2010+ AP of
//     that curve; see the two helpers apVOC07 and apAllPoint for the
//     formulas. A class with npos = 0 gets AP07 = AP = -1 and is left out of
//     the means; a class with ground truth but no detections gets 0.
//
// One difference from the MATLAB devkit is inherited from voc_eval.py on
// purpose: VOCevaldet.m accepts ovmax >= minoverlap, voc_eval.py (and this
// function) needs ovmax > iou.
//
// PerClass has one entry per class index 0..n-1, n = max(len(names), 1 +
// the largest class index in dets and gts); a class without a name is named
// by its index. Detections and ground truths with a negative class are
// ignored. The inputs are not modified.
func VOC(dets []Detection, gts []GroundTruth, names []string, iou float64) Result {
	n := classCount(names, dets, gts)
	g := groupGT(gts, n)
	npos := g.numGT
	byClass := make([][]Detection, n)
	for _, d := range dets {
		if d.Class >= 0 {
			byClass[d.Class] = append(byClass[d.Class], d)
		}
	}

	matched := make([]bool, len(gts))
	res := Result{IoU: iou, PerClass: make([]ClassAP, n)}
	var sum07, sum float64
	var counted int
	for c := range n {
		cd := byClass[c] // a private copy, safe to sort
		slices.SortStableFunc(cd, byScoreDesc)
		rec := make([]float64, len(cd))
		prec := make([]float64, len(cd))
		var tp, fp float64
		for i, d := range cd {
			ovmax, jmax := math.Inf(-1), -1
			for _, j := range g.of[imageClass{d.Image, c}] {
				if ov := box.IoU(d.Box, gts[j].Box); ov > ovmax {
					ovmax, jmax = ov, j
				}
			}
			if ovmax > iou {
				switch {
				case gts[jmax].Difficult:
					// neither TP nor FP
				case !matched[jmax]:
					tp++
					matched[jmax] = true
				default:
					fp++
				}
			} else {
				fp++
			}
			rec[i] = tp / float64(npos[c])
			prec[i] = tp / math.Max(tp+fp, eps)
		}

		ca := ClassAP{Class: c, Name: className(names, c), NumGT: npos[c], NumDet: len(cd), AP07: -1, AP: -1}
		if npos[c] > 0 {
			ca.AP07 = apVOC07(rec, prec)
			ca.AP = apAllPoint(rec, prec)
			sum07 += ca.AP07
			sum += ca.AP
			counted++
		}
		res.PerClass[c] = ca
	}
	if counted > 0 {
		res.MAP07 = sum07 / float64(counted)
		res.MAP = sum / float64(counted)
	}
	return res
}

// imageClass identifies the objects of one class in one image.
type imageClass struct{ image, class int }

// classCount is the number of classes VOC and COCO report: max(len(names),
// 1 + the largest class index in dets and gts).
func classCount(names []string, dets []Detection, gts []GroundTruth) int {
	n := len(names)
	for _, d := range dets {
		n = max(n, d.Class+1)
	}
	for _, g := range gts {
		n = max(n, g.Class+1)
	}
	return n
}

// gtGroups is the ground truth as VOC and COCO match against it: grouped
// by image and class, and counted per class.
type gtGroups struct {
	of map[imageClass][]int // indices into gts, in input order
	// numGT counts each class's ground truths that are not Difficult
	// (voc_eval's npos; COCO's not crowd), numDifficult the others.
	numGT, numDifficult []int
}

// groupGT groups gts by image and class for n classes (n > every class
// index); ground truths with a negative class are left out.
func groupGT(gts []GroundTruth, n int) gtGroups {
	g := gtGroups{of: make(map[imageClass][]int), numGT: make([]int, n), numDifficult: make([]int, n)}
	for j, t := range gts {
		if t.Class < 0 {
			continue
		}
		k := imageClass{t.Image, t.Class}
		g.of[k] = append(g.of[k], j)
		if t.Difficult {
			g.numDifficult[t.Class]++
		} else {
			g.numGT[t.Class]++
		}
	}
	return g
}

func className(names []string, c int) string {
	if c < len(names) {
		return names[c]
	}
	return strconv.Itoa(c)
}

// apVOC07 is the VOC2007 11-point interpolated AP (voc_ap with
// use_07_metric=True, VOCevaldet.m of the VOC2007 devkit):
//
//	AP07 = sum over t in {0, 0.1, ..., 1} of p(t)/11,
//	p(t) = max{ prec[i] : rec[i] >= t }, or 0 when no rec[i] >= t.
//
// The grid is np.arange(0., 1.1, 0.1), i.e. t = i*0.1 in float64, so
// t_3 = 0.30000000000000004, t_6 = 0.6000000000000001 and
// t_7 = 0.7000000000000001: a recall of exactly 0.3, 0.6 or 0.7 does not
// reach that point, as in voc_eval.py.
func apVOC07(rec, prec []float64) float64 {
	ap := 0.0
	for i := 0; i <= 10; i++ {
		t := float64(i) * 0.1
		p, found := 0.0, false
		for k, r := range rec {
			if r >= t && (!found || prec[k] > p) {
				p, found = prec[k], true
			}
		}
		ap += p / 11
	}
	return ap
}

// apAllPoint is the all-point interpolated AP of VOC2010 and later (voc_ap
// with use_07_metric=False, VOCap.m):
//
//	mrec = [0, rec..., 1], mpre = [0, prec..., 0]
//	mpre[i-1] = max(mpre[i-1], mpre[i]) for i from the end down to 1
//	AP = sum over i with mrec[i+1] != mrec[i] of (mrec[i+1]-mrec[i]) * mpre[i+1]
//
// summed left to right (numpy's pairwise np.sum may differ in the last bits).
func apAllPoint(rec, prec []float64) float64 {
	mrec := make([]float64, 0, len(rec)+2)
	mrec = append(append(append(mrec, 0), rec...), 1)
	mpre := make([]float64, 0, len(prec)+2)
	mpre = append(append(append(mpre, 0), prec...), 0)
	for i := len(mpre) - 1; i > 0; i-- {
		mpre[i-1] = max(mpre[i-1], mpre[i])
	}
	ap := 0.0
	for i := 0; i+1 < len(mrec); i++ {
		if mrec[i+1] != mrec[i] {
			ap += (mrec[i+1] - mrec[i]) * mpre[i+1]
		}
	}
	return ap
}
