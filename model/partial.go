package model

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
)

// LoadPartial loads into the network the convolutions of a darknet .weights
// file that fit it, to fine-tune a pretrained model on other classes. The
// layers it does not load keep their values (those of Init: the
// "re-initialised" heads), and each gets one line on log.
//
// The file's layout is found without any other input:
//
//  1. the file fits this network exactly: every convolution is loaded;
//  2. it fits this network's cfg with another class count (the pretrained
//     model of this cfg, e.g. the 80-class COCO one: the float count is
//     A + B*classes, solved for classes): it is read with that layout, and
//     every convolution whose shape (filters, input channels, size, groups,
//     batch_normalize) is the same here is loaded; the convolutions in front
//     of the [yolo] heads, whose filters follow the class count, are not;
//  3. it holds the first convolutions of this network and ends exactly after
//     one of them (the output of darknet's `partial` command, such as
//     yolov4-tiny.conv.29): those are loaded.
//
// With layers > 0 only layers with an index below layers are loaded
// (darknet's `partial cfg weights out layers`), whichever case applies. Any
// other file is refused, naming its float count and the counts that would fit.
func (n *Network) LoadPartial(path string, layers int, log io.Writer) (PartialResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return PartialResult{}, fmt.Errorf("reading weights: %w", err)
	}
	return n.loadPartial(b, path, layers, log)
}

// PartialResult is what LoadPartial did.
type PartialResult struct {
	Header WeightsHeader
	// Loaded and Skipped are the layer indices of the convolutions loaded
	// and of those left with their values.
	Loaded, Skipped []int
}

func (n *Network) loadPartial(b []byte, path string, layers int, log io.Writer) (PartialResult, error) {
	h, err := readHeader(bytes.NewReader(b), path)
	res := PartialResult{Header: h}
	if err != nil {
		return res, err
	}
	body := b[h.Size():]
	if len(body)%4 != 0 {
		return res, weightsErr(path, "%d bytes after its %d-byte header: not a whole number of floats", len(body), h.Size())
	}
	floats := len(body) / 4
	limit := len(n.Layers)
	if layers > 0 {
		limit = min(layers, limit)
	}
	// One layout per layer of this network: its shape in the file, or nil.
	var src []*ConvLayer
	var how string
	switch {
	case floats == n.floatCount():
		how = "same cfg and classes"
		src = convsOf(n)
	default:
		c, ok := n.classesFor(floats)
		if ok {
			sn, err := NewNetwork(n.Cfg.Clone(), c)
			if err != nil {
				return res, err
			}
			how = fmt.Sprintf("this cfg with %d classes", c)
			src = convsOf(sn)
			break
		}
		end, ok := n.prefixEnd(floats)
		if !ok {
			want := n.floatCount()
			return res, weightsErr(path, "has %d floats after its %d-byte header; %s needs %d (%d classes), %d + %d per class for other class counts, or a prefix of its convolutions (darknet's partial): the weights do not belong to this cfg",
				floats, h.Size(), n.Cfg.File, want, n.Classes, n.floatsAt(1)-n.perClass(), n.perClass())
		}
		how = fmt.Sprintf("the first %d layers of this cfg", end)
		src = convsOf(n)[:end]
	}
	off, loaded, total := 0, 0, 0
	for i, l := range n.Layers {
		c, ok := l.(*ConvLayer)
		if !ok {
			continue
		}
		total++
		var s *ConvLayer
		if i < len(src) {
			s = src[i]
		}
		skipped := true
		switch {
		case s == nil:
			fmt.Fprintf(log, "%s: layer %d [convolutional] (%s:%d) is not in the weights: initialised\n", path, i, c.sec.File, c.sec.Line)
		case i >= limit:
			fmt.Fprintf(log, "%s: layer %d [convolutional] (%s:%d) is after the first %d layers: initialised\n", path, i, c.sec.File, c.sec.Line, limit)
		case !sameShape(s, c):
			fmt.Fprintf(log, "%s: layer %d [convolutional] (%s:%d) has %d filters of %dx%dx%d%s here but %d filters of %dx%dx%d%s in the weights: initialised\n",
				path, i, c.sec.File, c.sec.Line, c.Filters, c.In/c.G, c.Size, c.Size, bnNote(c), s.Filters, s.In/s.G, s.Size, s.Size, bnNote(s))
		default:
			k := off
			for _, p := range convParts(c) {
				for j := range p {
					p[j] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*k:]))
					k++
				}
			}
			loaded++
			skipped = false
		}
		if skipped {
			res.Skipped = append(res.Skipped, i)
		} else {
			res.Loaded = append(res.Loaded, i)
		}
		if s != nil {
			off += convFloats(s)
		}
	}
	fmt.Fprintf(log, "%s: loaded %d of %d convolutions (the file is %s)\n", path, loaded, total, how)
	return res, nil
}

