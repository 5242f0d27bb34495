package eval

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/dettrain/dettrain/box"
)

// The expected numbers in the hand-worked tests below follow pycocotools'
// COCOeval (cocoeval.py) step by step in the comments; the random tests
// compare COCO with refCOCOeval, a literal transcription of COCOeval's
// _prepare, computeIoU, evaluateImg, accumulate and summarize.

// xywh is a box from COCO's [x, y, w, h].
func xywh(x, y, w, h float64) box.Box { return box.FromXYWH(x, y, w, h) }

func nearStat(t *testing.T, r COCOResult, i int, want float64) {
	t.Helper()
	if math.Abs(r.Stats[i]-want) > tol {
		t.Errorf("%s = %.17g, want %.17g", COCOStatNames[i], r.Stats[i], want)
	}
}

// The recall points are np.linspace(0, 1, 101): i*0.01, with r[33] = 0.33
// below 1/3 and r[67] = 0.67 above 2/3, which the hand counts rely on; the
// IoU thresholds contain 0.5 and 0.75 exactly (summarize finds them with ==).
func TestCOCOGrids(t *testing.T) {
	if len(cocoRecalls) != 101 || cocoRecalls[1] != 0.01 || cocoRecalls[100] != 1 || cocoRecalls[33] >= 1.0/3 || cocoRecalls[67] <= 2.0/3 {
		t.Errorf("recall grid %v", cocoRecalls)
	}
	if len(cocoIoUs) != 10 || cocoIoUs[0] != 0.5 || cocoIoUs[5] != 0.75 || cocoIoUs[9] != 0.95 {
		t.Errorf("IoU grid %v", cocoIoUs)
	}
}

// One class, 3 ground truths of 10x10 (area 100: small) in two images, five
// detections, every match exact (IoU 1, so all 10 thresholds agree):
//
//	img0: d1 .9 on g1 TP, d4 .6 far FP, d5 .5 on g2 TP
//	img1: d2 .8 far FP, d3 .7 on g3 TP
//
// Pooled by score: TP FP TP FP TP; npig = 3.
// rc = 1/3 1/3 2/3 2/3 1, pr = 1 1/2 2/3 1/2 3/5, non-increasing from the
// right: 1 2/3 2/3 3/5 3/5.
// Recall points: r <= 1/3 (r = 0..0.33, 34 points) -> index 0 -> 1;
// 1/3 < r <= 2/3 (0.34..0.66, 33 points) -> index 2 -> 2/3;
// r > 2/3 (0.67..1, 34 points) -> index 4 -> 3/5.
// AP = (34*1 + 33*2/3 + 34*3/5)/101 = 76.4/101 at every threshold, so
// AP = AP50 = AP75 = AP small = 76.4/101; medium and large have no ground
// truth: -1. AR@100 = 1; AR@1 keeps d1 (img0) and d2 (img1): 1/3; AR@10 = 1.
func TestCOCOOneClassByHand(t *testing.T) {
	gts := []GroundTruth{
		{Image: 0, Class: 0, Box: xywh(0, 0, 10, 10)},
		{Image: 0, Class: 0, Box: xywh(20, 20, 10, 10)},
		{Image: 1, Class: 0, Box: xywh(0, 0, 10, 10)},
	}
	dets := []Detection{
		{Image: 0, Class: 0, Score: 0.6, Box: xywh(100, 100, 10, 10)},
		{Image: 1, Class: 0, Score: 0.7, Box: xywh(0, 0, 10, 10)},
		{Image: 0, Class: 0, Score: 0.9, Box: xywh(0, 0, 10, 10)},
		{Image: 0, Class: 0, Score: 0.5, Box: xywh(20, 20, 10, 10)},
		{Image: 1, Class: 0, Score: 0.8, Box: xywh(50, 50, 10, 10)},
	}
	r := COCO(dets, gts, []string{"cat"})
	ap := 76.4 / 101
	for i, want := range []float64{ap, ap, ap, ap, -1, -1, 1.0 / 3, 1, 1, 1, -1, -1} {
		nearStat(t, r, i, want)
	}
	c := r.PerClass[0]
	if c.NumGT != 3 || c.NumDet != 5 || c.NumCrowd != 0 || len(c.PR50) != 101 {
		t.Errorf("class: %+v", c)
	}
	near(t, "class AP", c.AP, ap)
	near(t, "class AP50", c.AP50, ap)
	near(t, "class AR100", c.AR100, 1)
	near(t, "PR50[34]", c.PR50[34], 2.0/3)
	near(t, "PR50[100]", c.PR50[100], 3.0/5)
}

