package gpu

import (
	"math"

	"github.com/dettrain/dettrain/model"
)

// SyncBN synchronises the batch-norm statistics of one replica's Net with
// the other replicas: with NCCL (comm set), the per-channel sums are
// all-reduced on the devices; otherwise they go down to the host, are
// all-reduced there (model.Collective, float64) and come back.
type SyncBN struct {
	c    model.Collective
	comm *Comm
	host []float32
	buf  []float64
}

// NewSyncBN returns a SyncBN over the collective c (one member of a model.SyncGroup).
func NewSyncBN(c model.Collective) *SyncBN { return &SyncBN{c: c} }

// reduce replaces the c per-channel values at p by their sum over the
// replicas and returns the global element count (m summed). Waits for the device.
func (sb *SyncBN) reduce(nt *Net, p Ptr, c int, m float64) (float64, error) {
	return sb.reduceN(nt, []Ptr{p}, c, m)
}

// reduce2 is reduce over two arrays at once.
func (sb *SyncBN) reduce2(nt *Net, p, q Ptr, c int, m float64) (float64, error) {
	return sb.reduceN(nt, []Ptr{p, q}, c, m)
}

func (sb *SyncBN) reduceN(nt *Net, ps []Ptr, c int, m float64) (float64, error) {
	if sb.comm != nil {
		// Every replica has the same number of images, so the global
		// count is m times the ranks.
		for _, p := range ps {
			if err := sb.comm.AllReduceSum(nt.s, p, c, false); err != nil {
				return 0, err
			}
		}
		return m * float64(sb.comm.Ranks), nil
	}
	k := len(ps)
	if cap(sb.host) < k*c {
		sb.host = make([]float32, k*c)
		sb.buf = make([]float64, k*c+1)
	}
	host, buf := sb.host[:k*c], sb.buf[:k*c+1]
	for i, p := range ps {
		if err := nt.s.Download(host[i*c:(i+1)*c], p); err != nil {
			return 0, err
		}
	}
	for i, v := range host {
		buf[i] = float64(v)
	}
	buf[k*c] = m
	if err := sb.c.AllReduce(buf); err != nil {
		return 0, err
	}
	for i := range host {
		host[i] = float32(buf[i])
	}
	for i, p := range ps {
		if err := nt.s.Upload(p, host[i*c:(i+1)*c]); err != nil {
			return 0, err
		}
	}
	return math.Round(buf[k*c]), nil
}
