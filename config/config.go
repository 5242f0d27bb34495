// Package config holds dettrain's configuration: the typed structs (Config
// and one struct per section: Model, Data, Train, Eval, Output), each field
// documenting its default (Default), the loader (Load, and Parse for a run's
// own config.yaml), one Validate that checks every rule at once, Size (N or
// WxH), ClassNames, and YAML to write a Config back.
//
// Load builds one viper.New() per call, never the global viper, and puts the
// layers into it; precedence, lowest first:
//
//  1. Default();
//  2. the YAML file (viper's config layer);
//  3. DETTRAIN_SECTION_KEY environment variables, e.g. DETTRAIN_TRAIN_LR or
//     DETTRAIN_TRAIN_WEIGHT_DECAY (viper's environment layer: SetEnvPrefix,
//     "." replaced by "_", every key bound); empty ones are ignored;
//  4. --set section.key=value, in order, the last one winning (viper's Set).
//
// Each layer only changes the keys it names. Viper picks the winning layer of
// each key; it decodes nothing. Every value is decoded strictly where it
// enters, with its source: the file by gopkg.in/yaml.v3's node walk, which
// knows each key's line (viper's own YAML reading and UnmarshalExact do not:
// spf13/viper#1724), the environment and --set as one YAML value each (a
// list also as a,b,c). Nothing is coerced: a quoted "16" is not an integer,
// 2.5 is not one either, null is not a number.
//
// Load reports every problem at once, in one *Error: first those of the file,
// in line order, each as file:line (an unknown key with a suggestion, a
// duplicate key, a value of the wrong type, a rule broken by a value written
// there), then each bad environment variable by name (a bad value, or a
// DETTRAIN_<SECTION>_ name that is no key), then each bad --set, then the
// rules broken by values from the environment or --set, naming that source.
// A bad value is reported even where a higher layer hides it.
//
// Callers should hand each package only its own section (Model, Data, Train,
// Eval, Output), not the whole Config.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
)

// Config is the whole training configuration, one section per component.
type Config struct {
	Model  Model  `yaml:"model"`
	Data   Data   `yaml:"data"`
	Train  Train  `yaml:"train"`
	Eval   Eval   `yaml:"eval"`
	Output Output `yaml:"output"`
}

// Model selects the network and its starting weights.
type Model struct {
	// Cfg is the darknet .cfg file describing the network. Required; no
	// default. A relative path in the config file is relative to that file.
	Cfg string `yaml:"cfg"`
	// Size is the training input size in pixels: N (square) or WxH. Default
	// 0: the cfg's [net] width x height (416 when the cfg gives none); each
	// side a multiple of 32 in 32..4096. The run's model.cfg records it.
	Size Size `yaml:"size"`
	// Weights is an optional darknet .weights file to start from. Default ""
	// (random initialisation). A relative path in the config file is relative
	// to that file.
	Weights string `yaml:"weights"`
	// BN is how batch norm computes its training statistics with several
	// replicas: "local" (each replica its own shard; default, the paper's
	// baseline) or "sync" (synchronized BN: the whole batch across replicas).
	BN string `yaml:"bn"`
	// BNEps is the batch-norm epsilon: x̂ = (x - mean)/sqrt(var + eps).
	// Default 1e-5 (AlexeyAB darknet's normalize_cpu); OpenCV's darknet
	// importer uses 1e-6, which reproduces its outputs exactly. > 0 and <= 0.01.
	BNEps float64 `yaml:"bn_eps"`
	// Anchors is "" (the cfg's own anchors; default) or "auto": k-means on the
	// training split's boxes at Size (what `dettrain anchors` prints), written
	// into the run's model.cfg.
	Anchors string `yaml:"anchors"`
	// Partial limits the import of Weights to layers 0..Partial-1 (darknet's
	// `partial` command). Default 0: every convolution whose shape matches is
	// imported, which is all of them when Weights fits the cfg and all but the
	// heads when it was trained with another class count. >= 0.
	Partial int `yaml:"partial"`
}

