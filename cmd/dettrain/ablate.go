package main

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/dettrain/dettrain/config"
)

// ablationSteps are the paper's cumulative variants (freebies.md, Table 1 of
// the YOLOv3 rows), each adding its --set overrides to all earlier ones.
var ablationSteps = []struct {
	name string
	sets []string
	note string
}{
	{"baseline", []string{"train.schedule=step", "train.random_shapes=false", "train.label_smoothing=none", "train.mixup=false", "train.ema=false"}, "step schedule, YOLOv3 augmentations"},
	{"+syncbn", []string{"model.bn=sync"}, "synchronized BN across replicas"},
	{"+shapes", []string{"train.random_shapes=true"}, "random input shapes"},
	{"+cosine", []string{"train.schedule=cosine"}, "cosine learning rate"},
	{"+smoothing", []string{"train.label_smoothing=gluoncv"}, "label smoothing (GluonCV rule)"},
	{"+mixup", []string{"train.mixup=true"}, "visually coherent mixup"},
}

// AblateOptions are ablate's flags.
type AblateOptions struct {
	Config ConfigOptions
	Steps  string
	Epochs int
	Out    string
}

func newAblateCmd(io *IO, runF func(*AblateOptions) error) *cobra.Command {
	o := &AblateOptions{}
	var names []string
	for _, s := range ablationSteps {
		names = append(names, s.name)
	}
	cmd := &cobra.Command{
		Use:   "ablate",
		Short: "Train the paper's cumulative trick variants and tabulate their mAP",
		Long: `ablate trains each cumulative variant (baseline, then each trick added to the
previous ones) from the same seed with the same budget, evaluates each on the
eval split, and writes OUT/ablation.md, ablation.csv and ablation.png (mAP per
variant with the change from the previous one), printing one line per variant
as it finishes. Variants: ` + strings.Join(names, ",") + `.`,
		Example: `  dettrain ablate --config configs/bccd-yolov3-tiny.yaml --epochs 10
  dettrain ablate -c configs/demo.yaml --steps baseline,+cosine,+smoothing --epochs 5 --out runs/ablate-demo`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Epochs < 1 {
				return usagef("--epochs must be >= 1")
			}
			for _, s := range strings.Split(o.Steps, ",") {
				if stepIndex(s) < 0 {
					return usagef("--steps: unknown step %q (known: %s)", s, strings.Join(names, ","))
				}
			}
			if runF != nil {
				return runF(o)
			}
			return ablateRun(cmd, io, o)
		},
	}
	o.Config.addFlags(cmd)
	cmd.Flags().StringVar(&o.Steps, "steps", strings.Join(names, ","), "variants to train, in order")
	cmd.Flags().IntVar(&o.Epochs, "epochs", 10, "epochs per variant")
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder (default: output.dir/ablation)")
	return cmd
}

func stepIndex(name string) int {
	for i, s := range ablationSteps {
		if s.name == strings.TrimSpace(name) {
			return i
		}
	}
	return -1
}

type ablationRow struct {
	Name, Note        string
	MAP, MAP07, Delta float64
	Minutes           float64
	NoOp              string
}

func ablateRun(cmd *cobra.Command, ios *IO, o *AblateOptions) error {
	base, err := o.Config.load()
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
	// Cumulative overrides: every step up to the requested one, in table order.
	want := map[string]bool{}
	for _, s := range strings.Split(o.Steps, ",") {
		want[strings.TrimSpace(s)] = true
	}
	var rows []ablationRow
	var sets []string
	prev := -1.0
	quiet := &IO{Out: io.Discard, Err: ios.Err} // one line per variant, not per iteration
	for _, st := range ablationSteps {
		sets = append(sets, st.sets...)
		if !want[st.name] {
			continue
		}
		all := append(append(append([]string(nil), o.Config.Sets...), sets...),
			fmt.Sprintf("train.epochs=%d", o.Epochs), "output.dir="+filepath.Join(out, strings.TrimPrefix(st.name, "+")))
		c, err := config.Load(o.Config.File, config.LoadOptions{Sets: all})
		if err != nil {
			return fmt.Errorf("variant %s: %w", st.name, err)
		}
		row := ablationRow{Name: st.name, Note: st.note}
		if st.name == "+syncbn" && c.Train.Replicas == 1 {
			row.NoOp = "no-op with 1 replica (train.replicas)"
		}
		res, err := runTraining(cmd.Context(), quiet, c, nil)
		if err != nil {
			return fmt.Errorf("variant %s: %w", st.name, err)
		}
		debug.FreeOSMemory() // the next variant builds its graphs anew
		row.MAP, row.MAP07, row.Minutes = res.Test.VOC.MAP, res.Test.VOC.MAP07, res.Elapsed.Minutes()
		if prev >= 0 {
			row.Delta = row.MAP - prev
		}
		prev = row.MAP
		rows = append(rows, row)
		fmt.Fprintf(ios.Out, "%-11s mAP@0.5 %.4f (%+.4f)  VOC07 %.4f  %.1f min %s\n", row.Name, row.MAP, row.Delta, row.MAP07, row.Minutes, row.NoOp)
		if err := writeAblation(out, o, rows); err != nil {
			return err
		}
	}
	fmt.Fprintf(ios.Out, "wrote %s, %s and %s\n", filepath.Join(out, "ablation.md"), filepath.Join(out, "ablation.csv"), filepath.Join(out, "ablation.png"))
	return nil
}

func writeAblation(dir string, o *AblateOptions, rows []ablationRow) error {
	var md strings.Builder
	fmt.Fprintf(&md, "# Ablation\n\nCommand: `dettrain ablate --config %s --steps %s --epochs %d`", o.Config.File, o.Steps, o.Epochs)
	for _, s := range o.Config.Sets {
		fmt.Fprintf(&md, " --set %s", s)
	}
	fmt.Fprintf(&md, "\n\nEach variant adds its trick to the previous row, same seed and budget; mAP is VOC all-point AP at IoU 0.5 on the eval split.\n\n")
	md.WriteString("| variant | trick | mAP@0.5 | delta | VOC07 | minutes | note |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&md, "| %s | %s | %.4f | %+.4f | %.4f | %.1f | %s |\n", r.Name, r.Note, r.MAP, r.Delta, r.MAP07, r.Minutes, r.NoOp)
	}
	fmt.Fprintf(&md, "\nWritten %s.\n", time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dir, "ablation.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "ablation.csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"variant", "map50_voc", "delta", "map50_voc07", "minutes", "note"})
	for _, r := range rows {
		w.Write([]string{r.Name, fmt.Sprintf("%.4f", r.MAP), fmt.Sprintf("%+.4f", r.Delta), fmt.Sprintf("%.4f", r.MAP07), fmt.Sprintf("%.2f", r.Minutes), r.NoOp})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return ablationChart(filepath.Join(dir, "ablation.png"), rows)
}

func ablationChart(path string, rows []ablationRow) error {
	p := plot.New()
	p.Title.Text = "mAP@0.5 per cumulative variant"
	p.Y.Label.Text = "mAP@0.5"
	vals := make(plotter.Values, len(rows))
	var names []string
	for i, r := range rows {
		vals[i] = r.MAP
		label := r.Name
		if i > 0 {
			label += fmt.Sprintf(" (%+.3f)", r.Delta)
		}
		names = append(names, label)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return err
	}
	bars.Color = color.RGBA{0, 130, 200, 255}
	p.Add(bars)
	p.NominalX(names...)
	p.Y.Min = 0
	return p.Save(vg.Length(120+90*len(rows)), 4*vg.Inch, path)
}
