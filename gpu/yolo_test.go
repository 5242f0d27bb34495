package gpu

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
	"github.com/dettrain/dettrain/model"
)

// TestPackYOLOTargets packs a hand-made batch and checks every section of
// the targets and of their marshalled bytes.
//
// Anchors (10,13) (16,30) (33,23) (30,61), mask {1,2}; 2x2 grid of a 64x64
// input (stride 32); batch of 4, truths for 3 images:
//
//	image 0: A (0,0)-(16,30) is anchor 1 (mask 0), centre (8,15): cell (0,0)
//	         B zero width: never positive
//	         C (40,36)-(73,59) 33x23 is anchor 2 (mask 1), centre (56.5,47.5): cell (1,1)
//	image 1: none
//	image 2: D (30,30)-(46,60) anchor 1, centre (38,45): cell (1,1)
//	         E (34,34)-(50,64) the same anchor and cell: overwrites D
//	         F (0,0)-(10,13) anchor 0, not in the mask: never positive
//	image 3: none (past len(truths))
func TestPackYOLOTargets(t *testing.T) {
	h := &model.Head{Anchors: [][2]float64{{10, 13}, {16, 30}, {33, 23}, {30, 61}}, Mask: []int{1, 2}, Classes: 3, IgnoreThresh: 0.7}
	tr := func(c int, x1, y1, x2, y2 float64, w float32) model.Truth {
		return model.Truth{Class: c, Box: box.Box{X1: x1, Y1: y1, X2: x2, Y2: y2}, Weight: w}
	}
	truths := [][]model.Truth{
		{tr(2, 0, 0, 16, 30, 1), tr(1, 40, 40, 40, 50, 0.5), tr(0, 40, 36, 73, 59, 0.25)},
		{},
		{tr(1, 30, 30, 46, 60, 1), tr(2, 34, 34, 50, 64, 0.75), tr(0, 0, 0, 10, 13, 1)},
	}
	var tg YOLOTargets
	if err := PackYOLOTargets(h, truths, 4, 2, 2, 64, 64, &tg); err != nil {
		t.Fatal(err)
	}
	if tg.N != 4 || tg.NA != 2 || tg.GH != 2 || tg.GW != 2 || tg.NetW != 64 || tg.NetH != 64 {
		t.Fatalf("sizes %+v", tg)
	}
	wantTruth := []float64{
		0, 0, 16, 30, 2, 1, 40, 40, 40, 50, 1, 0.5, 40, 36, 73, 59, 0, 0.25,
		30, 30, 46, 60, 1, 1, 34, 34, 50, 64, 2, 0.75, 0, 0, 10, 13, 0, 1,
	}
	wantAnchor := []float64{16, 30, 33, 23}
	wantPos := make([]int32, 4*2*4)
	wantPos[0] = 1     // image 0, mask 0, cell (0,0): A
	wantPos[7] = 3     // image 0, mask 1, cell (1,1): C
	wantPos[2*8+3] = 5 // image 2, mask 0, cell (1,1): E (row 4 of the table) over D
	wantOffsets := []int32{0, 3, 3, 6, 6}
	if !reflect.DeepEqual(tg.Truth, wantTruth) {
		t.Errorf("Truth\n%v, want\n%v", tg.Truth, wantTruth)
	}
	if !reflect.DeepEqual(tg.Anchor, wantAnchor) {
		t.Errorf("Anchor %v, want %v", tg.Anchor, wantAnchor)
	}
	if !reflect.DeepEqual(tg.Pos, wantPos) {
		t.Errorf("Pos %v, want %v", tg.Pos, wantPos)
	}
	if !reflect.DeepEqual(tg.Offsets, wantOffsets) {
		t.Errorf("Offsets %v, want %v", tg.Offsets, wantOffsets)
	}

	// Layout: 36 float64s, 4 float64s, 32 int32s, 5 int32s, padded to 8.
	wantL := YOLOTargetsLayout{Truth: 0, Anchor: 288, Pos: 320, Offsets: 448, Bytes: 472}
	if l := tg.Layout(); l != wantL {
		t.Fatalf("layout %+v, want %+v", l, wantL)
	}
	if tg.Bytes() != 472 {
		t.Fatalf("Bytes %d", tg.Bytes())
	}
	buf := make([]byte, 480)
	for i := range buf {
		buf[i] = 0xAB
	}
	if n := tg.Marshal(buf); n != 472 {
		t.Fatalf("Marshal wrote %d bytes, want 472", n)
	}
	le := binary.LittleEndian
	for i, v := range wantTruth {
		if g := math.Float64frombits(le.Uint64(buf[8*i:])); g != v {
			t.Fatalf("truth value %d: %v, want %v", i, g, v)
		}
	}
	for i, v := range wantAnchor {
		if g := math.Float64frombits(le.Uint64(buf[288+8*i:])); g != v {
			t.Fatalf("anchor value %d: %v, want %v", i, g, v)
		}
	}
	for i, v := range wantPos {
		if g := int32(le.Uint32(buf[320+4*i:])); g != v {
			t.Fatalf("pos %d: %v, want %v", i, g, v)
		}
	}
	for i, v := range wantOffsets {
		if g := int32(le.Uint32(buf[448+4*i:])); g != v {
			t.Fatalf("offset %d: %v, want %v", i, g, v)
		}
	}
	if le.Uint32(buf[468:]) != 0 {
		t.Fatalf("padding not zeroed: % x", buf[468:472])
	}
	if buf[472] != 0xAB {
		t.Fatalf("Marshal wrote past Bytes")
	}

	// The positives are the CPU loss's: model.Head.Positives per image.
	pos := make([]int32, 2*4)
	h.Positives(truths[2], 2, 2, 64, 64, pos)
	for i, p := range pos {
		if p > 0 {
			p += 3
		}
		if tg.Pos[2*8+i] != p {
			t.Fatalf("image 2 slot %d: %d, Positives (offset by 3) gives %d", i, tg.Pos[2*8+i], p)
		}
	}

	// Repacking into the same targets allocates nothing.
	if a := testing.AllocsPerRun(10, func() {
		if err := PackYOLOTargets(h, truths, 4, 2, 2, 64, 64, &tg); err != nil {
			t.Fatal(err)
		}
		tg.Marshal(buf)
	}); a != 0 {
		t.Fatalf("repacking allocates %v times", a)
	}

	// A short buffer is refused with the sizes.
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "472") {
				t.Fatalf("Marshal into a short buffer: %v", r)
			}
		}()
		tg.Marshal(buf[:100])
	}()
}

