package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/engine"
)

func newAblateCmd(io *IO, runF func(*engine.AblateOptions) error) *cobra.Command {
	o := &engine.AblateOptions{}
	names := engine.AblationSteps()
	cmd := &cobra.Command{
		Use:   "ablate",
		Short: "Train the paper's cumulative trick variants over several seeds and tabulate their mAP with confidence intervals",
		Long: `ablate trains each cumulative variant (baseline, then each trick added to the
previous ones) with each of --seeds seeds (train.seed, train.seed+1, ...; every
variant sees the same seeds, so results pair by seed), the same budget, and
evaluates each run on the eval split. It writes OUT/ablation.md, ablation.csv (one
row per run) and ablation.png, printing one line per run as it finishes.

Per variant the table gives mean ± sd over the seeds of mAP@0.5 (VOC all-point and
VOC07 11-point) and COCO AP@[.5:.95]; the paired difference of mAP@0.5 to the
previous row and to the baseline with its 95% paired-t confidence interval
(t quantile with seeds-1 degrees of freedom); and a verdict against the previous
row: helps (interval above 0), hurts (below 0) or within noise (it holds 0). The
chart shows each variant's mean with the 95% t interval of the mean.

A run whose folder already holds its evaluation with the same resolved config is
reused, so an interrupted ablation continues where it stopped; a variant whose
resolved config equals the previous one's (+syncbn with train.replicas 1) reuses
its runs. Variants: ` + strings.Join(names, ",") + `.`,
		Example: `  dettrain ablate --config configs/bccd-yolo-fastest.yaml --seeds 3
  dettrain ablate -c configs/demo.yaml --steps baseline,+cosine,+smoothing --epochs 5 --seeds 2 --out runs/ablate-demo`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Epochs < 0 {
				return usagef("--epochs must be >= 1 (0: train.epochs)")
			}
			if o.Seeds < 1 {
				return usagef("--seeds must be >= 1")
			}
			for _, s := range strings.Split(o.Steps, ",") {
				if !slices.Contains(names, strings.TrimSpace(s)) {
					return usagef("--steps: unknown step %q (known: %s)", s, strings.Join(names, ","))
				}
			}
			if runF != nil {
				return runF(o)
			}
			return engine.Ablate(cmd.Context(), io, o)
		},
	}
	addConfigFlags(cmd, &o.Config)
	cmd.Flags().StringVar(&o.Steps, "steps", strings.Join(names, ","), "variants to train, in order")
	cmd.Flags().IntVar(&o.Epochs, "epochs", 0, "epochs per run (default: train.epochs)")
	cmd.Flags().IntVar(&o.Seeds, "seeds", 3, "seeds per variant (train.seed, train.seed+1, ...)")
	cmd.Flags().StringVar(&o.Out, "out", "", "output folder (default: output.dir/ablation)")
	return cmd
}
