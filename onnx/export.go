// Package onnx writes dettrain's darknet networks as ONNX models
// (onnx.ai, the operator set of the ai.onnx domain), through a small
// protobuf encoder of its own (proto.go). It needs no cgo, like package model:
// the runtimes that check its output (OpenCV's ONNX importer, onnxruntime,
// onnx.checker) are run by the tests of package parity and by this package's
// tests through external programs.
//
// The graph computes what dettrain's inference graph computes (model.Graph
// with training=false), layer by layer:
//
//	[convolutional]  Conv (group, pads = padding on all four sides), its bias, or
//	                 batch norm folded into it (W' = W*s, b' = beta - mean*s with
//	                 s = gamma/sqrt(var+eps)), or BatchNormalization (KeepBN)
//	activations      leaky: LeakyRelu(alpha 0.1); relu: Relu; logistic: Sigmoid;
//	                 swish: x*Sigmoid(x); mish: x*Tanh(Softplus(x)), or Mish
//	                 from opset 18
//	[maxpool]        MaxPool, pads padding/2 before and padding - padding/2 after:
//	                 darknet's out = (in + padding - size)/stride + 1 with the
//	                 window starting at i*stride - padding/2 (maxpool_layer.c)
//	[avgpool]        GlobalAveragePool
//	[upsample]       Resize nearest, asymmetric, floor: y[i] = x[floor(i/stride)]
//	[route]          Concat on channels; groups/group_id: Slice of each input's
//	                 channels [id*C/G, (id+1)*C/G)
//	[shortcut]       Add of the previous output and each from=, then the activation
//	[scale_channels] Mul of out[from] (N,C,H,W) by the previous (N,C,1,1), then the activation
//	[dropout]        removed (the identity at inference)
//	[yolo]           a graph output (raw), or the decode below (Options.Decode)
package onnx

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/dettrain/dettrain/model"
)

// DefaultOpset is the opset written unless Options.Opset says otherwise:
// opset 13 (ONNX 1.8) is read by OpenCV 4.x's importer, onnxruntime and
// TensorRT alike.
const DefaultOpset = 13

// MinOpset and MaxOpset bound Options.Opset: 11 is the first with Resize's
// nearest_mode and asymmetric coordinates (darknet's upsample), 18 the first
// with Mish.
const (
	MinOpset = 11
	MaxOpset = 18
)

// Names of the graph's input and outputs.
const (
	InputName  = "images"
	BoxesName  = "boxes"
	ScoresName = "scores"
)

// HeadName is the name of raw head k's output (k counts the [yolo] layers in
// cfg order from 0).
func HeadName(k int) string { return "head" + strconv.Itoa(k) }

// Options choose what Export writes.
type Options struct {
	// Size is the input size, width x height (zero: the cfg's [net] width and
	// height, Network.InputSize).
	Size model.Size
	// Opset is the ai.onnx opset version, MinOpset to MaxOpset (0: DefaultOpset).
	Opset int
	// Decode replaces the raw head outputs by boxes and per-class scores (see
	// Export).
	Decode bool
	// DynamicBatch makes the batch dimension symbolic ("batch"); otherwise it is 1.
	DynamicBatch bool
	// KeepBN writes BatchNormalization nodes instead of folding batch norm
	// into the convolutions (default false: folded).
	KeepBN bool
	// Names are the class names written into the metadata (nil: "0", "1", ...).
	Names []string
	// Producer is written as producer_version (dettrain's version).
	Producer string
}

// HeadInfo describes one raw head output, as written in the metadata.
type HeadInfo struct {
	Output  string       `json:"output"`
	Layer   int          `json:"layer"`   // the [yolo] layer's index in the cfg
	Grid    [2]int       `json:"grid"`    // height, width in cells
	Stride  [2]float64   `json:"stride"`  // input pixels per cell: width/grid W, height/grid H
	Anchors [][2]float64 `json:"anchors"` // (w, h) in input pixels, in channel order
	ScaleXY float64      `json:"scale_x_y"`
	Classes int          `json:"classes"`
}

// shape is a layer output's (C, H, W).
type shape struct{ c, h, w int }

