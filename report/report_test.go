package report

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func rows() []Epoch {
	var rs []Epoch
	for e := 1; e <= 6; e++ {
		r := Epoch{Epoch: e, Seconds: float64(e) * 12.5, LR: 0.001 * float64(e) / 6, Loss: 10 / float64(e),
			LossObj: 4 / float64(e), LossXY: 2 / float64(e), LossWH: 1 / float64(e), LossCls: 3 / float64(e), ImgPerSec: 20}.NoMetrics()
		if e%2 == 0 {
			r.MAP50VOC07, r.MAP50VOC, r.MAPCOCO, r.MAP50COCO = 0.1*float64(e), 0.11*float64(e), 0.05*float64(e), 0.1*float64(e)
		}
		rs = append(rs, r)
	}
	return rs
}

// Golden CSV: header, shortest numbers, empty cells for epochs without
// evaluation.
func TestWriteResultsCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteResultsCSV(&b, rows()[:2]); err != nil {
		t.Fatal(err)
	}
	want := "epoch,seconds,lr,loss,loss_obj,loss_xy,loss_wh,loss_cls,img_per_s,map50_voc07,map50_voc,map_coco,map50_coco\n" +
		"1,12.5,0.00016666666666666666,10,4,2,1,3,20,,,,\n" +
		"2,25,0.0003333333333333333,5,2,1,0.5,1.5,20,0.2,0.22,0.1,0.2\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// checkPNG decodes the file and checks its size and that it is not blank.
func checkPNG(t *testing.T, p string, minW int) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	b := img.Bounds()
	if b.Dx() < minW || b.Dy() < 100 {
		t.Errorf("%s: %v", p, b)
	}
	colours := map[[4]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bb, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, bb, a}] = true
		}
	}
	if len(colours) < 5 {
		t.Errorf("%s: only %d colours: blank?", p, len(colours))
	}
}

func TestPlotTraining(t *testing.T) {
	dir := t.TempDir()
	files, err := PlotTraining(dir, rows())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("files %v", files)
	}
	for _, f := range files {
		checkPNG(t, f, 700)
	}
	// Without any evaluation there is no map.png.
	var noMAP []Epoch
	for _, r := range rows() {
		noMAP = append(noMAP, r.NoMetrics())
	}
	dir2 := t.TempDir()
	files, err = PlotTraining(dir2, noMAP)
	if err != nil || len(files) != 2 || strings.HasSuffix(files[1], "map.png") {
		t.Errorf("without mAP: %v %v", files, err)
	}
	if _, err := PlotTraining(dir2, nil); err == nil {
		t.Error("no error for no rows")
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("dir holds %d files", len(ents))
	}
}

func TestPlotPRAndConfusion(t *testing.T) {
	dir := t.TempDir()
	pr := func(ap float64) []float64 {
		p := make([]float64, 101)
		for i := range p {
			p[i] = math.Max(0, 1-math.Pow(float64(i)/100, 1/ap))
		}
		return p
	}
	p := filepath.Join(dir, "pr.png")
	if err := PlotPR(p, "PR @ IoU .5", []PRCurve{{"cat", 0.8, pr(0.8)}, {"dog", 0.5, pr(0.5)}, {"none", -1, nil}}); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, p, 700)
	if err := PlotPR(p, "x", nil); err == nil {
		t.Error("no error without curves")
	}
	c := filepath.Join(dir, "confusion.png")
	m := [][]int{{50, 2, 3}, {1, 40, 5}, {4, 6, 0}}
	if err := PlotConfusion(c, "Confusion matrix", m, []string{"cat", "dog", "background"}); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, c, 500)
	if err := PlotConfusion(c, "x", m, []string{"a"}); err == nil {
		t.Error("no error for labels of the wrong length")
	}
}
