package train

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/dettrain/dettrain/model"
)

// Ranks is the process group of a run across processes (package mpi under
// mpirun or srun): Size processes, each holding the whole model and
// training Options.Replicas replicas on its shard of every batch. Rank r's
// batches are images [r*B/Size, (r+1)*B/Size) of each global batch of
// B = Options.Batch (data.LoaderOptions.Shard), so the ranks together
// compute what one process with Size*Replicas replicas computes: the
// gradients are the mean over every replica's shard, SyncBN's statistics
// are over the global batch, and every rank applies the same update.
//
// Rank 0 alone writes logs, checkpoints, weights and evaluations; the
// others keep the same state in memory.
type Ranks interface {
	Rank() int
	Size() int
	// AllReduceMean replaces every gradient, on every rank, with its mean
	// over the ranks.
	AllReduceMean(grads [][]float32) error
	// AllReduce replaces buf, on every rank, with its sum over the ranks
	// (model.Collective, for SyncBN statistics and the losses).
	AllReduce(buf []float64) error
	// Bcast copies root's buf to every rank.
	Bcast(buf []byte, root int) error
}

// lead reports whether this process writes the run's files: rank 0, or
// the only process.
func lead(r Ranks) bool { return r == nil || r.Rank() == 0 }

// reduceLoss replaces loss with its mean over the ranks (each rank's loss
// is the mean over its replicas; the shards are equal). Positives, a count,
// is summed.
func reduceLoss(r Ranks, loss *model.LossParts) error {
	buf := []float64{loss.Obj, loss.XY, loss.WH, loss.Cls, float64(loss.Positives)}
	if err := r.AllReduce(buf); err != nil {
		return err
	}
	f := 1 / float64(r.Size())
	loss.Obj, loss.XY, loss.WH, loss.Cls, loss.Positives = buf[0]*f, buf[1]*f, buf[2]*f, buf[3]*f, int(math.Round(buf[4]))
	return nil
}

// anyRank is true on every rank when v is true on one of them (a stop
// asked for by a signal that reached the ranks at different steps).
func anyRank(r Ranks, v bool) (bool, error) {
	if r == nil {
		return v, nil
	}
	buf := []float64{0}
	if v {
		buf[0] = 1
	}
	err := r.AllReduce(buf)
	return buf[0] > 0, err
}

// fromLead gives every rank rank 0's metric and error: rank 0 evaluates,
// the others wait for its result.
func fromLead(r Ranks, m float64, err error) (float64, error) {
	if r == nil {
		return m, err
	}
	var buf [9]byte
	binary.LittleEndian.PutUint64(buf[:8], math.Float64bits(m))
	if err != nil {
		buf[8] = 1
	}
	if berr := r.Bcast(buf[:], 0); berr != nil {
		return 0, berr
	}
	if r.Rank() == 0 {
		return m, err
	}
	if buf[8] != 0 {
		return 0, fmt.Errorf("rank 0 failed to evaluate")
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(buf[:8])), nil
}

// rankCollective is SyncBN's collective across processes for a rank with
// several replicas: the replicas' sum in the process (the SyncGroup), then
// replica 0 sums over the ranks, then a second in-process sum, to which
// only replica 0 brings a non-zero buffer, hands that total to the others.
// Every replica makes the same calls in the same order, so the k-th calls
// meet.
type rankCollective struct {
	local model.Collective
	ranks Ranks
	first bool // replica 0
}

func (c rankCollective) AllReduce(buf []float64) error {
	if c.local != nil {
		if err := c.local.AllReduce(buf); err != nil {
			return err
		}
	}
	if c.first {
		if err := c.ranks.AllReduce(buf); err != nil {
			return err
		}
	} else {
		clear(buf)
	}
	if c.local != nil {
		return c.local.AllReduce(buf)
	}
	return nil
}