// Data describes the data set on disk and how it is loaded.
type Data struct {
	// Format is the annotation format. Default "voc". One of:
	//   - "voc": PASCAL VOC XML, Annotations/ID.xml per image, split lists
	//     Splits/SPLIT.txt (or a sub-folder Annotations/SPLIT);
	//   - "coco": one COCO JSON per split, Annotations/SPLIT.json or
	//     Annotations/instances_SPLIT.json (or Roboflow's
	//     SPLIT/_annotations.coco.json); images in Images/SPLIT or Images;
	//   - "yolo": darknet/Ultralytics txt labels, one "class cx cy w h" line
	//     per object (relative to the image size); images in Images/SPLIT (or
	//     SPLIT/Images) and labels beside them in Annotations/SPLIT (or
	//     SPLIT/Annotations); set images: images and annotations: labels for
	//     the Ultralytics layout.
	//
	// Splits is used by "voc" only. See docs/EVAL.md.
	Format string `yaml:"format"`
	// Root is the data set folder. Required; no default. A relative path in
	// the config file is relative to that file.
	Root string `yaml:"root"`
	// Images is the image folder, relative to Root. Default "JPEGImages".
	Images string `yaml:"images"`
	// Annotations is the XML folder, relative to Root. Default "Annotations".
	Annotations string `yaml:"annotations"`
	// Splits is the folder, relative to Root, holding one <split>.txt per
	// split with one image id per line. Default "ImageSets/Main".
	Splits string `yaml:"splits"`
	// Train is the training split's name (Splits/<Train>.txt). Default
	// "train"; must not be empty. "all": every annotated image of the data
	// set, less a ValFraction share that becomes the validation split (and,
	// unless Test names a split that exists, the test split too).
	Train string `yaml:"train"`
	// Val is the validation split's name, evaluated during training. Default
	// "val"; "" means no validation split.
	Val string `yaml:"val"`
	// Test is the test split's name. Default "test"; must not be empty.
	Test string `yaml:"test"`
	// Names are the class names, in class-index order. Required unless
	// NamesFile is set (set at most one of the two) or Format is "coco" (then
	// the annotation file's categories, sorted by id, are the default); no
	// default.
	Names []string `yaml:"names"`
	// NamesFile is an alternative to Names: a file with one class name per
	// line (blank lines skipped), or a .yaml/.yml file with a "names" list
	// or index-to-name map such as Ultralytics' data.yaml. Default "". A
	// relative path in the config file is relative to that file.
	NamesFile string `yaml:"names_file"`
	// Workers is the number of loader goroutines (decoding and augmenting
	// images). Default 2; 0..64, 0 meaning one per CPU (what a GPU needs:
	// docs/GPU.md, "Feeding the GPU").
	Workers int `yaml:"workers"`
	// SkipBad skips images or annotations that fail to load instead of
	// stopping with an error. Default false.
	SkipBad bool `yaml:"skip_bad"`
	// AllowOutside lets image paths of an annotation file (a COCO
	// file_name with "../", an absolute path) lead outside Root. Default
	// false: such a path is refused with the file and the entry named.
	AllowOutside bool `yaml:"allow_outside"`
	// ValFraction is the share of the images held out for validation when
	// Train is "all" (a data set without split lists): `dettrain data split`'s
	// seeded, class-stratified split, made in memory with Train.Seed. Default
	// 0.1; in [0, 1).
	ValFraction float64 `yaml:"val_fraction"`
	// Flip enables a random horizontal flip (p 0.5) in training. Default true.
	Flip bool `yaml:"flip"`
	// Augment enables GluonCV's YOLOv3 training transform (docs/FREEBIES.md):
	// colour jitter, random expand, constrained random crop, resize with a
	// random interpolation, flip. Default true (the paper's baseline has it).
	Augment bool `yaml:"augment"`
}

