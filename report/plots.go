package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart size in inches (at the PNG canvas's 96 dpi: 768 x 480 pixels).
const (
	chartW = 8 * vg.Inch
	chartH = 5 * vg.Inch
)

// savePNG renders p as PNG and writes it atomically.
func savePNG(p *plot.Plot, w, h vg.Length, path string) error {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return err
	}
	return writeAtomic(path, b.Bytes())
}

// series is one named curve over the epochs, NaN points left out.
type series struct {
	name string
	get  func(Epoch) float64
}

// lineChart draws the series over the epochs; it returns false when no
// series has a finite point (nothing to draw).
func lineChart(title, ylabel string, rows []Epoch, ss []series, path string) (bool, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	drawn := false
	for i, s := range ss {
		var xy plotter.XYs
		for _, r := range rows {
			if v := s.get(r); !math.IsNaN(v) && !math.IsInf(v, 0) {
				xy = append(xy, plotter.XY{X: float64(r.Epoch), Y: v})
			}
		}
		if len(xy) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return false, err
		}
		c := plotutil.Color(i)
		l.Color, pts.Color = c, c
		l.Width = vg.Points(1.5)
		pts.Shape = draw.CircleGlyph{}
		pts.Radius = vg.Points(2)
		p.Add(l, pts)
		p.Legend.Add(s.name, l)
		drawn = true
	}
	if !drawn {
		return false, nil
	}
	return true, savePNG(p, chartW, chartH, path)
}

// PlotTraining draws the training curves of rows into dir: loss.png (total
// loss and its parts), lr.png (learning rate) and map.png (the mAP metrics,
// at the epochs they were evaluated; left out when none was). It returns
// the files written.
func PlotTraining(dir string, rows []Epoch) ([]string, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("report: no epochs to plot")
	}
	charts := []struct {
		file, title, ylabel string
		ss                  []series
	}{
		{"loss.png", "Training loss (epoch mean)", "loss", []series{
			{"total", func(e Epoch) float64 { return e.Loss }},
			{"objectness", func(e Epoch) float64 { return e.LossObj }},
			{"centre (xy)", func(e Epoch) float64 { return e.LossXY }},
			{"size (wh)", func(e Epoch) float64 { return e.LossWH }},
			{"class", func(e Epoch) float64 { return e.LossCls }},
		}},
		{"lr.png", "Learning rate (end of epoch)", "learning rate", []series{
			{"lr", func(e Epoch) float64 { return e.LR }},
		}},
		{"map.png", "Validation mAP", "mAP", []series{
			{"VOC07 11-point @.5", func(e Epoch) float64 { return e.MAP50VOC07 }},
			{"VOC all-point @.5", func(e Epoch) float64 { return e.MAP50VOC }},
			{"COCO AP@[.5:.95]", func(e Epoch) float64 { return e.MAPCOCO }},
			{"COCO AP@.5", func(e Epoch) float64 { return e.MAP50COCO }},
		}},
	}
	var files []string
	for _, c := range charts {
		p := filepath.Join(dir, c.file)
		ok, err := lineChart(c.title, c.ylabel, rows, c.ss, p)
		if err != nil {
			return files, fmt.Errorf("report: %s: %w", p, err)
		}
		if ok {
			files = append(files, p)
		}
	}
	return files, nil
}

// PRCurve is one class's precision at evenly spaced recall points
// (Precision[i] at recall i/(len-1)), such as COCO's 101-point curve.
type PRCurve struct {
	Name      string
	AP        float64 // shown in the legend
	Precision []float64
}