// A crowd region C (20,0)-(60,40) (area 1600) and a normal gt A, one image:
//
//	d1 .9 (20,0,10,10): inside C; IoU with a crowd is |d∩C|/|d| = 100/100 = 1
//	   -> matched to C, which is ignored -> d1 ignored
//	d2 .8 (25,5,10,10): also inside C: 1 -> C again (crowds match many) -> ignored
//	d3 .7 on A exactly -> TP
//	d4 .6 far away -> FP
//
// npig = 1 (C is ignored). tp 0 0 1 1, fp 0 0 0 1: rc 0 0 1 1,
// pr 0 0 1 1/2 -> non-increasing from the right: 1 1 1 1/2. Every recall
// point finds pr 1: AP = 1 at every threshold (crowd IoUs stay 1), AR 1.
// Had C been a normal gt, d1 would match nothing (IoU 100/1600) and AP
// would fall to about 1/3.
func TestCOCOCrowd(t *testing.T) {
	gts := []GroundTruth{
		{Image: 0, Class: 0, Box: xywh(0, 0, 10, 10)},
		{Image: 0, Class: 0, Box: xywh(20, 0, 40, 40), Difficult: true},
	}
	dets := []Detection{
		{Image: 0, Class: 0, Score: 0.9, Box: xywh(20, 0, 10, 10)},
		{Image: 0, Class: 0, Score: 0.8, Box: xywh(25, 5, 10, 10)},
		{Image: 0, Class: 0, Score: 0.7, Box: xywh(0, 0, 10, 10)},
		{Image: 0, Class: 0, Score: 0.6, Box: xywh(200, 200, 10, 10)},
	}
	r := COCO(dets, gts, []string{"person"})
	nearStat(t, r, 0, 1)
	nearStat(t, r, 8, 1)
	if c := r.PerClass[0]; c.NumGT != 1 || c.NumCrowd != 1 {
		t.Errorf("counts %+v", c)
	}
	if iou := cocoIoU(xywh(25, 5, 10, 10), xywh(20, 0, 40, 40), true); iou != 1 {
		t.Errorf("crowd IoU = %g, want 1", iou)
	}
	if iou := cocoIoU(xywh(25, 5, 10, 10), xywh(20, 0, 40, 40), false); math.Abs(iou-100.0/1600) > tol {
		t.Errorf("IoU = %g, want 1/16", iou)
	}
}

// Area ranges, one image: s (0,0,10,10) area 100 (small), L (100,100,200,200)
// area 40000 (large).
//
//	d1 .9 (400,400,200,200) area 40000, matches nothing
//	d2 .8 exactly on s
//	d3 .7 exactly on L
//
// all:    FP TP TP, npig 2: rc 0 1/2 1, pr 0 1/2 2/3 -> 2/3 2/3 2/3: AP 2/3.
// small:  L ignored (area > 32²); d3 matches the ignored L -> ignored;
//
//	d1 unmatched and area > 32² -> ignored; d2 TP; npig 1: AP 1.
//
// medium: both gts ignored, npig 0: -1 (AP and AR).
// large:  s ignored: d2 matches it -> ignored; d1 unmatched, area in range -> FP;
//
//	d3 TP: FP ign TP, rc 0 0 1, pr 0 0 1/2 -> 1/2: AP 1/2.
//
// AR@1 keeps only d1: 0. AR@10 = AR@100 = 1, AR small 1, AR large 1.
// AP@[.5:.95] over one class = 2/3.
func TestCOCOAreaRanges(t *testing.T) {
	gts := []GroundTruth{
		{Image: 0, Class: 0, Box: xywh(0, 0, 10, 10)},
		{Image: 0, Class: 0, Box: xywh(100, 100, 200, 200)},
	}
	dets := []Detection{
		{Image: 0, Class: 0, Score: 0.9, Box: xywh(400, 400, 200, 200)},
		{Image: 0, Class: 0, Score: 0.8, Box: xywh(0, 0, 10, 10)},
		{Image: 0, Class: 0, Score: 0.7, Box: xywh(100, 100, 200, 200)},
	}
	r := COCO(dets, gts, nil)
	for i, want := range []float64{2.0 / 3, 2.0 / 3, 2.0 / 3, 1, -1, 0.5, 0, 1, 1, 1, -1, 1} {
		nearStat(t, r, i, want)
	}
	// The annotation's area wins over the box's: declaring L's area 900
	// (a thin segment inside a large box) makes it small, so that in
	// "small" d3 is a TP too: FP(d1 ignored, large) TP TP -> AP small 1,
	// and "large" has no gt left: -1.
	gts[1].Area = 900
	r = COCO(dets, gts, nil)
	nearStat(t, r, 3, 1)
	nearStat(t, r, 5, -1)
}

