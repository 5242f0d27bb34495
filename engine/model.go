package engine

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/model"
)

// BuildNetwork reads the cfg, fits the heads to the class count and loads
// or initialises the weights.
func BuildNetwork(cfgPath, weights string, classes int, seed int64) (*model.Network, error) {
	cfg, err := model.ReadCfg(cfgPath)
	if err != nil {
		return nil, err
	}
	net, err := model.NewNetwork(cfg, classes)
	if err != nil {
		return nil, err
	}
	net.Init(seed)
	if weights != "" {
		if _, err := net.LoadWeights(weights); err != nil {
			return nil, err
		}
	}
	return net, nil
}

// ModelSize is a config size as the model's.
func ModelSize(s config.Size) model.Size { return model.Size{W: s.W, H: s.H} }

// TrainSize is the training input size: model.size, or the cfg's [net]
// width x height.
func TrainSize(m config.Model, net *model.Network) model.Size {
	if !m.Size.IsZero() {
		return ModelSize(m.Size)
	}
	return net.InputSize()
}

// EvalSize is the evaluation input size: eval.size, else the training size.
func EvalSize(c *config.Config, net *model.Network) model.Size {
	if !c.Eval.Size.IsZero() {
		return ModelSize(c.Eval.Size)
	}
	return TrainSize(c.Model, net)
}

// SetNetSize makes s the network's own input size, in the Network and in
// its cfg's [net] section, so that the model.cfg written from it tells every
// later command the size the model was trained at.
func SetNetSize(net *model.Network, s model.Size) {
	net.Width, net.Height = s.W, s.H
	net.Cfg.Net.Set("width", strconv.Itoa(s.W))
	net.Cfg.Net.Set("height", strconv.Itoa(s.H))
}

// AnchorText formats anchors as a cfg's anchors= value.
func AnchorText(a [][2]float64) string {
	parts := make([]string, len(a))
	for i, v := range a {
		parts[i] = fmt.Sprintf("%g,%g", v[0], v[1])
	}
	return strings.Join(parts, ", ")
}

// BoxShapes returns the training boxes' shapes scaled to size.W x size.H (a
// plain resize, as the loader does; difficult objects left out, as training
// leaves them out) and the same boxes as truths per image.
func BoxShapes(ds *data.Dataset, size model.Size) ([][2]float64, [][]model.Truth) {
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

// PrepareModel applies a config's model options that go beyond BuildNetwork,
// for training: the BN epsilon (model.bn_eps), the import of model.weights
// for fine-tuning (model.partial: every convolution whose shape fits, or
// only the first model.partial layers; one log line per convolution left at
// its initial value; heads left so start from the training split's priors,
// model.HeadPriors) and model.anchors: auto (k-means on the training split
// at model.size, written into the network and its cfg). Call it on the
// network BuildNetwork made without weights.
func PrepareModel(net *model.Network, m config.Model, size model.Size, train *data.Dataset, log io.Writer) error {
	net.SetBNEps(m.BNEps)
	shapes, truths := BoxShapes(train, size)
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
			AnchorText(a), model.MeanBestIoU(shapes, a), net.SlotRecall(truths, size), model.MeanBestIoU(shapes, before), recall0)
	}
	return nil
}

// TrainNetwork builds the network a training run starts from: model.cfg
// fitted to the training set's classes and initialised with train.seed; its input size
// (model.size, or the cfg's [net]) becomes the model's own, written into the
// run's model.cfg; then PrepareModel (BN epsilon, pretrained weights,
// automatic anchors on the training split).
func TrainNetwork(c *config.Config, trainSet *data.Dataset, log io.Writer) (*model.Network, model.Size, error) {
	net, err := BuildNetwork(c.Model.Cfg, "", len(trainSet.Names), c.Train.Seed)
	if err != nil {
		return nil, model.Size{}, err
	}
	size := TrainSize(c.Model, net)
	SetNetSize(net, size)
	if err := PrepareModel(net, c.Model, size, trainSet, log); err != nil {
		return nil, model.Size{}, err
	}
	return net, size, nil
}
