package model

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strconv"
	"strings"
)

// KMeansAnchors clusters box shapes (w, h in network-input pixels) into k
// anchors as darknet's calc_anchors does: k-means with the distance
// 1 - IoU(box, centroid) between shapes sharing a centre, each centroid the
// mean w and h of its boxes. Centroids start as k-means++ picks them (with
// that distance), the clustering is restarted 10 times from seed, and the run
// with the highest mean IoU wins. The anchors are rounded to whole pixels (as
// darknet prints them, at least 1) and sorted by area, smallest first, the
// order YOLO cfgs' masks expect. Zero-area shapes are skipped.
func KMeansAnchors(shapes [][2]float64, k int, seed int64) ([][2]float64, error) {
	var pts [][2]float64
	for _, s := range shapes {
		if s[0] > 0 && s[1] > 0 {
			pts = append(pts, s)
		}
	}
	if k < 1 {
		return nil, fmt.Errorf("anchors: need k >= 1, got %d", k)
	}
	if len(pts) < k {
		return nil, fmt.Errorf("anchors: %d boxes with a positive size, fewer than the %d anchors asked for", len(pts), k)
	}
	r := rand.New(rand.NewSource(seed))
	var best [][2]float64
	bestIoU := -1.0
	for run := 0; run < 10; run++ {
		c := kmeans(pts, k, r)
		for i := range c {
			c[i] = [2]float64{math.Max(1, math.Round(c[i][0])), math.Max(1, math.Round(c[i][1]))}
		}
		if v := MeanBestIoU(pts, c); v > bestIoU {
			best, bestIoU = c, v
		}
	}
	sort.SliceStable(best, func(i, j int) bool { return best[i][0]*best[i][1] < best[j][0]*best[j][1] })
	return best, nil
}

func kmeans(pts [][2]float64, k int, r *rand.Rand) [][2]float64 {
	// k-means++: the first centre uniformly, then each next with probability
	// proportional to its squared distance to the nearest centre so far.
	c := [][2]float64{pts[r.Intn(len(pts))]}
	d := make([]float64, len(pts))
	for len(c) < k {
		var sum float64
		for i, p := range pts {
			m := math.Inf(1)
			for _, q := range c {
				m = math.Min(m, 1-shapeIoU(p[0], p[1], q[0], q[1]))
			}
			d[i] = m * m
			sum += d[i]
		}
		pick := len(pts) - 1
		if sum > 0 {
			u := r.Float64() * sum
			for i, v := range d {
				if u -= v; u <= 0 {
					pick = i
					break
				}
			}
		} else {
			pick = r.Intn(len(pts))
		}
		c = append(c, pts[pick])
	}
	assign := make([]int, len(pts))
	for i := range assign {
		assign[i] = -1
	}
	for iter := 0; iter < 1000; iter++ {
		changed := false
		for i, p := range pts {
			bi, bd := 0, math.Inf(1)
			for j, q := range c {
				if v := 1 - shapeIoU(p[0], p[1], q[0], q[1]); v < bd {
					bi, bd = j, v
				}
			}
			if assign[i] != bi {
				assign[i], changed = bi, true
			}
		}
		if !changed {
			break
		}
		sums := make([][3]float64, k)
		for i, p := range pts {
			s := &sums[assign[i]]
			s[0] += p[0]
			s[1] += p[1]
			s[2]++
		}
		for j := range c {
			if sums[j][2] > 0 { // an empty cluster keeps its centre
				c[j] = [2]float64{sums[j][0] / sums[j][2], sums[j][1] / sums[j][2]}
			}
		}
	}
	return c
}

