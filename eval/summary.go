package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Metrics names the metrics that eval.metric may choose, in the order the
// config documents them.
var Metrics = []string{"voc07", "voc", "coco"}

// Summary is every metric of one evaluation: VOC at IoU .5 (11-point and
// all-point) and COCO, with Metric naming the one that ranks checkpoints.
type Summary struct {
	Metric string // "voc07", "voc" or "coco"
	VOC    Result
	COCO   COCOResult
}

// Evaluate computes VOC(dets, gts, names, 0.5) and COCO(dets, gts, names).
// metric is the primary one (see Summary.Primary).
func Evaluate(dets []Detection, gts []GroundTruth, names []string, metric string) Summary {
	return Summary{Metric: metric, VOC: VOC(dets, gts, names, 0.5), COCO: COCO(dets, gts, names)}
}

// Primary returns the metric named by Metric: the VOC07 11-point mAP@.5
// ("voc07"), the all-point mAP@.5 ("voc", also for an unknown name) or
// COCO's AP@[.50:.95] ("coco"; 0 when it is -1, no ground truth).
func (s Summary) Primary() float64 {
	switch s.Metric {
	case "voc07":
		return s.VOC.MAP07
	case "coco":
		return max(s.COCO.AP(), 0)
	}
	return s.VOC.MAP
}

// PrimaryName describes Primary for people, e.g. "mAP@0.5 (VOC all-point)".
func (s Summary) PrimaryName() string {
	switch s.Metric {
	case "voc07":
		return "mAP@0.5 (VOC07 11-point)"
	case "coco":
		return "mAP@[.5:.95] (COCO)"
	}
	return "mAP@0.5 (VOC all-point)"
}

type summaryClassJSON struct {
	classJSON
	NumCrowd  int     `json:"num_crowd"`
	APCOCO    float64 `json:"ap_coco"`
	AP50COCO  float64 `json:"ap50_coco"`
	AP75COCO  float64 `json:"ap75_coco"`
	AR100COCO float64 `json:"ar100_coco"`
}

type summaryJSON struct {
	Metric    string  `json:"metric"`
	MAP       float64 `json:"map"`
	IoU       float64 `json:"iou"`
	MAP07     float64 `json:"map50_voc07"`
	MAPVOC    float64 `json:"map50_voc"`
	COCOAP    float64 `json:"coco_ap"`
	COCOAP50  float64 `json:"coco_ap50"`
	COCOAP75  float64 `json:"coco_ap75"`
	COCOAPS   float64 `json:"coco_ap_small"`
	COCOAPM   float64 `json:"coco_ap_medium"`
	COCOAPL   float64 `json:"coco_ap_large"`
	COCOAR1   float64 `json:"coco_ar1"`
	COCOAR10  float64 `json:"coco_ar10"`
	COCOAR100 float64 `json:"coco_ar100"`
	COCOARS   float64 `json:"coco_ar_small"`
	COCOARM   float64 `json:"coco_ar_medium"`
	COCOARL   float64 `json:"coco_ar_large"`
	// COCOStats is pycocotools' COCOeval.stats, in its order.
	COCOStats [12]float64        `json:"coco_stats"`
	PerClass  []summaryClassJSON `json:"per_class"`
}

// MarshalJSON encodes s with the fields of Result's JSON (iou, map50_voc07,
// map50_voc, per_class with ap50_voc07 and ap50_voc) and more:
//
//	"metric": Metric, "map": Primary(),
//	"coco_ap", "coco_ap50", "coco_ap75", "coco_ap_small", "coco_ap_medium",
//	"coco_ap_large", "coco_ar1", "coco_ar10", "coco_ar100", "coco_ar_small",
//	"coco_ar_medium", "coco_ar_large": COCO.Stats by name,
//	"coco_stats": COCO.Stats in pycocotools' order,
//	per class: "num_crowd", "ap_coco", "ap50_coco", "ap75_coco", "ar100_coco".
//
// -1 stays -1 (no ground truth).
func (s Summary) MarshalJSON() ([]byte, error) {
	st := s.COCO.Stats
	out := summaryJSON{
		Metric: s.Metric, MAP: s.Primary(), IoU: s.VOC.IoU, MAP07: s.VOC.MAP07, MAPVOC: s.VOC.MAP,
		COCOAP: st[0], COCOAP50: st[1], COCOAP75: st[2], COCOAPS: st[3], COCOAPM: st[4], COCOAPL: st[5],
		COCOAR1: st[6], COCOAR10: st[7], COCOAR100: st[8], COCOARS: st[9], COCOARM: st[10], COCOARL: st[11],
		COCOStats: st, PerClass: []summaryClassJSON{},
	}
	for i, c := range s.VOC.PerClass {
		cj := summaryClassJSON{classJSON: classJSON{Class: c.Class, Name: c.Name, NumGT: c.NumGT, NumDet: c.NumDet, AP50V07: c.AP07, AP50VOC: c.AP},
			APCOCO: -1, AP50COCO: -1, AP75COCO: -1, AR100COCO: -1}
		if i < len(s.COCO.PerClass) {
			cc := s.COCO.PerClass[i]
			cj.NumCrowd, cj.APCOCO, cj.AP50COCO, cj.AP75COCO, cj.AR100COCO = cc.NumCrowd, cc.AP, cc.AP50, cc.AP75, cc.AR100
		}
		out.PerClass = append(out.PerClass, cj)
	}
	return json.Marshal(out)
}

