package model

import "gorgonia.org/tensor"

// Convolutions of several images per GEMM. For layers with few output pixels
// per image the per-image GEMMs are skinny (N = H*W columns: 64 at 8x8) and
// each re-reads the whole weight matrix (18 MB for a 3x3 conv of 512 to 1024
// channels) once per image; the weight gradient's sum over pixels is short.
// Here the im2col columns of q images lie side by side (K x q*H*W), one GEMM
// per group computes them all and its (filters x q*H*W) result is scattered
// back to NCHW; the weight gradient is one GEMM over the q images' pixels and
// the data gradient one GEMM followed by col2im per image. Two forms:
//
//   - batched (q = the whole batch): for the smallest images (<=
//     convBatchMaxHW pixels), the GEMM's rows split over the threads;
//   - chunks (1 < q < batch): for images below convChunkCols pixels, each
//     worker takes its contiguous images q at a time with single-threaded
//     GEMMs, as the per-image path does one at a time.
//
// 1x1 convolutions stay per image: there x is its own column matrix and y is
// written in place, where these forms need NCHW gathers and scatters.
//
// Measured (yolov3-tiny train, batch 8, 2 threads, steps alternating between
// settings in one process): at 256, batching the 8x8 layers +9% over per-image
// GEMMs, batching up to 16x16 or 32x32 less (+7%, +3%), chunks of 16x16
// images no change; at 416, chunks of four 13x13 images +6% over batching
// them. OpenBLAS's own threads for the batched GEMM (instead of the row
// split) were no faster: with its default spin time its idle thread spins
// ~0.1 s after each call, competing with the goroutines of the next ops (the
// step got slower); with OPENBLAS_THREAD_TIMEOUT=4 it matched the row split.
var (
	convBatchMaxHW = 64
	convChunkCols  = 512
)

// batchedConv reports whether a conv of geometry g with hw output pixels per
// image runs as one batch-wide GEMM.
func batchedConv(g convGeom, hw int) bool { return !g.pointwise() && hw <= convBatchMaxHW }

// gatherRows copies rows rows of hw contiguous elements from src into dst,
// whose rows start ld apart.
func gatherRows[T float](src []T, rows, hw int, dst []T, ld int) {
	for r := 0; r < rows; r++ {
		copy(dst[r*ld:r*ld+hw], src[r*hw:(r+1)*hw])
	}
}

// scatterRows is gatherRows' inverse: rows ld apart in src to contiguous dst.
func scatterRows[T float](src []T, ld, rows, hw int, dst []T) {
	for r := 0; r < rows; r++ {
		copy(dst[r*hw:(r+1)*hw], src[r*ld:r*ld+hw])
	}
}

// chunkImages is the number of images per GEMM for a conv of n images with
// hw output pixels each: n when batchedConv, ceil(convChunkCols/hw) (at most
// a worker's share) below convChunkCols, else 1 (the per-image path).
func chunkImages(g convGeom, n, hw int) int {
	if g.pointwise() {
		return 1
	}
	if batchedConv(g, hw) {
		return n
	}
	if hw >= convChunkCols {
		return 1
	}
	return min((convChunkCols+hw-1)/hw, (n+imageWorkers(n)-1)/imageWorkers(n))
}

// convDims are a conv's sizes.
type convDims struct{ n, c, h, wd, f, cg, fg, ho, wo, hw, kk int }

func newConvDims(g convGeom, xs, ws tensor.Shape) convDims {
	n, c, h, wd := dims4(xs)
	f := ws[0]
	ho, wo := g.out(h), g.out(wd)
	return convDims{n, c, h, wd, f, c / g.groups, f / g.groups, ho, wo, ho * wo, c / g.groups * g.size * g.size}
}

// overImages runs fn on images [lo, hi): split over goroutines when par.
func overImages(lo, hi int, par bool, fn func(i int)) {
	if !par {
		for i := lo; i < hi; i++ {
			fn(i)
		}
		return
	}
	parallelFor(hi-lo, 1, func(_, a, b int) {
		for i := lo + a; i < lo+b; i++ {
			fn(i)
		}
	})
}

// gemmChunk is one chunk's GEMM: on all threads (rows split) when par.
func gemmChunk[T float](par, transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	gemmRows(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, par)
}

// chunkForward computes images [lo, hi) of y with one GEMM per group: the
// images' im2col columns side by side in col (kk x q*hw), the product in
// out (fg x q*hw), scattered to NCHW. par splits the work over the threads
// (the whole batch as one chunk); otherwise the caller is one worker.
func chunkForward[T float](g convGeom, d convDims, lo, hi int, x, w, y, col, out []T, par bool) {
	nn := (hi - lo) * d.hw
	col, out = col[:d.kk*nn], out[:d.fg*nn]
	for gi := 0; gi < g.groups; gi++ {
		overImages(lo, hi, par, func(i int) {
			xin := x[(i*d.c+gi*d.cg)*d.h*d.wd : (i*d.c+(gi+1)*d.cg)*d.h*d.wd]
			im2col(xin, d.cg, d.h, d.wd, g, d.wo, 0, d.ho, col[(i-lo)*d.hw:], nn)
		})
		gemmChunk(par, false, false, d.fg, nn, d.kk, 1, w[gi*d.fg*d.kk:(gi+1)*d.fg*d.kk], d.kk, col, nn, 0, out, nn)
		overImages(lo, hi, par, func(i int) {
			scatterRows(out[(i-lo)*d.hw:], nn, d.fg, d.hw, y[(i*d.f+gi*d.fg)*d.hw:])
		})
	}
}