// Export builds the ONNX model of net for one input size. The input is
// "images", float32 (N, C, H, W) with N = 1 or symbolic, RGB values in [0, 1]
// (pixel/255) of the image resized to W x H without keeping its aspect ratio
// (what `dettrain predict` feeds dettrain's own graph).
//
// Raw outputs (the default) are "head0", "head1", ... one per [yolo] layer,
// the convolution in front of it: (N, A*(5+C), gh, gw) where channel
// a*(5+C)+k of anchor a holds tx, ty, tw, th, objectness, then the C class
// logits (darknet's layout, model.HeadOutput's).
//
// With Options.Decode the outputs are "boxes" (N, K, 4) and "scores" (N, K, C):
// for every head, anchor a, cell (i, j) in that order (K = sum A*gh*gw), with
// strides sx = W/gw, sy = H/gh and k = scale_x_y,
//
//	cx = (j + sigmoid(tx)*k - (k-1)/2)*sx,  cy = (i + sigmoid(ty)*k - (k-1)/2)*sy
//	w = anchor_w*exp(tw),  h = anchor_h*exp(th)
//	boxes = (cx - w/2, cy - h/2, cx + w/2, cy + h/2) in input pixels
//	scores_c = sigmoid(objectness)*sigmoid(class_c)
//
// as darknet's get_yolo_box/get_yolo_detections and OpenCV's region layer
// compute them (model.Decode, which caps tw, th at 20, is the same below
// that); no threshold and no NMS.
func Export(net *model.Network, o Options) (*Model, error) {
	file := net.Cfg.File
	if o.Opset == 0 {
		o.Opset = DefaultOpset
	}
	if o.Opset < MinOpset || o.Opset > MaxOpset {
		return nil, fmt.Errorf("%s: opset %d: supported are %d to %d", file, o.Opset, MinOpset, MaxOpset)
	}
	if o.Size.IsZero() {
		o.Size = net.InputSize()
	}
	if err := o.Size.CheckStride(8); err != nil { // model.NewGraph's rule: dettrain runs what it exports
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if o.Names != nil && len(o.Names) != net.Classes {
		return nil, fmt.Errorf("%s: %d class names for a model of %d classes", file, len(o.Names), net.Classes)
	}
	b := &builder{opset: o.Opset, keepBN: o.KeepBN, g: &Graph{Name: "dettrain"}}
	batch := Dim{Value: 1}
	if o.DynamicBatch {
		batch = Dim{Param: "batch"}
	}
	b.g.Inputs = append(b.g.Inputs, ValueInfo{Name: InputName, ElemType: Float32,
		Dims: []Dim{batch, {Value: int64(net.Channels)}, {Value: int64(o.Size.H)}, {Value: int64(o.Size.W)}}})
	names := make([]string, len(net.Layers))
	shapes := make([]shape, len(net.Layers))
	cur, cs := InputName, shape{net.Channels, o.Size.H, o.Size.W}
	var heads []HeadInfo
	var headTensors []string
	var boxes, scores []string
	for i, l := range net.Layers {
		sec := l.Section()
		fail := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: layer %d [%s]: %s", sec.File, sec.Line, i, sec.Type, fmt.Sprintf(format, a...))
		}
		p := "l" + strconv.Itoa(i) // node and tensor names of layer i start with it
		var err error
		switch l := l.(type) {
		case *model.ConvLayer:
			cur, cs, err = b.conv(p, cur, cs, l)
		case *model.MaxPoolLayer:
			cur, cs, err = b.maxPool(p, cur, cs, l)
		case *model.AvgPoolLayer:
			cur = b.node(p+".avgpool", "GlobalAveragePool", []string{cur})
			cs = shape{cs.c, 1, 1}
		case *model.UpsampleLayer:
			roi := b.constFloat(p+".roi", []int64{0}, nil)
			scales := b.constFloat(p+".scales", []int64{4}, []float32{1, 1, float32(l.Stride), float32(l.Stride)})
			cur = b.node(p+".upsample", "Resize", []string{cur, roi, scales},
				StringAttr("mode", "nearest"), StringAttr("coordinate_transformation_mode", "asymmetric"),
				StringAttr("nearest_mode", "floor"))
			cs = shape{cs.c, cs.h * l.Stride, cs.w * l.Stride}
		case *model.DropoutLayer:
			// the identity: cur stays
		case *model.RouteLayer:
			ins := make([]string, len(l.From))
			c := 0
			for k, f := range l.From {
				s := shapes[f]
				if s.h != shapes[l.From[0]].h || s.w != shapes[l.From[0]].w {
					return nil, fail("input layer %d is %dx%d, layer %d %dx%d: route inputs must have one size at input %s",
						f, s.w, s.h, l.From[0], shapes[l.From[0]].w, shapes[l.From[0]].h, o.Size)
				}
				ins[k] = names[f]
				if l.Groups > 1 {
					g := s.c / l.Groups
					ins[k] = b.slice(fmt.Sprintf("%s.group%d", p, k), names[f], 1, l.GroupID*g, (l.GroupID+1)*g)
				}
				c += s.c / l.Groups
			}
			cur = ins[0]
			if len(ins) > 1 {
				cur = b.node(p+".route", "Concat", ins, IntAttr("axis", 1))
			}
			cs = shape{c, shapes[l.From[0]].h, shapes[l.From[0]].w}
		case *model.ShortcutLayer:
			for k, f := range l.From {
				if shapes[f] != cs {
					return nil, fail("from layer %d is %v, the previous layer %v (C, H, W) at input %s", f, shapes[f], cs, o.Size)
				}
				cur = b.node(fmt.Sprintf("%s.add%d", p, k), "Add", []string{cur, names[f]})
			}
			cur = b.activation(p, cur, l.Act)
		case *model.ScaleChannelsLayer:
			if cs.h != 1 || cs.w != 1 || cs.c != shapes[l.From].c {
				return nil, fail("the scales (previous layer) are %v, want (%d, 1, 1)", cs, shapes[l.From].c)
			}
			cur = b.node(p+".scale", "Mul", []string{names[l.From], cur})
			cs = shapes[l.From]
			cur = b.activation(p, cur, l.Act)
		case *model.YOLOLayer:
			h := l.Head
			info := HeadInfo{Output: HeadName(len(heads)), Layer: i, Grid: [2]int{cs.h, cs.w},
				Stride:  [2]float64{float64(o.Size.W) / float64(cs.w), float64(o.Size.H) / float64(cs.h)},
				ScaleXY: h.ScaleXY, Classes: h.Classes}
			if info.ScaleXY == 0 {
				info.ScaleXY = 1
			}
			for _, m := range h.Mask {
				info.Anchors = append(info.Anchors, h.Anchors[m])
			}
			heads = append(heads, info)
			headTensors = append(headTensors, cur)
			if o.Decode {
				bx, sc := b.decode(fmt.Sprintf("%s.decode", p), cur, info)
				boxes, scores = append(boxes, bx), append(scores, sc)
			}
		default:
			return nil, fail("layer type %T has no ONNX form", l)
		}
		if err != nil {
			return nil, fail("%v", err)
		}
		if cs.h < 1 || cs.w < 1 {
			return nil, fail("output is %dx%d at input %s", cs.w, cs.h, o.Size)
		}
		names[i], shapes[i] = cur, cs
	}
	if o.Decode {
		k := 0
		for _, h := range heads {
			k += len(h.Anchors) * h.Grid[0] * h.Grid[1]
		}
		b.output(BoxesName, boxes, []Dim{batch, {Value: int64(k)}, {Value: 4}})
		b.output(ScoresName, scores, []Dim{batch, {Value: int64(k)}, {Value: int64(net.Classes)}})
	} else {
		for k, h := range heads {
			na := len(h.Anchors)
			b.node(h.Output, "Identity", []string{headTensors[k]})
			b.g.Outputs = append(b.g.Outputs, ValueInfo{Name: h.Output, ElemType: Float32,
				Dims: []Dim{batch, {Value: int64(na * (5 + h.Classes))}, {Value: int64(h.Grid[0])}, {Value: int64(h.Grid[1])}}})
		}
	}
	meta, err := metadata(net, o, heads)
	if err != nil {
		return nil, err
	}
	return &Model{IRVersion: irVersion(o.Opset), Opset: int64(o.Opset), ProducerName: "dettrain", ProducerVersion: o.Producer,
		Doc: "dettrain export of " + file, Graph: b.g, Metadata: meta}, nil
}

