package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
)

const tol = 1e-12

func bx(x1, y1, x2, y2 float64) box.Box { return box.Box{X1: x1, Y1: y1, X2: x2, Y2: y2} }

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.17g, want %.17g", what, got, want)
	}
}

func checkClass(t *testing.T, c ClassAP, numGT, numDet int, ap07, ap float64) {
	t.Helper()
	if c.NumGT != numGT || c.NumDet != numDet {
		t.Errorf("class %d (%s): NumGT, NumDet = %d, %d, want %d, %d", c.Class, c.Name, c.NumGT, c.NumDet, numGT, numDet)
	}
	near(t, "class "+c.Name+" AP07", c.AP07, ap07)
	near(t, "class "+c.Name+" AP", c.AP, ap)
}

// oneClassCase: 3 ground truths of class 0 in two images and five detections.
//
//	gt A img0 (0,0,10,10), gt B img0 (20,20,30,30), gt C img1 (0,0,10,10)
//	d1 .9 img0 (0,0,10,10)     IoU(A)=1                  TP
//	d2 .8 img1 (50,50,60,60)   no overlap                FP
//	d3 .7 img1 (0,0,10,9)      IoU(C)=90/100=.9          TP
//	d4 .6 img0 (100,100,110,110) no overlap              FP
//	d5 .5 img0 (21,20,31,30)   IoU(B)=90/110=.818        TP
//
// The detections are given out of score order on purpose.
func oneClassCase() ([]Detection, []GroundTruth) {
	gts := []GroundTruth{
		{Image: 0, Class: 0, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 0, Box: bx(20, 20, 30, 30)},
		{Image: 1, Class: 0, Box: bx(0, 0, 10, 10)},
	}
	dets := []Detection{
		{Image: 0, Class: 0, Score: 0.6, Box: bx(100, 100, 110, 110)},
		{Image: 1, Class: 0, Score: 0.7, Box: bx(0, 0, 10, 9)},
		{Image: 0, Class: 0, Score: 0.9, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 0, Score: 0.5, Box: bx(21, 20, 31, 30)},
		{Image: 1, Class: 0, Score: 0.8, Box: bx(50, 50, 60, 60)},
	}
	return dets, gts
}

// Sorted: TP FP TP FP TP, npos = 3.
//
//	cumTP 1 1 2 2 3, cumFP 0 1 1 2 2
//	rec   1/3 1/3 2/3 2/3 1
//	prec  1   1/2 2/3 1/2 3/5
//
// 11-point: t = 0, .1, .2, .3: max prec over rec >= t = 1 (4 points);
// t = .4, .5, .6: rec >= t at points 3..5 -> max(2/3, 1/2, 3/5) = 2/3 (3 points);
// t = .7, .8, .9, 1: only rec = 1 -> 3/5 (4 points).
// AP07 = (4*1 + 3*2/3 + 4*3/5)/11 = 8.4/11.
//
// All-point: mrec = 0 1/3 1/3 2/3 2/3 1 1, mpre = 0 1 1/2 2/3 1/2 3/5 0,
// made monotone from the right: 1 1 2/3 2/3 3/5 3/5 0.
// AP = 1/3*1 + 1/3*2/3 + 1/3*3/5 = 15/45 + 10/45 + 9/45 = 34/45.
const (
	oneAP07 = 8.4 / 11
	oneAP   = 34.0 / 45
)

func TestVOCOneClassByHand(t *testing.T) {
	dets, gts := oneClassCase()
	detsCopy, gtsCopy := slices.Clone(dets), slices.Clone(gts)
	r := VOC(dets, gts, []string{"cat"}, 0.5)
	if !slices.Equal(dets, detsCopy) || !slices.Equal(gts, gtsCopy) {
		t.Error("VOC modified its inputs")
	}
	if len(r.PerClass) != 1 || r.PerClass[0].Name != "cat" || r.PerClass[0].Class != 0 {
		t.Fatalf("PerClass = %+v", r.PerClass)
	}
	if r.IoU != 0.5 {
		t.Errorf("IoU = %g", r.IoU)
	}
	checkClass(t, r.PerClass[0], 3, 5, oneAP07, oneAP)
	near(t, "MAP07", r.MAP07, oneAP07)
	near(t, "MAP", r.MAP, oneAP)
}

