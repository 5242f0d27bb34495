package gpu

// Profiling a Net: CUDA events between groups of ops (TestProfileGPU).

type profMark struct {
	label string
	ev    *Event
}

// Profile starts (on) or stops recording a CUDA event after each group of
// ops of the following Steps (diagnostics: it adds a few microseconds per
// group); ProfileResult reads them. Call inside Do.
func (nt *Net) Profile(on bool) error {
	for _, m := range nt.prof {
		m.ev.Destroy()
	}
	nt.prof = nil
	if on {
		return nt.mark("start")
	}
	return nil
}

// mark records an event labelled label after the ops enqueued so far
// (profiling only).
func (nt *Net) mark(label string) error {
	if nt.prof == nil && label != "start" {
		return nil
	}
	ev, err := NewEvent()
	if err != nil {
		return err
	}
	if err := ev.Record(nt.s); err != nil {
		return err
	}
	nt.prof = append(nt.prof, profMark{label, ev})
	return nil
}

// ProfileResult waits for the device and returns the milliseconds of each
// op group recorded since Profile(true) (or the last ProfileResult), by label,
// in order, then starts recording afresh. Call inside Do.
func (nt *Net) ProfileResult() ([]string, []float64, error) {
	if len(nt.prof) == 0 {
		return nil, nil, nil
	}
	if err := nt.prof[len(nt.prof)-1].ev.Sync(); err != nil {
		return nil, nil, err
	}
	var labels []string
	var ms []float64
	for i := 1; i < len(nt.prof); i++ {
		t, err := nt.prof[i].ev.Since(nt.prof[i-1].ev)
		if err != nil {
			return nil, nil, err
		}
		labels, ms = append(labels, nt.prof[i].label), append(ms, t)
	}
	return labels, ms, nt.Profile(true)
}

// opName names a layer for profiles, e.g. "conv" or "shortcut".
func (nt *Net) opName(ly *layer) string { return ly.op.name() }