// Train holds the optimisation settings.
type Train struct {
	// Epochs is the number of passes over the training split. Default 100;
	// >= 1.
	Epochs int `yaml:"epochs"`
	// Batch is the number of images per iteration. Default 16; 1..1024.
	Batch int `yaml:"batch"`
	// LR is the base learning rate (reached at the end of warmup). Default
	// 0.001; > 0 and <= 10.
	LR float64 `yaml:"lr"`
	// Momentum is SGD's momentum. Default 0.9; in [0, 1).
	Momentum float64 `yaml:"momentum"`
	// WeightDecay is the L2 weight decay. Default 0.0005; >= 0.
	WeightDecay float64 `yaml:"weight_decay"`
	// Schedule is the learning-rate schedule after warmup, applied per
	// iteration: "step" (x0.1 at each of Steps), "cosine" (from LR down to
	// FinalLR) or "constant". Default "step".
	Schedule string `yaml:"schedule"`
	// Steps are the points, as fractions of the whole run (iterations or,
	// equivalently, epochs), where the "step" schedule multiplies the rate by
	// 0.1. Default [0.8, 0.9] (GluonCV's epochs 160 and 180 of 200); each in
	// (0, 1), strictly increasing, and after the warmup. Ignored by the other
	// schedules.
	Steps []float64 `yaml:"steps"`
	// WarmupEpochs is the length of the linear warmup from 0 to LR, in epochs
	// (fractions allowed; applied per iteration). Default 0 (no warmup); >= 0
	// and < Epochs.
	WarmupEpochs float64 `yaml:"warmup_epochs"`
	// FinalLR is the rate the "cosine" schedule ends at. Default 0; >= 0 and,
	// with "cosine", <= LR.
	FinalLR float64 `yaml:"final_lr"`
	// Seed seeds every random choice (initialisation, shuffling,
	// augmentation). Default 1.
	Seed int64 `yaml:"seed"`
	// EvalInterval is the number of epochs between evaluations during
	// training. Default 1; 0 means only at the end; >= 0.
	EvalInterval int `yaml:"eval_interval"`
	// LogInterval is the number of iterations between log lines. Default 10;
	// >= 1.
	LogInterval int `yaml:"log_interval"`
	// Threads is the number of BLAS threads. Default 0, meaning the number of
	// CPUs; >= 0.
	Threads int `yaml:"threads"`
	// Device is where training runs: "cpu" (default), "cuda" (GPU 0) or
	// "cuda:N". On cuda the whole step runs on the GPU (package gpu).
	Device string `yaml:"device"`
	// Devices lists the GPUs of the replicas on cuda (one ordinal per
	// replica; train.replicas must match its length when both are set).
	// Empty: every replica on Device's GPU.
	Devices []int `yaml:"devices"`
	// TF32 lets cuDNN's float32 convolutions use TF32 tensor cores on cuda,
	// as PyTorch does by default. Default true.
	TF32 bool `yaml:"tf32"`
	// AMP trains in mixed precision on cuda: bfloat16 activations and
	// convolutions, float32 master weights, gradients and BN statistics
	// (bfloat16 has float32's range: no loss scaling). Default false.
	AMP bool `yaml:"amp"`
	// Replicas is the number of data-parallel replicas each batch is split
	// across (goroutines on CPU); gradients are averaged before one update.
	// Under mpirun or srun it counts the replicas of the whole run, each of
	// the N processes taking Replicas/N (at least one; docs/DISTRIBUTED.md).
	// Default 1; 1..64, and Batch must be divisible by it.
	Replicas int `yaml:"replicas"`
	// EMA keeps an exponential moving average of the weights, used for
	// evaluation and best.weights (Ultralytics' ModelEMA). Default false.
	EMA bool `yaml:"ema"`
	// EMADecay is the EMA's decay. Default 0.9999; in (0, 1).
	EMADecay float64 `yaml:"ema_decay"`
	// EMATau ramps the decay up: decay*(1-exp(-updates/tau)). Default 2000; > 0.
	EMATau float64 `yaml:"ema_tau"`
	// OnNaN is what a NaN or Inf loss or gradient does: "stop" (default),
	// "skip" (drop that step) or "rollback" (reload the last checkpoint and
	// halve the learning rate).
	OnNaN string `yaml:"on_nan"`
	// KeepCheckpoints is how many of the newest checkpoints are kept (besides
	// best.ckpt). Default 3; >= 1.
	KeepCheckpoints int `yaml:"keep_checkpoints"`

	// The bag of freebies (Zhang et al. 2019, docs/FREEBIES.md).
	// Each is off by default (the paper's baseline); their parameters default
	// to the paper's values.

	// LabelSmoothing smooths the class targets: "none" (default), "gluoncv"
	// (1-eps and eps, eps = min(1/K, 1/40)) or "darknet" (1-eps/2 and eps/2
	// with SmoothingEps).
	LabelSmoothing string `yaml:"label_smoothing"`
	// SmoothingEps is darknet's label_smooth_eps. Default 0.1; in [0, 1).
	SmoothingEps float64 `yaml:"smoothing_eps"`
	// RandomShapes trains each block of ShapeEvery iterations at a size drawn
	// from Shapes (multi-scale training). Default false.
	RandomShapes bool `yaml:"random_shapes"`
	// Shapes are the square input sizes random shapes draws from. Default
	// [320, 352, ..., 608]; each a multiple of 32.
	Shapes []int `yaml:"shapes"`
	// ShapeEvery is the number of iterations between size changes. Default 10; >= 1.
	ShapeEvery int `yaml:"shape_every"`
	// ShapeGraphs bounds the graphs (one per size) kept at once. Default 2; >= 1.
	// Each costs the memory of a training step at its size (docs/TRAINING.md).
	ShapeGraphs int `yaml:"shape_graphs"`
	// Mixup turns on visually coherent mixup. Default false.
	Mixup bool `yaml:"mixup"`
	// MixupAlpha and MixupBeta are the Beta distribution of the mixing
	// factor. Default 1.5 and 1.5; > 0.
	MixupAlpha float64 `yaml:"mixup_alpha"`
	MixupBeta  float64 `yaml:"mixup_beta"`
	// MixupOffEpochs turns mixup off for the last N epochs. Default 20; >= 0.
	MixupOffEpochs int `yaml:"mixup_off_epochs"`
	// MixupOffFraction, when > 0, replaces MixupOffEpochs with that fraction
	// of the epochs (for short runs). Default 0; in [0, 1).
	MixupOffFraction float64 `yaml:"mixup_off_fraction"`
	// Mosaic turns on mosaic augmentation (YOLOv4; Ultralytics' load_mosaic
	// rule: four images on one canvas, boxes clipped; data/mosaic.go), before
	// mixup and the other augmentations. Default false (not one of the
	// paper's freebies).
	Mosaic bool `yaml:"mosaic"`
	// CloseMosaic turns mosaic off for the last N epochs (Ultralytics'
	// close_mosaic). Default 10; >= 0.
	CloseMosaic int `yaml:"close_mosaic"`
}