// cocoSummaryLines are summarize()'s printed lines, one per stat.
var cocoSummaryLines = [12]string{
	" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
	" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
	" Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
	" Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
	" Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
	" Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
	" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
	" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
	" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
	" Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
	" Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
	" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
}

// Table writes the VOC table (Result.Table) with the COCO AP and AP50 of
// each class added, then the twelve COCO numbers as pycocotools'
// summarize() prints them, then the primary metric.
func (s Summary) Table(w io.Writer) error {
	nw := len("mAP")
	totGT, totDet := 0, 0
	for _, c := range s.VOC.PerClass {
		nw = max(nw, len(c.Name))
		totGT += c.NumGT
		totDet += c.NumDet
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-*s %7s %7s %8s %8s %8s %8s\n", nw, "class", "#gt", "#det", "AP07@.5", "AP@.5", "COCO AP", "AP50")
	for i, c := range s.VOC.PerClass {
		ca, c50 := -1.0, -1.0
		if i < len(s.COCO.PerClass) {
			ca, c50 = s.COCO.PerClass[i].AP, s.COCO.PerClass[i].AP50
		}
		fmt.Fprintf(&b, "%-*s %7d %7d %8s %8s %8s %8s\n", nw, c.Name, c.NumGT, c.NumDet, apString(c.AP07), apString(c.AP), apString(ca), apString(c50))
	}
	fmt.Fprintf(&b, "%-*s %7d %7d %8.4f %8.4f %8s %8s\n\n", nw, "mAP", totGT, totDet, s.VOC.MAP07, s.VOC.MAP, apString(s.COCO.Stats[0]), apString(s.COCO.Stats[1]))
	for i, l := range cocoSummaryLines {
		fmt.Fprintf(&b, "%s = %.3f\n", l, s.COCO.Stats[i])
	}
	fmt.Fprintf(&b, "\n%s: %.4f\n", s.PrimaryName(), s.Primary())
	_, err := w.Write(b.Bytes())
	return err
}

// Markdown writes a summary for people: the headline numbers, the
// per-class table, the COCO numbers and, when given, links to the charts
// (file names relative to the Markdown file) and the confusion matrix.
func (s Summary) Markdown(w io.Writer, title string, charts []string, conf *Confusion) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", title)
	fmt.Fprintf(&b, "**%s: %.4f**\n\n", s.PrimaryName(), s.Primary())
	fmt.Fprintf(&b, "| metric | value |\n|---|---:|\n")
	fmt.Fprintf(&b, "| mAP@0.5, VOC07 11-point | %.4f |\n| mAP@0.5, VOC all-point | %.4f |\n", s.VOC.MAP07, s.VOC.MAP)
	for i, n := range COCOStatNames {
		fmt.Fprintf(&b, "| COCO %s | %s |\n", n, apString(s.COCO.Stats[i]))
	}
	fmt.Fprintf(&b, "\n## Per class\n\n| class | #gt | #crowd/difficult | #det | AP07@.5 | AP@.5 | COCO AP | COCO AP50 | COCO AP75 | COCO AR100 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, c := range s.VOC.PerClass {
		cc := COCOClass{AP: -1, AP50: -1, AP75: -1, AR100: -1}
		if i < len(s.COCO.PerClass) {
			cc = s.COCO.PerClass[i]
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %s | %s | %s | %s |\n", mdEscape(c.Name), c.NumGT, cc.NumCrowd, c.NumDet,
			apString(c.AP07), apString(c.AP), apString(cc.AP), apString(cc.AP50), apString(cc.AP75), apString(cc.AR100))
	}
	b.WriteString("\n\"-\": no ground truth (left out of the means). VOC: a match needs IoU > 0.5; COCO: IoU >= each threshold of .50:.05:.95, up to 100 detections per image, as pycocotools.\n")
	if conf != nil {
		fmt.Fprintf(&b, "\n## Confusion matrix\n\nDetections scoring > %g matched to ground truths at IoU > %g, whatever their class; rows: predicted class, columns: true class.\n\n| predicted \\ true |", conf.Conf, conf.IoU)
		for _, n := range conf.Names {
			fmt.Fprintf(&b, " %s |", mdEscape(n))
		}
		b.WriteString("\n|---|")
		for range conf.Names {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		for i, row := range conf.M {
			fmt.Fprintf(&b, "| %s |", mdEscape(conf.Names[i]))
			for _, v := range row {
				fmt.Fprintf(&b, " %d |", v)
			}
			b.WriteString("\n")
		}
	}
	if len(charts) > 0 {
		b.WriteString("\n## Charts\n\n")
		for _, c := range charts {
			fmt.Fprintf(&b, "![%s](%s)\n\n", c, c)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func mdEscape(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("|"), []byte(`\|`)))
}

// Scores are the headline numbers of a Summary's JSON, as written by
// MarshalJSON: what a reader of eval.json (ablate, scripts) needs.
type Scores struct {
	MAP50VOC   float64 `json:"map50_voc"`   // VOC all-point mAP@0.5
	MAP50VOC07 float64 `json:"map50_voc07"` // VOC07 11-point mAP@0.5
	COCOAP     float64 `json:"coco_ap"`     // COCO AP@[.50:.95]
}

// ReadScores reads the Scores of an eval.json file.
func ReadScores(path string) (Scores, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scores{}, err
	}
	var s Scores
	if err := json.Unmarshal(b, &s); err != nil {
		return Scores{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