// HeadPriors sets the biases of the convolutions in front of the [yolo]
// layers whose indices are in convs (all of them when convs is nil) so that
// the heads start out predicting what a data set holds rather than 0.5
// everywhere (Ultralytics YOLOv5's _initialize_biases; the prior of Lin et
// al., Focal Loss, 2017):
//
//	objectness logit = logit(min(objects/(H*W), 0.5)), H x W the head's grid at size,
//	class logits     = log(0.6/(classes - 0.99))
//
// objects is the mean number of objects per image. Heads that start from
// scratch on a small data set then spend their first iterations learning
// where objects are, not that most cells are empty.
func (n *Network) HeadPriors(objects float64, size Size, convs []int) {
	gw, gh := n.SpatialSizes(size.W), n.SpatialSizes(size.H)
	hi := 0
	for i, l := range n.Layers {
		y, ok := l.(*YOLOLayer)
		if !ok {
			continue
		}
		h := n.Heads[hi]
		hi++
		c, ok := n.Layers[i-1].(*ConvLayer)
		if !ok || (convs != nil && !slices.Contains(convs, i-1)) {
			continue
		}
		cells := float64(gw[i] * gh[i])
		p := math.Min(objects/math.Max(cells, 1), 0.5)
		obj := math.Log(p / (1 - p))
		cls := 0.0
		if h.Classes > 1 {
			cls = math.Log(0.6 / (float64(h.Classes) - 0.99))
		}
		b := f32s(c.Bias)
		per := 5 + h.Classes
		for a := range y.Head.Mask {
			b[a*per+4] = float32(obj)
			for k := 0; k < h.Classes; k++ {
				b[a*per+5+k] = float32(cls)
			}
		}
	}
}

func bnNote(c *ConvLayer) string {
	if c.BatchNorm {
		return " with batch norm"
	}
	return ""
}

func sameShape(a, b *ConvLayer) bool {
	return a.Filters == b.Filters && a.In == b.In && a.Size == b.Size && a.G == b.G && a.BatchNorm == b.BatchNorm
}

// convsOf returns, per layer index, the layer's conv or nil.
func convsOf(n *Network) []*ConvLayer {
	out := make([]*ConvLayer, len(n.Layers))
	for i, l := range n.Layers {
		out[i], _ = l.(*ConvLayer)
	}
	return out
}

// floatsAt is the float count of this cfg built for c classes.
func (n *Network) floatsAt(c int) int {
	sn, err := NewNetwork(n.Cfg.Clone(), c)
	if err != nil {
		return -1
	}
	return sn.floatCount()
}

func (n *Network) perClass() int { return n.floatsAt(2) - n.floatsAt(1) }

// classesFor solves floatCount(classes) = floats, which is affine in classes.
func (n *Network) classesFor(floats int) (int, bool) {
	f1, per := n.floatsAt(1), n.perClass()
	if f1 < 0 || per <= 0 || floats < f1 || (floats-f1)%per != 0 {
		return 0, false
	}
	return 1 + (floats-f1)/per, true
}

// prefixEnd returns the layer index just after the conv at which the first
// floats floats of the network end, if they end exactly after a conv.
func (n *Network) prefixEnd(floats int) (int, bool) {
	sum := 0
	for i, l := range n.Layers {
		if c, ok := l.(*ConvLayer); ok {
			sum += convFloats(c)
			if sum == floats {
				return i + 1, true
			}
			if sum > floats {
				return 0, false
			}
		}
	}
	return 0, false
}