// Class 0 is oneClassCase. Class 1 has 2 gts; its detections:
//
//	e1 .95 img0 (0,0,10,10): on class-0 gt A, but no class-1 gt there   FP
//	e2 .4  img1 (40,40,60,60): IoU 1 with class-1 gt                     TP
//	(class-1 gt img0 (60,0,80,20) is never found)
//
// rec 0, 1/2; prec 0, 1/2.
// AP07: t = 0..0.5 (6 points) -> 1/2, t = .6..1 (5 points) -> 0: 3/11.
// All-point: mrec 0 0 1/2 1, mpre 0 0 1/2 0 -> 1/2 1/2 1/2 0: AP = 1/2*1/2 = 1/4.
// mAP07 = (8.4/11 + 3/11)/2 = 11.4/22, mAP = (34/45 + 1/4)/2 = 181/360.
func TestVOCTwoClassesMean(t *testing.T) {
	dets, gts := oneClassCase()
	gts = append(gts,
		GroundTruth{Image: 1, Class: 1, Box: bx(40, 40, 60, 60)},
		GroundTruth{Image: 0, Class: 1, Box: bx(60, 0, 80, 20)},
	)
	dets = append(dets,
		Detection{Image: 0, Class: 1, Score: 0.95, Box: bx(0, 0, 10, 10)},
		Detection{Image: 1, Class: 1, Score: 0.4, Box: bx(40, 40, 60, 60)},
	)
	r := VOC(dets, gts, []string{"cat", "dog"}, 0.5)
	if len(r.PerClass) != 2 {
		t.Fatalf("len(PerClass) = %d", len(r.PerClass))
	}
	checkClass(t, r.PerClass[0], 3, 5, oneAP07, oneAP)
	checkClass(t, r.PerClass[1], 2, 2, 3.0/11, 0.25)
	near(t, "MAP07", r.MAP07, 11.4/22)
	near(t, "MAP", r.MAP, 181.0/360)
}

// Two overlapping gts in one image: A (0,0,10,10), B (2,0,12,10), IoU(A,B) = 80/120.
//
//	d1 .9 (0,0,10,10): IoU A = 1, B = .667 -> A                      TP
//	d2 .8 (0,0,10,10): best is A again, already matched -> duplicate  FP
//	   (voc_eval does not fall back to the unmatched B, although IoU(B) > .5)
//	d3 .7 (2,0,12,10): IoU B = 1                                     TP
//
// rec 1/2 1/2 1, prec 1 1/2 2/3.
// AP07: t = 0..0.5 (6) -> 1, t = .6..1 (5) -> 2/3: (6 + 10/3)/11 = 28/33.
// All-point: mrec 0 1/2 1/2 1 1, mpre -> 1 1 2/3 2/3 0: 1/2*1 + 1/2*2/3 = 5/6.
func TestVOCDuplicateIsFalsePositive(t *testing.T) {
	gts := []GroundTruth{
		{Image: 0, Class: 0, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 0, Box: bx(2, 0, 12, 10)},
	}
	dets := []Detection{
		{Image: 0, Class: 0, Score: 0.9, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 0, Score: 0.8, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 0, Score: 0.7, Box: bx(2, 0, 12, 10)},
	}
	r := VOC(dets, gts, []string{"a"}, 0.5)
	checkClass(t, r.PerClass[0], 2, 3, 28.0/33, 5.0/6)
}

// gt A (0,0,10,10) normal, gt D (50,50,70,70) difficult, one image.
//
//	d1 .9 on D exactly  -> ignored (tp = fp = 0)
//	d2 .8 on A          -> TP
//	d3 .7 far away      -> FP
//
// npos = 1 (D not counted). cumTP 0 1 1, cumFP 0 0 1:
// rec 0 1 1, prec 0/max(0,eps)=0, 1, 1/2. AP07 = AP = 1.
// (Counting d1 as FP would give prec 0 1/2 1/3 and AP 1/2; counting D in
// npos would give rec <= 1/2 and AP 1/2.)
func TestVOCDifficultIgnored(t *testing.T) {
	gts := []GroundTruth{
		{Image: 0, Class: 0, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 0, Box: bx(50, 50, 70, 70), Difficult: true},
	}
	dets := []Detection{
		{Image: 0, Class: 0, Score: 0.9, Box: bx(50, 50, 70, 70)},
		{Image: 0, Class: 0, Score: 0.8, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 0, Score: 0.7, Box: bx(200, 200, 210, 210)},
	}
	r := VOC(dets, gts, []string{"a"}, 0.5)
	checkClass(t, r.PerClass[0], 1, 3, 1, 1)
}

