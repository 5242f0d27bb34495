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
	// Width and Height are [net]'s input size (0 when absent); graphs may use
	// any size, this is the one the model was made for.
	Width, Height int
	Classes       int
	Layers        []Layer
	Heads         []*Head // one per [yolo] layer, in order
	// seed seeds dropout masks (set by Init); graphs counts the dropout ops made.
	seed, graphs int64
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

// AvgPoolLayer is [avgpool]: darknet's global average pooling, (N,C,H,W) -> (N,C,1,1).
type AvgPoolLayer struct {
	sec *Section
	C   int
}

// RouteLayer is [route]: the concatenation of earlier layers' outputs along
// channels. With groups=G and group_id=k it takes from each input only its
// k-th of G equal channel groups (darknet's route groups, YOLOv4-tiny's CSP).
type RouteLayer struct {
	sec             *Section
	From            []int // absolute layer indices
	Groups, GroupID int
	C               int
}

// ShortcutLayer is [shortcut]: act(previous output + the outputs of the From layers).
type ShortcutLayer struct {
	sec  *Section
	From []int // absolute indices
	C    int
	Act  Activation
}

// ScaleChannelsLayer is [scale_channels]: act(out[From] * previous), the
// previous output being (N,C,1,1) (squeeze-and-excitation, EfficientNet).
type ScaleChannelsLayer struct {
	sec  *Section
	From int // absolute index
	C    int
	Act  Activation
}

// UpsampleLayer is [upsample].
type UpsampleLayer struct {
	sec       *Section
	C, Stride int
}

// DropoutLayer is [dropout]: in a training graph each element is zeroed with
// probability P and the others scaled by 1/(1-P) (darknet's dropout_layer.c);
// in an inference graph it is the identity.
type DropoutLayer struct {
	sec *Section
	C   int
	P   float64
}

// YOLOLayer is [yolo]: a detection head on the previous layer's output.
type YOLOLayer struct {
	sec  *Section
	C    int
	Head *Head
}

func (l *ConvLayer) Section() *Section          { return l.sec }
func (l *MaxPoolLayer) Section() *Section       { return l.sec }
func (l *AvgPoolLayer) Section() *Section       { return l.sec }
func (l *RouteLayer) Section() *Section         { return l.sec }
func (l *ShortcutLayer) Section() *Section      { return l.sec }
func (l *ScaleChannelsLayer) Section() *Section { return l.sec }
func (l *UpsampleLayer) Section() *Section      { return l.sec }
func (l *DropoutLayer) Section() *Section       { return l.sec }
func (l *YOLOLayer) Section() *Section          { return l.sec }

func (l *ConvLayer) OutChannels() int          { return l.Filters }
func (l *MaxPoolLayer) OutChannels() int       { return l.C }
func (l *AvgPoolLayer) OutChannels() int       { return l.C }
func (l *RouteLayer) OutChannels() int         { return l.C }
func (l *ShortcutLayer) OutChannels() int      { return l.C }
func (l *ScaleChannelsLayer) OutChannels() int { return l.C }
func (l *UpsampleLayer) OutChannels() int      { return l.C }
func (l *DropoutLayer) OutChannels() int       { return l.C }
func (l *YOLOLayer) OutChannels() int          { return l.C }

// netTrainingKeys are [net] keys that describe darknet's own training
// (dettrain takes these from its YAML config): read and ignored.
var netTrainingKeys = strings.Fields(`batch subdivisions momentum decay angle saturation exposure hue learning_rate
burn_in max_batches policy steps scales mosaic mixup flip letter_box blur gaussian_noise max_chart_loss
adam B1 B2 eps cutmix track augment_speed sequential_subdivisions time_steps power label_smooth_eps
mosaic_bound ema_alpha dynamic_minibatch loss_scale adversarial_lr attention optimized_memory
workspace_size_limit_MB gamma step scale`)