func TestPackYOLOTargetsErrors(t *testing.T) {
	h := &model.Head{Anchors: [][2]float64{{10, 13}, {16, 30}}, Mask: []int{0, 1}, Classes: 1}
	var tg YOLOTargets
	one := []model.Truth{{Box: box.Box{X2: 5, Y2: 5}, Weight: 1}}
	if err := PackYOLOTargets(h, [][]model.Truth{one, one}, 1, 2, 2, 64, 64, &tg); err == nil || !strings.Contains(err.Error(), "2 images") {
		t.Errorf("more truth lists than images: %v", err)
	}
	if err := PackYOLOTargets(h, nil, 1, 0, 2, 64, 64, &tg); err == nil {
		t.Errorf("empty grid accepted")
	}
	bad := &model.Head{Anchors: [][2]float64{{10, 13}}, Mask: []int{0, 3}, Classes: 1}
	if err := PackYOLOTargets(bad, nil, 1, 2, 2, 64, 64, &tg); err == nil || !strings.Contains(err.Error(), "anchor 3") {
		t.Errorf("mask past the anchors: %v", err)
	}
	if err := PackYOLOTargets(h, nil, 1<<16, 256, 256, 64, 64, &tg); err == nil || !strings.Contains(err.Error(), "2^31") {
		t.Errorf("too many slots: %v", err)
	}
	// No truths at all: empty table, all offsets 0.
	if err := PackYOLOTargets(h, nil, 2, 1, 1, 32, 32, &tg); err != nil {
		t.Fatal(err)
	}
	if len(tg.Truth) != 0 || !reflect.DeepEqual(tg.Offsets, []int32{0, 0, 0}) || !reflect.DeepEqual(tg.Pos, []int32{0, 0, 0, 0}) {
		t.Fatalf("no truths: %+v", tg)
	}
	if l := tg.Layout(); l.Bytes != 32+16+12+4 || l.Pos != 32 {
		t.Fatalf("no truths: layout %+v", l)
	}
}

// TestYOLOLossArgs checks the wrapper's refusals, which need no device.
func TestYOLOLossArgs(t *testing.T) {
	h := &model.Head{Anchors: [][2]float64{{10, 13}, {16, 30}}, Mask: []int{0, 1}, Classes: 1, IgnoreThresh: 0.7}
	var tg YOLOTargets
	if err := PackYOLOTargets(h, nil, 2, 2, 2, 64, 64, &tg); err != nil {
		t.Fatal(err)
	}
	k := &Kernels{}
	err := k.YOLOLoss(nil, 256, 512, 1024, &tg, h, 2, 2, 3, 64, 64, 0, 1, 2048)
	if err == nil || !strings.Contains(err.Error(), "2x3") {
		t.Errorf("grid mismatch: %v", err)
	}
	h2 := &model.Head{Anchors: [][2]float64{{10, 13}, {16, 31}}, Mask: []int{0, 1}, Classes: 1}
	if err := k.YOLOLoss(nil, 256, 512, 1024, &tg, h2, 2, 2, 2, 64, 64, 0, 1, 2048); err == nil || !strings.Contains(err.Error(), "another head") {
		t.Errorf("other head's anchors: %v", err)
	}
	if err := k.YOLOLoss(nil, 256, 512, 1028, &tg, h, 2, 2, 2, 64, 64, 0, 1, 2048); err == nil || !strings.Contains(err.Error(), "misaligned") {
		t.Errorf("misaligned targets: %v", err)
	}
	if err := k.YOLOLoss(nil, 256, 0, 1024, &tg, h, 2, 2, 2, 64, 64, 0, 1, 2048); err == nil || !strings.Contains(err.Error(), "null") {
		t.Errorf("null x: %v", err)
	}
}
