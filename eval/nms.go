package eval

import (
	"cmp"
	"slices"

	"github.com/dettrain/dettrain/box"
)

// NMS does greedy non-maximum suppression per (image, class), as in
// py-faster-rcnn's nms / Fast R-CNN's test_net:
//
//  1. all detections are sorted by score, descending, with a stable sort (equal
//     scores keep their input order);
//  2. in that order a detection is dropped if box.IoU with a box already kept
//     for the same image and class is > iou (strictly: IoU == iou is kept),
//     and kept otherwise; suppressed boxes do not suppress others;
//  3. if maxPerImage > 0, only the maxPerImage highest-scoring kept boxes of
//     each image (all classes together; ties again by input order) remain;
//     maxPerImage <= 0 means no limit.
//
// It returns a new slice sorted by image ascending, then score descending
// (then input order); dets is not modified.
func NMS(dets []Detection, iou float64, maxPerImage int) []Detection {
	order := slices.Clone(dets)
	slices.SortStableFunc(order, byScoreDesc)

	kept := make(map[imageClass][]box.Box)
	out := make([]Detection, 0, len(order))
	for _, d := range order {
		k := imageClass{d.Image, d.Class}
		suppressed := false
		for _, b := range kept[k] {
			if box.IoU(d.Box, b) > iou {
				suppressed = true
				break
			}
		}
		if !suppressed {
			kept[k] = append(kept[k], d.Box)
			out = append(out, d)
		}
	}

	// Stable by image: within an image the score order (and its ties) stays.
	slices.SortStableFunc(out, func(a, b Detection) int { return cmp.Compare(a.Image, b.Image) })
	if maxPerImage <= 0 {
		return out
	}
	n, run := 0, 0
	for i, d := range out {
		if i == 0 || d.Image != out[i-1].Image {
			run = 0
		}
		if run < maxPerImage {
			out[n] = d
			n++
		}
		run++
	}
	return out[:n]
}