// Eval holds the evaluation (mAP) settings.
type Eval struct {
	// Size is the evaluation input size in pixels: N or WxH. Default 0: the
	// training size (Model.Size, else the cfg's [net] width x height); each
	// side a multiple of 32 in 32..4096.
	Size Size `yaml:"size"`
	// Conf is the score threshold below which detections are dropped before
	// mAP is computed. Default 0.01; in [0, 1).
	Conf float64 `yaml:"conf"`
	// NMS is the IoU threshold of non-maximum suppression. Default 0.45; in
	// (0, 1].
	NMS float64 `yaml:"nms"`
	// MaxDets is the most detections kept per image. Default 100; >= 1.
	MaxDets int `yaml:"max_dets"`
	// Split is the name of the split evaluated by the final (and standalone)
	// evaluation. Default "test"; must not be empty.
	Split string `yaml:"split"`
	// Metric is the mAP that ranks checkpoints and is printed first:
	// "voc07" (VOC2007 11-point AP at IoU 0.5), "voc" (VOC all-point AP at
	// IoU 0.5) or "coco" (COCO AP@[.50:.95], as pycocotools). Default "voc".
	// The JSON output has all of them whatever this says.
	Metric string `yaml:"metric"`
}

// Output says where a run writes its files.
type Output struct {
	// Dir is the folder that receives the run's files. Default "runs/train"
	// (relative to the working directory). A relative path in the config file
	// is relative to that file.
	Dir string `yaml:"dir"`
}

