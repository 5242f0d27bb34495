package config

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// problem is one broken rule, attached to the key it is reported on.
type problem struct {
	key string // "section.key"
	msg string // "train.lr = -1: must be > 0"
}

// Validate checks every range and cross-field rule and returns nil or one
// *Error listing all the problems, each naming the key, its value and the
// rule, e.g. `train.lr = -1: must be > 0`. It does not touch the file
// system.
func (c *Config) Validate() error {
	ps := c.check()
	if len(ps) == 0 {
		return nil
	}
	e := &Error{}
	for _, p := range ps {
		e.Problems = append(e.Problems, p.msg)
	}
	return e
}

// check returns the broken rules in Config order.
func (c *Config) check() []problem {
	var ps []problem
	bad := func(key string, rule string, args ...any) {
		ps = append(ps, problem{key, key + " = " + c.show(key) + ": " + fmt.Sprintf(rule, args...)})
	}
	required := func(key, val, what string) {
		if strings.TrimSpace(val) == "" {
			bad(key, "required (%s)", what)
		}
	}
	notEmpty := func(key, val string) {
		if strings.TrimSpace(val) == "" {
			bad(key, "must not be empty")
		}
	}
	intRange := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(key, "must be between %d and %d", lo, hi)
		}
	}
	atLeast := func(key string, v, lo int) {
		if v < lo {
			bad(key, "must be >= %d", lo)
		}
	}
	// floatOK reports (and returns false) for NaN and infinities, which
	// would pass some comparisons below.
	floatOK := func(key string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad(key, "must be a finite number")
			return false
		}
		return true
	}
	size := func(key string, s Size) {
		if s.IsZero() {
			return // the cfg's own [net] width x height
		}
		for _, v := range []int{s.W, s.H} {
			switch {
			case v < 32 || v > 4096:
				bad(key, "each side must be between 32 and 4096 (or 0 for the cfg's size)")
				return
			case v%32 != 0:
				bad(key, "each side must be a multiple of 32")
				return
			}
		}
	}
	split := func(key, v string) {
		if strings.HasSuffix(v, ".txt") {
			bad(key, "must be a split name, without .txt (the file is <splits>/%s)", v)
		}
	}

	m := &c.Model
	required("model.cfg", m.Cfg, "a darknet .cfg file")
	size("model.size", m.Size)
	if floatOK("model.bn_eps", m.BNEps) && !(m.BNEps > 0 && m.BNEps <= 0.01) {
		bad("model.bn_eps", "must be > 0 and <= 0.01")
	}
	if m.Anchors != "" && m.Anchors != "auto" {
		bad("model.anchors", `must be "" (the cfg's anchors) or "auto"`)
	}
	atLeast("model.partial", m.Partial, 0)

	d := &c.Data
	switch d.Format {
	case "voc", "coco", "yolo":
	default:
		bad("data.format", `must be "voc", "coco" or "yolo"`)
	}
	required("data.root", d.Root, "the data set folder")
	notEmpty("data.images", d.Images)
	notEmpty("data.annotations", d.Annotations)
	notEmpty("data.splits", d.Splits)
	notEmpty("data.train", d.Train)
	split("data.train", d.Train)
	split("data.val", d.Val)
	notEmpty("data.test", d.Test)
	split("data.test", d.Test)
	switch {
	case len(d.Names) == 0 && d.NamesFile == "" && d.Format != "coco":
		bad("data.names", "required unless data.names_file is set (or data.format is coco)")
	case len(d.Names) > 0 && d.NamesFile != "":
		bad("data.names_file", "set only one of data.names and data.names_file")
	}
	first := map[string]int{}
	for i, n := range d.Names {
		key := fmt.Sprintf("data.names[%d]", i)
		if strings.TrimSpace(n) == "" {
			ps = append(ps, problem{"data.names", fmt.Sprintf("%s = %q: must not be empty", key, n)})
			continue
		}
		if j, dup := first[n]; dup {
			ps = append(ps, problem{"data.names", fmt.Sprintf("%s = %q: duplicate of data.names[%d]", key, n, j)})
			continue
		}
		first[n] = i
	}
	intRange("data.workers", d.Workers, 0, 64)
	if floatOK("data.val_fraction", d.ValFraction) && !(d.ValFraction >= 0 && d.ValFraction < 1) {
		bad("data.val_fraction", "must be in [0, 1)")
	}

	t := &c.Train
	atLeast("train.epochs", t.Epochs, 1)
	intRange("train.batch", t.Batch, 1, 1024)
	if floatOK("train.lr", t.LR) {
		switch {
		case !(t.LR > 0):
			bad("train.lr", "must be > 0")
		case t.LR > 10:
			bad("train.lr", "must be <= 10")
		}
	}
	if floatOK("train.momentum", t.Momentum) && (t.Momentum < 0 || t.Momentum >= 1) {
		bad("train.momentum", "must be >= 0 and < 1")
	}
	if floatOK("train.weight_decay", t.WeightDecay) && t.WeightDecay < 0 {
		bad("train.weight_decay", "must be >= 0")
	}
	switch t.Schedule {
	case "step", "cosine", "constant":
	default:
		bad("train.schedule", `must be "step", "cosine" or "constant"`)
	}
	stepsOK := true
	for i, s := range t.Steps {
		if math.IsNaN(s) || s <= 0 || s >= 1 {
			bad("train.steps", "each step must be a fraction of the run, > 0 and < 1")
			stepsOK = false
			break
		}
		if i > 0 && s <= t.Steps[i-1] {
			bad("train.steps", "must be strictly increasing")
			stepsOK = false
			break
		}
	}
	warmOK := floatOK("train.warmup_epochs", t.WarmupEpochs)
	if warmOK {
		switch {
		case t.WarmupEpochs < 0:
			bad("train.warmup_epochs", "must be >= 0")
			warmOK = false
		case t.Epochs >= 1 && t.WarmupEpochs >= float64(t.Epochs):
			bad("train.warmup_epochs", "must be < train.epochs (%d)", t.Epochs)
			warmOK = false
		}
	}
	if t.Schedule == "step" && stepsOK && warmOK && len(t.Steps) > 0 && t.Epochs >= 1 {
		if w := t.WarmupEpochs / float64(t.Epochs); t.Steps[0] <= w {
			bad("train.steps", "the first step must come after the warmup (train.warmup_epochs / train.epochs = %s)", fmtFloat(w))
		}
	}
	if floatOK("train.final_lr", t.FinalLR) {
		switch {
		case t.FinalLR < 0:
			bad("train.final_lr", "must be >= 0")
		case t.Schedule == "cosine" && t.FinalLR > t.LR:
			bad("train.final_lr", "must be <= train.lr (%s) for the cosine schedule", fmtFloat(t.LR))
		}
	}
	atLeast("train.eval_interval", t.EvalInterval, 0)
	atLeast("train.log_interval", t.LogInterval, 1)
	if c.Model.BN != "local" && c.Model.BN != "sync" {
		bad("model.bn", `must be "local" or "sync"`)
	}
	intRange("train.replicas", t.Replicas, 1, 64)
	if t.Replicas >= 1 && t.Batch >= 1 && t.Batch%t.Replicas != 0 {
		bad("train.replicas", "train.batch (%d) must be divisible by the number of replicas", t.Batch)
	}
	if floatOK("train.ema_decay", t.EMADecay) && (t.EMADecay <= 0 || t.EMADecay >= 1) {
		bad("train.ema_decay", "must be > 0 and < 1")
	}
	if floatOK("train.ema_tau", t.EMATau) && t.EMATau <= 0 {
		bad("train.ema_tau", "must be > 0")
	}
	if t.OnNaN != "stop" && t.OnNaN != "skip" && t.OnNaN != "rollback" {
		bad("train.on_nan", `must be "stop", "skip" or "rollback"`)
	}
	switch t.LabelSmoothing {
	case "none", "gluoncv", "darknet":
	default:
		bad("train.label_smoothing", `must be "none", "gluoncv" or "darknet"`)
	}
	if floatOK("train.smoothing_eps", t.SmoothingEps) && (t.SmoothingEps < 0 || t.SmoothingEps >= 1) {
		bad("train.smoothing_eps", "must be >= 0 and < 1")
	}
	if len(t.Shapes) == 0 {
		bad("train.shapes", "must list at least one size")
	}
	for _, v := range t.Shapes {
		if v < 32 || v > 4096 || v%32 != 0 {
			bad("train.shapes", "%d: each size must be a multiple of 32 between 32 and 4096", v)
			break
		}
	}
	atLeast("train.shape_every", t.ShapeEvery, 1)
	atLeast("train.shape_graphs", t.ShapeGraphs, 1)
	for _, ab := range []struct {
		key string
		v   float64
	}{{"train.mixup_alpha", t.MixupAlpha}, {"train.mixup_beta", t.MixupBeta}} {
		if floatOK(ab.key, ab.v) && ab.v <= 0 {
			bad(ab.key, "must be > 0")
		}
	}
	atLeast("train.mixup_off_epochs", t.MixupOffEpochs, 0)
	atLeast("train.close_mosaic", t.CloseMosaic, 0)
	if floatOK("train.mixup_off_fraction", t.MixupOffFraction) && (t.MixupOffFraction < 0 || t.MixupOffFraction >= 1) {
		bad("train.mixup_off_fraction", "must be >= 0 and < 1")
	}
	atLeast("train.keep_checkpoints", t.KeepCheckpoints, 1)
	atLeast("train.threads", t.Threads, 0)
	if _, err := ParseDevice(t.Device); err != nil {
		bad("train.device", "%v", err)
	}
	if t.AMP {
		if dev, err := ParseDevice(t.Device); err == nil && dev < 0 {
			bad("train.amp", `mixed precision runs on the GPU only: needs train.device "cuda"`)
		}
	}
	for i, d := range t.Devices {
		if d < 0 || d > 63 {
			ps = append(ps, problem{"train.devices", fmt.Sprintf("train.devices[%d] = %d: must be a GPU ordinal between 0 and 63", i, d)})
		}
	}
	if len(t.Devices) > 0 {
		if dev, err := ParseDevice(t.Device); err == nil && dev < 0 {
			bad("train.devices", `needs train.device "cuda"`)
		}
		if len(t.Devices) > 1 && len(t.Devices) != t.Replicas {
			bad("train.devices", "lists %d GPUs but train.replicas is %d: one replica per GPU (set train.replicas: %d)", len(t.Devices), t.Replicas, len(t.Devices))
		}
	}

	e := &c.Eval
	size("eval.size", e.Size)
	if floatOK("eval.conf", e.Conf) && (e.Conf < 0 || e.Conf >= 1) {
		bad("eval.conf", "must be >= 0 and < 1")
	}
	if floatOK("eval.nms", e.NMS) && (e.NMS <= 0 || e.NMS > 1) {
		bad("eval.nms", "must be > 0 and <= 1")
	}
	atLeast("eval.max_dets", e.MaxDets, 1)
	notEmpty("eval.split", e.Split)
	split("eval.split", e.Split)
	switch e.Metric {
	case "voc07", "voc", "coco":
	default:
		bad("eval.metric", `must be "voc07", "voc" or "coco"`)
	}

	notEmpty("output.dir", c.Output.Dir)
	return ps
}

