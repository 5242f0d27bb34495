package engine

import (
	"fmt"

	"github.com/dettrain/dettrain/model"
)

// AnchorsOptions are anchors' flags.
type AnchorsOptions struct {
	Config ConfigOptions
	N      int        // anchors to compute; 0: as many as the cfg has
	Size   model.Size // network input size; zero: model.size, else the cfg's [net]
}

// Anchors fits anchors to a config's training split (k-means on the boxes
// at the model's input size) and prints them with their IoU and recall,
// against the cfg's.
func Anchors(io *IO, o *AnchorsOptions) error {
	c, err := o.Config.Load()
	if err != nil {
		return err
	}
	names, err := ClassNames(c)
	if err != nil {
		return err
	}
	ds, err := LoadDataset(c, c.Data.Train, names, io.Err)
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
		size = TrainSize(c.Model, net)
	}
	k := o.N
	if k == 0 {
		k = net.NumAnchors()
	}
	shapes, truths := BoxShapes(ds, size)
	anchors, err := model.KMeansAnchors(shapes, k, 1)
	if err != nil {
		return fmt.Errorf("split %q: %w", c.Data.Train, err)
	}
	fmt.Fprintf(io.Out, "%d boxes of %d images (split %q) at %dx%d\n", len(shapes), len(ds.Samples), c.Data.Train, size.W, size.H)
	fmt.Fprintf(io.Out, "anchors=%s\n", AnchorText(anchors))
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
