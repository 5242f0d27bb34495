package data

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Report says what LoadVOC or Check found. The counts are over the samples
// that loaded (those in Dataset.Samples); a sample with a problem counts only
// in Skipped and Problems.
type Report struct {
	Images          int       // samples loaded
	Objects         int       // objects kept, difficult ones included
	PerClass        []int     // objects kept per class index
	Difficult       int       // objects kept marked difficult
	ZeroAreaDropped int       // boxes dropped for zero width or height (not problems)
	Clipped         int       // boxes clipped to the image
	Problems        []Problem // everything wrong, in split order
	Skipped         int       // samples left out because of problems
}

// add counts one sample of a split: with problems it is skipped and its
// problems listed; else it loaded, and its objects, zero-area boxes and
// clipped boxes are counted. add reports whether it loaded.
func (r *Report) add(s Sample, probs []Problem, zero, clipped int) bool {
	if len(probs) > 0 {
		r.Problems = append(r.Problems, probs...)
		r.Skipped++
		return false
	}
	r.Images++
	r.ZeroAreaDropped += zero
	r.Clipped += clipped
	for _, o := range s.Objects {
		r.Objects++
		r.PerClass[o.Class]++
		if o.Difficult {
			r.Difficult++
		}
	}
	return true
}

// maxListed is how many problems Summary lists.
const maxListed = 50

// Summary writes a human-readable summary: counts, objects per class (named
// by names; indices where names is short) and the first 50 problems.
func (r *Report) Summary(w io.Writer, names []string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "images:\t%d\n", r.Images)
	if r.Skipped > 0 {
		fmt.Fprintf(tw, "skipped (problems):\t%d\n", r.Skipped)
	}
	fmt.Fprintf(tw, "objects:\t%d\n", r.Objects)
	for i, n := range r.PerClass {
		name := fmt.Sprintf("class %d", i)
		if i < len(names) {
			name = names[i]
		}
		fmt.Fprintf(tw, "  %s\t%d\n", name, n)
	}
	fmt.Fprintf(tw, "difficult:\t%d\n", r.Difficult)
	fmt.Fprintf(tw, "zero-area boxes dropped:\t%d\n", r.ZeroAreaDropped)
	fmt.Fprintf(tw, "boxes clipped to the image:\t%d\n", r.Clipped)
	fmt.Fprintf(tw, "problems:\t%d\n", len(r.Problems))
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, p := range r.Problems {
		if i == maxListed {
			_, err := fmt.Fprintf(w, "  ... and %d more\n", len(r.Problems)-maxListed)
			return err
		}
		if _, err := fmt.Fprintf(w, "  %s\n", p); err != nil {
			return err
		}
	}
	return nil
}