// An area of exactly 32² = 1024 is both small and medium (both range ends
// are inclusive: ignore when area < lo or area > hi).
func TestCOCOAreaBoundary(t *testing.T) {
	gts := []GroundTruth{{Image: 0, Class: 0, Box: xywh(0, 0, 32, 32)}}
	dets := []Detection{{Image: 0, Class: 0, Score: 0.5, Box: xywh(0, 0, 32, 32)}}
	r := COCO(dets, gts, nil)
	for i, want := range []float64{1, 1, 1, 1, 1, -1} {
		nearStat(t, r, i, want)
	}
}

// Category 1 has only detections, category 2 only a crowd: both -1 and left
// out of the means; category 0 is found: every mean is 1, not 1/3.
func TestCOCOEmptyCategories(t *testing.T) {
	gts := []GroundTruth{
		{Image: 0, Class: 0, Box: xywh(0, 0, 50, 50)},
		{Image: 0, Class: 2, Box: xywh(100, 0, 50, 50), Difficult: true},
	}
	dets := []Detection{
		{Image: 0, Class: 0, Score: 0.5, Box: xywh(0, 0, 50, 50)},
		{Image: 0, Class: 1, Score: 0.9, Box: xywh(0, 0, 50, 50)},
		{Image: 0, Class: 2, Score: 0.9, Box: xywh(100, 0, 50, 50)},
	}
	r := COCO(dets, gts, []string{"a", "b", "c", "d"})
	nearStat(t, r, 0, 1)
	nearStat(t, r, 8, 1)
	for k := 1; k < 4; k++ {
		if c := r.PerClass[k]; c.AP != -1 || c.AP50 != -1 || c.AR100 != -1 || c.PR50 != nil {
			t.Errorf("class %d: %+v, want -1", k, c)
		}
	}
	if r.PerClass[3].Name != "d" || r.PerClass[1].NumDet != 1 {
		t.Errorf("per class %+v", r.PerClass)
	}
	// No ground truth at all: every stat is -1.
	r = COCO(dets, nil, nil)
	for i := range r.Stats {
		nearStat(t, r, i, -1)
	}
}

// More than maxDets (100) detections in one image: computeIoU and
// evaluateImg keep the 100 best. One gt; n false positives scored above
// the exact detection.
//
//	n = 99: the TP is the 100th: rc 0 (x99) then 1; pr 0.. then 1/100 ->
//	        1/100 everywhere: AP = 1/100, AR@100 = 1, AR@10 = 0.
//	n = 100: the TP is the 101st and is cut: AP 0, AR@100 0.
//
// (VOC has no cut: it scores the n = 100 case 1/101.)
func TestCOCOMaxDets(t *testing.T) {
	for _, n := range []int{99, 100} {
		gts := []GroundTruth{{Image: 0, Class: 0, Box: xywh(0, 0, 10, 10)}}
		var dets []Detection
		for i := range n {
			dets = append(dets, Detection{Image: 0, Class: 0, Score: 0.9 - float64(i)*1e-3, Box: xywh(20+float64(i), 20, 10, 10)})
		}
		dets = append(dets, Detection{Image: 0, Class: 0, Score: 0.1, Box: xywh(0, 0, 10, 10)})
		r := COCO(dets, gts, nil)
		wantAP, wantAR := 0.01, 1.0
		if n == 100 {
			wantAP, wantAR = 0, 0
		}
		nearStat(t, r, 0, wantAP)
		nearStat(t, r, 8, wantAR)
		nearStat(t, r, 7, 0)
		if n == 100 {
			near(t, "VOC AP", VOC(dets, gts, nil, 0.5).MAP, 1.0/101)
		}
	}
}