// Ground truth but no detections at all: rec and prec are empty, so every
// 11-point precision is 0 and the all-point curve is mrec 0 1, mpre 0 0: AP 0.
func TestVOCNoDetections(t *testing.T) {
	_, gts := oneClassCase()
	r := VOC(nil, gts, []string{"cat", "dog"}, 0.5)
	checkClass(t, r.PerClass[0], 3, 0, 0, 0)
	// "dog" has neither ground truth nor detections: -1, and the mean is over cat only.
	checkClass(t, r.PerClass[1], 0, 0, -1, -1)
	if r.MAP07 != 0 || r.MAP != 0 {
		t.Errorf("mAP = %g, %g, want 0, 0", r.MAP07, r.MAP)
	}
}

// Class 0: one gt, found by the only detection: AP 1.
// Class 1: no gt, two detections: AP -1, NumDet 2.
// Class 2: only a difficult gt (NumGT 0) and a detection on it: AP -1.
// Class 3 has no name but a gt (missed): AP 0, named "3".
// mAP = mean over classes 0 and 3 = (1+0)/2; a wrong mean would be
// (1-1-1+0)/4 or (1+0)/4.
func TestVOCClassWithoutGroundTruth(t *testing.T) {
	gts := []GroundTruth{
		{Image: 0, Class: 0, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 2, Box: bx(20, 20, 40, 40), Difficult: true},
		{Image: 3, Class: 3, Box: bx(20, 20, 40, 40)},
		{Image: 3, Class: -1, Box: bx(20, 20, 40, 40)}, // ignored
	}
	dets := []Detection{
		{Image: 0, Class: 0, Score: 0.9, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 1, Score: 0.8, Box: bx(0, 0, 10, 10)},
		{Image: 1, Class: 1, Score: 0.7, Box: bx(0, 0, 10, 10)},
		{Image: 0, Class: 2, Score: 0.6, Box: bx(20, 20, 40, 40)},
		{Image: 0, Class: -1, Score: 0.6, Box: bx(20, 20, 40, 40)}, // ignored
	}
	r := VOC(dets, gts, []string{"a", "b", "c"}, 0.5)
	if len(r.PerClass) != 4 {
		t.Fatalf("len(PerClass) = %d, want 4", len(r.PerClass))
	}
	if r.PerClass[3].Name != "3" {
		t.Errorf("unnamed class name = %q", r.PerClass[3].Name)
	}
	checkClass(t, r.PerClass[0], 1, 1, 1, 1)
	checkClass(t, r.PerClass[1], 0, 2, -1, -1)
	checkClass(t, r.PerClass[2], 0, 1, -1, -1)
	checkClass(t, r.PerClass[3], 1, 0, 0, 0)
	near(t, "MAP07", r.MAP07, 0.5)
	near(t, "MAP", r.MAP, 0.5)

	// No class with ground truth at all: mAP 0.
	r = VOC(dets[1:2], nil, []string{"a", "b"}, 0.5)
	if r.MAP07 != 0 || r.MAP != 0 || r.PerClass[1].AP != -1 || r.PerClass[1].NumDet != 1 {
		t.Errorf("no ground truth: %+v", r)
	}
}

