package main

import (
	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/engine"
)

func newAnchorsCmd(io *IO, runF func(*engine.AnchorsOptions) error) *cobra.Command {
	o := &engine.AnchorsOptions{}
	cmd := &cobra.Command{
		Use:   "anchors --config FILE [--n 6|9] [--size N|WxH]",
		Short: "Compute YOLO anchors for a data set: k-means with IoU distance (darknet's calc_anchors)",
		Long: `anchors reads the boxes of the training split (data.train), scales them to the network
input (a plain resize to the training size, --size, as training does) and clusters their shapes
with k-means, the distance being 1 - IoU of two boxes sharing a centre, as darknet's
calc_anchors does. It prints the anchors, smallest first, as a cfg anchors= line, and
for the cfg's own anchors and the new ones:

  avg IoU   darknet's figure: the mean over boxes of the best IoU with any anchor;
  recall    the best recall dettrain's loss allows: the fraction of boxes that get a
            training slot (each box goes to its best anchor in its centre's cell; two
            boxes of an image on the same head, cell and anchor keep only one).

model.anchors: auto in a config does the same at the start of training and writes the
anchors into the run's model.cfg.`,
		Example: `  dettrain anchors --config configs/bccd-yolo-fastest.yaml
  dettrain anchors -c configs/voc-yolov3.yaml --n 9 --size 416`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.N < 0 || o.N > 64:
				return usagef("--n %d: must be between 1 and 64 (0: as many as the cfg has)", o.N)
			}
			if runF != nil {
				return runF(o)
			}
			return engine.Anchors(io, o)
		},
	}
	addConfigFlags(cmd, &o.Config)
	cmd.Flags().IntVar(&o.N, "n", 0, "number of anchors (default: the cfg's num=)")
	cmd.Flags().Var(sizeFlag{&o.Size}, "size", "network input size, N or WxH (default: model.size, else the cfg's [net] width x height)")
	return cmd
}
