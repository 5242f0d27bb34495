package model

import (
	"fmt"
	"math"
	"math/rand"
	"strings"

	"gorgonia.org/tensor"
)

// Network is a darknet model: its layers and their parameters. Graphs for
// given input sizes are built from it (graph.go) and share its tensors.
type Network struct {
	Cfg      *Cfg
	Channels int // input channels, from [net]
	Classes  int
	Layers   []Layer
	Heads    []*Head // one per [yolo] layer, in order
}

// Layer is one darknet layer. Out is the number of output channels.
type Layer interface {
	Section() *Section
	OutChannels() int
}

// ConvLayer is [convolutional]: conv, then BN + activation or bias + activation.
type ConvLayer struct {
	sec                               *Section
	In, Filters, Size, Stride, Pad, G int
	BatchNorm                         bool
	Act                               Activation
	W                                 *tensor.Dense // (Filters, In/G, Size, Size)
	Bias                              *tensor.Dense // (Filters): beta with BN, else the bias
	Gamma                             *tensor.Dense // (Filters), BN only
	BN                                *BNState      // BN only
}

// MaxPoolLayer is [maxpool].
type MaxPoolLayer struct {
	sec                      *Section
	C, Size, Stride, Padding int
}

// RouteLayer is [route]: the concatenation of earlier layers' outputs along channels.
type RouteLayer struct {
	sec  *Section
	From []int // absolute layer indices
	C    int
}

// ShortcutLayer is [shortcut]: the previous output plus layer From's output.
type ShortcutLayer struct {
	sec  *Section
	From int // absolute index
	C    int
}

// UpsampleLayer is [upsample].
type UpsampleLayer struct {
	sec       *Section
	C, Stride int
}

// YOLOLayer is [yolo]: a detection head on the previous layer's output.
type YOLOLayer struct {
	sec  *Section
	C    int
	Head *Head
}

func (l *ConvLayer) Section() *Section     { return l.sec }
func (l *MaxPoolLayer) Section() *Section  { return l.sec }
func (l *RouteLayer) Section() *Section    { return l.sec }
func (l *ShortcutLayer) Section() *Section { return l.sec }
func (l *UpsampleLayer) Section() *Section { return l.sec }
func (l *YOLOLayer) Section() *Section     { return l.sec }

func (l *ConvLayer) OutChannels() int     { return l.Filters }
func (l *MaxPoolLayer) OutChannels() int  { return l.C }
func (l *RouteLayer) OutChannels() int    { return l.C }
func (l *ShortcutLayer) OutChannels() int { return l.C }
func (l *UpsampleLayer) OutChannels() int { return l.C }
func (l *YOLOLayer) OutChannels() int     { return l.C }

// netTrainingKeys are [net] keys that describe darknet's own training
// (dettrain takes these from its YAML config): read and ignored.
var netTrainingKeys = strings.Fields(`batch subdivisions momentum decay angle saturation exposure hue learning_rate
burn_in max_batches policy steps scales mosaic mixup flip letter_box blur gaussian_noise max_chart_loss
adam B1 B2 eps cutmix track augment_speed sequential_subdivisions time_steps power label_smooth_eps`)

// yoloTrainingKeys are [yolo] keys of darknet's loss variants; dettrain
// trains with GluonCV's loss (freebies.md), so they are read and ignored.
var yoloTrainingKeys = strings.Fields(`jitter random truth_thresh iou_normalizer cls_normalizer iou_loss iou_thresh
nms_kind beta_nms max_delta counters_per_class resize obj_normalizer delta_normalizer uc_normalizer`)