// MeanBestIoU is darknet calc_anchors' "avg IoU": the mean over shapes of the
// best IoU with any anchor, shapes and anchors sharing a centre.
func MeanBestIoU(shapes, anchors [][2]float64) float64 {
	var sum float64
	n := 0
	for _, s := range shapes {
		if !(s[0] > 0 && s[1] > 0) {
			continue
		}
		b := 0.0
		for _, a := range anchors {
			b = math.Max(b, shapeIoU(s[0], s[1], a[0], a[1]))
		}
		sum += b
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// NumAnchors is the number of anchors of the cfg's first [yolo] layer (its num=).
func (n *Network) NumAnchors() int { return len(n.Heads[0].Anchors) }

// SetAnchors replaces the anchors of every [yolo] layer, in the network and in
// its cfg (so that Cfg.Text writes them). There must be as many as each layer
// has (its num=), so that the masks keep their meaning.
func (n *Network) SetAnchors(anchors [][2]float64) error {
	for _, l := range n.Layers {
		y, ok := l.(*YOLOLayer)
		if !ok {
			continue
		}
		if len(anchors) != len(y.Head.Anchors) {
			return y.sec.errf(0, "has %d anchors (num=%d), cannot set %d", len(y.Head.Anchors), len(y.Head.Anchors), len(anchors))
		}
	}
	parts := make([]string, len(anchors))
	for i, a := range anchors {
		if !(a[0] > 0 && a[1] > 0) {
			return fmt.Errorf("anchor %d is %vx%v: anchors must be positive", i, a[0], a[1])
		}
		parts[i] = strconv.FormatFloat(a[0], 'g', -1, 64) + "," + strconv.FormatFloat(a[1], 'g', -1, 64)
	}
	for _, l := range n.Layers {
		if y, ok := l.(*YOLOLayer); ok {
			y.Head.Anchors = append([][2]float64(nil), anchors...)
			y.sec.Set("anchors", strings.Join(parts, ", "))
		}
	}
	return nil
}

// SlotRecall is the best recall dettrain's loss allows on these images at
// input size (width x height): the fraction of truths that get a positive slot. Each
// truth goes to its best anchor (yoloLoss) in the cell of its centre; when
// two truths of an image land on the same head, cell and anchor, the later one
// takes the slot and the earlier one is never learnt. Truths whose best
// anchor no head predicts are lost too. Zero-area truths are not counted.
func (n *Network) SlotRecall(images [][]Truth, size Size) float64 {
	grids := n.headGrids(size)
	total, kept := 0, 0
	for _, truths := range images {
		slots := map[[4]int]int{} // head, anchor, i, j -> truth
		for ti, t := range truths {
			w, h := t.Box.W(), t.Box.H()
			if w <= 0 || h <= 0 {
				continue
			}
			total++
			for hi, hd := range n.Heads {
				best := hd.BestAnchor(w, h)
				for a, m := range hd.Mask {
					if m != best {
						continue
					}
					g := grids[hi]
					sx, sy := float64(size.W)/float64(g.W), float64(size.H)/float64(g.H)
					cx, cy := t.Box.Center()
					j := min(max(int(cx/sx), 0), g.W-1)
					i := min(max(int(cy/sy), 0), g.H-1)
					slots[[4]int{hi, a, i, j}] = ti
				}
			}
		}
		won := map[int]bool{}
		for _, ti := range slots {
			won[ti] = true
		}
		kept += len(won)
	}
	if total == 0 {
		return 0
	}
	return float64(kept) / float64(total)
}

// headGrids returns each head's grid (cells across, cells down) for an
// input of size.
func (n *Network) headGrids(size Size) []Size {
	var out []Size
	sw, sh := n.SpatialSizes(size.W), n.SpatialSizes(size.H)
	for i, l := range n.Layers {
		if _, ok := l.(*YOLOLayer); ok {
			out = append(out, Size{sw[i], sh[i]})
		}
	}
	return out
}

// SpatialSizes returns every layer's output extent along one axis for an
// input of size pixels along that axis (darknet's rules act on width and
// height alike, so a WxH input has outputs SpatialSizes(W) x
// SpatialSizes(H)), following darknet's size rules (conv (in+2p-k)/s+1, maxpool
// (in+padding-size)/stride+1, avgpool 1, upsample in*stride). A size a
// layer cannot take gives 0 from there on.
func (n *Network) SpatialSizes(size int) []int {
	out := make([]int, len(n.Layers))
	cur := size
	for i, l := range n.Layers {
		cur = l.extent(cur, out)
		if cur < 1 {
			cur = 0
		}
		out[i] = cur
	}
	return out
}
