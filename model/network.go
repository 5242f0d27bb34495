package model

import (
	"fmt"
	"math"
	"math/rand"
	"strings"

	G "gorgonia.org/gorgonia"
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
//
// Each layer type lives in the file of its op (ConvLayer in conv.go,
// MaxPoolLayer in pool.go, ...) with its parser (layerTypes below), the node
// it adds to a graph (graph.go calls node) and darknet's size rule (extent).
type Layer interface {
	Section() *Section
	OutChannels() int
	// node adds the layer to the graph b is building, as layer i: its input
	// is b.cur, the previous layer's output (b.outs: every earlier one's).
	node(b *builder, i int) (*G.Node, error)
	// extent is the output's size along one axis (width or height) for an
	// input of cur pixels, out holding the earlier layers' (darknet's size
	// rules, which act on both axes alike); below 1 when the layer cannot
	// take that size.
	extent(cur int, out []int) int
}

// layerCtx is what a section's parser sees.
type layerCtx struct {
	sec  *Section
	at   int     // the layer's index
	in   int     // the previous layer's output channels
	outs []int   // every earlier layer's output channels
	abs  absFunc // an earlier layer's absolute index from a key's value
	prev Layer   // the previous layer (nil for the first)
}

// layerTypes are the cfg sections NewNetwork builds, in the order the
// error for an unsupported one lists them; each parser is in its op's file.
var layerTypes = []struct {
	name  string
	parse func(c layerCtx) (Layer, error)
}{
	{"convolutional", parseConv},
	{"maxpool", parseMaxPool},
	{"avgpool", parseAvgPool},
	{"route", parseRoute},
	{"shortcut", parseShortcut},
	{"scale_channels", parseScaleChannels},
	{"upsample", parseUpsample},
	{"dropout", parseDropout},
	{"yolo", parseYOLO},
}

// supportedLayers lists the section types NewNetwork builds, for error messages.
var supportedLayers = func() string {
	var names []string
	for _, t := range layerTypes {
		names = append(names, t.name)
	}
	return strings.Join(names, ", ")
}()

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
		var parse func(layerCtx) (Layer, error)
		for _, t := range layerTypes {
			if t.name == sec.Type {
				parse = t.parse
			}
		}
		if parse == nil {
			return nil, sec.errf(0, "unsupported layer type [%s] (supported: %s)", sec.Type, supportedLayers)
		}
		var prev Layer
		if i > 0 {
			prev = net.Layers[i-1]
		}
		l, err := parse(layerCtx{sec: sec, at: i, in: in, outs: outs, abs: abs, prev: prev})
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
		if y, ok := l.(*YOLOLayer); ok {
			net.Heads = append(net.Heads, y.Head)
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