// NewNetwork builds the layers of cfg for a data set of classes classes
// (0 keeps the cfg's own class count). Each [yolo] head's class count and the
// filters of the convolution in front of it are set to fit
// (len(mask)*(5+classes)); every other mismatch is an error naming the line.
func NewNetwork(cfg *Cfg, classes int) (*Network, error) {
	net := &Network{Cfg: cfg}
	s := cfg.Net
	ch, err := s.Int("channels", 3)
	if err != nil {
		return nil, err
	}
	s.Ignore("width", "height")
	s.Ignore(netTrainingKeys...)
	if err := s.Unused(); err != nil {
		return nil, err
	}
	net.Channels = ch
	// Adapt the heads to the class count first, so that conv shapes follow.
	for i, sec := range cfg.Layers {
		if sec.Type != "yolo" {
			continue
		}
		c, err := sec.Int("classes", 80)
		if err != nil {
			return nil, err
		}
		if classes > 0 {
			c = classes
			sec.Set("classes", fmt.Sprint(c))
		}
		mask, err := sec.Ints("mask")
		if err != nil {
			return nil, err
		}
		if i == 0 || cfg.Layers[i-1].Type != "convolutional" {
			return nil, sec.errf(0, "a [yolo] layer must follow a [convolutional] layer")
		}
		nm := len(mask)
		if nm == 0 {
			n, err := sec.Int("num", 1)
			if err != nil {
				return nil, err
			}
			nm = n
		}
		prev := cfg.Layers[i-1]
		want := nm * (5 + c)
		if classes > 0 {
			prev.Set("filters", fmt.Sprint(want))
		} else if f, _ := prev.Int("filters", 1); f != want {
			return nil, prev.errf(0, "filters=%d but the [yolo] layer at line %d needs %d for %d classes", f, sec.Line, want, c)
		}
	}
	in := ch
	outs := make([]int, 0, len(cfg.Layers))
	abs := func(sec *Section, idx, at int) (int, error) {
		if idx < 0 {
			idx += at
		}
		if idx < 0 || idx >= at {
			return 0, sec.errf(0, "refers to layer %d, which is not an earlier layer", idx)
		}
		return idx, nil
	}
	for i, sec := range cfg.Layers {
		var l Layer
		switch sec.Type {
		case "convolutional":
			cl, err := newConv(sec, in)
			if err != nil {
				return nil, err
			}
			l = cl
		case "maxpool":
			size, err := sec.Int("size", 1)
			if err != nil {
				return nil, err
			}
			stride, err := sec.Int("stride", 1)
			if err != nil {
				return nil, err
			}
			pad, err := sec.Int("padding", size-1)
			if err != nil {
				return nil, err
			}
			if size < 1 || stride < 1 || pad < 0 {
				return nil, sec.errf(0, "size=%d stride=%d padding=%d: must be positive", size, stride, pad)
			}
			l = &MaxPoolLayer{sec: sec, C: in, Size: size, Stride: stride, Padding: pad}
		case "route":
			idx, err := sec.Ints("layers")
			if err != nil {
				return nil, err
			}
			if len(idx) == 0 {
				return nil, sec.errf(0, "layers= is required")
			}
			r := &RouteLayer{sec: sec}
			for _, v := range idx {
				a, err := abs(sec, v, i)
				if err != nil {
					return nil, err
				}
				r.From = append(r.From, a)
				r.C += outs[a]
			}
			l = r
		case "shortcut":
			from, err := sec.Int("from", 0)
			if err != nil {
				return nil, err
			}
			a, err := abs(sec, from, i)
			if err != nil {
				return nil, err
			}
			if act := sec.Str("activation", "linear"); act != "linear" {
				return nil, sec.errf(0, "activation=%s: only linear shortcuts are supported", act)
			}
			if outs[a] != in {
				return nil, sec.errf(0, "from=%d has %d channels, the previous layer %d", from, outs[a], in)
			}
			l = &ShortcutLayer{sec: sec, From: a, C: in}
		case "upsample":
			st, err := sec.Int("stride", 2)
			if err != nil {
				return nil, err
			}
			if st < 1 {
				return nil, sec.errf(0, "stride=%d must be >= 1", st)
			}
			l = &UpsampleLayer{sec: sec, C: in, Stride: st}
		case "yolo":
			y, err := newYOLO(sec, in)
			if err != nil {
				return nil, err
			}
			net.Heads = append(net.Heads, y.Head)
			l = y
		default:
			return nil, sec.errf(0, "unsupported layer type [%s] (supported: convolutional, maxpool, route, shortcut, upsample, yolo)", sec.Type)
		}
		if err := sec.Unused(); err != nil {
			return nil, err
		}
		net.Layers = append(net.Layers, l)
		in = l.OutChannels()
		outs = append(outs, in)
	}
	if len(net.Heads) == 0 {
		return nil, &CfgError{cfg.File, 0, "no [yolo] layer: not a detector"}
	}
	net.Classes = net.Heads[0].Classes
	for _, h := range net.Heads {
		if h.Classes != net.Classes {
			return nil, &CfgError{cfg.File, 0, "[yolo] layers disagree on classes"}
		}
	}
	return net, nil
}

// ints reads integer keys of one section, keeping the first error.
type ints struct {
	sec *Section
	err error
}

