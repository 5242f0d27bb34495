package model

import (
	"errors"
	"sync"
)

// Collective is what synchronized batch norm needs from a data-parallel
// group: AllReduce replaces buf, in every replica, with the element-wise sum
// of all replicas' buf. Every replica makes the same sequence of calls (the
// graphs are identical), so the k-th call of each replica meets the k-th call
// of the others. On CPU the replicas are goroutines (SyncGroup); a GPU
// backend implements the same interface with NCCL.
type Collective interface {
	AllReduce(buf []float64) error
}

// SyncGroup is an in-process Collective for n goroutine replicas. Sums are
// taken in rank order, so results are bit-identical from run to run.
type SyncGroup struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	gen     int
	arrived int
	slots   [][]float64
	result  []float64
	err     error
}

// NewSyncGroup makes a group of n replicas.
func NewSyncGroup(n int) *SyncGroup {
	g := &SyncGroup{n: n, slots: make([][]float64, n)}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// ErrAborted is returned by AllReduce after Abort.
var ErrAborted = errors.New("sync group aborted: another replica failed")

// Member is replica rank's handle.
func (g *SyncGroup) Member(rank int) Collective { return &member{g, rank} }

// Abort wakes every waiting replica with ErrAborted (a replica failed and
// will not arrive); Reset makes the group usable again.
func (g *SyncGroup) Abort() {
	g.mu.Lock()
	g.err = ErrAborted
	g.cond.Broadcast()
	g.mu.Unlock()
}

// Reset clears an abort and any half-finished reduction.
func (g *SyncGroup) Reset() {
	g.mu.Lock()
	g.err, g.arrived = nil, 0
	g.gen++
	clear(g.slots)
	g.mu.Unlock()
}

type member struct {
	g    *SyncGroup
	rank int
}

func (m *member) AllReduce(buf []float64) error {
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	if g.n == 1 {
		return nil
	}
	gen := g.gen
	g.slots[m.rank] = buf
	g.arrived++
	if g.arrived == g.n {
		sum := make([]float64, len(buf))
		for _, s := range g.slots {
			if len(s) != len(buf) {
				g.err = errors.New("sync group: replicas reduced buffers of different lengths")
				g.cond.Broadcast()
				return g.err
			}
			for i, v := range s {
				sum[i] += v
			}
		}
		g.result = sum
		g.arrived = 0
		clear(g.slots)
		g.gen++
		g.cond.Broadcast()
	} else {
		for g.gen == gen && g.err == nil {
			g.cond.Wait()
		}
		if g.err != nil {
			return g.err
		}
	}
	copy(buf, g.result)
	return nil
}

// syncForward is BN's training forward with statistics over every replica's
// batch: local per-channel sums (and the element count) are all-reduced into
// the global mean, then the squared deviations into the global variance.
func syncForward[T float](o *bnActOp, n, c, hw int, x, gamma, beta, y []T) error {
	sums := make([]float64, c+1)
	parallelFor(c, 1, func(_, c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			var s float64
			for i := 0; i < n; i++ {
				for _, v := range x[(i*c+ch)*hw : (i*c+ch+1)*hw] {
					s += float64(v)
				}
			}
			sums[ch] = s
		}
	})
	sums[c] = float64(n * hw)
	if err := o.sync.AllReduce(sums); err != nil {
		return err
	}
	m := sums[c]
	ss := make([]float64, c)
	parallelFor(c, 1, func(_, c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			mean := sums[ch] / m
			var s float64
			for i := 0; i < n; i++ {
				for _, v := range x[(i*c+ch)*hw : (i*c+ch+1)*hw] {
					d := float64(v) - mean
					s += d * d
				}
			}
			ss[ch] = s
		}
	})
	if err := o.sync.AllReduce(ss); err != nil {
		return err
	}
	parallelFor(c, 1, func(_, c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			mean, vr := sums[ch]/m, ss[ch]/m
			unbiased := vr
			if m > 1 {
				unbiased = ss[ch] / (m - 1)
			}
			mo := o.bn.Momentum
			o.bn.Mean[ch] = float32((1-mo)*float64(o.bn.Mean[ch]) + mo*mean)
			o.bn.Var[ch] = float32((1-mo)*float64(o.bn.Var[ch]) + mo*unbiased)
			bnApplyChannel(o, ch, n, c, hw, mean, vr, x, gamma, beta, y)
		}
	})
	return nil
}

// syncBackward is BN's backward over every replica's batch: with g = dy*act'
// and global sums SG = sum g, SGX = sum g*xhat over all replicas and M the
// global count, dx = gamma*invstd/M * (M*g - SG - xhat*SGX) for this replica's
// images (the derivative of the sum of every replica's loss), while dgamma and
// dbeta are this replica's own sums — the gradient averaging across replicas
// then gives exactly plain BN's gradients over the whole batch.
func syncBackward[T float](o *bnActOp, n, c, hw int, x, gamma, beta, y, dy, dx, dgamma, dbeta []T) error {
	sums := make([]float64, 2*c+1)
	parallelFor(c, 1, func(_, c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			mean, inv := o.st.mean[ch], o.st.invstd[ch]
			a, b := T(float64(gamma[ch])*inv), T(float64(beta[ch])-mean*float64(gamma[ch])*inv)
			var sg, sgx float64
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				xs, ys, ds, gs := x[off:off+hw], y[off:off+hw], dy[off:off+hw], dx[off:off+hw]
				actGradSlice(o.act, a, b, xs, ys, ds, gs)
				for j, g := range gs {
					sg += float64(g)
					sgx += float64(g) * (float64(xs[j]) - mean) * inv
				}
			}
			sums[ch], sums[c+ch] = sg, sgx
			dbeta[ch], dgamma[ch] = T(sg), T(sgx)
		}
	})
	sums[2*c] = float64(n * hw)
	if err := o.sync.AllReduce(sums); err != nil {
		return err
	}
	m := sums[2*c]
	parallelFor(c, 1, func(_, c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			mean, inv := o.st.mean[ch], o.st.invstd[ch]
			sg, sgx := sums[ch], sums[c+ch]
			k := float64(gamma[ch]) * inv / m
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				xs, gs := x[off:off+hw], dx[off:off+hw]
				for j, v := range xs {
					xhat := (float64(v) - mean) * inv
					gs[j] = T(k * (m*float64(gs[j]) - sg - xhat*sgx))
				}
			}
		}
	})
	return nil
}
