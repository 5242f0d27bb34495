package model

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/dettrain/dettrain/box"
)

// Truth is one ground-truth object of one image, in network-input pixels.
type Truth struct {
	Class int
	Box   box.Box
	// Weight multiplies every loss term of the object (1; mixup sets lambda
	// or 1-lambda, docs/FREEBIES.md).
	Weight float32
}

// Head describes one [yolo] layer: which of the network's anchors it
// predicts, and its loss settings.
type Head struct {
	Anchors      [][2]float64 // all anchors of the network, (w,h) in input pixels
	Mask         []int        // indices into Anchors predicted by this head
	Classes      int
	IgnoreThresh float64 // 0.7 by default (docs/FREEBIES.md)
	// ScaleXY is darknet's scale_x_y (YOLOv4): the centre offset in its cell
	// is sigmoid(tx)*ScaleXY - (ScaleXY-1)/2, so that it can reach 0 and 1.
	// 1 (or 0, read as 1) is YOLOv3's sigmoid(tx).
	ScaleXY float64
}

// xyScale returns ScaleXY, with 0 read as 1.
func (h *Head) xyScale() float64 {
	if h.ScaleXY == 0 {
		return 1
	}
	return h.ScaleXY
}

// offset is the decoded centre offset in a cell: sigmoid(t)*s - (s-1)/2.
func (h *Head) offset(t float64) float64 {
	s := h.xyScale()
	return sigmoid(t)*s - (s-1)/2
}

// LossParts are the four YOLOv3 loss terms, summed over the batch and divided
// by the batch size (GluonCV's YOLOV3Loss summed over elements, averaged over images).
type LossParts struct {
	Obj, XY, WH, Cls float64
	Positives        int
}

// Total is the sum of the parts.
func (l LossParts) Total() float64 { return l.Obj + l.XY + l.WH + l.Cls }

// Add accumulates o into l.
func (l *LossParts) Add(o LossParts) {
	l.Obj += o.Obj
	l.XY += o.XY
	l.WH += o.WH
	l.Cls += o.Cls
	l.Positives += o.Positives
}

// yoloLossOp is the YOLOv3 loss of one head, as docs/FREEBIES.md specifies
// (GluonCV's YOLOV3TargetMerger + YOLOV3Loss). The input is the head's raw
// output p of shape (N, len(Mask)*(5+C), H, W), channel a*(5+C)+k holding, for
// anchor a: k=0,1 tx,ty; 2,3 tw,th; 4 objectness; 5.. class logits. For each
// image:
//
//   - each truth goes to the single best of all anchors by centred shape IoU;
//     if that anchor is in Mask it is a positive at cell (floor(cy/stride), floor(cx/stride));
//   - a prediction whose decoded box has IoU > IgnoreThresh with any truth,
//     and is not a positive, gets no objectness loss;
//   - with BCE(x,t) = softplus(x) - t*x (stable: max(x,0) - t*x + log(1+exp(-|x|))),
//     bw = 2 - w*h/(W*H) and m the truth's weight:
//     obj   = sum_pos m*BCE(p_obj, 1) + sum_neg BCE(p_obj, 0)
//     xy    = sum_pos m*bw*[BCE(tx, u(cx/stride - j)) + BCE(ty, u(cy/stride - i))]
//     with u(t) = (t + (s-1)/2)/s for scale_x_y = s (u(t) = t when s = 1), the
//     sigmoid value that decodes to offset t
//     wh    = sum_pos m*bw*[|tw - log(w/aw)| + |th - log(h/ah)|]
//     cls   = sum_pos m*sum_c BCE(p_c, [c == class])
//
// all divided by N. The op computes the loss and its gradient in one pass;
// the backward op scales the stored gradient by the upstream one.
type yoloLossOp struct {
	opBase
	head *Head
	st   *yoloState
}

type yoloState struct {
	truths     [][]Truth
	netW, netH int
	// smooth maps a class target t in {0,1} to the value used (label smoothing hook).
	smooth func(t float64) float64
	parts  LossParts
	grad   []float64
	gradT  *tensor.Dense
}

func newYOLOLoss(x *G.Node, h *Head, netW, netH int) (*G.Node, *yoloState, error) {
	st := &yoloState{netW: netW, netH: netH}
	op := &yoloLossOp{newOpBase("yololoss", 0, 4), h, st}
	n, err := G.ApplyOp(op, x)
	return n, st, err
}