// yoloTrainingKeys are [yolo] keys of darknet's loss variants; dettrain
// trains with GluonCV's loss (docs/FREEBIES.md), so they are read and ignored.
var yoloTrainingKeys = strings.Fields(`jitter random truth_thresh iou_normalizer cls_normalizer iou_loss iou_thresh
nms_kind beta_nms max_delta counters_per_class resize obj_normalizer delta_normalizer uc_normalizer
label_smooth_eps objectness_smooth focal_loss iou_thresh_kind`)

// Limits that keep a malformed cfg from allocating without bound. The
// largest published darknet models stay far below them (YOLOv4: 64M floats in
// all, 4.7M in its largest layer, 1024 filters).
const (
	maxChannels    = 1 << 16
	maxKernel      = 1 << 10
	maxLayerFloats = 1 << 24
	maxNetFloats   = 1 << 28
)

// supportedLayers lists the section types NewNetwork builds, for error messages.
const supportedLayers = "convolutional, maxpool, avgpool, route, shortcut, scale_channels, upsample, dropout, yolo"

// NewNetwork builds the layers of cfg for a data set of classes classes
// (0 keeps the cfg's own class count). Each [yolo] head's class count and the
// filters of the convolution in front of it are set to fit
// (len(mask)*(5+classes)); every other mismatch is an error naming the line.
func NewNetwork(cfg *Cfg, classes int) (*Network, error) {
	net := &Network{Cfg: cfg}
	s := cfg.Net
	r := &ints{sec: s}
	ch := r.get("channels", 3)
	net.Width, net.Height = r.get("width", 0), r.get("height", 0)
	if r.err != nil {
		return nil, r.err
	}
	s.Ignore(netTrainingKeys...)
	if err := s.Unused(); err != nil {
		return nil, err
	}
	if ch < 1 {
		return nil, s.errf(s.opts["channels"].line, "channels=%d must be >= 1", ch)
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
	floats := 0
	outs := make([]int, 0, len(cfg.Layers))
	abs := func(sec *Section, key string, idx, at int) (int, error) {
		a := idx
		if a < 0 {
			a += at
		}
		if a < 0 || a >= at {
			return 0, sec.errf(sec.opts[key].line, "%s: %d refers to layer %d, which is not an earlier layer (this is layer %d)", key, idx, a, at)
		}
		return a, nil
	}
	for i, sec := range cfg.Layers {
		var l Layer
		var err error
		switch sec.Type {
		case "convolutional":
			l, err = newConv(sec, in)
		case "maxpool":
			l, err = newMaxPool(sec, in)
		case "avgpool":
			l = &AvgPoolLayer{sec: sec, C: in}
		case "route":
			l, err = newRoute(sec, i, outs, abs)
		case "shortcut":
			l, err = newShortcut(sec, i, in, outs, abs)
		case "scale_channels":
			var sc *ScaleChannelsLayer
			if sc, err = newScaleChannels(sec, i, in, outs, abs); err == nil {
				if _, ok := net.Layers[i-1].(*YOLOLayer); ok {
					err = sec.errf(0, "the previous layer is a [yolo] head")
				}
			}
			l = sc
		case "upsample":
			st, e := sec.Int("stride", 2)
			if err = e; err == nil && (st < 1 || st > 64) {
				err = sec.errf(sec.opts["stride"].line, "stride=%d must be between 1 and 64 (darknet's negative stride, downsampling, is not supported)", st)
			}
			l = &UpsampleLayer{sec: sec, C: in, Stride: st}
		case "dropout":
			p, e := sec.Float("probability", 0.5)
			if err = e; err == nil && !(p >= 0 && p < 1) {
				err = sec.errf(sec.opts["probability"].line, "probability=%v must be in [0, 1)", p)
			}
			l = &DropoutLayer{sec: sec, C: in, P: p}
		case "yolo":
			var y *YOLOLayer
			if y, err = newYOLO(sec, in); err == nil {
				net.Heads = append(net.Heads, y.Head)
			}
			l = y
		default:
			return nil, sec.errf(0, "unsupported layer type [%s] (supported: %s)", sec.Type, supportedLayers)
		}
		if err != nil {
			return nil, err
		}
		if err := sec.Unused(); err != nil {
			return nil, err
		}
		if c, ok := l.(*ConvLayer); ok {
			if floats += convFloats(c); floats > maxNetFloats {
				return nil, sec.errf(0, "the network has more than %d weights", maxNetFloats)
			}
		}
		if l.OutChannels() > maxChannels {
			return nil, sec.errf(0, "%d output channels: more than %d", l.OutChannels(), maxChannels)
		}
		net.Layers = append(net.Layers, l)
		in = l.OutChannels()
		outs = append(outs, in)
	}
	if len(net.Heads) == 0 {
		return nil, &CfgError{cfg.File, 0, "no [yolo] layer: not a detector"}
	}
	net.Classes = net.Heads[0].Classes
	for _, l := range net.Layers {
		if y, ok := l.(*YOLOLayer); ok && y.Head.Classes != net.Classes {
			return nil, y.sec.errf(0, "classes=%d but the first [yolo] layer has %d", y.Head.Classes, net.Classes)
		}
	}
	return net, nil
}

type absFunc func(sec *Section, key string, idx, at int) (int, error)

func newMaxPool(sec *Section, in int) (*MaxPoolLayer, error) {
	// darknet's parse_maxpool: stride 1 by default, size = stride, padding = size-1.
	r := &ints{sec: sec}
	stride := r.get("stride", 1)
	size := r.get("size", stride)
	pad := r.get("padding", size-1)
	if r.err != nil {
		return nil, r.err
	}
	if size < 1 || stride < 1 || pad < 0 || size > maxKernel || stride > maxKernel || pad > maxKernel {
		return nil, sec.errf(0, "size=%d stride=%d padding=%d: size and stride must be between 1 and %d, padding between 0 and %[4]d", size, stride, pad, maxKernel)
	}
	return &MaxPoolLayer{sec: sec, C: in, Size: size, Stride: stride, Padding: pad}, nil
}

func newRoute(sec *Section, at int, outs []int, abs absFunc) (*RouteLayer, error) {
	idx, err := sec.Ints("layers")
	if err != nil {
		return nil, err
	}
	if len(idx) == 0 {
		return nil, sec.errf(0, "layers= is required")
	}
	r := &ints{sec: sec}
	l := &RouteLayer{sec: sec, Groups: r.get("groups", 1), GroupID: r.get("group_id", 0)}
	if r.err != nil {
		return nil, r.err
	}
	if l.Groups < 1 || l.GroupID < 0 || l.GroupID >= l.Groups {
		return nil, sec.errf(0, "groups=%d group_id=%d: need groups >= 1 and 0 <= group_id < groups", l.Groups, l.GroupID)
	}
	for _, v := range idx {
		a, err := abs(sec, "layers", v, at)
		if err != nil {
			return nil, err
		}
		if outs[a]%l.Groups != 0 {
			return nil, sec.errf(sec.opts["groups"].line, "groups=%d does not divide the %d channels of layer %d", l.Groups, outs[a], a)
		}
		l.From = append(l.From, a)
		l.C += outs[a] / l.Groups
	}
	return l, nil
}

func newShortcut(sec *Section, at, in int, outs []int, abs absFunc) (*ShortcutLayer, error) {
	from, err := sec.Ints("from")
	if err != nil {
		return nil, err
	}
	if len(from) == 0 {
		return nil, sec.errf(0, "from= is required")
	}
	l := &ShortcutLayer{sec: sec, C: in}
	if l.Act, err = activation(sec, "linear"); err != nil {
		return nil, err
	}
	for _, f := range from {
		a, err := abs(sec, "from", f, at)
		if err != nil {
			return nil, err
		}
		if outs[a] != in {
			return nil, sec.errf(sec.opts["from"].line, "from=%d: layer %d has %d channels but the previous layer %d (darknet's channel truncation is not supported)", f, a, outs[a], in)
		}
		l.From = append(l.From, a)
	}
	return l, nil
}

func newScaleChannels(sec *Section, at, in int, outs []int, abs absFunc) (*ScaleChannelsLayer, error) {
	if _, ok := sec.opts["from"]; !ok {
		return nil, sec.errf(0, "from= is required")
	}
	from, err := sec.Int("from", 0)
	if err != nil {
		return nil, err
	}
	a, err := abs(sec, "from", from, at)
	if err != nil {
		return nil, err
	}
	l := &ScaleChannelsLayer{sec: sec, From: a, C: outs[a]}
	if l.Act, err = activation(sec, "linear"); err != nil {
		return nil, err
	}
	if outs[a] != in {
		return nil, sec.errf(sec.opts["from"].line, "from=%d: layer %d has %d channels but the previous layer (the scales) %d", from, a, outs[a], in)
	}
	return l, nil
}

// activation reads activation= (def when absent).
func activation(sec *Section, def string) (Activation, error) {
	a, ok := ParseActivation(sec.Str("activation", def))
	if !ok {
		return 0, sec.errf(sec.opts["activation"].line, "activation=%s is not supported (supported: %s)", sec.opts["activation"].value, activationList)
	}
	return a, nil
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
	a, err := activation(sec, "logistic") // darknet's default for [convolutional]
	if err != nil {
		return nil, err
	}
	l.Act = a
	switch {
	case l.Filters < 1 || l.Size < 1 || l.Stride < 1 || l.G < 1 || l.Pad < 0:
		return nil, sec.errf(0, "filters=%d size=%d stride=%d groups=%d padding=%d: must be positive", l.Filters, l.Size, l.Stride, l.G, l.Pad)
	case l.Filters > maxChannels || l.Size > maxKernel || l.Stride > maxKernel || l.Pad > maxKernel:
		return nil, sec.errf(0, "filters=%d size=%d stride=%d padding=%d: too large (at most %d filters, sizes up to %d)", l.Filters, l.Size, l.Stride, l.Pad, maxChannels, maxKernel)
	case in%l.G != 0 || l.Filters%l.G != 0:
		return nil, sec.errf(0, "groups=%d does not divide the %d input channels and %d filters", l.G, in, l.Filters)
	case l.Filters*(in/l.G)*l.Size*l.Size > maxLayerFloats:
		return nil, sec.errf(0, "%d filters of %dx%dx%d: more than %d weights in one layer", l.Filters, in/l.G, l.Size, l.Size, maxLayerFloats)
	}
	l.W = tensor.New(tensor.WithShape(l.Filters, in/l.G, l.Size, l.Size), tensor.Of(tensor.Float32))
	l.Bias = tensor.New(tensor.WithShape(l.Filters), tensor.Of(tensor.Float32))
	if l.BatchNorm {
		l.Gamma = tensor.New(tensor.WithShape(l.Filters), tensor.Of(tensor.Float32))
		l.BN = &BNState{Mean: make([]float32, l.Filters), Var: make([]float32, l.Filters), Momentum: 0.1, Eps: DefaultBNEps}
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

// Init sets darknet's initial values: conv weights uniform in
// [-s, s] with s = sqrt(2/(size*size*in/groups)) (make_convolutional_layer),
// biases and beta 0, gamma 1, running mean 0 and variance 1. The seed also
// seeds the dropout masks of training graphs.
func (n *Network) Init(seed int64) {
	n.seed = seed
	r := rand.New(rand.NewSource(seed))
	for _, l := range n.Layers {
		if c, ok := l.(*ConvLayer); ok {
			c.init(r)
		}
	}
}

func (c *ConvLayer) init(r *rand.Rand) {
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

// DefaultBNEps is the batch-norm epsilon of a new network: AlexeyAB darknet's
// normalize_cpu, x̂ = (x - mean)/sqrt(var + 1e-5). OpenCV's darknet importer
// uses 1e-6 (darknet_io.cpp setBatchNorm); set that with SetBNEps to
// reproduce OpenCV's outputs exactly.
const DefaultBNEps = 1e-5

// SetBNEps sets the epsilon of every batch-norm layer: x̂ = (x-mean)/sqrt(var+eps).
func (n *Network) SetBNEps(eps float64) {
	for _, l := range n.Layers {
		if c, ok := l.(*ConvLayer); ok && c.BatchNorm {
			c.BN.Eps = eps
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