// irVersion is the IR version of the ONNX release that introduced opset
// (onnx/docs/Versioning.md: 1.6 IR 6 opset 11; 1.7-1.9 IR 7 opsets 12-14;
// 1.10-1.13 IR 8 opsets 15-18).
func irVersion(opset int) int64 {
	switch {
	case opset <= 11:
		return 6
	case opset <= 14:
		return 7
	}
	return 8
}

// Preprocessing is the metadata's description of the input.
const Preprocessing = "RGB, float32 pixel/255 in [0,1], NCHW, the image resized to the input width x height " +
	"without keeping its aspect ratio (no letterbox, no mean or std)"

// metadata lists the model's metadata_props: everything a consumer needs
// besides the .onnx file itself.
func metadata(net *model.Network, o Options, heads []HeadInfo) ([]KV, error) {
	names := o.Names
	if names == nil {
		for c := 0; c < net.Classes; c++ {
			names = append(names, strconv.Itoa(c))
		}
	}
	nj, err := json.Marshal(names)
	if err != nil {
		return nil, err
	}
	hj, err := json.Marshal(heads)
	if err != nil {
		return nil, err
	}
	outputs := "raw"
	layout := "head<k>: (N, A*(5+C), gh, gw), channel a*(5+C)+k: tx, ty, tw, th, objectness, C class logits (darknet's layout); " +
		"decode: cx = (j + sigmoid(tx)*s - (s-1)/2)*stride_w, cy likewise with i, w = anchor_w*exp(tw), h = anchor_h*exp(th), " +
		"score_c = sigmoid(objectness)*sigmoid(class_c), s = scale_x_y; heads gives strides and anchors"
	if o.Decode {
		outputs = "decoded"
		layout = "boxes: (N, K, 4) x1, y1, x2, y2 in input pixels; scores: (N, K, C) sigmoid(objectness)*sigmoid(class); " +
			"rows for each head, anchor, cell row i, cell column j in that order; no threshold, no NMS"
	}
	return []KV{
		{"names", string(nj)},
		{"classes", strconv.Itoa(net.Classes)},
		{"input", InputName},
		{"input_width", strconv.Itoa(o.Size.W)},
		{"input_height", strconv.Itoa(o.Size.H)},
		{"input_channels", strconv.Itoa(net.Channels)},
		{"preprocessing", Preprocessing},
		{"outputs", outputs},
		{"layout", layout},
		{"heads", string(hj)},
	}, nil
}