// Default returns the defaults documented on each field. Model.Cfg, Data.Root
// and Data.Names (or Data.NamesFile) have no default and must be set.
func Default() Config {
	return Config{
		Model: Model{BN: "local", BNEps: 1e-5},
		Data: Data{
			Format:      "voc",
			Images:      "JPEGImages",
			Annotations: "Annotations",
			Splits:      "ImageSets/Main",
			Train:       "train",
			Val:         "val",
			Test:        "test",
			Workers:     2,
			ValFraction: 0.1,
			Flip:        true,
			Augment:     true,
		},
		Train: Train{
			Epochs:          100,
			Batch:           16,
			LR:              0.001,
			Momentum:        0.9,
			WeightDecay:     0.0005,
			Schedule:        "step",
			Steps:           []float64{0.8, 0.9},
			Seed:            1,
			EvalInterval:    1,
			LogInterval:     10,
			Device:          "cpu",
			TF32:            true,
			Devices:         []int{},
			Replicas:        1,
			EMADecay:        0.9999,
			EMATau:          2000,
			OnNaN:           "stop",
			KeepCheckpoints: 3,
			LabelSmoothing:  "none",
			SmoothingEps:    0.1,
			Shapes:          []int{320, 352, 384, 416, 448, 480, 512, 544, 576, 608},
			ShapeEvery:      10,
			ShapeGraphs:     2,
			MixupAlpha:      1.5,
			MixupBeta:       1.5,
			MixupOffEpochs:  20,
			CloseMosaic:     10,
		},
		Eval: Eval{
			Conf:    0.01,
			NMS:     0.45,
			MaxDets: 100,
			Split:   "test",
			Metric:  "voc",
		},
		Output: Output{Dir: "runs/train"},
	}
}

// Error is a configuration error: every problem found, so that the user can
// fix them all in one go. The CLI exits with status 2 on it (see
// IsConfigError).
type Error struct {
	// File is the configuration file the problems belong to; "" when there
	// was none.
	File string
	// Problems are the messages, one per problem. A problem tied to a line of
	// File starts with "N: " (the line number), the rest with the key, e.g.
	// `train.lr = -1: must be > 0`.
	Problems []string
}

var lineRE = regexp.MustCompile(`^[0-9]+: `)

// Error returns the problems one per line, each prefixed with the file, as
// in `x.yaml:12: unknown key "lrr" in train` or `x.yaml: train.lr = -1:
// must be > 0`.
func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		if e.File == "" {
			return "invalid configuration"
		}
		return e.File + ": invalid configuration"
	}
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if e.File != "" {
			b.WriteString(e.File)
			if lineRE.MatchString(p) {
				b.WriteByte(':')
			} else {
				b.WriteString(": ")
			}
		}
		b.WriteString(p)
	}
	return b.String()
}

// IsConfigError reports whether err is (or wraps) an *Error, that is a
// problem in what the user configured rather than a failure of the program.
func IsConfigError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// ClassNames returns Data.Names, or else the lines of Data.NamesFile with
// surrounding white space removed and blank lines skipped. A names file that
// is missing, unreadable, empty or that repeats a name gives an *Error naming
// the file.
func (c *Config) ClassNames() ([]string, error) {
	if len(c.Data.Names) > 0 {
		return append([]string(nil), c.Data.Names...), nil
	}
	file := c.Data.NamesFile
	if file == "" {
		return nil, &Error{Problems: []string{"data.names and data.names_file are both empty: set one (a COCO data set takes its categories: see data.COCONames)"}}
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		msg := "data.names_file: cannot read it: "
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			msg = "data.names_file: file not found"
		case errors.As(err, &pe):
			msg += pe.Err.Error()
		default:
			msg += err.Error()
		}
		return nil, &Error{File: file, Problems: []string{msg}}
	}
	if isYAMLNames(file) {
		names, problems := yamlNames(raw)
		if len(problems) > 0 {
			return nil, &Error{File: file, Problems: problems}
		}
		return names, nil
	}
	var names, problems []string
	first := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, len(raw)+1)
	for line := 1; sc.Scan(); line++ {
		name := strings.TrimSpace(sc.Text())
		if name == "" {
			continue
		}
		if at, dup := first[name]; dup {
			problems = append(problems, fmt.Sprintf("%d: duplicate class name %q (first on line %d)", line, name, at))
			continue
		}
		first[name] = line
		names = append(names, name)
	}
	if len(names) == 0 && len(problems) == 0 {
		problems = append(problems, "data.names_file: no class names in the file")
	}
	if len(problems) > 0 {
		return nil, &Error{File: file, Problems: problems}
	}
	return names, nil
}
