package train

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/model"
)

// cpuStepper is the CPU backend: Options.Replicas goroutine replicas, each
// with its own graph over the host model's weights, whose gradients are
// averaged into replica 0's buffers and applied by SGD on the host.
type cpuStepper struct {
	net     *model.Network
	graphs  *graphCache
	opt     *SGD
	ema     *EMA
	ranks   Ranks
	reduced time.Duration                                            // in the ranks' gradient and loss all-reduces, so far                                                    // nil: one process
	first   int                                                      // this rank's first image in the global batch
	fault   func(iter int, loss *model.LossParts, grads [][]float32) // seams.fault
	built   *int                                                     // seams.built
}

func newCPUStepper(net *model.Network, o Options, opt *SGD, ema *EMA, s seams) (*cpuStepper, error) {
	shard := o.Batch / rankCount(o.Ranks)
	c := &graphCache{net: net, r: o.Replicas, n: shard / o.Replicas, max: o.MaxGraphs, classTarget: o.ClassTarget, ranks: o.Ranks}
	if o.SyncBN && o.Replicas > 1 {
		c.group = model.NewSyncGroup(o.Replicas)
	}
	c.sync = o.SyncBN
	st := &cpuStepper{net: net, graphs: c, opt: opt, ema: ema, ranks: o.Ranks, fault: s.fault, built: s.built}
	if o.Ranks != nil {
		st.first = o.Ranks.Rank() * shard
	}
	if _, err := c.get(o.Size); err != nil { // fail early on a bad size
		st.Close()
		return nil, err
	}
	return st, nil
}

func (s *cpuStepper) Step(b *data.Batch, iter int, lr float64, _ func() *data.Batch) (model.LossParts, string, error) {
	reps, err := s.graphs.get(model.Size{W: b.W, H: b.H})
	if err != nil {
		return model.LossParts{}, "", err
	}
	// Dropout masks are a pure function of (dropout seed, layer, image of
	// the batch, iteration), so that a resumed run draws what the
	// uninterrupted one drew, and R replicas what one batch draws.
	for i, r := range reps {
		r.g.SetDropoutStep(s.net.DropoutSeed(), s.first+i*(b.N/len(reps)), iter)
	}
	loss, grads, err := runReplicas(reps, b, s.graphs.group)
	if err != nil {
		return loss, "", err
	}
	if s.ranks != nil { // the mean over the ranks of the ranks' means
		t0 := time.Now()
		if err := s.ranks.AllReduceMean(grads); err != nil {
			return loss, "", err
		}
		if err := reduceLoss(s.ranks, &loss); err != nil {
			return loss, "", err
		}
		s.reduced += time.Since(t0)
	}
	if s.fault != nil {
		s.fault(iter, &loss, grads)
	}
	if bad := nonFinite(loss, grads); bad != "" {
		zero(grads)
		return loss, bad, nil
	}
	s.opt.Step(grads, lr)
	zero(grads)
	if s.ema != nil {
		s.ema.Update(s.net)
	}
	return loss, "", nil
}

// reduceTime is the time spent so far in the all-reduces across ranks.
func (s *cpuStepper) reduceTime() time.Duration { return s.reduced }

func (s *cpuStepper) Load() error  { return nil } // the CPU trains the host model
func (s *cpuStepper) Store() error { return nil }

func (s *cpuStepper) Describe() string {
	bn := "local BN"
	if s.graphs.group != nil {
		bn = "SyncBN"
	}
	where := "the CPU"
	if s.ranks != nil {
		where = fmt.Sprintf("the CPUs of %d processes (rank %d)", s.ranks.Size(), s.ranks.Rank())
	}
	if s.graphs.r == 1 {
		return where
	}
	return fmt.Sprintf("%s, %d replicas of %d images (%s)", where, s.graphs.r, s.graphs.n, bn)
}

func (s *cpuStepper) Close() {
	if s.built != nil {
		*s.built = s.graphs.Built
	}
	s.graphs.close()
}

// replica is one data-parallel worker: its own graph (and buffers) over
// the shared weights. On CPU replicas are goroutines; a GPU replica will be a
// device with its own graph, behind the same step.
type replica struct {
	g *model.Graph
}

// newReplicas builds r graphs of n images each. All share the network's
// weight tensors. Only replica 0 updates the BN running statistics: the
// others get private copies (as data-parallel PyTorch keeps rank 0's buffers).
func newReplicas(net *model.Network, r, n int, size model.Size, sync func(i int) model.Collective, arenas []*model.Arena) ([]*replica, error) {
	reps := make([]*replica, r)
	for i := range reps {
		view := net
		if i > 0 {
			view = privateBN(net)
		}
		var opts []model.GraphOption
		if sync != nil {
			opts = append(opts, model.WithSyncBN(sync(i)))
		}
		if arenas != nil {
			opts = append(opts, model.WithArena(arenas[i]))
		}
		g, err := view.NewGraph(n, size, true, opts...)
		if err != nil {
			closeReplicas(reps)
			return nil, err
		}
		reps[i] = &replica{g: g}
	}
	return reps, nil
}

// privateBN returns a copy of net whose conv layers share the weights but
// have their own BN running statistics.
func privateBN(net *model.Network) *model.Network {
	cp := *net
	cp.Layers = make([]model.Layer, len(net.Layers))
	for i, l := range net.Layers {
		if c, ok := l.(*model.ConvLayer); ok && c.BatchNorm {
			c2 := *c
			bn := *c.BN
			bn.Mean, bn.Var = clone(c.BN.Mean), clone(c.BN.Var)
			c2.BN = &bn
			l = &c2
		}
		cp.Layers[i] = l
	}
	return &cp
}