// show formats the value of key for a message: strings quoted, lists in
// flow style.
func (c *Config) show(key string) string {
	f := fieldsBy[key]
	v := reflect.ValueOf(c).Elem().FieldByIndex(f.index)
	return showValue(v)
}

func showValue(v reflect.Value) string {
	if s, ok := v.Interface().(Size); ok {
		return s.String()
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Float64:
		return fmtFloat(v.Float())
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = showValue(v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// YAML returns c as a YAML document, every key present, in the layout Load
// reads: Load of the output (from any folder, when the paths are absolute as
// Load makes them) yields the same Config. Used by `dettrain config` and for
// the run's config.yaml.
func (c *Config) YAML() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	var sec *yaml.Node
	for _, f := range fields {
		if sec == nil || root.Content[len(root.Content)-2].Value != f.section {
			sec = &yaml.Node{Kind: yaml.MappingNode}
			root.Content = append(root.Content, strNode(f.section), sec)
		}
		v := reflect.ValueOf(c).Elem().FieldByIndex(f.index)
		val, err := valueNode(v)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", f.name(), err)
		}
		sec.Content = append(sec.Content, strNode(f.key), val)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("config: encoding YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: encoding YAML: %w", err)
	}
	return buf.Bytes(), nil
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func valueNode(v reflect.Value) (*yaml.Node, error) {
	if s, ok := v.Interface().(Size); ok {
		if s.W == s.H {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(s.W)}, nil
		}
		return strNode(s.String()), nil
	}
	switch v.Kind() {
	case reflect.String:
		return strNode(v.String()), nil
	case reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool())}, nil
	case reflect.Int, reflect.Int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}, nil
	case reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v cannot be written back", f)
		}
		s := fmtFloat(f)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}, nil
	case reflect.Slice:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for i := range v.Len() {
			item, err := valueNode(v.Index(i))
			if err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, item)
		}
		return seq, nil
	}
	return nil, fmt.Errorf("unsupported type %s", v.Type())
}

// ParseDevice reads train.device: "cpu" is -1, "cuda" 0, "cuda:N" N.
func ParseDevice(s string) (int, error) {
	switch {
	case s == "cpu":
		return -1, nil
	case s == "cuda" || s == "gpu":
		return 0, nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[5:])
		if err == nil && n >= 0 && n < 64 {
			return n, nil
		}
	}
	return 0, fmt.Errorf(`must be "cpu", "cuda" or "cuda:N" (N a GPU ordinal)`)
}
