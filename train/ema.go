package train

import (
	"fmt"
	"math"

	"github.com/dettrain/dettrain/model"
)

// EMA keeps an exponential moving average of the weights and BN running
// statistics, Ultralytics' ModelEMA rule:
//
//	d = Decay * (1 - exp(-updates/Tau))
//	ema = d*ema + (1-d)*w        after every optimizer step
//
// The ramp keeps early averages from being dominated by the random init.
type EMA struct {
	Decay, Tau float64
	updates    int
	vals       [][]float32 // params, then BN means, then BN variances
}

// EMAState is what a checkpoint keeps of an EMA.
type EMAState struct {
	Updates int
	Values  [][]float32
}

func emaTargets(net *model.Network) [][]float32 {
	var out [][]float32
	for _, p := range net.Params() {
		out = append(out, p.Value.Float32s())
	}
	bns := bnStates(net)
	for _, b := range bns {
		out = append(out, b.Mean)
	}
	for _, b := range bns {
		out = append(out, b.Var)
	}
	return out
}

// NewEMA starts an average at the network's current values.
func NewEMA(net *model.Network, decay, tau float64) *EMA {
	e := &EMA{Decay: decay, Tau: tau}
	for _, t := range emaTargets(net) {
		e.vals = append(e.vals, clone(t))
	}
	return e
}

// Update folds the network's current values into the average.
func (e *EMA) Update(net *model.Network) {
	a, b := e.next()
	for i, t := range emaTargets(net) {
		v := e.vals[i]
		for j, w := range t {
			v[j] = a*v[j] + b*w
		}
	}
}

// next counts an update and returns its coefficients: v = a*v + b*w.
func (e *EMA) next() (a, b float32) {
	e.updates++
	d := e.Decay * (1 - math.Exp(-float64(e.updates)/e.Tau))
	return float32(d), float32(1 - d)
}

// Swap exchanges the network's values with the averaged ones; calling it
// twice restores the network.
func (e *EMA) Swap(net *model.Network) {
	for i, t := range emaTargets(net) {
		v := e.vals[i]
		for j := range t {
			t[j], v[j] = v[j], t[j]
		}
	}
}

func (e *EMA) state() EMAState {
	s := EMAState{Updates: e.updates}
	for _, v := range e.vals {
		s.Values = append(s.Values, clone(v))
	}
	return s
}

func (e *EMA) setState(s EMAState) error {
	if len(s.Values) != len(e.vals) {
		return fmt.Errorf("checkpoint EMA has %d tensors, the model %d", len(s.Values), len(e.vals))
	}
	for i := range e.vals {
		if len(s.Values[i]) != len(e.vals[i]) {
			return fmt.Errorf("checkpoint EMA tensor %d has %d values, the model %d", i, len(s.Values[i]), len(e.vals[i]))
		}
		copy(e.vals[i], s.Values[i])
	}
	e.updates = s.Updates
	return nil
}
