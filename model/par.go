package model

import (
	"sync"

	"github.com/dettrain/dettrain/blas"
)

// parallelFor is model's one parallel loop. It splits [0, n) into
// w = workers(n, minChunk) contiguous chunks, chunk k being
// [k*n/w, (k+1)*n/w), and runs fn(k, lo, hi) on each from its own
// goroutine (inline when w is 1). The worker count is that of BLAS
// (train.threads), so the element-wise ops use the cores the GEMMs use; the
// ops run one at a time, so the two never compete. The split depends on n,
// minChunk and the thread count only, so sums kept per worker (a conv's dW
// partials) are the same from run to run.
func parallelFor(n, minChunk int, fn func(k, lo, hi int)) {
	w := workers(n, minChunk)
	if w <= 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		lo, hi := k*n/w, (k+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(k, lo, hi)
		}()
	}
	wg.Wait()
}

// workers is the number of chunks parallelFor makes of n items, each at
// least minChunk long: blas.Threads(), at most n/minChunk, at least 1.
func workers(n, minChunk int) int { return max(1, min(blas.Threads(), n/max(minChunk, 1))) }
