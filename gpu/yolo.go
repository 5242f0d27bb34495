package gpu

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/dettrain/dettrain/model"
)

// YOLOTargets are the targets of one YOLO head for one batch, built on the
// host each step by PackYOLOTargets and uploaded for Kernels.YOLOLoss.
//
// Marshal writes them as one little-endian byte buffer, so that the executor
// can upload every head's targets with a single host-to-device copy from a
// pinned buffer. Its sections, at the byte offsets Layout returns:
//
//	Truth   float64 x 6*T   per truth of the batch (T in all, image by image):
//	                        x1, y1, x2, y2 (network-input pixels), class, weight
//	Anchor  float64 x 2*NA  (w, h) of each mask entry, in input pixels
//	Pos     int32 x N*NA*GH*GW   Pos[b*NA*GH*GW + a*GH*GW + i*GW + j]: 0, or
//	                        the index into Truth plus one of the slot's positive
//	Offsets int32 x (N+1)   image b's truths are Truth rows Offsets[b] .. Offsets[b+1]
//	padding to a multiple of 8 bytes (zeros)
//
// The float64 sections come first, so the buffer needs only the device
// address's 8-byte alignment; Bytes is a multiple of 8, so several targets
// marshalled back to back each start 8-byte aligned. The truth table is
// float64 (not float32) so that the GPU loss sees the same box coordinates
// as the CPU's (model.Truth holds float64 boxes).
type YOLOTargets struct {
	N, NA, GH, GW int // batch size, mask entries (anchors), grid rows and columns
	NetW, NetH    int // network input size the positives were found for
	Truth         []float64
	Anchor        []float64
	Pos           []int32
	Offsets       []int32
}

// YOLOTargetsLayout gives the byte offset of each section of marshalled
// YOLOTargets, and the total size (a multiple of 8).
type YOLOTargetsLayout struct {
	Truth, Anchor, Pos, Offsets, Bytes int
}

// Layout returns the byte offsets of the sections Marshal writes.
func (t *YOLOTargets) Layout() YOLOTargetsLayout {
	var l YOLOTargetsLayout
	l.Truth = 0
	l.Anchor = l.Truth + 8*len(t.Truth)
	l.Pos = l.Anchor + 8*len(t.Anchor)
	l.Offsets = l.Pos + 4*len(t.Pos)
	l.Bytes = (l.Offsets + 4*len(t.Offsets) + 7) &^ 7
	return l
}

// Bytes is the size of the marshalled targets, a multiple of 8.
func (t *YOLOTargets) Bytes() int { return t.Layout().Bytes }

// Marshal writes the targets to dst in the layout YOLOTargets describes and
// returns the number of bytes written (Bytes). It panics when dst is shorter.
func (t *YOLOTargets) Marshal(dst []byte) int {
	l := t.Layout()
	if len(dst) < l.Bytes {
		panic(fmt.Sprintf("YOLOTargets.Marshal: %d-byte buffer, the targets need %d", len(dst), l.Bytes))
	}
	le := binary.LittleEndian
	for i, v := range t.Truth {
		le.PutUint64(dst[l.Truth+8*i:], math.Float64bits(v))
	}
	for i, v := range t.Anchor {
		le.PutUint64(dst[l.Anchor+8*i:], math.Float64bits(v))
	}
	p := dst[l.Pos : l.Pos+4*len(t.Pos)]
	for i, v := range t.Pos {
		le.PutUint32(p[4*i:], uint32(v))
	}
	for i, v := range t.Offsets {
		le.PutUint32(dst[l.Offsets+4*i:], uint32(v))
	}
	clear(dst[l.Offsets+4*len(t.Offsets) : l.Bytes])
	return l.Bytes
}