// PlotPR draws the precision-recall curves (one per class, plus their mean
// when there are several) into path.
func PlotPR(path, title string, curves []PRCurve) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "recall"
	p.Y.Label.Text = "precision"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1.02
	p.Add(plotter.NewGrid())
	p.Legend.Left = true
	p.Legend.Top = false
	var meanP []float64
	n := 0
	for i, c := range curves {
		if len(c.Precision) < 2 {
			continue
		}
		xy := make(plotter.XYs, len(c.Precision))
		for j, v := range c.Precision {
			xy[j] = plotter.XY{X: float64(j) / float64(len(c.Precision)-1), Y: v}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s %.3f", c.Name, c.AP), l)
		if meanP == nil {
			meanP = make([]float64, len(c.Precision))
		}
		if len(c.Precision) == len(meanP) {
			for j, v := range c.Precision {
				meanP[j] += v
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("report: %s: no class has a precision-recall curve", path)
	}
	if n > 1 {
		xy := make(plotter.XYs, len(meanP))
		mean := 0.0
		for j, v := range meanP {
			xy[j] = plotter.XY{X: float64(j) / float64(len(meanP)-1), Y: v / float64(n)}
			mean += v / float64(n)
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = color.Black
		l.Width = vg.Points(3)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("all classes %.3f", mean/float64(len(meanP))), l)
	}
	return savePNG(p, chartW, chartH, path)
}

// confusionGrid is a plotter.GridXYZ over a square matrix; rows are drawn
// top to bottom.
type confusionGrid struct{ m [][]float64 }

func (g confusionGrid) Dims() (c, r int)   { return len(g.m), len(g.m) }
func (g confusionGrid) X(c int) float64    { return float64(c) }
func (g confusionGrid) Y(r int) float64    { return float64(r) }
func (g confusionGrid) Z(c, r int) float64 { return g.m[len(g.m)-1-r][c] }

// PlotConfusion draws a confusion matrix into path: m[i][j] counts the
// objects predicted as class i whose true class is j, with labels naming
// the rows and columns (the last is usually "background"). Each column is
// normalised to its sum for the colour; the cells show the counts.
func PlotConfusion(path, title string, m [][]int, labels []string) error {
	n := len(m)
	if n == 0 || len(labels) != n {
		return fmt.Errorf("report: %s: a %d x %d matrix with %d labels", path, n, n, len(labels))
	}
	norm := make([][]float64, n)
	for i := range norm {
		norm[i] = make([]float64, n)
	}
	for j := range n {
		sum := 0
		for i := range n {
			sum += m[i][j]
		}
		for i := range n {
			if sum > 0 {
				norm[i][j] = float64(m[i][j]) / float64(sum)
			}
		}
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "true class"
	p.Y.Label.Text = "predicted class"
	h := plotter.NewHeatMap(confusionGrid{norm}, blues{})
	h.Min, h.Max = 0, 1
	p.Add(h)
	var lab plotter.XYLabels
	var dark []bool // white text on the dark cells
	for i := range n {
		for j := range n {
			if m[i][j] == 0 {
				continue
			}
			lab.XYs = append(lab.XYs, plotter.XY{X: float64(j), Y: float64(n - 1 - i)})
			lab.Labels = append(lab.Labels, fmt.Sprint(m[i][j]))
			dark = append(dark, norm[i][j] > 0.55)
		}
	}
	if len(lab.XYs) > 0 {
		l, err := plotter.NewLabels(lab)
		if err != nil {
			return err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = draw.XCenter
			l.TextStyle[i].YAlign = draw.YCenter
			l.TextStyle[i].Color = color.Black
			if dark[i] {
				l.TextStyle[i].Color = color.White
			}
		}
		p.Add(l)
	}
	var xt, yt []plot.Tick
	for i, s := range labels {
		xt = append(xt, plot.Tick{Value: float64(i), Label: s})
		yt = append(yt, plot.Tick{Value: float64(n - 1 - i), Label: s})
	}
	p.X.Tick.Marker = plot.ConstantTicks(xt)
	p.Y.Tick.Marker = plot.ConstantTicks(yt)
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YTop
	side := vg.Length(math.Min(14, math.Max(6, 2+0.5*float64(n)))) * vg.Inch
	return savePNG(p, side, side, path)
}

// blues is a white-to-dark-blue colour scale (ColorBrewer's Blues ends).
type blues struct{}

func (blues) Colors() []color.Color {
	const n = 64
	cs := make([]color.Color, n)
	for i := range cs {
		t := float64(i) / (n - 1)
		mix := func(a, b float64) uint8 { return uint8(math.Round(a + (b-a)*t)) }
		cs[i] = color.RGBA{R: mix(247, 8), G: mix(251, 48), B: mix(255, 107), A: 255}
	}
	return cs
}
