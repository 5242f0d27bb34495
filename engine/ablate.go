package engine

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/eval"
	"github.com/dettrain/dettrain/report"
)

// ablationSteps are the paper's cumulative variants (docs/FREEBIES.md,
// Table 1 of the YOLOv3 rows), each adding its --set overrides to all
// earlier ones, then mosaic (not one of the paper's freebies; YOLOv4's).
var ablationSteps = []struct {
	name string
	sets []string
	note string
}{
	{"baseline", []string{"train.schedule=step", "train.random_shapes=false", "train.label_smoothing=none", "train.mixup=false", "train.ema=false", "train.mosaic=false"}, "step schedule, YOLOv3 augmentations"},
	{"+syncbn", []string{"model.bn=sync"}, "synchronized BN across replicas"},
	{"+shapes", []string{"train.random_shapes=true"}, "random input shapes"},
	{"+cosine", []string{"train.schedule=cosine"}, "cosine learning rate"},
	{"+smoothing", []string{"train.label_smoothing=gluoncv"}, "label smoothing (GluonCV rule)"},
	{"+mixup", []string{"train.mixup=true"}, "visually coherent mixup"},
	{"+mosaic", []string{"train.mosaic=true"}, "mosaic, 4 images (Ultralytics' rule), off for the last train.close_mosaic epochs"},
}

// AblateOptions are ablate's flags.
type AblateOptions struct {
	Config ConfigOptions
	Steps  string
	Epochs int
	Seeds  int
	Out    string
}

func stepIndex(name string) int {
	for i, s := range ablationSteps {
		if s.name == strings.TrimSpace(name) {
			return i
		}
	}
	return -1
}

// ablationRun is one trained variant at one seed.
type ablationRun struct {
	Seed                 int64
	MAP, MAP07, COCO, Mn float64 // Mn: minutes
	Reused               string  // "" trained now; else why it was not
}

// ablationRow is one variant over every seed.
type ablationRow struct {
	Name, Note string
	Runs       []ablationRun
	NoOp       string
}

func (r ablationRow) maps() []float64 {
	v := make([]float64, len(r.Runs))
	for i, x := range r.Runs {
		v[i] = x.MAP
	}
	return v
}

