package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Table writes a human-readable table to w: a title line with the IoU
// threshold, a header, one row per class (name, #gt = non-difficult ground
// truths, #det = detections, AP07 = VOC2007 11-point AP, AP = all-point AP;
// "-" where the AP is -1 because the class has no ground truth), then the mAP
// row (totals of #gt and #det, MAP07, MAP). APs are printed with 4 decimals.
func (r Result) Table(w io.Writer) error {
	nw := len("mAP")
	totGT, totDet := 0, 0
	for _, c := range r.PerClass {
		nw = max(nw, len(c.Name))
		totGT += c.NumGT
		totDet += c.NumDet
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "PASCAL VOC AP, match IoU > %g\n", r.IoU)
	fmt.Fprintf(&b, "%-*s %7s %7s %8s %8s\n", nw, "class", "#gt", "#det", "AP07", "AP")
	for _, c := range r.PerClass {
		fmt.Fprintf(&b, "%-*s %7d %7d %8s %8s\n", nw, c.Name, c.NumGT, c.NumDet, apString(c.AP07), apString(c.AP))
	}
	fmt.Fprintf(&b, "%-*s %7d %7d %8.4f %8.4f\n", nw, "mAP", totGT, totDet, r.MAP07, r.MAP)
	_, err := w.Write(b.Bytes())
	return err
}

func apString(ap float64) string {
	if ap == -1 {
		return "-"
	}
	return fmt.Sprintf("%.4f", ap)
}

type classJSON struct {
	Class   int     `json:"class"`
	Name    string  `json:"name"`
	NumGT   int     `json:"num_gt"`
	NumDet  int     `json:"num_det"`
	AP50V07 float64 `json:"ap50_voc07"`
	AP50VOC float64 `json:"ap50_voc"`
}

type resultJSON struct {
	IoU      float64     `json:"iou"`
	MAP07    float64     `json:"map50_voc07"`
	MAP      float64     `json:"map50_voc"`
	PerClass []classJSON `json:"per_class"`
}

// MarshalJSON encodes r as
//
//	{"iou":0.5,"map50_voc07":MAP07,"map50_voc":MAP,"per_class":[
//	  {"class":0,"name":"..","num_gt":NumGT,"num_det":NumDet,"ap50_voc07":AP07,"ap50_voc":AP}, ...]}
//
// (per_class is [] rather than null when empty; an AP of -1 stays -1). The
// "50" in the names is kept whatever r.IoU is; "iou" records the threshold.
func (r Result) MarshalJSON() ([]byte, error) {
	out := resultJSON{IoU: r.IoU, MAP07: r.MAP07, MAP: r.MAP, PerClass: make([]classJSON, len(r.PerClass))}
	for i, c := range r.PerClass {
		out.PerClass[i] = classJSON{Class: c.Class, Name: c.Name, NumGT: c.NumGT, NumDet: c.NumDet, AP50V07: c.AP07, AP50VOC: c.AP}
	}
	return json.Marshal(out)
}