// PackYOLOTargets builds into dst the targets of head h for a batch of n
// images (truths[b] the truths of image b in network-input pixels; images
// past len(truths) have none) on a gh x gw grid of a netW x netH input. It
// reuses dst's slices: once they are large enough it allocates nothing.
// The positives are model.Head.Positives', the CPU loss's own.
func PackYOLOTargets(h *model.Head, truths [][]model.Truth, n, gh, gw, netW, netH int, dst *YOLOTargets) error {
	na := len(h.Mask)
	switch {
	case n < 1 || gh < 1 || gw < 1 || netW < 1 || netH < 1:
		return fmt.Errorf("PackYOLOTargets: batch %d, grid %dx%d, input %dx%d: all must be positive", n, gh, gw, netW, netH)
	case na < 1:
		return fmt.Errorf("PackYOLOTargets: the head has no mask entries")
	case len(truths) > n:
		return fmt.Errorf("PackYOLOTargets: truths for %d images, batch of %d", len(truths), n)
	}
	for a, m := range h.Mask {
		if m < 0 || m >= len(h.Anchors) {
			return fmt.Errorf("PackYOLOTargets: mask entry %d is anchor %d, the head has %d anchors", a, m, len(h.Anchors))
		}
	}
	plane := gh * gw
	if plane/gw != gh || int64(n)*int64(na)*int64(plane) > math.MaxInt32 {
		return fmt.Errorf("PackYOLOTargets: %d images x %d anchors x %dx%d cells exceed 2^31-1 slots", n, na, gh, gw)
	}
	nt := 0
	for _, ts := range truths {
		nt += len(ts)
	}
	if nt >= math.MaxInt32 {
		return fmt.Errorf("PackYOLOTargets: %d truths in the batch exceed 2^31-2", nt)
	}
	*dst = YOLOTargets{N: n, NA: na, GH: gh, GW: gw, NetW: netW, NetH: netH,
		Truth: dst.Truth[:0], Anchor: dst.Anchor[:0], Pos: resize(dst.Pos, n*na*plane), Offsets: resize(dst.Offsets, n+1)}
	for _, m := range h.Mask {
		dst.Anchor = append(dst.Anchor, h.Anchors[m][0], h.Anchors[m][1])
	}
	first := 0
	for b := 0; b < n; b++ {
		var ts []model.Truth
		if b < len(truths) {
			ts = truths[b]
		}
		dst.Offsets[b] = int32(first)
		pos := dst.Pos[b*na*plane : (b+1)*na*plane]
		h.Positives(ts, gh, gw, netW, netH, pos)
		if first > 0 {
			for i, p := range pos {
				if p > 0 {
					pos[i] = p + int32(first)
				}
			}
		}
		for _, t := range ts {
			dst.Truth = append(dst.Truth, t.Box.X1, t.Box.Y1, t.Box.X2, t.Box.Y2, float64(t.Class), float64(t.Weight))
		}
		first += len(ts)
	}
	dst.Offsets[n] = int32(first)
	return nil
}

