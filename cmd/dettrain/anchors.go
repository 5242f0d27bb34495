package main

import (
	"fmt"
	goio "io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
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
	names, err := classNames(c)
	if err != nil {
		return err
	}
	ds, err := loadDataset(c, c.Data.Train, names, io.Err)
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
		size = trainSize(c.Model, net)
	}
	k := o.N
	if k == 0 {
		k = net.NumAnchors()
	}
	shapes, truths := boxShapes(ds, size)
	anchors, err := model.KMeansAnchors(shapes, k, 1)
	if err != nil {
		return fmt.Errorf("split %q: %w", c.Data.Train, err)
	}
	fmt.Fprintf(io.Out, "%d boxes of %d images (split %q) at %dx%d\n", len(shapes), len(ds.Samples), c.Data.Train, size.W, size.H)
	fmt.Fprintf(io.Out, "anchors=%s\n", anchorText(anchors))
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

func anchorText(a [][2]float64) string {
	parts := make([]string, len(a))
	for i, v := range a {
		parts[i] = fmt.Sprintf("%g,%g", v[0], v[1])
	}
	return strings.Join(parts, ", ")
}

// boxShapes returns the training boxes' shapes scaled to size.W x size.H (a
// plain resize, as the loader does; difficult objects left out, as training
// leaves them out) and the same boxes as truths per image.
func boxShapes(ds *data.Dataset, size model.Size) ([][2]float64, [][]model.Truth) {
	var shapes [][2]float64
	truths := make([][]model.Truth, len(ds.Samples))
	for i, s := range ds.Samples {
		if s.Width <= 0 || s.Height <= 0 {
			continue
		}
		sx, sy := float64(size.W)/float64(s.Width), float64(size.H)/float64(s.Height)
		for _, ob := range s.Objects {
			if ob.Difficult {
				continue
			}
			b := ob.Box.Scale(sx, sy)
			shapes = append(shapes, [2]float64{b.W(), b.H()})
			truths[i] = append(truths[i], model.Truth{Class: ob.Class, Box: b, Weight: 1})
		}
	}
	return shapes, truths
}

// prepareModel applies a config's model options that go beyond buildNetwork,
// for training: the BN epsilon (model.bn_eps), the import of model.weights
// for fine-tuning (model.partial: every convolution whose shape fits, or
// only the first model.partial layers; one log line per convolution left at
// its initial value; heads left so start from the training split's priors,
// model.HeadPriors) and model.anchors: auto (k-means on the training split
// at model.size, written into the network and its cfg). Call it on the
// network buildNetwork made without weights.
func prepareModel(net *model.Network, m config.Model, size model.Size, train *data.Dataset, log goio.Writer) error {
	net.SetBNEps(m.BNEps)
	shapes, truths := boxShapes(train, size)
	if m.Weights != "" {
		res, err := net.LoadPartial(m.Weights, m.Partial, log)
		if err != nil {
			return err
		}
		// Heads that start from scratch start from the data set's priors.
		objects := float64(len(shapes)) / float64(max(1, len(train.Samples)))
		net.HeadPriors(objects, size, res.Skipped)
	}
	if m.Anchors == "auto" {
		before := append([][2]float64(nil), net.Heads[0].Anchors...)
		recall0 := net.SlotRecall(truths, size)
		a, err := model.KMeansAnchors(shapes, net.NumAnchors(), 1)
		if err != nil {
			return fmt.Errorf("model.anchors: auto: %w", err)
		}
		if err := net.SetAnchors(a); err != nil {
			return err
		}
		fmt.Fprintf(log, "model.anchors: auto: anchors=%s (avg IoU %.4f, recall %.4f; the cfg's: %.4f, %.4f)\n",
			anchorText(a), model.MeanBestIoU(shapes, a), net.SlotRecall(truths, size), model.MeanBestIoU(shapes, before), recall0)
	}
	return nil
}
