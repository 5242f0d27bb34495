package tricks

import (
	"fmt"
	"math"
)

// ClassTarget returns the function mapping a hard class target t in {0, 1}
// to the smoothed one used by the per-class sigmoid head, for k classes:
//
//	"none":    t
//	"gluoncv": 1-eps for the true class, eps for the others, eps = min(1/k, 1/40)
//	           (docs/FREEBIES.md: GluonCV's YOLOv3 rule for sigmoid heads)
//	"darknet": 1-eps/2 and eps/2 with the given eps (darknet's label_smooth_eps,
//	           also Ultralytics' rule)
//
// Objectness is never smoothed.
func ClassTarget(rule string, k int, eps float64) (func(float64) float64, error) {
	switch rule {
	case "", "none":
		return nil, nil
	case "gluoncv":
		e := math.Min(1/float64(k), 1.0/40)
		return func(t float64) float64 { return t*(1-e) + (1-t)*e }, nil
	case "darknet":
		if eps < 0 || eps >= 1 {
			return nil, fmt.Errorf("label smoothing eps %v: must be in [0,1)", eps)
		}
		return func(t float64) float64 { return t*(1-eps) + eps/2 }, nil
	}
	return nil, fmt.Errorf("label smoothing %q: must be none, gluoncv or darknet", rule)
}