// graphCache keeps the replicas' graphs of the input sizes in use, at most
// max sizes, dropping the least recently used (random shapes: one graph per
// size, all over the same weights and BN statistics). Replica i's graphs of
// every size share one model.Arena: they never run at the same time, so the
// cached sizes cost about the largest one's memory, not their sum.
type graphCache struct {
	net         *model.Network
	r, n, max   int
	classTarget func(float64) float64
	group       *model.SyncGroup // synchronized BN over this process's replicas (nil: one replica, or local BN)
	sync        bool             // synchronized BN
	ranks       Ranks            // synchronized BN across processes too (nil: one process)
	sizes       []model.Size     // most recently used last
	reps        map[model.Size][]*replica
	arenas      []*model.Arena // one per replica
	// Built counts graph constructions (tests check reuse).
	Built int
}

func (c *graphCache) get(size model.Size) ([]*replica, error) {
	if c.reps == nil {
		c.reps = map[model.Size][]*replica{}
	}
	if reps, ok := c.reps[size]; ok {
		for i, s := range c.sizes {
			if s == size {
				c.sizes = append(append(c.sizes[:i:i], c.sizes[i+1:]...), size)
				break
			}
		}
		return reps, nil
	}
	if len(c.sizes) >= c.max {
		old := c.sizes[0]
		closeReplicas(c.reps[old])
		delete(c.reps, old)
		c.sizes = c.sizes[1:]
		// Give the dropped graphs' buffers back before the new ones are
		// allocated, or the heap would hold both until the next collection.
		debug.FreeOSMemory()
	}
	if c.arenas == nil {
		c.arenas = make([]*model.Arena, c.r)
		for i := range c.arenas {
			c.arenas[i] = model.NewArena()
		}
	}
	reps, err := newReplicas(c.net, c.r, c.n, size, c.collective(), c.arenas)
	if err != nil {
		return nil, fmt.Errorf("building the graph for input size %s: %w", size, err)
	}
	for _, r := range reps {
		r.g.SetClassTarget(c.classTarget)
	}
	c.Built++
	c.reps[size] = reps
	c.sizes = append(c.sizes, size)
	return reps, nil
}

// collective gives replica i's SyncBN collective, or is nil for local BN.
func (c *graphCache) collective() func(i int) model.Collective {
	switch {
	case !c.sync || (c.group == nil && c.ranks == nil):
		return nil
	case c.ranks == nil:
		return c.group.Member
	}
	return func(i int) model.Collective {
		rc := rankCollective{ranks: c.ranks, first: i == 0}
		if c.group != nil {
			rc.local = c.group.Member(i)
		}
		return rc
	}
}

func (c *graphCache) close() {
	for _, reps := range c.reps {
		closeReplicas(reps)
	}
	c.reps = nil
}

func closeReplicas(reps []*replica) {
	for _, r := range reps {
		if r != nil {
			r.g.Close()
		}
	}
}

// runReplicas gives replica i images [i*n, (i+1)*n) of b, runs them in
// parallel and averages the losses and gradients into replica 0's buffers
// (the all-reduce of the CPU backend).
func runReplicas(reps []*replica, b *data.Batch, group *model.SyncGroup) (model.LossParts, [][]float32, error) {
	n := b.N / len(reps)
	plane := b.C * b.H * b.W
	errs := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, r := range reps {
		copy(r.g.Input(), b.Images[i*n*plane:(i+1)*n*plane])
		r.g.SetTruths(truths(b, i*n, (i+1)*n))
		if len(reps) == 1 {
			errs[0] = r.g.Run()
			break
		}
		wg.Add(1)
		go func(i int, r *replica) {
			defer wg.Done()
			if errs[i] = r.g.Run(); errs[i] != nil && group != nil {
				group.Abort() // release the replicas waiting for this one
			}
		}(i, r)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, model.ErrAborted) {
			if group != nil {
				group.Reset()
			}
			return model.LossParts{}, nil, err
		}
	}
	grads, err := reps[0].g.Grads()
	if err != nil {
		return model.LossParts{}, nil, err
	}
	loss := reps[0].g.Loss()
	if len(reps) == 1 {
		return loss, grads, nil
	}
	all := [][][]float32{grads}
	for _, r := range reps[1:] {
		gs, err := r.g.Grads()
		if err != nil {
			return model.LossParts{}, nil, err
		}
		all = append(all, gs)
		loss.Add(r.g.Loss())
	}
	hostReducer{}.AllReduceMean(all)
	f := 1 / float64(len(reps))
	loss.Obj, loss.XY, loss.WH, loss.Cls = loss.Obj*f, loss.XY*f, loss.WH*f, loss.Cls*f
	return loss, grads, nil
}

// GradReducer is the all-reduce of gradients in a data-parallel step: it
// leaves the mean of every replica's gradients in replica 0's buffers
// (grads[r][k] is replica r's gradient of parameter k) and may clear the
// others. The CPU backend sums in host memory; a GPU backend supplies an
// NCCL all-reduce behind the same interface, as model.Collective does for the
// BN statistics.
type GradReducer interface {
	AllReduceMean(grads [][][]float32)
}

// hostReducer sums in rank order, so results are the same from run to run.
type hostReducer struct{}

func (hostReducer) AllReduceMean(grads [][][]float32) {
	dstAll := grads[0]
	for _, gs := range grads[1:] {
		for k, g := range gs {
			dst := dstAll[k]
			for j, v := range g {
				dst[j] += v
			}
			clear(g)
		}
	}
	inv := 1 / float32(len(grads))
	for _, g := range dstAll {
		for j := range g {
			g[j] *= inv
		}
	}
}
