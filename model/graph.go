package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Graph is the network unrolled for one batch size and input size: a
// gorgonia graph and its tape machine. Graphs of one Network share its
// weights and BN running statistics, so a training graph at one size and an
// inference graph at another see the same model.
type Graph struct {
	N        int
	Size     Size // input width x height
	Training bool
	g        *G.ExprGraph
	vm       G.VM
	input    *tensor.Dense
	heads    []*G.Node
	loss     *G.Node
	yolo     []*yoloState
	params   []*G.Node
	grads    G.Nodes // the gradient node of each param (training)
	slots    []*gradSlot
	outs     []*G.Node // per layer
	arena    *arenaRef // shared buffers (WithArena), or nil
}

// GraphOption changes how NewGraph builds.
type GraphOption func(*graphOptions)

type graphOptions struct {
	sync  Collective
	arena *Arena
}

// WithSyncBN makes every BN layer of a training graph use batch statistics
// reduced over the replicas of c (synchronized batch norm).
func WithSyncBN(c Collective) GraphOption { return func(o *graphOptions) { o.sync = c } }

// NewGraph builds the network for batches of n images of size.W x size.H
// pixels. A training graph computes the loss and the gradients of every Param.
func (net *Network) NewGraph(n int, size Size, training bool, opts ...GraphOption) (*Graph, error) {
	var gopt graphOptions
	for _, f := range opts {
		f(&gopt)
	}
	if err := size.CheckStride(8); err != nil {
		return nil, fmt.Errorf("%w (32 for YOLOv3's strides)", err)
	}
	gr := &Graph{N: n, Size: size, Training: training, g: G.NewGraph()}
	g := gr.g
	gr.input = tensor.New(tensor.WithShape(n, net.Channels, size.H, size.W), tensor.Of(tensor.Float32))
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(n, net.Channels, size.H, size.W), G.WithValue(gr.input), G.WithName("input"))
	b := &builder{net: net, gr: gr, x: x, cur: x, outs: make([]*G.Node, 0, len(net.Layers)), training: training, sync: gopt.sync}
	for i, l := range net.Layers {
		y, err := l.node(b, i)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: layer %d [%s]: %w", l.Section().File, l.Section().Line, i, l.Section().Type, err)
		}
		b.outs = append(b.outs, y)
		b.cur = y
	}
	gr.outs = b.outs
	if training {
		gr.loss = b.losses[0]
		for _, l := range b.losses[1:] {
			var err error
			if gr.loss, err = G.Add(gr.loss, l); err != nil {
				return nil, err
			}
		}
		if gorgoniaGrad { // the reference of TestBackwardMatchesGorgonia
			if _, err := G.Grad(gr.loss, gr.params...); err != nil {
				return nil, err
			}
			gr.vm = G.NewTapeMachine(g, G.BindDualValues(gr.params...))
			return gr, nil
		}
		var err error
		if gr.grads, err = backward(g, gr.loss, gr.params); err != nil {
			return nil, fmt.Errorf("building the gradient: %w", err)
		}
		planInPlace(g)
		if gr.slots, err = planSlots(g); err != nil {
			return nil, err
		}
		if gopt.arena != nil { // every op is made by now, the backward ones too
			gr.arena = gopt.arena.register()
			for _, n := range g.AllNodes() {
				if u, ok := n.Op().(arenaUser); ok {
					u.setArena(gr.arena)
				}
			}
			for i, s := range gr.slots {
				s.arena, s.idx = gr.arena.Arena, i
			}
		}
		gr.vm = G.NewTapeMachine(g)
	} else {
		planOverwrite(g)
		gr.vm = G.NewTapeMachine(g)
	}
	return gr, nil
}

// Input is the (N, C, Size.H, Size.W) input tensor's storage: fill it, then Run.
func (gr *Graph) Input() []float32 { return f32s(gr.input) }

// SetTruths sets the ground truth of each image of the next Run (training graphs).
func (gr *Graph) SetTruths(t [][]Truth) {
	for _, st := range gr.yolo {
		st.truths = t
	}
}