// builder appends nodes and initializers to a graph.
type builder struct {
	g      *Graph
	opset  int
	keepBN bool
}

// node adds a node named name whose one output is also called name.
func (b *builder) node(name, op string, inputs []string, attrs ...Attr) string {
	b.g.Nodes = append(b.g.Nodes, &Node{Name: name, OpType: op, Inputs: inputs, Outputs: []string{name}, Attrs: attrs})
	return name
}

func (b *builder) constFloat(name string, dims []int64, v []float32) string {
	b.g.Initializers = append(b.g.Initializers, FloatTensor(name, dims, v))
	return name
}

func (b *builder) constInt64(name string, v ...int64) string {
	b.g.Initializers = append(b.g.Initializers, Int64Tensor(name, []int64{int64(len(v))}, v))
	return name
}

// slice is x[from:to] along axis (Slice with starts, ends, axes as inputs, opset 10 on).
func (b *builder) slice(name, x string, axis, from, to int) string {
	return b.node(name, "Slice", []string{x, b.constInt64(name+".starts", int64(from)),
		b.constInt64(name+".ends", int64(to)), b.constInt64(name+".axes", int64(axis))})
}

// output adds graph output name: the concatenation of parts along axis 1
// (an Identity of the one part).
func (b *builder) output(name string, parts []string, dims []Dim) {
	if len(parts) == 1 {
		b.node(name, "Identity", parts)
	} else {
		b.node(name, "Concat", parts, IntAttr("axis", 1))
	}
	b.g.Outputs = append(b.g.Outputs, ValueInfo{Name: name, ElemType: Float32, Dims: dims})
}

