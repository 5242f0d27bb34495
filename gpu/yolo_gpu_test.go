package gpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/dettrain/dettrain/box"
	"github.com/dettrain/dettrain/model"
)

// yoloCase is one comparison of the GPU loss with model.YOLOLossCPU.
type yoloCase struct {
	name           string
	head           *model.Head
	n, gh, gw      int
	netW, netH     int
	truthsPer      []int // truths of each image (len <= n; the rest have none)
	smooth         bool
	inPlace        bool // dx = x
	pinned         bool // upload the targets from a pinned buffer
	twice          bool // run twice without zeroing the sums: they double
	timed          bool
	bigLogitsEvery int // every k-th logit is scaled by 30 (0: none)
}

var yoloAnchors = [][2]float64{{10, 13}, {16, 30}, {33, 23}, {30, 61}, {62, 45}, {59, 119}, {116, 90}, {156, 198}, {373, 326}}

// yoloCases are the comparisons TestYOLOLossGPU makes: several shapes and
// anchor counts, fractional strides, scale_x_y 1, 1.05 and 0 (read as 1),
// label smoothing, an image without truths and images past len(truths),
// large logits, in place, and a grid large enough for the kernel's
// grid-stride loop (more than 1024 blocks of 256 slots).
func yoloCases() []yoloCase {
	hd := func(mask []int, classes int, ignore, sxy float64) *model.Head {
		return &model.Head{Anchors: yoloAnchors, Mask: mask, Classes: classes, IgnoreThresh: ignore, ScaleXY: sxy}
	}
	return []yoloCase{
		{name: "4x4 sxy1", head: hd([]int{0, 1, 2}, 2, 0.5, 1), n: 2, gh: 4, gw: 4, netW: 64, netH: 64, truthsPer: []int{3, 2}},
		{name: "5x7 fractional stride, sxy0", head: hd([]int{3, 4, 5}, 3, 0.3, 0), n: 3, gh: 5, gw: 7, netW: 100, netH: 90, truthsPer: []int{6, 0, 4}, bigLogitsEvery: 7},
		{name: "13x13 sxy1.05 smooth", head: hd([]int{6, 7, 8}, 4, 0.5, 1.05), n: 3, gh: 13, gw: 13, netW: 416, netH: 416, truthsPer: []int{8, 5}, smooth: true, pinned: true, twice: true},
		{name: "26x20 80 classes smooth in place", head: hd([]int{0, 1, 2, 3}, 80, 0.4, 1.05), n: 2, gh: 26, gw: 20, netW: 320, netH: 416, truthsPer: []int{40, 12}, smooth: true, inPlace: true, bigLogitsEvery: 11},
		{name: "1x1 one anchor", head: hd([]int{0}, 1, 0.7, 1), n: 2, gh: 1, gw: 1, netW: 32, netH: 32, truthsPer: []int{4, 3}},
		{name: "224x224 grid-stride", head: hd([]int{0, 1, 2}, 2, 0.5, 1.05), n: 2, gh: 224, gw: 224, netW: 1792, netH: 1792, truthsPer: []int{60, 30}, timed: true},
	}
}

func yoloRand(i int) *rand.Rand { return rand.New(rand.NewSource(int64(100 + i))) }

// TestYOLOCases checks, without a GPU, that the cases of TestYOLOLossGPU
// exercise what they should: positives in each, ignored negatives and
// truths overwriting others in the same slot in some.
func TestYOLOCases(t *testing.T) {
	ignored, overwritten := 0, 0
	for i, c := range yoloCases() {
		_, truths, _, _, want, _, ig := yoloCPU(t, c, yoloRand(i))
		ignored += ig
		h, na, plane := c.head, len(c.head.Mask), c.gh*c.gw
		pos := make([]int32, na*plane)
		for _, ts := range truths {
			h.Positives(ts, c.gh, c.gw, c.netW, c.netH, pos)
			np, cand := 0, 0
			for _, p := range pos {
				if p > 0 {
					np++
				}
			}
			for _, tr := range ts {
				if tr.Box.W() > 0 && tr.Box.H() > 0 {
					best := h.BestAnchor(tr.Box.W(), tr.Box.H())
					for _, m := range h.Mask {
						if m == best {
							cand++
						}
					}
				}
			}
			overwritten += cand - np
		}
		t.Logf("%s: %+v, %d negatives ignored", c.name, want, ig)
	}
	if ignored == 0 || overwritten == 0 {
		t.Fatalf("%d negatives ignored, %d truths overwritten in all cases: both should be > 0", ignored, overwritten)
	}
}