// gt (0,0,10,10); detection (0,0,10,5): intersection 50, union 100+50-50 =
// 100, IoU exactly 0.5, which is not > 0.5: FP, AP 0. With threshold 0.49 it is
// a TP (AP 1), and (0,0,10,6) (IoU .6) is a TP at 0.5.
func TestVOCIoUExactlyHalfIsMiss(t *testing.T) {
	gts := []GroundTruth{{Image: 0, Class: 0, Box: bx(0, 0, 10, 10)}}
	half := []Detection{{Image: 0, Class: 0, Score: 1, Box: bx(0, 0, 10, 5)}}
	if iou := box.IoU(half[0].Box, gts[0].Box); iou != 0.5 {
		t.Fatalf("test setup: IoU = %.17g, want exactly 0.5", iou)
	}
	checkClass(t, VOC(half, gts, nil, 0.5).PerClass[0], 1, 1, 0, 0)
	checkClass(t, VOC(half, gts, nil, 0.49).PerClass[0], 1, 1, 1, 1)
	six := []Detection{{Image: 0, Class: 0, Score: 1, Box: bx(0, 0, 10, 6)}}
	checkClass(t, VOC(six, gts, nil, 0.5).PerClass[0], 1, 1, 1, 1)
}

// The 11-point grid is np.arange(0., 1.1, 0.1): t_3 = 3*0.1 = 0.30000000000000004
// > 0.3 = 3/10. Ten gts in one image; detections TP TP TP FP FP FP TP:
//
//	rec  .1 .2 .3 .3 .3 .3 .4, prec 1 1 1 3/4 3/5 1/2 4/7
//
// t = 0, .1, .2 -> 1; t_3 and t_4 = .4: only rec .4 qualifies -> 4/7;
// t >= .5 -> 0. AP07 = (3 + 2*4/7)/11 = 29/77 (an exact 0.3 grid point would
// give 32/77). All-point: .1*1 + .1*1 + .1*1 + .1*4/7 = 5/14.
func TestVOC07GridIsNumpyArange(t *testing.T) {
	var gts []GroundTruth
	for i := range 10 {
		x := float64(20 * i)
		gts = append(gts, GroundTruth{Image: 0, Class: 0, Box: bx(x, 0, x+10, 10)})
	}
	var dets []Detection
	for i, s := range []float64{0.9, 0.8, 0.7} {
		dets = append(dets, Detection{Image: 0, Class: 0, Score: s, Box: gts[i].Box})
	}
	for _, s := range []float64{0.6, 0.5, 0.4} {
		dets = append(dets, Detection{Image: 0, Class: 0, Score: s, Box: bx(0, 100, 10, 110)})
	}
	dets = append(dets, Detection{Image: 0, Class: 0, Score: 0.3, Box: gts[3].Box})
	checkClass(t, VOC(dets, gts, []string{"a"}, 0.5).PerClass[0], 10, 7, 29.0/77, 5.0/14)
}