// Equal scores: accumulate concatenates the images in ascending id order
// and sorts stably, and within an image evaluateImg's stable sort keeps the
// input order. Images 3 and 7 have one gt each; all three detections score
// .5 and the input lists image 7's first:
//
//	image 7: f (FP, far away) then p7 (TP), image 3: p3 (TP)
//
// Pooled: p3 TP, f FP, p7 TP: rc 1/2 1/2 1, pr 1 1/2 2/3 -> 1 2/3 2/3.
// r <= .5 (51 points) -> 1, r > .5 (50 points) -> 2/3:
// AP = (51 + 50*2/3)/101 = 253/303.
// (Image 7 first would give FP TP TP -> 2/3 everywhere; p7 before f would
// give TP TP FP -> 1.)
func TestCOCOScoreTies(t *testing.T) {
	gts := []GroundTruth{
		{Image: 7, Class: 0, Box: xywh(0, 0, 10, 10)},
		{Image: 3, Class: 0, Box: xywh(0, 0, 10, 10)},
	}
	dets := []Detection{
		{Image: 7, Class: 0, Score: 0.5, Box: xywh(50, 50, 10, 10)},
		{Image: 7, Class: 0, Score: 0.5, Box: xywh(0, 0, 10, 10)},
		{Image: 3, Class: 0, Score: 0.5, Box: xywh(0, 0, 10, 10)},
	}
	nearStat(t, COCO(dets, gts, nil), 0, 253.0/303)
}

// IoU exactly at a threshold is a match (evaluateImg skips only
// ious < iou), unlike VOC's strict >: gt (0,0,10,10), det (0,0,10,5),
// IoU 50/100 = .5. Matched at t = .5 only: AP50 = 1, AP75 = 0,
// AP = (1 + 9*0)/10 = 0.1; VOC's AP@.5 is 0.
func TestCOCOIoUAtThresholdMatches(t *testing.T) {
	gts := []GroundTruth{{Image: 0, Class: 0, Box: xywh(0, 0, 10, 10)}}
	dets := []Detection{{Image: 0, Class: 0, Score: 0.5, Box: xywh(0, 0, 10, 5)}}
	r := COCO(dets, gts, nil)
	nearStat(t, r, 0, 0.1)
	nearStat(t, r, 1, 1)
	nearStat(t, r, 2, 0)
	near(t, "VOC", VOC(dets, gts, nil, 0.5).MAP, 0)
}

// ---- reference transcription of pycocotools' COCOeval ----

type refAnn struct {
	id, imageID, categoryID int
	bbox                    [4]float64 // x, y, w, h
	area, score             float64
	iscrowd                 int
	ignore                  int
	_ignore                 int
}

