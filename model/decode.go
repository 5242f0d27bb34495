package model

import (
	"math"

	"github.com/dettrain/dettrain/box"
)

// Detection is one decoded prediction in network-input pixels.
type Detection struct {
	Class int
	Score float64
	Box   box.Box
}

// Decode turns image b's head outputs into detections, darknet's way
// (get_yolo_detections): for anchor a at cell (i,j) with outputs
// tx,ty,tw,th,to,c_k and strides sx = size.W/gridW, sy = size.H/gridH,
//
//	centre = ((j + o(tx))*sx, (i + o(ty))*sy),  size = (aw*exp(tw), ah*exp(th))
//	o(t) = sigmoid(t)*k - (k-1)/2 with k = scale_x_y (sigmoid(t) when k = 1)
//	score_k = sigmoid(to) * sigmoid(c_k)
//
// one detection per class whose score is >= conf. size is the network input size.
func (net *Network) Decode(heads []HeadOutput, b int, size Size, conf float64) []Detection {
	var dets []Detection
	for hi, ho := range heads {
		h := net.Heads[hi]
		na, nc := len(h.Mask), h.Classes
		per := 5 + nc
		plane := ho.H * ho.W
		sx, sy := float64(size.W)/float64(ho.W), float64(size.H)/float64(ho.H)
		base := b * na * per * plane
		v := func(a, k, p int) float64 { return float64(ho.Data[base+(a*per+k)*plane+p]) }
		for a := 0; a < na; a++ {
			an := h.Anchors[h.Mask[a]]
			for p := 0; p < plane; p++ {
				obj := sigmoid(v(a, 4, p))
				if obj < conf {
					continue
				}
				i, j := p/ho.W, p%ho.W
				cx := (float64(j) + h.offset(v(a, 0, p))) * sx
				cy := (float64(i) + h.offset(v(a, 1, p))) * sy
				w := an[0] * math.Exp(math.Min(v(a, 2, p), 20))
				ht := an[1] * math.Exp(math.Min(v(a, 3, p), 20))
				bb := box.Box{X1: cx - w/2, Y1: cy - ht/2, X2: cx + w/2, Y2: cy + ht/2}
				for c := 0; c < nc; c++ {
					if s := obj * sigmoid(v(a, 5+c, p)); s >= conf {
						dets = append(dets, Detection{Class: c, Score: s, Box: bb})
					}
				}
			}
		}
	}
	return dets
}

// DecodeBest is Decode keeping only each box's best class: one detection per
// anchor and cell, of the class with the highest score, when that score is >=
// conf. This is how OpenCV's samples and most YOLO tools report detections
// (darknet and Decode report every class above the threshold, which VOC mAP
// rewards but which shows several labels on one object).
func (net *Network) DecodeBest(heads []HeadOutput, b int, size Size, conf float64) []Detection {
	var out []Detection
	for _, d := range net.Decode(heads, b, size, conf) {
		if n := len(out); n > 0 && out[n-1].Box == d.Box {
			if d.Score > out[n-1].Score {
				out[n-1] = d
			}
			continue
		}
		out = append(out, d)
	}
	return out
}