func (r *ints) get(key string, def int) int {
	v, err := r.sec.Int(key, def)
	if r.err == nil {
		r.err = err
	}
	return v
}

func newConv(sec *Section, in int) (*ConvLayer, error) {
	r := &ints{sec: sec}
	l := &ConvLayer{sec: sec, In: in, Filters: r.get("filters", 1), Size: r.get("size", 1), Stride: r.get("stride", 1), G: r.get("groups", 1)}
	l.BatchNorm = r.get("batch_normalize", 0) != 0
	l.Pad = r.get("padding", 0)
	if r.get("pad", 0) != 0 {
		l.Pad = l.Size / 2
	}
	if r.err != nil {
		return nil, r.err
	}
	a, ok := ParseActivation(sec.Str("activation", "logistic"))
	if !ok {
		return nil, sec.errf(sec.opts["activation"].line, "activation=%s is not supported (supported: linear, leaky, relu, logistic)", sec.opts["activation"].value)
	}
	l.Act = a
	switch {
	case l.Filters < 1 || l.Size < 1 || l.Stride < 1 || l.G < 1 || l.Pad < 0:
		return nil, sec.errf(0, "filters=%d size=%d stride=%d groups=%d padding=%d: must be positive", l.Filters, l.Size, l.Stride, l.G, l.Pad)
	case in%l.G != 0 || l.Filters%l.G != 0:
		return nil, sec.errf(0, "groups=%d does not divide the %d input channels and %d filters", l.G, in, l.Filters)
	}
	l.W = tensor.New(tensor.WithShape(l.Filters, in/l.G, l.Size, l.Size), tensor.Of(tensor.Float32))
	l.Bias = tensor.New(tensor.WithShape(l.Filters), tensor.Of(tensor.Float32))
	if l.BatchNorm {
		l.Gamma = tensor.New(tensor.WithShape(l.Filters), tensor.Of(tensor.Float32))
		l.BN = &BNState{Mean: make([]float32, l.Filters), Var: make([]float32, l.Filters), Momentum: 0.1, Eps: 1e-5}
	}
	return l, nil
}

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
	case sxy != 1:
		return nil, sec.errf(0, "scale_x_y=%v is not supported yet (only 1)", sxy)
	case classes < 1:
		return nil, sec.errf(0, "classes=%d must be >= 1", classes)
	}
	if len(mask) == 0 {
		for i := 0; i < num; i++ {
			mask = append(mask, i)
		}
	}
	h := &Head{Classes: classes, Mask: mask, IgnoreThresh: ig}
	for i := 0; i+1 < len(an); i += 2 {
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

// Init sets darknet's initial values: conv weights uniform in
// [-s, s] with s = sqrt(2/(size*size*in/groups)) (make_convolutional_layer),
// biases and beta 0, gamma 1, running mean 0 and variance 1.
func (n *Network) Init(seed int64) {
	r := rand.New(rand.NewSource(seed))
	for _, l := range n.Layers {
		c, ok := l.(*ConvLayer)
		if !ok {
			continue
		}
		s := math.Sqrt(2 / float64(c.Size*c.Size*c.In/c.G))
		for i := range f32s(c.W) {
			f32s(c.W)[i] = float32(s * (2*r.Float64() - 1))
		}
		clear(f32s(c.Bias))
		if c.BatchNorm {
			for i := range f32s(c.Gamma) {
				f32s(c.Gamma)[i] = 1
			}
			clear(c.BN.Mean)
			for i := range c.BN.Var {
				c.BN.Var[i] = 1
			}
		}
	}
}

// Param is a learnable tensor and whether weight decay applies to it
// (conv weights only; not BN gamma/beta nor biases).
type Param struct {
	Name  string
	Value *tensor.Dense
	Decay bool
}

// Params lists the learnable tensors in a fixed order (the order of graph
// gradients and of optimizer state).
func (n *Network) Params() []Param {
	var ps []Param
	for i, l := range n.Layers {
		c, ok := l.(*ConvLayer)
		if !ok {
			continue
		}
		ps = append(ps, Param{fmt.Sprintf("%d.weight", i), c.W, true})
		if c.BatchNorm {
			ps = append(ps, Param{fmt.Sprintf("%d.gamma", i), c.Gamma, false})
		}
		ps = append(ps, Param{fmt.Sprintf("%d.bias", i), c.Bias, false})
	}
	return ps
}