func (o *yoloLossOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	if want := len(o.head.Mask) * (5 + o.head.Classes); len(s) != 4 || s[1] != want {
		return nil, fmt.Errorf("yolo: input %v, want %d channels (%d anchors x (5+%d classes))", s, want, len(o.head.Mask), o.head.Classes)
	}
	return tensor.ScalarShape(), nil
}

func (o *yoloLossOp) Do(vs ...G.Value) (G.Value, error) { return o.do(vs, o.forward) }
func (o *yoloLossOp) forward(t []*tensor.Dense) (G.Value, error) {
	x := t[0]
	var total float64
	if o.arena != nil {
		o.arena.f64s.get(o.arena.graph, &o.st.grad, x.Shape().TotalSize())
	}
	switch x.Dtype() {
	case tensor.Float32:
		total = yoloLoss(o.head, o.st, x.Shape(), f32s(x))
		return G.NewF32(float32(total)), nil
	case tensor.Float64:
		total = yoloLoss(o.head, o.st, x.Shape(), x.Float64s())
		return G.NewF64(total), nil
	}
	return nil, fmt.Errorf("yolo: unsupported dtype %v", x.Dtype())
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// bce is the stable binary cross-entropy with logits and its derivative.
func bce(x, t float64) (loss, grad float64) {
	return math.Max(x, 0) - t*x + math.Log1p(math.Exp(-math.Abs(x))), sigmoid(x) - t
}

func shapeIoU(w1, h1, w2, h2 float64) float64 {
	inter := math.Min(w1, w2) * math.Min(h1, h2)
	return inter / (w1*h1 + w2*h2 - inter)
}

// BestAnchor returns the index of the anchor whose shape best matches (w,h).
func (h *Head) BestAnchor(w, ht float64) int {
	best, bi := -1.0, 0
	for i, a := range h.Anchors {
		if v := shapeIoU(w, ht, a[0], a[1]); v > best {
			best, bi = v, i
		}
	}
	return bi
}

// Positives finds the positive slots of one image's truths on a gh x gw grid
// of an input of netW x netH pixels: it sets pos[a*gh*gw+i*gw+j] (a the index
// into Mask, i the row, j the column) to the index of the truth assigned
// there plus one, and every other element to 0. Each truth with a positive
// width and height goes to the best of all anchors by centred shape IoU; when
// that anchor is in Mask it takes the cell holding its centre (clamped to the
// grid). A later truth overwrites an earlier one in the same slot. pos must
// hold len(Mask)*gh*gw elements. The CPU loss and the GPU one (package gpu)
// both use it.
func (h *Head) Positives(truths []Truth, gh, gw, netW, netH int, pos []int32) {
	plane := gh * gw
	if len(pos) != len(h.Mask)*plane {
		panic(fmt.Sprintf("Head.Positives: pos has %d elements, want %d anchors x %d x %d = %d", len(pos), len(h.Mask), gh, gw, len(h.Mask)*plane))
	}
	clear(pos)
	sx, sy := float64(netW)/float64(gw), float64(netH)/float64(gh) // strides
	for ti, t := range truths {
		w, ht := t.Box.W(), t.Box.H()
		if w <= 0 || ht <= 0 {
			continue
		}
		best := h.BestAnchor(w, ht)
		for a, m := range h.Mask {
			if m != best {
				continue
			}
			cx, cy := t.Box.Center()
			j := min(max(int(cx/sx), 0), gw-1)
			i := min(max(int(cy/sy), 0), gh-1)
			pos[a*plane+i*gw+j] = int32(ti + 1)
		}
	}
}

// YOLOLossCPU is the CPU loss of one head on its raw output x of shape
// (N, len(Mask)*(5+C), H, W), with the truths of each image on a netW x netH
// input and the class-target mapping smooth (nil: identity): the loss parts
// and the gradient of the total with respect to x. It is the loss a training
// Graph computes, exported for checking other implementations (package gpu).
func YOLOLossCPU(h *Head, truths [][]Truth, shape []int, x []float32, netW, netH int, smooth func(float64) float64) (LossParts, []float64) {
	s := tensor.Shape(shape)
	if want := len(h.Mask) * (5 + h.Classes); len(s) != 4 || s[1] != want || s.TotalSize() != len(x) {
		panic(fmt.Sprintf("YOLOLossCPU: shape %v with %d values, want 4-D with %d channels", shape, len(x), want))
	}
	st := &yoloState{truths: truths, netW: netW, netH: netH, smooth: smooth}
	yoloLoss(h, st, s, x)
	return st.parts, st.grad
}

func yoloLoss[T float](h *Head, st *yoloState, s tensor.Shape, x []T) float64 {
	n, _, gh, gw := dims4(s)
	na, nc := len(h.Mask), h.Classes
	per := 5 + nc
	plane := gh * gw
	if len(st.grad) != len(x) {
		st.grad = make([]float64, len(x))
	}
	clear(st.grad)
	st.parts = LossParts{}
	sx, sy := float64(st.netW)/float64(gw), float64(st.netH)/float64(gh) // strides
	inv := 1 / float64(n)
	area := float64(st.netW * st.netH)
	at := func(b, a, k, i, j int) int { return ((b*na+a)*per+k)*plane + i*gw + j }
	pos := make([]int32, na*plane)
	sxy := h.xyScale()
	smooth := st.smooth
	if smooth == nil {
		smooth = func(t float64) float64 { return t }
	}
	for b := 0; b < n; b++ {
		var truths []Truth
		if b < len(st.truths) {
			truths = st.truths[b]
		}
		h.Positives(truths, gh, gw, st.netW, st.netH, pos)
		for a := 0; a < na; a++ {
			aw, ah := h.Anchors[h.Mask[a]][0], h.Anchors[h.Mask[a]][1]
			for i := 0; i < gh; i++ {
				for j := 0; j < gw; j++ {
					ko := at(b, a, 4, i, j)
					po := float64(x[ko])
					if ti := int(pos[a*plane+i*gw+j]); ti > 0 {
						t := truths[ti-1]
						m := float64(t.Weight)
						l, g := bce(po, 1)
						st.parts.Obj += m * l * inv
						st.grad[ko] = m * g * inv
						cx, cy := t.Box.Center()
						w, ht := t.Box.W(), t.Box.H()
						bw := 2 - w*ht/area
						for k, off := range [2]float64{cx/sx - float64(j), cy/sy - float64(i)} {
							tgt := (off + (sxy-1)/2) / sxy
							idx := at(b, a, k, i, j)
							l, g := bce(float64(x[idx]), tgt)
							st.parts.XY += m * bw * l * inv
							st.grad[idx] = m * bw * g * inv
						}
						for k, tgt := range [2]float64{math.Log(w / aw), math.Log(ht / ah)} {
							idx := at(b, a, 2+k, i, j)
							d := float64(x[idx]) - tgt
							st.parts.WH += m * bw * math.Abs(d) * inv
							sg := 0.0
							if d > 0 {
								sg = 1
							} else if d < 0 {
								sg = -1
							}
							st.grad[idx] = m * bw * sg * inv
						}
						for c := 0; c < nc; c++ {
							idx := at(b, a, 5+c, i, j)
							tgt := 0.0
							if c == t.Class {
								tgt = 1
							}
							l, g := bce(float64(x[idx]), smooth(tgt))
							st.parts.Cls += m * l * inv
							st.grad[idx] = m * g * inv
						}
						st.parts.Positives++
						continue
					}
					// Negative unless its decoded box overlaps a truth by more than the threshold.
					if len(truths) > 0 {
						px := (float64(j) + h.offset(float64(x[at(b, a, 0, i, j)]))) * sx
						py := (float64(i) + h.offset(float64(x[at(b, a, 1, i, j)]))) * sy
						pw := math.Exp(math.Min(float64(x[at(b, a, 2, i, j)]), 20)) * aw
						ph := math.Exp(math.Min(float64(x[at(b, a, 3, i, j)]), 20)) * ah
						pb := box.Box{X1: px - pw/2, Y1: py - ph/2, X2: px + pw/2, Y2: py + ph/2}
						ignore := false
						for _, t := range truths {
							if box.IoU(pb, t.Box) > h.IgnoreThresh {
								ignore = true
								break
							}
						}
						if ignore {
							continue
						}
					}
					l, g := bce(po, 0)
					st.parts.Obj += l * inv
					st.grad[ko] = g * inv
				}
			}
		}
	}
	return st.parts.Total()
}

func (o *yoloLossOp) DiffWRT(int) []bool { return []bool{true} }
func (o *yoloLossOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	return gradOf(G.ApplyOp(&yoloGradOp{newOpBase("yolograd", 4, 4, 0), o.st, gradBuf{}}, in[0], grad))
}

// yoloGradOp takes (x, dL/dloss) and returns the stored gradient times dL/dloss.
type yoloGradOp struct {
	opBase
	st *yoloState
	gradBuf
}

func (o *yoloGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return shapeOf(in[0]) }
func (o *yoloGradOp) Do(vs ...G.Value) (G.Value, error) {
	defer timeOp(o.name)()
	x, err := dense(vs[0])
	if err != nil {
		return nil, err
	}
	var up float64
	switch v := vs[1].Data().(type) {
	case float32:
		up = float64(v)
	case float64:
		up = v
	case []float32:
		up = float64(v[0])
	case []float64:
		up = v[0]
	default:
		return nil, fmt.Errorf("yolograd: unexpected upstream gradient %T", v)
	}
	dx := o.gradBuffer(o.slot, &o.st.gradT, x.Dtype(), x.Shape()...)
	switch d := dx.Data().(type) { // dx is never 1-element: 4-D with >= 6 channels
	case []float32:
		for i, g := range o.st.grad {
			d[i] = float32(g * up)
		}
	case []float64:
		for i, g := range o.st.grad {
			d[i] = g * up
		}
	}
	return dx, nil
}

// The layer: its type, its parser (network.go's layerTypes), the node it
// adds to a graph and darknet's size rule along one axis (extent).

// YOLOLayer is [yolo]: a detection head on the previous layer's output.
type YOLOLayer struct {
	sec  *Section
	C    int
	Head *Head
}

func (l *YOLOLayer) Section() *Section { return l.sec }

func (l *YOLOLayer) OutChannels() int { return l.C }

func newYOLO(sec *Section, in int) (*YOLOLayer, error) {
	mask, err := sec.Ints("mask")
	if err != nil {
		return nil, err
	}
	an, err := sec.Floats("anchors")
	if err != nil {
		return nil, err
	}
	classes, err := sec.Int("classes", 80)
	if err != nil {
		return nil, err
	}
	num, err := sec.Int("num", len(an)/2)
	if err != nil {
		return nil, err
	}
	ig, err := sec.Float("ignore_thresh", 0.7)
	if err != nil {
		return nil, err
	}
	sxy, err := sec.Float("scale_x_y", 1)
	if err != nil {
		return nil, err
	}
	sec.Ignore(yoloTrainingKeys...)
	switch {
	case len(an) == 0 || len(an)%2 != 0:
		return nil, sec.errf(0, "anchors= needs pairs of numbers, got %d numbers", len(an))
	case num != len(an)/2:
		return nil, sec.errf(0, "num=%d but %d anchor pairs are given", num, len(an)/2)
	case !(sxy >= 1 && sxy <= 4):
		return nil, sec.errf(sec.opts["scale_x_y"].line, "scale_x_y=%v must be between 1 and 4", sxy)
	case !(ig >= 0 && ig <= 1):
		return nil, sec.errf(sec.opts["ignore_thresh"].line, "ignore_thresh=%v must be between 0 and 1", ig)
	case classes < 1 || classes > maxChannels:
		return nil, sec.errf(sec.opts["classes"].line, "classes=%d must be between 1 and %d", classes, maxChannels)
	}
	if len(mask) == 0 {
		for i := 0; i < num; i++ {
			mask = append(mask, i)
		}
	}
	h := &Head{Classes: classes, Mask: mask, IgnoreThresh: ig, ScaleXY: sxy}
	for i := 0; i+1 < len(an); i += 2 {
		if !(an[i] > 0 && an[i+1] > 0) || math.IsInf(an[i], 0) || math.IsInf(an[i+1], 0) {
			return nil, sec.errf(sec.opts["anchors"].line, "anchor %d is %vx%v: anchors must be positive", i/2, an[i], an[i+1])
		}
		h.Anchors = append(h.Anchors, [2]float64{an[i], an[i+1]})
	}
	for _, m := range mask {
		if m < 0 || m >= num {
			return nil, sec.errf(0, "mask index %d outside the %d anchors", m, num)
		}
	}
	if in != len(mask)*(5+classes) {
		return nil, sec.errf(0, "input has %d channels, want %d", in, len(mask)*(5+classes))
	}
	return &YOLOLayer{sec: sec, C: in, Head: h}, nil
}

func (l *YOLOLayer) node(b *builder, i int) (*G.Node, error) {
	b.gr.heads = append(b.gr.heads, b.cur)
	if b.training {
		ln, st, err := newYOLOLoss(b.cur, l.Head, b.gr.Size.W, b.gr.Size.H)
		if err != nil {
			return nil, err
		}
		b.gr.yolo = append(b.gr.yolo, st)
		b.losses = append(b.losses, ln)
	}
	return b.cur, nil
}

func (l *YOLOLayer) extent(cur int, out []int) int { return cur }

func parseYOLO(c layerCtx) (Layer, error) { return newYOLO(c.sec, c.in) }