func TestYOLOLossGPU(t *testing.T) {
	d, s, k := testGPU(t)
	for i, c := range yoloCases() {
		t.Run(c.name, func(t *testing.T) {
			runYOLOCase(t, d, s, k, c, yoloRand(i))
		})
	}
}

// yoloTruths makes random truths for c: boxes around the image and past its
// edges, zero-size and inverted boxes, and pairs of truths in the same cell
// with the same anchor.
func yoloTruths(c yoloCase, rng *rand.Rand) [][]model.Truth {
	out := make([][]model.Truth, len(c.truthsPer))
	W, H := float64(c.netW), float64(c.netH)
	for b, nt := range c.truthsPer {
		ts := []model.Truth{}
		for len(ts) < nt {
			cx, cy := (rng.Float64()*1.2-0.1)*W, (rng.Float64()*1.2-0.1)*H
			w, h := 2+rng.Float64()*0.7*W, 2+rng.Float64()*0.7*H
			if rng.Intn(3) == 0 { // anchor-like sizes, so that decoded boxes overlap
				a := c.head.Anchors[c.head.Mask[rng.Intn(len(c.head.Mask))]]
				w, h = a[0]*(0.8+0.4*rng.Float64()), a[1]*(0.8+0.4*rng.Float64())
			}
			t := model.Truth{Class: rng.Intn(c.head.Classes), Weight: float32(0.25 + 0.75*rng.Float64()),
				Box: box.Box{X1: cx - w/2, Y1: cy - h/2, X2: cx + w/2, Y2: cy + h/2}}
			switch rng.Intn(8) {
			case 0: // zero width
				t.Box.X2 = t.Box.X1
			case 1: // inverted
				t.Box.Y1, t.Box.Y2 = t.Box.Y2, t.Box.Y1
			case 2, 3: // followed by one of the same size nearby: same anchor, often the same cell
				ts = append(ts, t)
				d := 0.1 * float64(c.netW) / float64(c.gw)
				t.Box = box.Box{X1: t.Box.X1 + d, Y1: t.Box.Y1 - d/2, X2: t.Box.X2 + d, Y2: t.Box.Y2 - d/2}
				t.Class = rng.Intn(c.head.Classes)
			case 4: // an exact duplicate with another class and weight
				ts = append(ts, t)
				t.Class = rng.Intn(c.head.Classes)
				t.Weight = 1
			}
			ts = append(ts, t)
		}
		out[b] = ts[:nt]
	}
	return out
}

// yoloCPU makes the random input and truths of c and computes the CPU loss:
// x, the truths, the class-target mapping and its values for 0 and 1, the
// CPU loss and gradient, and the number of ignored negatives (non-positive
// slots whose objectness gradient is 0).
func yoloCPU(t testing.TB, c yoloCase, rng *rand.Rand) (x []float32, truths [][]model.Truth, s0, s1 float64, want model.LossParts, wantGrad []float64, ignored int) {
	h := c.head
	na, per, plane := len(h.Mask), 5+h.Classes, c.gh*c.gw
	shape := []int{c.n, na * per, c.gh, c.gw}
	size := c.n * na * per * plane
	x = make([]float32, size)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
		if c.bigLogitsEvery > 0 && i%c.bigLogitsEvery == 0 {
			x[i] *= 30
		}
	}
	truths = yoloTruths(c, rng)
	var smooth func(float64) float64
	s0, s1 = 0.0, 1.0
	if c.smooth {
		eps := 0.1
		smooth = func(v float64) float64 { return v*(1-eps) + eps/2 }
		s0, s1 = smooth(0), smooth(1)
	}
	want, wantGrad = model.YOLOLossCPU(h, truths, shape, x, c.netW, c.netH, smooth)
	if want.Positives == 0 {
		t.Fatalf("%s has no positives: it tests too little", c.name)
	}
	// Ignored negatives: non-positive slots whose objectness gradient is 0.
	pos := make([]int32, na*plane)
	for b := 0; b < c.n; b++ {
		var ts []model.Truth
		if b < len(truths) {
			ts = truths[b]
		}
		h.Positives(ts, c.gh, c.gw, c.netW, c.netH, pos)
		for a := 0; a < na; a++ {
			for q := 0; q < plane; q++ {
				if pos[a*plane+q] == 0 && wantGrad[((b*na+a)*per+4)*plane+q] == 0 {
					ignored++
				}
			}
		}
	}

	return x, truths, s0, s1, want, wantGrad, ignored
}

