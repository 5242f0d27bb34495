package model

import (
	"sync"

	"github.com/dettrain/dettrain/blas"
)

// parallelFor splits [0, n) into contiguous chunks and runs fn(lo, hi) on
// them from as many goroutines as BLAS has threads (train.threads), so that
// the element-wise ops use the cores the GEMMs use. The ops run one at a
// time, so the two never compete. Small n runs inline.
func parallelFor(n, minChunk int, fn func(lo, hi int)) {
	w := blas.Threads()
	if w > n/max(minChunk, 1) {
		w = n / max(minChunk, 1)
	}
	if w <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		lo, hi := k*n/w, (k+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