// resize returns s with length n, reusing its storage when large enough.
func resize[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// yoloBlock is yolo_loss's block size, YOLO_BLOCK in yolo.cu (its
// reduction needs exactly that many threads); yoloMaxBlocks caps its grid (the kernel loops over the rest), so
// that the per-block atomic adds of the loss sums stay few.
const (
	yoloBlock     = 256
	yoloMaxBlocks = 1024
)

// YOLOLoss computes head h's YOLOv3 loss (model/yolo.go's, in double
// precision) and its gradient in one pass. x is the head's raw output and dx
// its gradient, float32 of shape (n, len(h.Mask)*(5+h.Classes), gh, gw); dx
// is fully overwritten with the gradient of the loss (upstream gradient 1),
// and may be x itself. targets is the device copy of t marshalled
// (YOLOTargets.Marshal; 8-byte aligned), t the host targets it came from
// (sizes and section offsets), packed by PackYOLOTargets for the same h, n,
// gh, gw, netW, netH. smooth0 and smooth1 are the class targets used for 0
// and 1 (label smoothing; 0 and 1 without). loss points to 5 float64s on the
// device, 8-byte aligned, to which the kernel adds obj, xy, wh, cls (each
// already divided by n, as model.LossParts) and the number of positives: the
// caller zeroes them (once per step for all heads) and reads them back.
func (k *Kernels) YOLOLoss(s *Stream, dx, x, targets Ptr, t *YOLOTargets, h *model.Head, n, gh, gw, netW, netH int,
	smooth0, smooth1 float64, loss Ptr) error {
	na, nc := len(h.Mask), h.Classes
	if t == nil {
		return fmt.Errorf("YOLOLoss: nil targets")
	}
	if t.N != n || t.NA != na || t.GH != gh || t.GW != gw || t.NetW != netW || t.NetH != netH {
		return fmt.Errorf("YOLOLoss: targets packed for %d images x %d anchors on a %dx%d grid of a %dx%d input, called for %d x %d on %dx%d of %dx%d",
			t.N, t.NA, t.GH, t.GW, t.NetW, t.NetH, n, na, gh, gw, netW, netH)
	}
	if len(t.Pos) != n*na*gh*gw || len(t.Offsets) != n+1 || len(t.Anchor) != 2*na || len(t.Truth)%6 != 0 ||
		int(t.Offsets[n]) != len(t.Truth)/6 {
		return fmt.Errorf("YOLOLoss: inconsistent targets (%d slots, %d offsets, %d anchor values, %d truth values): build them with PackYOLOTargets",
			len(t.Pos), len(t.Offsets), len(t.Anchor), len(t.Truth))
	}
	for a, m := range h.Mask {
		if t.Anchor[2*a] != h.Anchors[m][0] || t.Anchor[2*a+1] != h.Anchors[m][1] {
			return fmt.Errorf("YOLOLoss: targets packed for anchor (%g,%g) at mask entry %d, the head has (%g,%g): another head's targets?",
				t.Anchor[2*a], t.Anchor[2*a+1], a, h.Anchors[m][0], h.Anchors[m][1])
		}
	}
	if nc < 0 {
		return fmt.Errorf("YOLOLoss: %d classes", nc)
	}
	if elems := int64(n) * int64(na*(5+nc)) * int64(gh*gw); elems > 1<<40 {
		return fmt.Errorf("YOLOLoss: %d elements is too many", elems)
	}
	if x == 0 || dx == 0 || targets == 0 || loss == 0 {
		return fmt.Errorf("YOLOLoss: null device pointer (x %#x, dx %#x, targets %#x, loss %#x)", x, dx, targets, loss)
	}
	if x%4 != 0 || dx%4 != 0 || targets%8 != 0 || loss%8 != 0 {
		return fmt.Errorf("YOLOLoss: misaligned device pointer (x %#x, dx %#x: 4 bytes; targets %#x, loss %#x: 8 bytes)", x, dx, targets, loss)
	}
	sxy := h.ScaleXY
	if sxy == 0 {
		sxy = 1
	}
	l := t.Layout()
	total := n * na * gh * gw
	blocks := min((total+yoloBlock-1)/yoloBlock, yoloMaxBlocks)
	return k.launch(s, "yolo_loss", D1(blocks), D1(yoloBlock), 0,
		dx, x, targets.Add(l.Truth), targets.Add(l.Anchor), targets.Add(l.Pos), targets.Add(l.Offsets),
		n, na, nc, gh, gw,
		float64(netW)/float64(gw), float64(netH)/float64(gh), float64(netW*netH), 1/float64(n),
		h.IgnoreThresh, sxy, smooth0, smooth1, loss)
}

// yoloOp is a [yolo] layer (model/yolo.go): an alias of its input, whose
// loss and gradient Net.lossHeads computes (Kernels.YOLOLoss) between the
// forward and backward walks.
type yoloOp struct {
	noAlloc
	l *model.YOLOLayer
}

func (yoloOp) name() string { return "yolo" }

func (o yoloOp) plan(nt *Net, ly *layer) (*buffer, error) {
	cur := ly.i
	ly.in = []int{cur}
	ly.out = cur
	nt.heads = append(nt.heads, &head{layer: ly.i, slot: cur, h: o.l.Head})
	return nil, nil
}

func (yoloOp) forward(*Net, *layer) error  { return nil }
func (yoloOp) backward(*Net, *layer) error { return nil }
