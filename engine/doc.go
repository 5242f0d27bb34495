// Package engine is the wiring between the config and the packages that do
// the work, the way Detectron2's engine is: it maps each config section to
// the options of its package (data loaders from data, the network from
// model, the training options from train, the evaluation from eval and
// infer) and runs each command's pipeline. Each cobra command in
// cmd/dettrain parses and checks its flags and makes one engine call (the
// command's XOptions are engine's); ablate trains through Train, and bench
// builds its network through BuildNetwork and OpenRun, like the others.
//
// The spine of `dettrain train`:
//
//	cmd/dettrain/train.go   flags, --resume → engine.Train
//	engine/train.go         data sets, network, loader, train.Options → train.Run
//	train/train.go          the loop: batch, Stepper.Step, NaN policy, log, end of epoch
//	train/replica.go        the CPU step: replicas' forward and backward, all-reduce, SGD
//	model/yolo.go           the loss (the YOLO layer's forward and backward)
//
// Files: one per command's pipeline, train.go (Train), eval.go (Eval, and
// the prediction over a split and the metrics every evaluation uses),
// predict.go and predict_video.go (Predict), export.go (Export: darknet or
// ONNX), bench.go (Bench), anchors.go (Anchors), datacmd.go (DataCheck,
// DataConvert, DataSplit), ablate.go (Ablate); and what they share: data.go
// (class names, splits, ground truth), model.go (the network from
// model.cfg, its size, pretrained weights and anchors), run.go (run
// folders: what training writes and the other commands read).
package engine

import (
	"fmt"
	"io"

	"github.com/dettrain/dettrain/config"
)

// IO holds the streams a pipeline writes to (tests pass buffers): Out for
// progress and results, Err for warnings.
type IO struct {
	Out, Err io.Writer
}

// UsageError marks an error in how the command was called (bad or missing
// flags); the CLI exits with status 2 for it.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef formats a UsageError.
func Usagef(format string, a ...any) error { return UsageError{fmt.Errorf(format, a...)} }

// ConfigOptions name a config: the file and its --set overrides.
type ConfigOptions struct {
	File string
	Sets []string
}

// Load reads and checks the config (config.Load); no file is a usage
// error.
func (o *ConfigOptions) Load() (*config.Config, error) {
	if o.File == "" {
		return nil, Usagef("--config is required")
	}
	return config.Load(o.File, config.LoadOptions{Sets: o.Sets})
}
