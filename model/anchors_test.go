package model

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
)

// TestKMeansAnchors: shapes drawn around three known sizes come back as
// three anchors near those sizes, smallest first, with a mean IoU close to 1.
func TestKMeansAnchors(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	centres := [][2]float64{{100, 40}, {12, 16}, {40, 80}}
	var shapes [][2]float64
	for i := 0; i < 600; i++ {
		c := centres[i%3]
		shapes = append(shapes, [2]float64{c[0] * (1 + 0.05*r.NormFloat64()), c[1] * (1 + 0.05*r.NormFloat64())})
	}
	shapes = append(shapes, [2]float64{0, 5}) // zero area: skipped
	a, err := KMeansAnchors(shapes, 3, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]float64{{12, 16}, {40, 80}, {100, 40}}
	for i := range want {
		if math.Abs(a[i][0]-want[i][0]) > 0.05*want[i][0]+1 || math.Abs(a[i][1]-want[i][1]) > 0.05*want[i][1]+1 {
			t.Fatalf("anchors %v, want about %v", a, want)
		}
	}
	if v := MeanBestIoU(shapes, a); v < 0.9 {
		t.Fatalf("mean IoU %.3f", v)
	}
	if _, err := KMeansAnchors(shapes[:2], 3, 1); err == nil {
		t.Fatal("3 anchors from 2 boxes: no error")
	}
}

// TestMeanBestIoU by hand: a 10x10 box against anchors 10x10 and 20x20 has
// IoU 1; a 5x10 box has 50/100 with the first.
func TestMeanBestIoU(t *testing.T) {
	got := MeanBestIoU([][2]float64{{10, 10}, {5, 10}}, [][2]float64{{10, 10}, {20, 20}})
	if math.Abs(got-0.75) > 1e-12 {
		t.Fatalf("got %v, want 0.75", got)
	}
}

func TestSetAnchors(t *testing.T) {
	n := mustParse(t, smallCfg(2))
	an := [][2]float64{{3, 5}, {7, 9}, {11, 13}, {15, 17}, {19, 21}, {23.5, 25}}
	if err := n.SetAnchors(an); err != nil {
		t.Fatal(err)
	}
	if n.Heads[1].Anchors[5] != an[5] || !strings.Contains(string(n.Cfg.Text()), "anchors=3,5, 7,9, 11,13, 15,17, 19,21, 23.5,25\n") {
		t.Fatalf("anchors not set:\n%s", n.Cfg.Text())
	}
	if err := n.SetAnchors(an[:4]); err == nil || !strings.Contains(err.Error(), "has 6 anchors (num=6), cannot set 4") {
		t.Fatalf("4 anchors: %v", err)
	}
}

// TestSlotRecall: two truths of the same shape in one cell of the same head
// share one slot, so one of them is never learnt.
func TestSlotRecall(t *testing.T) {
	n := mustParse(t, smallCfg(2)) // heads at stride 4 (grid 16 at 64)
	if g := n.headGrids(Square(64)); g[0] != Square(16) || g[1] != Square(16) {
		t.Fatalf("grids %v", g)
	}
	same := []Truth{{Box: box.Box{X1: 0, Y1: 0, X2: 12, Y2: 12}}, {Box: box.Box{X1: 1, Y1: 1, X2: 13, Y2: 13}}}
	apart := []Truth{{Box: box.Box{X1: 0, Y1: 0, X2: 12, Y2: 12}}, {Box: box.Box{X1: 30, Y1: 30, X2: 42, Y2: 42}}}
	if r := n.SlotRecall([][]Truth{same}, Square(64)); r != 0.5 {
		t.Fatalf("same cell: %v, want 0.5", r)
	}
	if r := n.SlotRecall([][]Truth{apart, same}, Square(64)); r != 0.75 {
		t.Fatalf("3 of 4: %v", r)
	}
}