// refCOCOeval runs COCOeval(gt, dt, "bbox").evaluate(); accumulate();
// summarize() as cocoeval.py does, on annotations built as COCO() and
// loadRes() build them, and returns stats and the precision array
// [T][R][K][A][M]. imgIDs and catIDs are the ground-truth file's ids.
func refCOCOeval(gtAnns, dtAnns []*refAnn, imgIDs, catIDs []int) ([12]float64, [][][][][]float64) {
	// Params.setDetParams
	iouThrs := linspace(0.5, 0.95, int(math.Round((0.95-0.5)/0.05))+1)
	recThrs := linspace(0.0, 1.00, int(math.Round((1.00-0.0)/0.01))+1)
	maxDets := []int{1, 10, 100}
	areaRng := [][2]float64{{0 * 0, 1e5 * 1e5}, {0 * 0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e5 * 1e5}}
	// evaluate(): p.imgIds = np.unique(p.imgIds); p.catIds = np.unique(...)
	sort.Ints(imgIDs)
	sort.Ints(catIDs)
	// _prepare
	type ic struct{ img, cat int }
	gtsOf := map[ic][]*refAnn{}
	dtsOf := map[ic][]*refAnn{}
	for _, gt := range gtAnns {
		gt.ignore = gt.iscrowd // gt['ignore'] = 'iscrowd' in gt and gt['iscrowd']
		gtsOf[ic{gt.imageID, gt.categoryID}] = append(gtsOf[ic{gt.imageID, gt.categoryID}], gt)
	}
	for _, dt := range dtAnns {
		dtsOf[ic{dt.imageID, dt.categoryID}] = append(dtsOf[ic{dt.imageID, dt.categoryID}], dt)
	}
	// argsortMerge is np.argsort(v, kind='mergesort'): stable.
	argsortMerge := func(v []float64) []int {
		idx := make([]int, len(v))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
		return idx
	}
	negScores := func(ds []*refAnn) []float64 {
		v := make([]float64, len(ds))
		for i, d := range ds {
			v[i] = -d.score
		}
		return v
	}
	// bbIou from maskApi.c; o[d][g]
	bbIou := func(dt, gt [][4]float64, iscrowd []int) [][]float64 {
		o := make([][]float64, len(dt))
		for d := range dt {
			o[d] = make([]float64, len(gt))
		}
		for g := range gt {
			G := gt[g]
			ga := G[2] * G[3]
			crowd := iscrowd[g] != 0
			for d := range dt {
				D := dt[d]
				da := D[2] * D[3]
				o[d][g] = 0
				w := math.Min(D[2]+D[0], G[2]+G[0]) - math.Max(D[0], G[0])
				if w <= 0 {
					continue
				}
				h := math.Min(D[3]+D[1], G[3]+G[1]) - math.Max(D[1], G[1])
				if h <= 0 {
					continue
				}
				i := w * h
				u := da + ga - i
				if crowd {
					u = da
				}
				o[d][g] = i / u
			}
		}
		return o
	}
	computeIoU := func(imgID, catID int) [][]float64 {
		gt, dt := gtsOf[ic{imgID, catID}], dtsOf[ic{imgID, catID}]
		if len(gt) == 0 && len(dt) == 0 {
			return nil
		}
		inds := argsortMerge(negScores(dt))
		sdt := make([]*refAnn, len(inds))
		for i, j := range inds {
			sdt[i] = dt[j]
		}
		if len(sdt) > maxDets[len(maxDets)-1] {
			sdt = sdt[:maxDets[len(maxDets)-1]]
		}
		var g, d [][4]float64
		var iscrowd []int
		for _, o := range gt {
			g = append(g, o.bbox)
			iscrowd = append(iscrowd, o.iscrowd)
		}
		for _, o := range sdt {
			d = append(d, o.bbox)
		}
		if len(d) == 0 || len(g) == 0 {
			return [][]float64{} // maskUtils.iou of an empty list: []
		}
		return bbIou(d, g, iscrowd)
	}
	ious := map[ic][][]float64{}
	for _, imgID := range imgIDs {
		for _, catID := range catIDs {
			ious[ic{imgID, catID}] = computeIoU(imgID, catID)
		}
	}
	type evalImg struct {
		dtScores  []float64
		dtMatches [][]int // [T][D] gt ids
		dtIgnore  [][]bool
		gtIgnore  []int
	}
	evaluateImg := func(imgID, catID int, aRng [2]float64, maxDet int) *evalImg {
		gt, dt := gtsOf[ic{imgID, catID}], dtsOf[ic{imgID, catID}]
		if len(gt) == 0 && len(dt) == 0 {
			return nil
		}
		for _, g := range gt {
			if g.ignore != 0 || g.area < aRng[0] || g.area > aRng[1] {
				g._ignore = 1
			} else {
				g._ignore = 0
			}
		}
		ig := make([]float64, len(gt))
		for i, g := range gt {
			ig[i] = float64(g._ignore)
		}
		gtind := argsortMerge(ig)
		sgt := make([]*refAnn, len(gt))
		for i, j := range gtind {
			sgt[i] = gt[j]
		}
		dtind := argsortMerge(negScores(dt))
		var sdt []*refAnn
		for _, j := range dtind[:min(maxDet, len(dtind))] {
			sdt = append(sdt, dt[j])
		}
		iscrowd := make([]int, len(sgt))
		for i, o := range sgt {
			iscrowd[i] = o.iscrowd
		}
		// ious = self.ious[imgId, catId][:, gtind]
		full := ious[ic{imgID, catID}]
		var io [][]float64
		if len(full) > 0 {
			io = make([][]float64, len(full))
			for d := range full {
				io[d] = make([]float64, len(gtind))
				for k, j := range gtind {
					io[d][k] = full[d][j]
				}
			}
		}
		T, G, D := len(iouThrs), len(sgt), len(sdt)
		gtm := make([][]int, T)
		dtm := make([][]int, T)
		dtIg := make([][]bool, T)
		for t := range T {
			gtm[t] = make([]int, G)
			dtm[t] = make([]int, D)
			dtIg[t] = make([]bool, D)
		}
		gtIg := make([]int, G)
		for i, g := range sgt {
			gtIg[i] = g._ignore
		}
		if len(io) != 0 {
			for tind, t := range iouThrs {
				for dind, d := range sdt {
					iou := math.Min(t, 1-1e-10)
					m := -1
					for gind := range sgt {
						if gtm[tind][gind] > 0 && iscrowd[gind] == 0 {
							continue
						}
						if m > -1 && gtIg[m] == 0 && gtIg[gind] == 1 {
							break
						}
						if io[dind][gind] < iou {
							continue
						}
						iou = io[dind][gind]
						m = gind
					}
					if m == -1 {
						continue
					}
					dtIg[tind][dind] = gtIg[m] != 0
					dtm[tind][dind] = sgt[m].id
					gtm[tind][m] = d.id
				}
			}
		}
		for tind := range T {
			for dind, d := range sdt {
				a := d.area < aRng[0] || d.area > aRng[1]
				dtIg[tind][dind] = dtIg[tind][dind] || (dtm[tind][dind] == 0 && a)
			}
		}
		e := &evalImg{dtMatches: dtm, dtIgnore: dtIg, gtIgnore: gtIg}
		for _, d := range sdt {
			e.dtScores = append(e.dtScores, d.score)
		}
		return e
	}
	// evalImgs = [evaluateImg(imgId, catId, areaRng, maxDet) for catId for areaRng for imgId]
	var evalImgs []*evalImg
	for _, catID := range catIDs {
		for _, aRng := range areaRng {
			for _, imgID := range imgIDs {
				evalImgs = append(evalImgs, evaluateImg(imgID, catID, aRng, maxDets[len(maxDets)-1]))
			}
		}
	}
	// accumulate
	T, R, K, A := len(iouThrs), len(recThrs), len(catIDs), len(areaRng)
	precision := make([][][][][]float64, T)
	recall := make([][][][]float64, T)
	for t := range T {
		precision[t] = make([][][][]float64, R)
		for r := range R {
			precision[t][r] = make([][][]float64, K)
			for k := range K {
				precision[t][r][k] = make([][]float64, A)
				for a := range A {
					precision[t][r][k][a] = []float64{-1, -1, -1}
				}
			}
		}
		recall[t] = make([][][]float64, K)
		for k := range K {
			recall[t][k] = make([][]float64, A)
			for a := range A {
				recall[t][k][a] = []float64{-1, -1, -1}
			}
		}
	}
	I0, A0 := len(imgIDs), len(areaRng)
	for k := range K {
		Nk := k * A0 * I0
		for a := range A {
			Na := a * I0
			for m, maxDet := range maxDets {
				var E []*evalImg
				for i := range I0 {
					if e := evalImgs[Nk+Na+i]; e != nil {
						E = append(E, e)
					}
				}
				if len(E) == 0 {
					continue
				}
				var dtScores []float64
				for _, e := range E {
					dtScores = append(dtScores, e.dtScores[:min(maxDet, len(e.dtScores))]...)
				}
				neg := make([]float64, len(dtScores))
				for i, s := range dtScores {
					neg[i] = -s
				}
				inds := argsortMerge(neg)
				dtm := make([][]int, T)
				dtIg := make([][]bool, T)
				for t := range T {
					var rowM []int
					var rowI []bool
					for _, e := range E {
						n := min(maxDet, len(e.dtScores))
						rowM = append(rowM, e.dtMatches[t][:n]...)
						rowI = append(rowI, e.dtIgnore[t][:n]...)
					}
					dtm[t] = make([]int, len(inds))
					dtIg[t] = make([]bool, len(inds))
					for i, j := range inds {
						dtm[t][i] = rowM[j]
						dtIg[t][i] = rowI[j]
					}
				}
				npig := 0
				for _, e := range E {
					for _, g := range e.gtIgnore {
						if g == 0 {
							npig++
						}
					}
				}
				if npig == 0 {
					continue
				}
				for t := range T {
					nd := len(inds)
					tp := make([]float64, nd)
					fp := make([]float64, nd)
					var ct, cf float64
					for i := range nd {
						if dtm[t][i] != 0 && !dtIg[t][i] {
							ct++
						}
						if dtm[t][i] == 0 && !dtIg[t][i] {
							cf++
						}
						tp[i], fp[i] = ct, cf
					}
					rc := make([]float64, nd)
					pr := make([]float64, nd)
					for i := range nd {
						rc[i] = tp[i] / float64(npig)
						pr[i] = tp[i] / (fp[i] + tp[i] + 0x1p-52)
					}
					q := make([]float64, R)
					if nd > 0 {
						recall[t][k][a][m] = rc[nd-1]
					} else {
						recall[t][k][a][m] = 0
					}
					for i := nd - 1; i > 0; i-- {
						if pr[i] > pr[i-1] {
							pr[i-1] = pr[i]
						}
					}
					// inds = np.searchsorted(rc, p.recThrs, side='left')
					// try: q[ri] = pr[pi] except: pass
					for ri, r := range recThrs {
						pi := sort.Search(nd, func(i int) bool { return rc[i] >= r })
						if pi >= nd {
							break
						}
						q[ri] = pr[pi]
					}
					for r := range R {
						precision[t][r][k][a][m] = q[r]
					}
				}
			}
		}
	}
	// summarize
	summarize := func(ap bool, iouThr float64, aind, mind int) float64 {
		var vals []float64
		for t := range T {
			if iouThr >= 0 && iouThrs[t] != iouThr {
				continue
			}
			for k := range K {
				if ap {
					for r := range R {
						vals = append(vals, precision[t][r][k][aind][mind])
					}
				} else {
					vals = append(vals, recall[t][k][aind][mind])
				}
			}
		}
		sum, n := 0.0, 0
		for _, v := range vals {
			if v > -1 {
				sum += v
				n++
			}
		}
		if n == 0 {
			return -1
		}
		return sum / float64(n)
	}
	stats := [12]float64{
		summarize(true, -1, 0, 2), summarize(true, 0.5, 0, 2), summarize(true, 0.75, 0, 2),
		summarize(true, -1, 1, 2), summarize(true, -1, 2, 2), summarize(true, -1, 3, 2),
		summarize(false, -1, 0, 0), summarize(false, -1, 0, 1), summarize(false, -1, 0, 2),
		summarize(false, -1, 1, 2), summarize(false, -1, 2, 2), summarize(false, -1, 3, 2),
	}
	return stats, precision
}