// SetClassTarget sets the class-target mapping of the loss (label smoothing):
// f(1) for the true class, f(0) for the others. nil restores the identity.
func (gr *Graph) SetClassTarget(f func(float64) float64) {
	for _, st := range gr.yolo {
		st.smooth = f
	}
}

// Run executes the graph once (forward, and backward for a training graph).
func (gr *Graph) Run() error {
	if gr.arena != nil {
		gr.arena.begin()
	}
	defer gr.vm.Reset()
	if err := gr.vm.RunAll(); err != nil {
		return err
	}
	return nil
}

// Loss returns the loss terms of the last Run, summed over heads.
func (gr *Graph) Loss() LossParts {
	var p LossParts
	for _, st := range gr.yolo {
		p.Add(st.parts)
	}
	return p
}

// gorgoniaGrad (tests) builds training graphs with gorgonia's Grad, its Adds
// and dual values instead of backward, as before backward existed.
var gorgoniaGrad bool

// Grads returns the gradients of the last Run in Network.Params order. They
// are the graph's own buffers, overwritten by the next Run (which does not
// add to them: clearing them is not needed, and harmless).
func (gr *Graph) Grads() ([][]float32, error) {
	out := make([][]float32, len(gr.params))
	if gr.grads == nil && gr.Training { // built with gorgoniaGrad
		for i, p := range gr.params {
			g, err := p.Grad()
			if err != nil {
				return nil, err
			}
			out[i] = g.(*tensor.Dense).Float32s()
		}
		return out, nil
	}
	if gr.grads == nil {
		return nil, fmt.Errorf("an inference graph has no gradients")
	}
	for i, p := range gr.params {
		d, ok := gr.grads[i].Value().(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("gradient of %s is a %T (has the graph run?)", p.Name(), gr.grads[i].Value())
		}
		out[i] = d.Float32s()
	}
	return out, nil
}

// Heads returns the raw outputs of the YOLO heads of the last Run, each
// (N, anchors*(5+C), H, W) flattened, with their grid sizes.
func (gr *Graph) Heads() []HeadOutput {
	out := make([]HeadOutput, len(gr.heads))
	for i, h := range gr.heads {
		s := h.Shape()
		out[i] = HeadOutput{Data: h.Value().(*tensor.Dense).Float32s(), H: s[2], W: s[3]}
	}
	return out
}

// LayerOutput returns layer i's output of the last Run, (N, C, H, W) flattened,
// and its shape. It is the graph's own storage: copy it to keep it.
func (gr *Graph) LayerOutput(i int) ([]float32, []int) {
	n := gr.outs[i]
	return n.Value().(*tensor.Dense).Float32s(), []int(n.Shape().Clone())
}

// Close releases the tape machine and the gradient slots.
func (gr *Graph) Close() {
	gr.vm.Close()
	releaseSlots(gr.slots)
	if gr.arena != nil {
		gr.arena.release(gr.arena.graph)
	}
}

// HeadOutput is one YOLO head's raw output for a batch.
type HeadOutput struct {
	Data []float32
	H, W int
}

// builder is a graph under construction, as a layer's node method sees it:
// the previous layer's output and every earlier one's, and what the layers
// add to the graph (parameters, heads, losses).
type builder struct {
	net      *Network
	gr       *Graph
	x, cur   *G.Node   // the input image; the previous layer's output
	outs     []*G.Node // every earlier layer's output
	losses   []*G.Node // the YOLO heads' losses (training graphs)
	training bool
	sync     Collective // WithSyncBN's, or nil for local BN
}

// param is a node holding the weight tensor t (shared by every graph of
// the network).
func (b *builder) param(name string, t *tensor.Dense) *G.Node {
	return G.NewTensor(b.gr.g, tensor.Float32, t.Dims(), G.WithShape(t.Shape()...), G.WithValue(t), G.WithName(name))
}
