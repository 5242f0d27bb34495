package box

import (
	"math"
	"testing"
)

func TestIoU(t *testing.T) {
	// Two 2x2 boxes overlapping in a 1x2 strip: inter 2, union 4+4-2 = 6.
	a := Box{0, 0, 2, 2}
	b := Box{1, 0, 3, 2}
	if got := IoU(a, b); math.Abs(got-2.0/6) > 1e-12 {
		t.Fatalf("IoU = %v, want 1/3", got)
	}
	if got := IoU(a, Box{5, 5, 6, 6}); got != 0 {
		t.Fatalf("disjoint IoU = %v", got)
	}
	if got := IoU(a, a); got != 1 {
		t.Fatalf("self IoU = %v", got)
	}
}

func TestVOCMatchesDevkitArea(t *testing.T) {
	// VOC devkit: area = (xmax-xmin+1)*(ymax-ymin+1) on 1-based inclusive corners.
	b := FromVOC(10, 20, 19, 24)
	if b.W() != 10 || b.H() != 5 {
		t.Fatalf("W,H = %v,%v want 10,5", b.W(), b.H())
	}
	x1, y1, x2, y2 := b.VOC()
	if x1 != 10 || y1 != 20 || x2 != 19 || y2 != 24 {
		t.Fatalf("round trip gave %v %v %v %v", x1, y1, x2, y2)
	}
}

func TestConversionsRoundTrip(t *testing.T) {
	b := Box{12, 30, 52, 90}
	c := b.XYWH()
	if FromXYWH(c[0], c[1], c[2], c[3]) != b {
		t.Fatal("xywh round trip")
	}
	cx, cy, w, h := b.RelCXCYWH(200, 100)
	if math.Abs(cx-0.16) > 1e-12 || math.Abs(cy-0.6) > 1e-12 || math.Abs(w-0.2) > 1e-12 || math.Abs(h-0.6) > 1e-12 {
		t.Fatalf("rel = %v %v %v %v", cx, cy, w, h)
	}
	r := FromRelCXCYWH(cx, cy, w, h, 200, 100)
	if math.Abs(r.X1-b.X1)+math.Abs(r.Y1-b.Y1)+math.Abs(r.X2-b.X2)+math.Abs(r.Y2-b.Y2) > 1e-9 {
		t.Fatalf("rel round trip %v", r)
	}
	if got := (Box{-5, -5, 300, 50}).Clip(200, 100); got != (Box{0, 0, 200, 50}) {
		t.Fatalf("clip %v", got)
	}
}
