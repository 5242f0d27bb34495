package gpu

// stager is the second input buffer that lets the next batch's images reach
// the device while the current step runs: Stage copies them into its own
// pinned buffer and uploads them on a copy stream into its own device
// buffer; the step that uses that batch waits for the copy's event and swaps
// the two device buffers, so no image upload sits on the compute stream.
type stager struct {
	host    *HostBuffer
	dev     Ptr
	cs      *Stream
	done    *Event
	key     *float32 // &images[0] of the staged batch
	n       int
	pending bool // a staged batch not yet used by a step
	use     bool // SetInput matched: the next upload swaps it in
	used    int  // batches taken from the stage (tests)
}

// Stage starts sending images, the batch of a later step, to the device on
// a copy stream, overlapping the step in flight; the step whose SetInput gets
// the same slice then only waits for the copy. A batch staged but never used
// is simply replaced by the next Stage. Call inside Do.
func (nt *Net) Stage(images []float32) error {
	if nt.KeepInput || len(images) != nt.bufs[0].size(nt.N) {
		return nil
	}
	st := nt.stage
	if st == nil {
		st = &stager{}
		var err error
		if st.host, err = nt.dev.AllocHost(4 * len(images)); err != nil {
			return err
		}
		nt.stage = st // Free releases what was allocated even on an error below
		if st.dev, err = nt.alloc(len(images)); err != nil {
			return err
		}
		if st.cs, err = nt.dev.NewStream(); err != nil {
			return err
		}
		if st.done, err = NewEvent(); err != nil {
			return err
		}
	} else if st.pending {
		// The previous staged copy may still read the pinned buffer.
		if err := st.done.Sync(); err != nil {
			return err
		}
	}
	st.pending, st.use = false, false
	parallelCopy(st.host.F32(), images)
	if err := st.cs.UploadAsync(st.dev, st.host, 0, 4*len(images)); err != nil {
		return err
	}
	if err := st.done.Record(st.cs); err != nil {
		return err
	}
	st.key, st.n, st.pending = &images[0], len(images), true
	return nil
}

// Input is the pinned host buffer of the next batch's images, (N, C, Size, Size).
func (nt *Net) Input() []float32 {
	return nt.host.F32()[nt.hostIn/4 : nt.hostIn/4+nt.bufs[0].size(nt.N)]
}