func TestNMS(t *testing.T) {
	t.Run("suppress same image and class only", func(t *testing.T) {
		dets := []Detection{
			{Image: 1, Class: 0, Score: 0.5, Box: bx(1, 0, 11, 10)},    // other image: kept
			{Image: 0, Class: 0, Score: 0.9, Box: bx(0, 0, 10, 10)},    // kept
			{Image: 0, Class: 0, Score: 0.8, Box: bx(1, 0, 11, 10)},    // IoU 90/110 with the .9: dropped
			{Image: 0, Class: 0, Score: 0.7, Box: bx(20, 20, 30, 30)},  // no overlap: kept
			{Image: 0, Class: 1, Score: 0.85, Box: bx(0, 0, 10, 10)},   // other class: kept
			{Image: 0, Class: 0, Score: 0.95, Box: bx(50, 50, 60, 60)}, // kept
		}
		in := slices.Clone(dets)
		got := NMS(dets, 0.5, 0)
		if !slices.Equal(dets, in) {
			t.Error("NMS modified its input")
		}
		want := []Detection{dets[5], dets[1], dets[4], dets[3], dets[0]} // image, then score desc
		if !slices.Equal(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})
	t.Run("greedy", func(t *testing.T) {
		// IoU(a,b) = 70/130 > .5 drops b; IoU(b,c) = 70/130 but b is gone,
		// IoU(a,c) = 40/160: c stays.
		a := Detection{Score: 0.9, Box: bx(0, 0, 10, 10)}
		b := Detection{Score: 0.8, Box: bx(3, 0, 13, 10)}
		c := Detection{Score: 0.7, Box: bx(6, 0, 16, 10)}
		if got := NMS([]Detection{c, b, a}, 0.5, 0); !slices.Equal(got, []Detection{a, c}) {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("IoU equal to threshold kept", func(t *testing.T) {
		a := Detection{Score: 0.9, Box: bx(0, 0, 10, 10)}
		b := Detection{Score: 0.8, Box: bx(0, 0, 10, 5)} // IoU exactly .5
		if got := NMS([]Detection{a, b}, 0.5, 0); len(got) != 2 {
			t.Errorf("got %+v", got)
		}
		if got := NMS([]Detection{a, b}, 0.4, 0); !slices.Equal(got, []Detection{a}) {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("maxPerImage", func(t *testing.T) {
		var dets []Detection
		for i, s := range []float64{0.1, 0.5, 0.3, 0.9, 0.7} {
			x := float64(20 * i)
			dets = append(dets, Detection{Image: 0, Class: i % 2, Score: s, Box: bx(x, 0, x+10, 10)})
		}
		dets = append(dets,
			Detection{Image: 1, Class: 0, Score: 0.2, Box: bx(0, 0, 10, 10)},
			Detection{Image: 1, Class: 0, Score: 0.05, Box: bx(50, 0, 60, 10)},
		)
		want := []Detection{dets[3], dets[4], dets[1], dets[5], dets[6]}
		if got := NMS(dets, 0.5, 3); !slices.Equal(got, want) {
			t.Errorf("max 3: got %+v\nwant %+v", got, want)
		}
		if got := NMS(dets, 0.5, 0); len(got) != 7 {
			t.Errorf("no limit: %d kept, want 7", len(got))
		}
		if got := NMS(dets, 0.5, -1); len(got) != 7 {
			t.Errorf("negative limit: %d kept, want 7", len(got))
		}
	})
	t.Run("stable ties", func(t *testing.T) {
		// All scores equal. q overlaps p (IoU 100/110) and comes after it in
		// the input, so p suppresses q; with maxPerImage 2 the first two
		// survivors in input order (p, r) remain.
		p := Detection{Score: 0.6, Box: bx(0, 0, 10, 10)}
		q := Detection{Score: 0.6, Box: bx(0, 0, 10, 11)}
		r := Detection{Score: 0.6, Box: bx(50, 50, 60, 60)}
		s := Detection{Score: 0.6, Box: bx(80, 80, 90, 90)}
		if got := NMS([]Detection{p, q, r, s}, 0.5, 2); !slices.Equal(got, []Detection{p, r}) {
			t.Errorf("got %+v", got)
		}
		if got := NMS([]Detection{q, p, s, r}, 0.5, 0); !slices.Equal(got, []Detection{q, s, r}) {
			t.Errorf("reversed: got %+v", got)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if got := NMS(nil, 0.5, 10); len(got) != 0 {
			t.Errorf("got %+v", got)
		}
	})
}

func TestJSONAndTable(t *testing.T) {
	dets, gts := oneClassCase()
	r := VOC(dets, gts, []string{"cat", "unicorn"}, 0.5)
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iou", "map50_voc07", "map50_voc", "per_class"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s lacks %q", raw, k)
		}
	}
	if len(m) != 4 {
		t.Errorf("JSON has %d top-level keys: %s", len(m), raw)
	}
	if m["iou"] != 0.5 || math.Abs(m["map50_voc"].(float64)-oneAP) > tol || math.Abs(m["map50_voc07"].(float64)-oneAP07) > tol {
		t.Errorf("JSON values: %s", raw)
	}
	pc := m["per_class"].([]any)
	if len(pc) != 2 {
		t.Fatalf("per_class: %s", raw)
	}
	c0, c1 := pc[0].(map[string]any), pc[1].(map[string]any)
	want0 := map[string]any{"class": 0.0, "name": "cat", "num_gt": 3.0, "num_det": 5.0, "ap50_voc07": c0["ap50_voc07"], "ap50_voc": c0["ap50_voc"]}
	if len(c0) != len(want0) {
		t.Errorf("per_class[0] keys: %v", c0)
	}
	for k, v := range want0 {
		if c0[k] != v {
			t.Errorf("per_class[0][%q] = %v, want %v", k, c0[k], v)
		}
	}
	if math.Abs(c0["ap50_voc"].(float64)-oneAP) > tol || math.Abs(c0["ap50_voc07"].(float64)-oneAP07) > tol {
		t.Errorf("per_class[0] APs: %v", c0)
	}
	if c1["name"] != "unicorn" || c1["ap50_voc"] != -1.0 || c1["ap50_voc07"] != -1.0 || c1["class"] != 1.0 {
		t.Errorf("per_class[1]: %v", c1)
	}

	// Exact encoding of a small hand-built result; also through a pointer.
	small := Result{IoU: 0.5, MAP07: 0.25, MAP: 0.5, PerClass: []ClassAP{{Class: 0, Name: "a", NumGT: 2, NumDet: 3, AP07: 0.25, AP: 0.5}}}
	wantJSON := `{"iou":0.5,"map50_voc07":0.25,"map50_voc":0.5,"per_class":[{"class":0,"name":"a","num_gt":2,"num_det":3,"ap50_voc07":0.25,"ap50_voc":0.5}]}`
	for _, v := range []any{small, &small} {
		if b, err := json.Marshal(v); err != nil || string(b) != wantJSON {
			t.Errorf("Marshal(%T) = %s, %v\nwant %s", v, b, err, wantJSON)
		}
	}
	if b, _ := json.Marshal(Result{IoU: 0.5}); !bytes.Contains(b, []byte(`"per_class":[]`)) {
		t.Errorf("empty result: %s", b)
	}

	var buf bytes.Buffer
	if err := r.Table(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 5 { // title, header, cat, unicorn, mAP
		t.Fatalf("table has %d lines:\n%s", len(lines), out)
	}
	// 34/45 = 0.75556, 8.4/11 = 0.76364
	if f := strings.Fields(lines[2]); !slices.Equal(f, []string{"cat", "3", "5", "0.7636", "0.7556"}) {
		t.Errorf("cat row %q", lines[2])
	}
	if f := strings.Fields(lines[3]); !slices.Equal(f, []string{"unicorn", "0", "0", "-", "-"}) {
		t.Errorf("unicorn row %q", lines[3])
	}
	if f := strings.Fields(lines[4]); !slices.Equal(f, []string{"mAP", "3", "5", "0.7636", "0.7556"}) {
		t.Errorf("mAP row %q", lines[4])
	}
	if err := r.Table(failWriter{}); err == nil {
		t.Error("Table hid a write error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errFail }

var errFail = errors.New("write failed")

// ---- Reference: a slow, literal transcription of py-faster-rcnn's voc_eval.py ----

// refVocAP transcribes voc_ap(rec, prec, use_07_metric) line by line.
func refVocAP(rec, prec []float64, use07 bool) float64 {
	if use07 {
		// 11 point metric
		ap := 0.0
		// for t in np.arange(0., 1.1, 0.1): len = ceil((stop-start)/step),
		// values start + i*step.
		start, stop, step := 0.0, 1.1, 0.1
		n := int(math.Ceil((stop - start) / step))
		for i := 0; i < n; i++ {
			t := start + float64(i)*step
			// if np.sum(rec >= t) == 0: p = 0 else: p = np.max(prec[rec >= t])
			sum := 0
			var sel []float64
			for k := range rec {
				if rec[k] >= t {
					sum++
					sel = append(sel, prec[k])
				}
			}
			var p float64
			if sum == 0 {
				p = 0
			} else {
				p = sel[0]
				for _, v := range sel[1:] {
					p = math.Max(p, v)
				}
			}
			ap = ap + p/11.
		}
		return ap
	}
	// mrec = np.concatenate(([0.], rec, [1.])); mpre = np.concatenate(([0.], prec, [0.]))
	mrec := append(append([]float64{0}, rec...), 1)
	mpre := append(append([]float64{0}, prec...), 0)
	// for i in range(mpre.size - 1, 0, -1): mpre[i-1] = np.maximum(mpre[i-1], mpre[i])
	for i := len(mpre) - 1; i > 0; i-- {
		mpre[i-1] = math.Max(mpre[i-1], mpre[i])
	}
	// i = np.where(mrec[1:] != mrec[:-1])[0]
	var idx []int
	for k := 0; k < len(mrec)-1; k++ {
		if mrec[k+1] != mrec[k] {
			idx = append(idx, k)
		}
	}
	// ap = np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
	terms := make([]float64, len(idx))
	for j, i := range idx {
		terms[j] = (mrec[i+1] - mrec[i]) * mpre[i+1]
	}
	ap := 0.0
	for _, v := range terms {
		ap += v
	}
	return ap
}

// refVocEval transcribes voc_eval's matching for one class, on VOC 1-based
// integer corners with the devkit's +1 widths, then calls refVocAP. It
// returns npos, nd and the two APs (NaN when npos = 0).
func refVocEval(dets []Detection, gts []GroundTruth, cls int, ovthresh float64) (npos, nd int, ap07, ap float64) {
	type rec struct {
		bbox      [][4]float64
		difficult []bool
		det       []bool
	}
	classRecs := map[int]*rec{}
	for _, g := range gts {
		if g.Class != cls {
			continue
		}
		r := classRecs[g.Image]
		if r == nil {
			r = &rec{}
			classRecs[g.Image] = r
		}
		x1, y1, x2, y2 := g.Box.VOC()
		r.bbox = append(r.bbox, [4]float64{x1, y1, x2, y2})
		r.difficult = append(r.difficult, g.Difficult)
		r.det = append(r.det, false)
		if !g.Difficult {
			npos++ // npos = npos + sum(~difficult)
		}
	}
	var mine []Detection
	for _, d := range dets {
		if d.Class == cls {
			mine = append(mine, d)
		}
	}
	// sorted_ind = argsort(-confidence), stable: insertion sort.
	for i := 1; i < len(mine); i++ {
		for j := i; j > 0 && -mine[j].Score < -mine[j-1].Score; j-- {
			mine[j], mine[j-1] = mine[j-1], mine[j]
		}
	}
	nd = len(mine)
	tp := make([]float64, nd)
	fp := make([]float64, nd)
	for d := range nd {
		R := classRecs[mine[d].Image]
		x1, y1, x2, y2 := mine[d].Box.VOC()
		bb := [4]float64{x1, y1, x2, y2}
		ovmax := math.Inf(-1)
		jmax := -1
		if R != nil && len(R.bbox) > 0 {
			overlaps := make([]float64, len(R.bbox))
			for k, g := range R.bbox {
				ixmin := math.Max(g[0], bb[0])
				iymin := math.Max(g[1], bb[1])
				ixmax := math.Min(g[2], bb[2])
				iymax := math.Min(g[3], bb[3])
				iw := math.Max(ixmax-ixmin+1., 0.)
				ih := math.Max(iymax-iymin+1., 0.)
				inters := iw * ih
				uni := ((bb[2]-bb[0]+1.)*(bb[3]-bb[1]+1.) + (g[2]-g[0]+1.)*(g[3]-g[1]+1.) - inters)
				overlaps[k] = inters / uni
			}
			ovmax = overlaps[0]
			jmax = 0
			for k, o := range overlaps {
				if o > ovmax { // np.argmax: first maximum
					ovmax, jmax = o, k
				}
			}
		}
		if ovmax > ovthresh {
			if !R.difficult[jmax] {
				if !R.det[jmax] {
					tp[d] = 1.
					R.det[jmax] = true
				} else {
					fp[d] = 1.
				}
			}
		} else {
			fp[d] = 1.
		}
	}
	for i := 1; i < nd; i++ { // cumsum
		fp[i] += fp[i-1]
		tp[i] += tp[i-1]
	}
	if npos == 0 {
		return npos, nd, math.NaN(), math.NaN()
	}
	recall := make([]float64, nd)
	prec := make([]float64, nd)
	for i := range nd {
		recall[i] = tp[i] / float64(npos)
		prec[i] = tp[i] / math.Max(tp[i]+fp[i], 2.220446049250313e-16)
	}
	return npos, nd, refVocAP(recall, prec, true), refVocAP(recall, prec, false)
}

// randomCase: 12 images, 3 classes, integer VOC boxes, ~15% difficult;
// 200 detections, most jittered copies of a ground truth (sometimes with the
// wrong class), the rest random; scores on a 0.01 grid so that ties occur.
func randomCase(rng *rand.Rand) ([]Detection, []GroundTruth) {
	var gts []GroundTruth
	for img := range 12 {
		for range rng.IntN(5) {
			x, y := float64(1+rng.IntN(80)), float64(1+rng.IntN(80))
			w, h := float64(10+rng.IntN(30)), float64(10+rng.IntN(30))
			gts = append(gts, GroundTruth{Image: img, Class: rng.IntN(3),
				Box: box.FromVOC(x, y, x+w-1, y+h-1), Difficult: rng.IntN(100) < 15})
		}
	}
	var dets []Detection
	for range 200 {
		var d Detection
		d.Score = float64(rng.IntN(100)) / 100
		if rng.IntN(100) < 65 && len(gts) > 0 {
			g := gts[rng.IntN(len(gts))]
			j := func() float64 { return float64(rng.IntN(9) - 4) }
			d.Image, d.Class = g.Image, g.Class
			if rng.IntN(10) == 0 {
				d.Class = rng.IntN(3)
			}
			d.Box = bx(g.Box.X1+j(), g.Box.Y1+j(), g.Box.X2+j(), g.Box.Y2+j())
		} else {
			x, y := float64(rng.IntN(90)), float64(rng.IntN(90))
			d.Image, d.Class = rng.IntN(12), rng.IntN(3)
			d.Box = bx(x, y, x+float64(5+rng.IntN(40)), y+float64(5+rng.IntN(40)))
		}
		dets = append(dets, d)
	}
	return dets, gts
}

func TestVOCMatchesReferenceTranscription(t *testing.T) {
	// np.arange(0., 1.1, 0.1) has 11 elements, the 4th above 0.3.
	start, stop, step := 0.0, 1.1, 0.1
	if n := math.Ceil((stop - start) / step); n != 11 || 3*step <= 0.3 {
		t.Fatalf("float64 assumptions: n = %g, 3*0.1 = %.17g", n, 3*step)
	}
	names := []string{"a", "b", "c"}
	interesting := 0
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 42))
		dets, gts := randomCase(rng)
		if len(dets) != 200 {
			t.Fatalf("%d detections", len(dets))
		}
		r := VOC(dets, gts, names, 0.5)
		for c := range 3 {
			npos, nd, ap07, ap := refVocEval(dets, gts, c, 0.5)
			got := r.PerClass[c]
			if got.NumGT != npos || got.NumDet != nd {
				t.Errorf("seed %d class %d: NumGT, NumDet = %d, %d, reference %d, %d", seed, c, got.NumGT, got.NumDet, npos, nd)
			}
			if npos == 0 {
				if got.AP != -1 || got.AP07 != -1 {
					t.Errorf("seed %d class %d: no gt but AP %g, %g", seed, c, got.AP07, got.AP)
				}
				continue
			}
			if math.Abs(got.AP07-ap07) > tol || math.Abs(got.AP-ap) > tol {
				t.Errorf("seed %d class %d: AP07, AP = %.17g, %.17g, reference %.17g, %.17g", seed, c, got.AP07, got.AP, ap07, ap)
			}
			if ap > 0.05 && ap < 0.95 && ap07 != ap {
				interesting++
			}
		}
	}
	if interesting < 5 {
		t.Errorf("only %d non-trivial class results: the random case does not exercise the metric", interesting)
	}
}

// The two AP helpers against the transcription directly, on random PR curves
// of 200 points with repeated recall values (as produced by FPs), including
// recalls that land exactly on grid points.
func TestAPHelpersMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 50 {
		npos := 1 + rng.IntN(60)
		rec := make([]float64, 200)
		prec := make([]float64, 200)
		var tp, fp float64
		for i := range rec {
			if tp < float64(npos) && rng.IntN(3) > 0 {
				tp++
			} else if rng.IntN(4) > 0 {
				fp++
			} // else: ignored (difficult) detection
			rec[i] = tp / float64(npos)
			prec[i] = tp / math.Max(tp+fp, 2.220446049250313e-16)
		}
		n := rng.IntN(201) // also shorter curves, down to empty
		rec, prec = rec[:n], prec[:n]
		for _, use07 := range []bool{true, false} {
			want := refVocAP(rec, prec, use07)
			got := apAllPoint(rec, prec)
			if use07 {
				got = apVOC07(rec, prec)
			}
			if math.Abs(got-want) > tol {
				t.Errorf("trial %d (npos %d, n %d) use07=%v: %.17g, reference %.17g", trial, npos, n, use07, got, want)
			}
		}
	}
}
