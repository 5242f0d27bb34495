package train

import "github.com/dettrain/dettrain/model"

// SGD is stochastic gradient descent with momentum and a weight decay that
// really applies (gorgonia's Momentum solver computes its L2 term from the
// velocity, so it does nothing: ../shared/notes/stack.md). Per parameter w
// with gradient g, as darknet's update_convolutional_layer does:
//
//	v = momentum*v - lr*(g + decay*w)   (decay only for Param.Decay: conv weights)
//	w = w + v
type SGD struct {
	Momentum, Decay float64
	params          []model.Param
	velocity        [][]float32
}

// NewSGD makes an optimizer for params (model.Network.Params order).
func NewSGD(params []model.Param, momentum, decay float64) *SGD {
	s := &SGD{Momentum: momentum, Decay: decay, params: params}
	for _, p := range params {
		s.velocity = append(s.velocity, make([]float32, len(p.Value.Float32s())))
	}
	return s
}

// Step applies one update with learning rate lr and gradients grads.
func (s *SGD) Step(grads [][]float32, lr float64) {
	m := float32(s.Momentum)
	for i, p := range s.params {
		w := p.Value.Float32s()
		v := s.velocity[i]
		g := grads[i]
		d := float32(0)
		if p.Decay {
			d = float32(s.Decay)
		}
		l := float32(lr)
		for j := range w {
			v[j] = m*v[j] - l*(g[j]+d*w[j])
			w[j] += v[j]
		}
	}
}
