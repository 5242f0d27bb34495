package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/engine"
	"github.com/dettrain/dettrain/model"
)

// AnchorsOptions are anchors' flags.
type AnchorsOptions struct {
	Config ConfigOptions
	N      int        // anchors to compute; 0: as many as the cfg has
	Size   model.Size // network input size; zero: model.size, else the cfg's [net]
}

func newAnchorsCmd(io *IO, runF func(*AnchorsOptions) error) *cobra.Command {
	o := &AnchorsOptions{}
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
			return anchorsRun(io, o)
		},
	}
	o.Config.addFlags(cmd)
	cmd.Flags().IntVar(&o.N, "n", 0, "number of anchors (default: the cfg's num=)")
	cmd.Flags().Var(sizeFlag{&o.Size}, "size", "network input size, N or WxH (default: model.size, else the cfg's [net] width x height)")
	return cmd
}

func anchorsRun(io *IO, o *AnchorsOptions) error {
	c, err := o.Config.load()
	if err != nil {
		return err
	}
	names, err := engine.ClassNames(c)
	if err != nil {
		return err
	}
	ds, err := engine.LoadDataset(c, c.Data.Train, names, io.Err)
	if err != nil {
		return err
	}
	cfg, err := model.ReadCfg(c.Model.Cfg)
	if err != nil {
		return err
	}
	net, err := model.NewNetwork(cfg, len(names))
	if err != nil {
		return err
	}
	size := o.Size
	if size.IsZero() {
		size = engine.TrainSize(c.Model, net)
	}
	k := o.N
	if k == 0 {
		k = net.NumAnchors()
	}
	shapes, truths := engine.BoxShapes(ds, size)
	anchors, err := model.KMeansAnchors(shapes, k, 1)
	if err != nil {
		return fmt.Errorf("split %q: %w", c.Data.Train, err)
	}
	fmt.Fprintf(io.Out, "%d boxes of %d images (split %q) at %dx%d\n", len(shapes), len(ds.Samples), c.Data.Train, size.W, size.H)
	fmt.Fprintf(io.Out, "anchors=%s\n", engine.AnchorText(anchors))
	report := func(what string, a [][2]float64) {
		line := fmt.Sprintf("%-8s avg IoU %.4f", what, model.MeanBestIoU(shapes, a))
		if len(a) == net.NumAnchors() {
			if err := net.SetAnchors(a); err == nil {
				line += fmt.Sprintf("  recall %.4f", net.SlotRecall(truths, size))
			}
		}
		fmt.Fprintln(io.Out, line)
	}
	report("cfg", append([][2]float64(nil), net.Heads[0].Anchors...))
	report("k-means", anchors)
	if k != net.NumAnchors() {
		fmt.Fprintf(io.Out, "(the cfg has %d anchors: change num=, mask= and the filters of the convolutions in front of the [yolo] layers to use %d)\n", net.NumAnchors(), k)
	}
	return nil
}