// chunkBackData computes images [lo, hi) of dx: dy gathered to (fg x q*hw),
// dcol = w^T dy in one GEMM, then col2im per image.
func chunkBackData[T float](g convGeom, d convDims, lo, hi int, w, dy, dx, dyb, dcol []T, par bool) {
	nn := (hi - lo) * d.hw
	dyb, dcol = dyb[:d.fg*nn], dcol[:d.kk*nn]
	for gi := 0; gi < g.groups; gi++ {
		overImages(lo, hi, par, func(i int) {
			gatherRows(dy[(i*d.f+gi*d.fg)*d.hw:], d.fg, d.hw, dyb[(i-lo)*d.hw:], nn)
		})
		gemmChunk(par, true, false, d.kk, nn, d.fg, 1, w[gi*d.fg*d.kk:(gi+1)*d.fg*d.kk], d.kk, dyb, nn, 0, dcol, nn)
		overImages(lo, hi, par, func(i int) {
			dxo := dx[(i*d.c+gi*d.cg)*d.h*d.wd : (i*d.c+(gi+1)*d.cg)*d.h*d.wd]
			clear(dxo)
			col2im(dcol[(i-lo)*d.hw:], d.cg, d.h, d.wd, g, d.wo, 0, d.ho, dxo, nn)
		})
	}
}

// chunkBackFilter adds to acc (beta) the weight gradient of images [lo, hi):
// acc = beta*acc + dy col^T, one GEMM per group over the chunk's pixels.
func chunkBackFilter[T float](g convGeom, d convDims, lo, hi int, x, dy, acc, dyb, col []T, beta T, par bool) {
	nn := (hi - lo) * d.hw
	dyb, col = dyb[:d.fg*nn], col[:d.kk*nn]
	for gi := 0; gi < g.groups; gi++ {
		overImages(lo, hi, par, func(i int) {
			gatherRows(dy[(i*d.f+gi*d.fg)*d.hw:], d.fg, d.hw, dyb[(i-lo)*d.hw:], nn)
			xin := x[(i*d.c+gi*d.cg)*d.h*d.wd : (i*d.c+(gi+1)*d.cg)*d.h*d.wd]
			im2col(xin, d.cg, d.h, d.wd, g, d.wo, 0, d.ho, col[(i-lo)*d.hw:], nn)
		})
		gemmChunk(par, false, true, d.fg, d.kk, nn, 1, dyb, nn, col, nn, beta, acc[gi*d.fg*d.kk:(gi+1)*d.fg*d.kk], d.kk)
	}
}

// chunkBufs returns the workers of a chunked conv of sizes d, q images a
// chunk (1 when one chunk takes the whole batch on all threads), and two
// scratch buffers per worker, of a and b elements, to give back with
// putScratch.
func chunkBufs[T float](d convDims, q, a, b int) (nw int, as, bs [][]T) {
	nw = imageWorkers(d.n)
	if q >= d.n {
		nw = 1
	}
	return nw, getScratch[T](nw, a), getScratch[T](nw, b)
}

// chunkedForward runs chunkForward over the batch: one chunk of all images
// on all threads (q = n), or chunks of q images per worker.
func chunkedForward[T float](g convGeom, d convDims, q int, x, w, y []T) {
	_, cols, outs := chunkBufs[T](d, q, d.kk*q*d.hw, d.fg*q*d.hw)
	defer putScratch(cols)
	defer putScratch(outs)
	if q >= d.n {
		chunkForward(g, d, 0, d.n, x, w, y, cols[0], outs[0], true)
		return
	}
	parallelFor(d.n, 1, func(k, lo, hi int) {
		for c0 := lo; c0 < hi; c0 += q {
			chunkForward(g, d, c0, min(c0+q, hi), x, w, y, cols[k], outs[k], false)
		}
	})
}

func chunkedBackData[T float](g convGeom, d convDims, q int, w, dy, dx []T) {
	_, dybs, dcols := chunkBufs[T](d, q, d.fg*q*d.hw, d.kk*q*d.hw)
	defer putScratch(dybs)
	defer putScratch(dcols)
	if q >= d.n {
		chunkBackData(g, d, 0, d.n, w, dy, dx, dybs[0], dcols[0], true)
		return
	}
	parallelFor(d.n, 1, func(k, lo, hi int) {
		for c0 := lo; c0 < hi; c0 += q {
			chunkBackData(g, d, c0, min(c0+q, hi), w, dy, dx, dybs[k], dcols[k], false)
		}
	})
}

func chunkedBackFilter[T float](g convGeom, d convDims, q int, x, dy, dw []T) {
	nw, dybs, cols := chunkBufs[T](d, q, d.fg*q*d.hw, d.kk*q*d.hw)
	defer putScratch(dybs)
	defer putScratch(cols)
	if q >= d.n {
		chunkBackFilter(g, d, 0, d.n, x, dy, dw, dybs[0], cols[0], 0, true)
		return
	}
	// As convBackFilter: worker 0 sums into dw, the others into partial
	// buffers added in worker order.
	ps := getScratch[T](nw-1, len(dw))
	defer putScratch(ps)
	parallelFor(d.n, 1, func(k, lo, hi int) {
		acc := dw
		if k > 0 {
			acc = ps[k-1][:len(dw)]
		}
		var beta T
		for c0 := lo; c0 < hi; c0 += q {
			chunkBackFilter(g, d, c0, min(c0+q, hi), x, dy, acc, dybs[k], cols[k], beta, false)
			beta = 1
		}
	})
	addPartials(dw, ps)
}

// addPartials adds the partial sums ps to dw in order.
func addPartials[T float](dw []T, ps [][]T) {
	if len(ps) == 0 {
		return
	}
	parallelFor(len(dw), 4096, func(_, lo, hi int) {
		for _, p := range ps {
			addTo(dw[lo:hi], p[lo:hi])
		}
	})
}