// Ablate trains the cumulative trick variants of o.Steps over o.Seeds seeds
// each (reusing finished runs) and writes the table, the runs' csv and the
// chart into o.Out.
func Ablate(ctx context.Context, ios *IO, o *AblateOptions) error {
	base, err := o.Config.Load()
	if err != nil {
		return err
	}
	out := o.Out
	if out == "" {
		out = filepath.Join(base.Output.Dir, "ablation")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if o.Epochs == 0 {
		o.Epochs = base.Train.Epochs
	}
	want := map[string]bool{}
	for _, s := range strings.Split(o.Steps, ",") {
		want[strings.TrimSpace(s)] = true
	}
	// The variants' overrides, cumulative in table order.
	type variant struct {
		idx  int
		sets []string
	}
	var variants []variant
	var sets []string
	for i, st := range ablationSteps {
		sets = append(sets, st.sets...)
		if want[st.name] {
			variants = append(variants, variant{i, append([]string(nil), sets...)})
		}
	}
	rows := make([]ablationRow, len(variants))
	for i, v := range variants {
		rows[i] = ablationRow{Name: ablationSteps[v.idx].name, Note: ablationSteps[v.idx].note}
	}
	quiet := &IO{Out: io.Discard, Err: ios.Err} // one line per run, not per iteration
	// Seed-major: after each seed the table is complete for the seeds done.
	for k := 0; k < o.Seeds; k++ {
		seed := base.Train.Seed + int64(k)
		var prevKey []byte
		for i, v := range variants {
			st := ablationSteps[v.idx]
			dir := filepath.Join(out, strings.TrimPrefix(st.name, "+"), fmt.Sprintf("seed-%d", seed))
			all := append(append(append([]string(nil), o.Config.Sets...), v.sets...),
				fmt.Sprintf("train.epochs=%d", o.Epochs), fmt.Sprintf("train.seed=%d", seed), "output.dir="+dir)
			c, err := config.Load(o.Config.File, config.LoadOptions{Sets: all})
			if err != nil {
				return fmt.Errorf("variant %s: %w", st.name, err)
			}
			key, err := configKey(c)
			if err != nil {
				return err
			}
			var run ablationRun
			switch {
			case i > 0 && bytes.Equal(key, prevKey):
				run = rows[i-1].Runs[len(rows[i-1].Runs)-1]
				run.Reused = "same config as " + rows[i-1].Name
				if st.name == "+syncbn" {
					rows[i].NoOp = "no-op with 1 replica (train.replicas)"
				}
			default:
				if r, ok := reusableRun(c, dir); ok {
					run = r
					break
				}
				res, err := Train(ctx, quiet, c, nil)
				if err != nil {
					return fmt.Errorf("variant %s, seed %d: %w", st.name, seed, err)
				}
				debug.FreeOSMemory() // the next run builds its graphs anew
				run = ablationRun{MAP: res.Test.VOC.MAP, MAP07: res.Test.VOC.MAP07, COCO: res.Test.COCO.AP(), Mn: res.Elapsed.Minutes()}
			}
			run.Seed = seed
			prevKey = key
			rows[i].Runs = append(rows[i].Runs, run)
			fmt.Fprintf(ios.Out, "%-11s seed %d  mAP@0.5 %.4f  VOC07 %.4f  COCO AP %.4f  %.1f min %s\n", st.name, seed, run.MAP, run.MAP07, run.COCO, run.Mn, run.Reused)
			if err := writeAblation(out, o, rows); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(ios.Out, "wrote %s, %s and %s\n", filepath.Join(out, "ablation.md"), filepath.Join(out, "ablation.csv"), filepath.Join(out, "ablation.png"))
	return nil
}

// configKey is a run's resolved config without its output folder and with
// model.bn read as local when there is one replica (synchronizing one
// replica's statistics changes nothing): two variants with equal keys train
// the same model.
func configKey(c *config.Config) ([]byte, error) {
	cc := *c
	cc.Output.Dir = ""
	if cc.Train.Replicas <= 1 {
		cc.Model.BN = "local"
	}
	return cc.YAML()
}

// reusableRun reads the evaluation of a run already trained in dir with
// the same resolved config (an interrupted ablation goes on from there).
func reusableRun(c *config.Config, dir string) (ablationRun, bool) {
	old, err := os.ReadFile(filepath.Join(dir, RunConfig))
	if err != nil {
		return ablationRun{}, false
	}
	now, err := c.YAML()
	if err != nil || !bytes.Equal(old, now) {
		return ablationRun{}, false
	}
	s, err := eval.ReadScores(filepath.Join(dir, "eval", "eval.json"))
	if err != nil {
		return ablationRun{}, false
	}
	var mn float64
	if st, err := os.Stat(filepath.Join(dir, "eval", "eval.json")); err == nil {
		if st0, err := os.Stat(filepath.Join(dir, RunConfig)); err == nil {
			mn = st.ModTime().Sub(st0.ModTime()).Minutes()
		}
	}
	return ablationRun{MAP: s.MAP50VOC, MAP07: s.MAP50VOC07, COCO: s.COCOAP, Mn: mn, Reused: "reused " + dir}, true
}

func meanSD(rs []ablationRun, f func(ablationRun) float64) string {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	m, sd := report.MeanSD(v)
	if len(v) < 2 {
		return fmt.Sprintf("%.4f", m)
	}
	return fmt.Sprintf("%.4f ± %.4f", m, sd)
}

func fmtInterval(iv report.Interval) string {
	if !iv.Defined() {
		return fmt.Sprintf("%+.4f", iv.Mean)
	}
	return fmt.Sprintf("%+.4f [%+.4f, %+.4f]", iv.Mean, iv.Lo, iv.Hi)
}

// paired returns the paired-t interval of b - a over the seeds both have.
func paired(a, b ablationRow) report.Interval {
	n := min(len(a.Runs), len(b.Runs))
	return report.PairedT(report.Diffs(a.maps()[:n], b.maps()[:n]), 0.95)
}

func writeAblation(dir string, o *AblateOptions, rows []ablationRow) error {
	var md strings.Builder
	fmt.Fprintf(&md, "# Ablation\n\nCommand: `dettrain ablate --config %s --steps %s --epochs %d --seeds %d", o.Config.File, o.Steps, o.Epochs, o.Seeds)
	for _, s := range o.Config.Sets {
		fmt.Fprintf(&md, " --set %s", s)
	}
	fmt.Fprintf(&md, "`\n\nEach variant adds its trick to the previous row; every variant is trained with the same seeds and budget and scored on the eval split. "+
		"mAP@0.5 is VOC all-point AP at IoU 0.5, VOC07 the 11-point one, COCO AP@[.5:.95] as pycocotools. Values are mean ± sd over the seeds; "+
		"deltas are paired by seed, with the 95%% paired-t confidence interval; the verdict reads the interval of the delta to the previous row.\n\n")
	md.WriteString("| variant | trick | seeds | mAP@0.5 | VOC07 | COCO AP | Δ previous [95% CI] | Δ baseline [95% CI] | verdict | minutes per run | note |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, r := range rows {
		if len(r.Runs) == 0 {
			continue
		}
		dPrev, dBase, verdict := "", "", ""
		if i > 0 {
			iv := paired(rows[i-1], r)
			dPrev, verdict = fmtInterval(iv), report.Verdict(iv)
			dBase = fmtInterval(paired(rows[0], r))
		}
		fmt.Fprintf(&md, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Name, r.Note, len(r.Runs),
			meanSD(r.Runs, func(x ablationRun) float64 { return x.MAP }), meanSD(r.Runs, func(x ablationRun) float64 { return x.MAP07 }),
			meanSD(r.Runs, func(x ablationRun) float64 { return x.COCO }), dPrev, dBase, verdict,
			meanSD(r.Runs, func(x ablationRun) float64 { return x.Mn }), r.NoOp)
	}
	fmt.Fprintf(&md, "\nWritten %s.\n", time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dir, "ablation.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"variant", "seed", "map50_voc", "map50_voc07", "coco_ap", "minutes", "note"})
	for _, r := range rows {
		for _, x := range r.Runs {
			w.Write([]string{r.Name, strconv.FormatInt(x.Seed, 10), fmt.Sprintf("%.6f", x.MAP), fmt.Sprintf("%.6f", x.MAP07), fmt.Sprintf("%.6f", x.COCO), fmt.Sprintf("%.2f", x.Mn), x.Reused})
		}
	}
	w.Flush()
	if err := os.WriteFile(filepath.Join(dir, "ablation.csv"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	return ablationChart(filepath.Join(dir, "ablation.png"), rows)
}

// meanBars are the variants' means with the half-widths of their 95% t
// intervals, for plotter.YErrorBars.
type meanBars struct {
	mean, half []float64
}

func (m meanBars) Len() int { return len(m.mean) }

func (m meanBars) XY(i int) (float64, float64) { return float64(i), m.mean[i] }

func (m meanBars) YError(i int) (float64, float64) { return m.half[i], m.half[i] }

func (m meanBars) Value(i int) float64 { return m.mean[i] }

func (m meanBars) labels(rows []ablationRow) []string {
	var out []string
	for _, r := range rows {
		if len(r.Runs) > 0 {
			out = append(out, fmt.Sprintf("%s (n=%d)", r.Name, len(r.Runs)))
		}
	}
	return out
}

func ablationChart(path string, rows []ablationRow) error {
	var m meanBars
	for _, r := range rows {
		if len(r.Runs) == 0 {
			continue
		}
		iv := report.PairedT(r.maps(), 0.95) // the t interval of the mean
		m.mean = append(m.mean, iv.Mean)
		m.half = append(m.half, (iv.Hi-iv.Lo)/2)
	}
	if len(m.mean) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = "mAP@0.5 per cumulative variant (mean, 95% t interval over seeds)"
	p.Y.Label.Text = "mAP@0.5"
	vals := make(plotter.Values, len(m.mean))
	copy(vals, m.mean)
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return err
	}
	bars.Color = color.RGBA{0, 130, 200, 255}
	p.Add(bars)
	eb, err := plotter.NewYErrorBars(m)
	if err != nil {
		return err
	}
	eb.LineStyle.Width = vg.Points(1.5)
	p.Add(eb)
	p.NominalX(m.labels(rows)...)
	p.Y.Min = 0
	p.Y.Max = math.Min(1, p.Y.Max*1.05)
	return p.Save(vg.Length(160+100*len(m.mean)), 4*vg.Inch, path)
}

// AblationSteps names the variants ablate knows, in their cumulative order.
func AblationSteps() []string {
	var names []string
	for _, s := range ablationSteps {
		names = append(names, s.name)
	}
	return names
}
