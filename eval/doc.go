// Package eval scores detections against ground truth and post-processes
// raw detections. Everything works on Detection and GroundTruth values: an
// image index, a 0-based class and a box.Box.
//
//   - eval.go: the PASCAL VOC metric, VOC, computed as the VOC devkit
//     (VOCevaldet.m, VOCap.m) and its Python transcription in py-faster-rcnn
//     (lib/datasets/voc_eval.py: voc_eval and voc_ap) compute it: per-class
//     AP both all-point (VOC2010+) and 11-point (VOC2007), and their means.
//   - coco.go: the COCO box metric, COCO, as pycocotools' COCOeval
//     (evaluate, accumulate, summarize): AP@[.50:.95], AP50, AP75, the
//     area ranges and AR@1/10/100, overall and per class.
//   - detfile.go: readers of detection files made by other tools, COCO
//     results JSON (ParseCOCOResults) and one txt per image of
//     "class score x1 y1 x2 y2" lines (ParseTxtDetections,
//     ReadTxtDetections), with a Resolver for image and class names.
//   - nms.go: greedy per-image, per-class non-maximum suppression (NMS), as
//     py-faster-rcnn's nms.
//   - confusion.go: a YOLOv5-style confusion matrix with a background row
//     and column (ConfusionMatrix).
//   - summary.go, report.go: Evaluate runs VOC at IoU .5 and COCO together
//     into a Summary, which names the metric that ranks checkpoints
//     (eval.metric: voc07, voc or coco) and writes itself as a table,
//     Markdown and JSON; ReadScores reads the headline numbers back.
//
// Boxes use the box package's convention (continuous 0-based corners, VOC's
// 1-based inclusive (xmin, xmax) stored as X1 = xmin-1, X2 = xmax), under
// which box.IoU equals the devkit's IoU with its "+1" widths; nothing here
// adds 1 to anything.
package eval