func (b *builder) conv(p, x string, in shape, l *model.ConvLayer) (string, shape, error) {
	if in.c != l.In {
		return "", shape{}, fmt.Errorf("input has %d channels, the layer %d", in.c, l.In)
	}
	out := shape{l.Filters, (in.h+2*l.Pad-l.Size)/l.Stride + 1, (in.w+2*l.Pad-l.Size)/l.Stride + 1}
	if in.h+2*l.Pad < l.Size || in.w+2*l.Pad < l.Size {
		return "", shape{}, fmt.Errorf("input %dx%d is smaller than the %dx%d kernel", in.w, in.h, l.Size, l.Size)
	}
	w := l.W.Float32s()
	bias := l.Bias.Float32s()
	wdims := []int64{int64(l.Filters), int64(l.In / l.G), int64(l.Size), int64(l.Size)}
	fold := l.BatchNorm && !b.keepBN
	if fold {
		// y = gamma*(conv(x) - mean)/sqrt(var+eps) + beta = conv'(x) + b' with
		// W'_f = W_f*s_f, b'_f = beta_f - mean_f*s_f, s_f = gamma_f/sqrt(var_f+eps),
		// computed in float64 and rounded once.
		per := len(w) / l.Filters
		fw := make([]float32, len(w))
		fb := make([]float32, l.Filters)
		gamma := l.Gamma.Float32s()
		for f := 0; f < l.Filters; f++ {
			s := float64(gamma[f]) / math.Sqrt(float64(l.BN.Var[f])+l.BN.Eps)
			for k := f * per; k < (f+1)*per; k++ {
				fw[k] = float32(float64(w[k]) * s)
			}
			fb[f] = float32(float64(bias[f]) - float64(l.BN.Mean[f])*s)
		}
		w, bias = fw, fb
	}
	ins := []string{x, b.constFloat(p+".weight", wdims, w)}
	if !l.BatchNorm || fold {
		ins = append(ins, b.constFloat(p+".bias", []int64{int64(l.Filters)}, bias))
	}
	k, s, pd := int64(l.Size), int64(l.Stride), int64(l.Pad)
	y := b.node(p+".conv", "Conv", ins, IntsAttr("kernel_shape", k, k), IntsAttr("strides", s, s),
		IntsAttr("pads", pd, pd, pd, pd), IntsAttr("dilations", 1, 1), IntAttr("group", int64(l.G)))
	if l.BatchNorm && !fold {
		c := []int64{int64(l.Filters)}
		y = b.node(p+".bn", "BatchNormalization", []string{y, b.constFloat(p+".gamma", c, l.Gamma.Float32s()),
			b.constFloat(p+".beta", c, bias), b.constFloat(p+".mean", c, l.BN.Mean), b.constFloat(p+".var", c, l.BN.Var)},
			FloatAttr("epsilon", float32(l.BN.Eps)))
	}
	return b.activation(p, y, l.Act), out, nil
}

func (b *builder) maxPool(p, x string, in shape, l *model.MaxPoolLayer) (string, shape, error) {
	// darknet: out = (in + padding - size)/stride + 1, windows from
	// i*stride - padding/2: pads padding/2 before, the rest after. ONNX's
	// floor((in + before + after - size)/stride) + 1 is the same count.
	before := l.Padding / 2
	after := l.Padding - before
	if before >= l.Size || after >= l.Size {
		return "", shape{}, fmt.Errorf("padding=%d: ONNX runtimes need each side's pad (%d, %d) smaller than size=%d", l.Padding, before, after, l.Size)
	}
	if in.h+l.Padding < l.Size || in.w+l.Padding < l.Size {
		return "", shape{}, fmt.Errorf("input %dx%d is smaller than the %dx%d window", in.w, in.h, l.Size, l.Size)
	}
	out := shape{in.c, (in.h+l.Padding-l.Size)/l.Stride + 1, (in.w+l.Padding-l.Size)/l.Stride + 1}
	k, s, pb, pa := int64(l.Size), int64(l.Stride), int64(before), int64(after)
	y := b.node(p+".maxpool", "MaxPool", []string{x}, IntsAttr("kernel_shape", k, k), IntsAttr("strides", s, s),
		IntsAttr("pads", pb, pb, pa, pa))
	return y, out, nil
}

// activation applies a (darknet's activations.c) to x; names start with p.
func (b *builder) activation(p, x string, a model.Activation) string {
	switch a {
	case model.Leaky:
		return b.node(p+".leaky", "LeakyRelu", []string{x}, FloatAttr("alpha", 0.1))
	case model.ReLU:
		return b.node(p+".relu", "Relu", []string{x})
	case model.Logistic:
		return b.node(p+".logistic", "Sigmoid", []string{x})
	case model.Swish:
		s := b.node(p+".sigmoid", "Sigmoid", []string{x})
		return b.node(p+".swish", "Mul", []string{x, s})
	case model.Mish:
		if b.opset >= 18 {
			return b.node(p+".mish", "Mish", []string{x})
		}
		sp := b.node(p+".softplus", "Softplus", []string{x})
		t := b.node(p+".tanh", "Tanh", []string{sp})
		return b.node(p+".mish", "Mul", []string{x, t})
	}
	return x
}