// randomCOCOCase: images with up to 12 ground truths of 3 categories and
// sizes from 4 to 160 pixels (all three area ranges), ~10% crowds, some
// annotation areas differing from the box area; detections mostly jittered
// copies of ground truths on a 0.5-pixel grid, scores on a 0.02 grid (ties),
// and sometimes more than 100 detections in an image.
func randomCOCOCase(rng *rand.Rand, nImg int) ([]Detection, []GroundTruth) {
	var gts []GroundTruth
	for img := range nImg {
		for range rng.IntN(13) {
			w, h := float64(4+rng.IntN(157)), float64(4+rng.IntN(157))
			x, y := float64(rng.IntN(300)), float64(rng.IntN(300))
			g := GroundTruth{Image: img, Class: rng.IntN(3), Box: xywh(x, y, w, h), Difficult: rng.IntN(10) == 0}
			if rng.IntN(4) == 0 {
				g.Area = math.Round(w * h * (0.3 + 0.7*rng.Float64()))
			}
			gts = append(gts, g)
		}
	}
	var dets []Detection
	for img := range nImg {
		n := rng.IntN(30)
		if rng.IntN(8) == 0 {
			n = 95 + rng.IntN(20)
		}
		var mine []GroundTruth
		for _, g := range gts {
			if g.Image == img {
				mine = append(mine, g)
			}
		}
		for range n {
			d := Detection{Image: img, Score: float64(rng.IntN(50)) / 50}
			if len(mine) > 0 && rng.IntN(100) < 70 {
				g := mine[rng.IntN(len(mine))]
				j := func(s float64) float64 { return math.Round(s*(rng.Float64()-0.5)*0.6*2) / 2 }
				x, y, w, h := g.Box.X1, g.Box.Y1, g.Box.W(), g.Box.H()
				d.Class = g.Class
				if rng.IntN(10) == 0 {
					d.Class = rng.IntN(3)
				}
				d.Box = xywh(x+j(w), y+j(h), math.Max(1, w+j(w)), math.Max(1, h+j(h)))
			} else {
				d.Class = rng.IntN(3)
				d.Box = xywh(float64(rng.IntN(400))/2, float64(rng.IntN(400))/2, float64(2+rng.IntN(150)), float64(2+rng.IntN(150)))
			}
			dets = append(dets, d)
		}
	}
	return dets, gts
}

