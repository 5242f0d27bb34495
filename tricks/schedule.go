// Package tricks holds the training tricks of "Bag of Freebies for Training
// Object Detection Neural Networks" (Zhang et al. 2019) as small pure
// functions; docs/FREEBIES.md is their spec.
package tricks

import "math"

// Schedule is a learning rate as a function of the iteration (0-based).
type Schedule struct {
	Base float64 // the base rate
	// Warmup iterations: the rate rises linearly from 0 to Base, per
	// iteration (lr = Base * (it+1)/Warmup for it < Warmup).
	Warmup int
	// Total iterations of the run.
	Total int
	// Kind is "constant", "step" or "cosine".
	Kind string
	// Steps are the iterations at which "step" multiplies the rate by Factor.
	Steps  []int
	Factor float64 // 0.1 by default
	// Final is cosine's end rate.
	Final float64
}

// LR returns the learning rate at iteration it.
//
//	warmup: Base * (it+1)/Warmup
//	cosine: Final + (Base-Final) * (1 + cos(pi*t/T))/2, t = it - Warmup, T = Total - Warmup
//	step:   Base * Factor^(number of Steps <= it)
func (s Schedule) LR(it int) float64 {
	if it < s.Warmup {
		return s.Base * float64(it+1) / float64(s.Warmup)
	}
	switch s.Kind {
	case "cosine":
		T := s.Total - s.Warmup
		if T <= 0 {
			return s.Final
		}
		t := math.Min(float64(it-s.Warmup), float64(T))
		return s.Final + (s.Base-s.Final)*(1+math.Cos(math.Pi*t/float64(T)))/2
	case "step":
		f := s.Factor
		if f == 0 {
			f = 0.1
		}
		lr := s.Base
		for _, st := range s.Steps {
			if it >= st {
				lr *= f
			}
		}
		return lr
	}
	return s.Base
}
