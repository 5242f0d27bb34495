package gpu

import (
	"fmt"

	"github.com/dettrain/dettrain/model"
)

// graphable reports whether the passes may run as CUDA graphs: asked for,
// not profiling, no capture failure yet, past the first two passes (cuDNN
// and the driver finish their lazy set-up eagerly), and nothing that changes
// between steps inside the passes: SyncBN (host-staged, a host round trip
// inside a pass; with NCCL, collectives inside a capture were not tested)
// and training dropout (a new mask seed every step) keep the passes eager.
func (nt *Net) graphable() bool {
	if !nt.Graphs || nt.prof != nil || nt.graphErr != nil || nt.passes <= 2 {
		return false
	}
	if nt.sync != nil {
		return false
	}
	if nt.Training {
		for _, ly := range nt.layers {
			if l, ok := ly.l.(*model.DropoutLayer); ok && l.P > 0 && !nt.isAlias(ly) {
				return false
			}
		}
	}
	return true
}

// run enqueues one pass (0 forward, 1 backward) through f, or replays its
// CUDA graph (Graphs): captured the first time, one graph per input buffer
// (staging alternates two), since a graph keeps the addresses it saw. When
// capturing fails, the Net keeps the reason (GraphError) and runs
// eagerly from then on.
func (nt *Net) run(part int, f func() error) error {
	if !nt.graphable() {
		return f()
	}
	key := nt.bufs[0].y
	if nt.graphs == nil {
		nt.graphs = map[Ptr]*[2]*Graph{}
	}
	g := nt.graphs[key]
	if g == nil {
		g = &[2]*Graph{}
		nt.graphs[key] = g
	}
	if g[part] == nil {
		if err := nt.s.BeginCapture(); err != nil {
			nt.graphErr = err
			return f()
		}
		ferr := f()
		gr, err := nt.s.EndCapture()
		if ferr != nil || err != nil {
			// Nothing ran while capturing: run the pass eagerly (where a
			// real error shows again) and stay eager.
			if ferr != nil {
				err = ferr
			}
			gr.Destroy()
			nt.graphErr = fmt.Errorf("capturing a CUDA graph: %w", err)
			nt.dropGraphs()
			return f()
		}
		g[part] = gr
	}
	return g[part].Launch(nt.s)
}

// dropGraphs destroys the Net's CUDA graphs.
func (nt *Net) dropGraphs() {
	for _, g := range nt.graphs {
		g[0].Destroy()
		g[1].Destroy()
	}
	nt.graphs = nil
}

// GraphError is why the Net's passes stopped using CUDA graphs (nil: they
// did not, or Graphs is off).
func (nt *Net) GraphError() error { return nt.graphErr }