// toRef builds the annotations as COCO() (gt: ids from 1, area from the
// file, here Area or the box area) and loadRes() (dt: id = index+1,
// area = w*h, iscrowd 0) would.
func toRef(dets []Detection, gts []GroundTruth) (gt, dt []*refAnn) {
	for i, g := range gts {
		xy := g.Box.XYWH()
		a := g.Area
		if a == 0 {
			a = xy[2] * xy[3]
		}
		crowd := 0
		if g.Difficult {
			crowd = 1
		}
		gt = append(gt, &refAnn{id: i + 1, imageID: g.Image, categoryID: g.Class, bbox: xy, area: a, iscrowd: crowd})
	}
	for i, d := range dets {
		xy := d.Box.XYWH()
		dt = append(dt, &refAnn{id: i + 1, imageID: d.Image, categoryID: d.Class, bbox: xy, area: xy[2] * xy[3], score: d.Score})
	}
	return gt, dt
}

func TestCOCOMatchesReferenceTranscription(t *testing.T) {
	names := []string{"a", "b", "c"}
	interesting := 0
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 99))
		nImg := 1 + rng.IntN(15)
		dets, gts := randomCOCOCase(rng, nImg)
		got := COCO(dets, gts, names)
		gtA, dtA := toRef(dets, gts)
		imgs := make([]int, nImg)
		for i := range imgs {
			imgs[i] = i
		}
		want, prec := refCOCOeval(gtA, dtA, imgs, []int{0, 1, 2})
		for i := range want {
			if math.Abs(got.Stats[i]-want[i]) > tol {
				t.Errorf("seed %d (%d images, %d dets, %d gts): %s = %.17g, reference %.17g",
					seed, nImg, len(dets), len(gts), COCOStatNames[i], got.Stats[i], want[i])
			}
			if want[i] > 0.05 && want[i] < 0.95 {
				interesting++
			}
		}
		// Per-class AP as Detectron2 takes it: precision[:, :, k, 0, -1], mean of > -1.
		for k := range 3 {
			sum, n := 0.0, 0
			for tt := range prec {
				for r := range prec[tt] {
					if v := prec[tt][r][k][0][2]; v > -1 {
						sum += v
						n++
					}
				}
			}
			wantAP := -1.0
			if n > 0 {
				wantAP = sum / float64(n)
			}
			if math.Abs(got.PerClass[k].AP-wantAP) > tol {
				t.Errorf("seed %d class %d: AP %.17g, reference %.17g", seed, k, got.PerClass[k].AP, wantAP)
			}
		}
	}
	if interesting < 60 {
		t.Errorf("only %d stats strictly between 0.05 and 0.95: the random cases do not exercise the metric", interesting)
	}
}