func runYOLOCase(t *testing.T, d *Device, s *Stream, k *Kernels, c yoloCase, rng *rand.Rand) {
	x, truths, s0, s1, want, wantGrad, ignored := yoloCPU(t, c, rng)
	h := c.head
	na, per, plane := len(h.Mask), 5+h.Classes, c.gh*c.gw
	size := c.n * na * per * plane
	var tg YOLOTargets
	if err := PackYOLOTargets(h, truths, c.n, c.gh, c.gw, c.netW, c.netH, &tg); err != nil {
		t.Fatal(err)
	}
	var got [5]float64
	var gotGrad []float32
	var ms float64
	err := d.Do(func() error {
		buf := make([]byte, tg.Bytes())
		tg.Marshal(buf)
		targets, err := d.Alloc(len(buf))
		if err != nil {
			return err
		}
		defer d.Free(targets, len(buf))
		if c.pinned {
			hb, err := d.AllocHost(len(buf) + 64)
			if err != nil {
				return err
			}
			defer hb.Free()
			if n := tg.Marshal(hb.Bytes()); n != len(buf) {
				return fmt.Errorf("Marshal into the pinned buffer wrote %d bytes, want %d", n, len(buf))
			}
			if err := s.UploadAsync(targets, hb, 0, len(buf)); err != nil {
				return err
			}
			if err := s.Sync(); err != nil {
				return err
			}
		} else if err := s.UploadBytes(targets, buf); err != nil {
			return err
		}
		xd := upload(t, d, s, x)
		defer d.Free(xd, 4*size)
		dx := xd
		if !c.inPlace {
			dx = poisoned(t, d, s, size)
			defer d.Free(dx, 4*size)
		}
		loss, err := d.Alloc(40)
		if err != nil {
			return err
		}
		defer d.Free(loss, 40)
		if err := s.Fill32(loss, 0, 10); err != nil {
			return err
		}
		var e0, e1 *Event
		if c.timed {
			if e0, err = NewEvent(); err != nil {
				return err
			}
			defer e0.Destroy()
			if e1, err = NewEvent(); err != nil {
				return err
			}
			defer e1.Destroy()
			if err := e0.Record(s); err != nil {
				return err
			}
		}
		if err := k.YOLOLoss(s, dx, xd, targets, &tg, h, c.n, c.gh, c.gw, c.netW, c.netH, s0, s1, loss); err != nil {
			return err
		}
		if c.timed {
			if err := e1.Record(s); err != nil {
				return err
			}
		}
		if err := s.Sync(); err != nil {
			return fmt.Errorf("yolo_loss: %w", err)
		}
		if c.timed {
			if ms, err = e1.Since(e0); err != nil {
				return err
			}
		}
		gotGrad = download(t, s, dx, size)
		if c.twice { // the sums accumulate: a second run adds the same again
			if err := k.YOLOLoss(s, dx, xd, targets, &tg, h, c.n, c.gh, c.gw, c.netW, c.netH, s0, s1, loss); err != nil {
				return err
			}
		}
		lb := make([]byte, 40)
		if err := s.DownloadBytes(lb, loss); err != nil {
			return err
		}
		for i := range got {
			got[i] = math.Float64frombits(binary.LittleEndian.Uint64(lb[8*i:]))
			if c.twice {
				got[i] /= 2
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.timed {
		t.Logf("%d slots, %d elements: %.3f ms", c.n*na*plane, size, ms)
	}
	t.Logf("CPU %+v (%d negatives ignored); GPU obj %.9g xy %.9g wh %.9g cls %.9g positives %g", want, ignored, got[0], got[1], got[2], got[3], got[4])
	for _, p := range []struct {
		name      string
		got, want float64
	}{{"obj", got[0], want.Obj}, {"xy", got[1], want.XY}, {"wh", got[2], want.WH}, {"cls", got[3], want.Cls}} {
		if math.Abs(p.got-p.want) > 1e-5*math.Max(math.Abs(p.want), 1e-3) {
			t.Errorf("%s loss %.12g, CPU %.12g", p.name, p.got, p.want)
		}
	}
	if got[4] != float64(want.Positives) {
		t.Errorf("positives %g, CPU %d", got[4], want.Positives)
	}
	bad := 0
	for i, g := range gotGrad {
		w := wantGrad[i]
		if !(math.Abs(float64(g)-w) <= 1e-5*math.Max(1, math.Abs(w))) {
			if bad < 10 {
				r := i
				j := r % c.gw
				r /= c.gw
				ii := r % c.gh
				r /= c.gh
				ch := r % (na * per)
				b := r / (na * per)
				t.Errorf("dx[%d] (image %d, anchor %d, channel %d, cell %d,%d) = %v, CPU %v", i, b, ch/per, ch%per, ii, j, g, w)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d gradient elements differ", bad, size)
	}
}