// decode adds one head's boxes (N, A*gh*gw, 4) and scores (N, A*gh*gw, C)
// (Export's formulas) and returns their names.
func (b *builder) decode(p, x string, h HeadInfo) (boxes, scores string) {
	na, per, gh, gw := len(h.Anchors), 5+h.Classes, h.Grid[0], h.Grid[1]
	hw := gh * gw
	// (N, A*(5+C), gh, gw) -> (N, A, 5+C, gh*gw) -> (N, A, gh*gw, 5+C)
	r := b.node(p+".reshape", "Reshape", []string{x, b.constInt64(p+".shape", -1, int64(na), int64(per), int64(hw))})
	t := b.node(p+".transpose", "Transpose", []string{r}, IntsAttr("perm", 0, 1, 3, 2))
	xy := b.slice(p+".xy", t, 3, 0, 2)
	wh := b.slice(p+".wh", t, 3, 2, 4)
	obj := b.slice(p+".obj", t, 3, 4, 5)
	cls := b.slice(p+".cls", t, 3, 5, per)
	// centre = sigmoid(t)*(k*stride) + (cell - (k-1)/2)*stride, cell = (j, i).
	// The constants are (A, gh*gw, 2), broadcast over the batch only: OpenCV
	// 4.6 turns a constant of the input's own shape (1, A, gh*gw, 2) into an
	// element-wise op that refuses a batch of 2.
	k := h.ScaleXY
	mul := make([]float32, na*hw*2)
	off := make([]float32, na*hw*2)
	half := make([]float32, na*hw*2)
	for a := 0; a < na; a++ {
		for c := 0; c < hw; c++ {
			i, j := c/gw, c%gw
			e := (a*hw + c) * 2
			mul[e], mul[e+1] = float32(k*h.Stride[0]), float32(k*h.Stride[1])
			off[e], off[e+1] = float32((float64(j)-(k-1)/2)*h.Stride[0]), float32((float64(i)-(k-1)/2)*h.Stride[1])
			half[e], half[e+1] = float32(h.Anchors[a][0]/2), float32(h.Anchors[a][1]/2)
		}
	}
	dims := []int64{int64(na), int64(hw), 2}
	sig := b.node(p+".sigmoid_xy", "Sigmoid", []string{xy})
	cxy := b.node(p+".scaled_xy", "Mul", []string{sig, b.constFloat(p+".xy_scale", dims, mul)})
	cxy = b.node(p+".centre", "Add", []string{cxy, b.constFloat(p+".xy_offset", dims, off)})
	e := b.node(p+".exp_wh", "Exp", []string{wh})
	hs := b.node(p+".half_wh", "Mul", []string{e, b.constFloat(p+".anchors_half", dims, half)})
	x1 := b.node(p+".x1y1", "Sub", []string{cxy, hs})
	x2 := b.node(p+".x2y2", "Add", []string{cxy, hs})
	bx := b.node(p+".corners", "Concat", []string{x1, x2}, IntAttr("axis", 3))
	boxes = b.node(p+".boxes", "Reshape", []string{bx, b.constInt64(p+".boxes_shape", -1, int64(na*hw), 4)})
	so := b.node(p+".sigmoid_obj", "Sigmoid", []string{obj})
	sc := b.node(p+".sigmoid_cls", "Sigmoid", []string{cls})
	s := b.node(p+".score", "Mul", []string{sc, so})
	scores = b.node(p+".scores", "Reshape", []string{s, b.constInt64(p+".scores_shape", -1, int64(na*hw), int64(h.Classes))})
	return boxes, scores
}

// Write exports net (Export) to path, atomically (model.WriteAtomic).
func Write(path string, net *model.Network, o Options) (*Model, error) {
	m, err := Export(net, o)
	if err != nil {
		return nil, err
	}
	data := m.Marshal()
	if err := model.WriteAtomic(path, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// WriteAtomic's temporary file is private (0600); a model is meant to be shared.
	if err := os.Chmod(path, 0o644); err != nil {
		return nil, err
	}
	return m, nil
}

// Meta returns the value of metadata key k ("" when absent).
func (m *Model) Meta(k string) string {
	for _, kv := range m.Metadata {
		if kv.Key == k {
			return kv.Value
		}
	}
	return ""
}