// The hand-worked cases through the reference too, so that the reference
// itself is checked against the hand numbers.
func TestCOCOReferenceAgreesOnHandCases(t *testing.T) {
	gts := []GroundTruth{
		{Image: 7, Class: 0, Box: xywh(0, 0, 10, 10)},
		{Image: 3, Class: 0, Box: xywh(0, 0, 10, 10)},
	}
	dets := []Detection{
		{Image: 7, Class: 0, Score: 0.5, Box: xywh(50, 50, 10, 10)},
		{Image: 7, Class: 0, Score: 0.5, Box: xywh(0, 0, 10, 10)},
		{Image: 3, Class: 0, Score: 0.5, Box: xywh(0, 0, 10, 10)},
	}
	g, d := toRef(dets, gts)
	stats, _ := refCOCOeval(g, d, []int{7, 3}, []int{0})
	if math.Abs(stats[0]-253.0/303) > tol {
		t.Errorf("reference AP on the ties case = %.17g, want 253/303", stats[0])
	}
}

// BenchmarkCOCO: 500 images of the random case (about 3000 ground truths
// and 10000 detections, 3 classes).
func BenchmarkCOCO(b *testing.B) {
	dets, gts := randomCOCOCase(rand.New(rand.NewPCG(1, 2)), 500)
	b.ReportMetric(float64(len(dets)), "dets")
	for b.Loop() {
		COCO(dets, gts, nil)
	}
}
