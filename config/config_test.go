package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// noEnv keeps the tests independent of the process environment.
var noEnv = []string{}

// minimal is the smallest valid file: the three required keys.
const minimal = `
model:
  cfg: net.cfg
data:
  root: data
  names: [a, b]
`

func write(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadErr loads text from a temporary x.yaml and returns the error message
// and the file's path.
func loadErr(t *testing.T, text string, opts LoadOptions) (string, string) {
	t.Helper()
	p := write(t, "x.yaml", text)
	if opts.Env == nil {
		opts.Env = noEnv
	}
	c, err := Load(p, opts)
	if err == nil {
		t.Fatalf("Load succeeded, want an error; got %+v", c)
	}
	if !IsConfigError(err) {
		t.Fatalf("error %q (%T) is not a config error", err, err)
	}
	return err.Error(), p
}

func wantContains(t *testing.T, msg string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q:\n%s", w, msg)
		}
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	checks := []struct {
		key  string
		got  any
		want any
	}{
		{"model.cfg", d.Model.Cfg, ""},
		{"model.size", d.Model.Size, Size{}}, // the cfg's [net] size
		{"model.weights", d.Model.Weights, ""},
		{"model.bn", d.Model.BN, "local"},
		{"model.bn_eps", d.Model.BNEps, 1e-5},
		{"model.anchors", d.Model.Anchors, ""},
		{"model.partial", d.Model.Partial, 0},
		{"data.format", d.Data.Format, "voc"},
		{"data.root", d.Data.Root, ""},
		{"data.images", d.Data.Images, "JPEGImages"},
		{"data.annotations", d.Data.Annotations, "Annotations"},
		{"data.splits", d.Data.Splits, "ImageSets/Main"},
		{"data.train", d.Data.Train, "train"},
		{"data.val", d.Data.Val, "val"},
		{"data.test", d.Data.Test, "test"},
		{"data.names", d.Data.Names, []string(nil)},
		{"data.names_file", d.Data.NamesFile, ""},
		{"data.workers", d.Data.Workers, 2},
		{"data.skip_bad", d.Data.SkipBad, false},
		{"data.allow_outside", d.Data.AllowOutside, false},
		{"data.val_fraction", d.Data.ValFraction, 0.1},
		{"data.flip", d.Data.Flip, true},
		{"data.augment", d.Data.Augment, true},
		{"train.epochs", d.Train.Epochs, 100},
		{"train.batch", d.Train.Batch, 16},
		{"train.lr", d.Train.LR, 0.001},
		{"train.momentum", d.Train.Momentum, 0.9},
		{"train.weight_decay", d.Train.WeightDecay, 0.0005},
		{"train.schedule", d.Train.Schedule, "step"},
		{"train.steps", d.Train.Steps, []float64{0.8, 0.9}},
		{"train.warmup_epochs", d.Train.WarmupEpochs, 0.0},
		{"train.final_lr", d.Train.FinalLR, 0.0},
		{"train.seed", d.Train.Seed, int64(1)},
		{"train.eval_interval", d.Train.EvalInterval, 1},
		{"train.log_interval", d.Train.LogInterval, 10},
		{"train.threads", d.Train.Threads, 0},
		{"train.device", d.Train.Device, "cpu"},
		{"train.devices", len(d.Train.Devices), 0},
		{"train.tf32", d.Train.TF32, true},
		{"train.amp", d.Train.AMP, false},
		{"train.replicas", d.Train.Replicas, 1},
		{"train.ema", d.Train.EMA, false},
		{"train.ema_decay", d.Train.EMADecay, 0.9999},
		{"train.ema_tau", d.Train.EMATau, 2000.0},
		{"train.on_nan", d.Train.OnNaN, "stop"},
		{"train.keep_checkpoints", d.Train.KeepCheckpoints, 3},
		{"train.label_smoothing", d.Train.LabelSmoothing, "none"},
		{"train.smoothing_eps", d.Train.SmoothingEps, 0.1},
		{"train.random_shapes", d.Train.RandomShapes, false},
		{"train.shapes", d.Train.Shapes, []int{320, 352, 384, 416, 448, 480, 512, 544, 576, 608}},
		{"train.shape_every", d.Train.ShapeEvery, 10},
		{"train.shape_graphs", d.Train.ShapeGraphs, 2},
		{"train.mixup", d.Train.Mixup, false},
		{"train.mixup_alpha", d.Train.MixupAlpha, 1.5},
		{"train.mixup_beta", d.Train.MixupBeta, 1.5},
		{"train.mixup_off_epochs", d.Train.MixupOffEpochs, 20},
		{"train.mixup_off_fraction", d.Train.MixupOffFraction, 0.0},
		{"train.mosaic", d.Train.Mosaic, false},
		{"train.close_mosaic", d.Train.CloseMosaic, 10},
		{"eval.size", d.Eval.Size, Size{}}, // the training size
		{"eval.conf", d.Eval.Conf, 0.01},
		{"eval.nms", d.Eval.NMS, 0.45},
		{"eval.max_dets", d.Eval.MaxDets, 100},
		{"eval.split", d.Eval.Split, "test"},
		{"eval.metric", d.Eval.Metric, "voc"},
		{"output.dir", d.Output.Dir, "runs/train"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
	if len(checks) != len(fields) {
		t.Errorf("checked %d keys, the config has %d", len(checks), len(fields))
	}

	// The defaults lack only the three required keys.
	err := d.Validate()
	if err == nil {
		t.Fatal("Default() validates without model.cfg, data.root and data.names")
	}
	e := err.(*Error)
	want := []string{
		`model.cfg = "": required (a darknet .cfg file)`,
		`data.root = "": required (the data set folder)`,
		`data.names = []: required unless data.names_file is set (or data.format is coco)`,
	}
	if !reflect.DeepEqual(e.Problems, want) {
		t.Errorf("problems of Default():\n%q\nwant\n%q", e.Problems, want)
	}
	d.Model.Cfg, d.Data.Root, d.Data.Names = "x.cfg", "data", []string{"a"}
	if err := d.Validate(); err != nil {
		t.Errorf("defaults plus the required keys: %v", err)
	}
}

func TestConfigsLoad(t *testing.T) {
	files, err := filepath.Glob("../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d configs in ../configs, want at least 3", len(files))
	}
	dir, err := filepath.Abs("../configs")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		c, err := Load(f, LoadOptions{Env: noEnv})
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		// A config's cfg is one of configs/models or a pretrained model of ../shared/models.
		shared := filepath.Join(filepath.Dir(filepath.Dir(dir)), "shared", "models") + string(filepath.Separator)
		if !strings.HasPrefix(c.Model.Cfg, filepath.Join(dir, "models")+string(filepath.Separator)) && !strings.HasPrefix(c.Model.Cfg, shared) {
			t.Errorf("%s: model.cfg = %q, want a file in %s/models or %s", f, c.Model.Cfg, dir, shared)
		}
		if _, err := c.ClassNames(); err != nil {
			t.Errorf("%s: ClassNames: %v", f, err)
		}
	}

	c, err := Load("../configs/demo.yaml", LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Dir(dir)
	if got, want := c.Data.Root, filepath.Join(repo, "demo", "shapes"); got != want {
		t.Errorf("demo data.root = %q, want %q", got, want)
	}
	if got, want := c.Output.Dir, filepath.Join(repo, "runs", "demo"); got != want {
		t.Errorf("demo output.dir = %q, want %q", got, want)
	}
	if c.Model.Size != Square(128) || c.Eval.Size != Square(128) || c.Train.Schedule != "cosine" ||
		!reflect.DeepEqual(c.Data.Names, []string{"circle", "square", "triangle", "cross"}) ||
		c.Data.Images != "JPEGImages" || c.Data.Splits != "ImageSets/Main" {
		t.Errorf("demo config: %+v", c)
	}

	c, err = Load("../configs/bccd-yolov3-tiny.yaml", LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Data.Root, filepath.Join(filepath.Dir(repo), "shared", "data", "bccd"); got != want {
		t.Errorf("bccd data.root = %q, want %q", got, want)
	}
	if c.Data.Splits != "splits/Main" || !reflect.DeepEqual(c.Data.Names, []string{"RBC", "WBC", "Platelets"}) {
		t.Errorf("bccd data: %+v", c.Data)
	}

	c, err = Load("../configs/voc-yolov3.yaml", LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Data.Names) != 20 || c.Data.Names[19] != "tvmonitor" || c.Data.Root != "/data/VOCdevkit/VOC2007" ||
		c.Train.Batch != 64 || c.Train.Epochs != 200 || !reflect.DeepEqual(c.Train.Steps, []float64{0.8, 0.9}) ||
		c.Train.WarmupEpochs != 2 || c.Train.Schedule != "step" {
		t.Errorf("voc config: %+v", c)
	}
	// The paper's full recipe differs from the baseline in the freebies
	// only (Zhang et al. 2019, Table 1; docs/FREEBIES.md).
	fb, err := Load("../configs/voc-yolov3-freebies.yaml", LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	want := *c
	want.Model.BN, want.Train.Schedule, want.Train.FinalLR = "sync", "cosine", 0
	want.Train.RandomShapes, want.Train.Shapes, want.Train.ShapeEvery = true, []int{320, 352, 384, 416, 448, 480, 512, 544, 576, 608}, 10
	want.Train.LabelSmoothing, want.Train.Mixup, want.Train.MixupAlpha, want.Train.MixupBeta, want.Train.MixupOffEpochs = "gluoncv", true, 1.5, 1.5, 20
	want.Output.Dir = filepath.Join(filepath.Dir(c.Output.Dir), "voc-yolov3-freebies")
	if !reflect.DeepEqual(*fb, want) {
		a, _ := want.YAML()
		b, _ := fb.YAML()
		t.Errorf("voc-yolov3-freebies.yaml is not the baseline plus the freebies:\nwant\n%s\ngot\n%s", a, b)
	}
	if c.Train.Replicas != 8 || c.Model.BN != "local" {
		t.Errorf("the baseline: %d replicas with %s BN, want GluonCV's 8 with local BN", c.Train.Replicas, c.Model.BN)
	}
}

func TestUnknownKey(t *testing.T) {
	msg, p := loadErr(t, minimal+`train:
  epochs: 10
  lrr: 0.01
  batch: 8
lr: 0.1
trian:
  seed: 2
`, LoadOptions{})
	wantContains(t, msg,
		p+`:9: unknown key "lrr" in train (did you mean "lr"?)`,
		p+`:11: unknown key "lr" at the top level (keys go under a section: did you mean train.lr?)`,
		p+`:12: unknown key "trian" at the top level (did you mean "train"?)`,
	)
	if n := strings.Count(msg, "\n") + 1; n != 3 {
		t.Errorf("%d problems, want 3:\n%s", n, msg)
	}
}

func TestDuplicateKey(t *testing.T) {
	msg, p := loadErr(t, minimal+`train:
  lr: 0.01
  lr: 0.02
`, LoadOptions{})
	wantContains(t, msg, p+`:9: duplicate key "lr" in train (first at line 8)`)
}

func TestTypeAndRangeTogether(t *testing.T) {
	msg, p := loadErr(t, minimal+`train:
  batch: sixteen
  lr: -1
  steps: [0.5, x]
model:
  size: 417
`, LoadOptions{})
	lines := strings.Split(msg, "\n")
	want := []string{
		p + `:8: train.batch = "sixteen": expected an integer`,
		p + `:9: train.lr = -1: must be > 0`,
		p + `:10: train.steps[1] = "x": expected a number`,
		p + `:11: duplicate key "model" (first at line 2)`,
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got\n%s\nwant\n%s", msg, strings.Join(want, "\n"))
	}

	// Without the duplicate section, the bad size is reported too, with the
	// type error, in line order.
	msg, p = loadErr(t, `model:
  cfg: a.cfg
  size: 417
data: {root: d, names: [a]}
train:
  batch: "16"
  epochs: 2.5
  flip: true
eval:
  nms: 0
`, LoadOptions{})
	want = []string{
		p + `:3: model.size = 417: each side must be a multiple of 32`,
		p + `:6: train.batch = "16": expected an integer`,
		p + `:7: train.epochs = 2.5: expected an integer`,
		p + `:8: unknown key "flip" in train (did you mean data.flip?)`,
		p + `:10: eval.nms = 0: must be > 0 and <= 1`,
	}
	if got := strings.Split(msg, "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", msg, strings.Join(want, "\n"))
	}
}

func TestBadStructure(t *testing.T) {
	msg, p := loadErr(t, "- a\n- b\n", LoadOptions{})
	wantContains(t, msg, p+":1: expected a mapping of sections (model, data, train, eval, output), got a list")

	msg, p = loadErr(t, minimal+"train: 5\n", LoadOptions{})
	wantContains(t, msg, p+`:7: train: expected a mapping of keys, got "5"`)

	// A syntax error stops there: no validation of a half-read file.
	msg, p = loadErr(t, "model:\n  cfg: a.cfg\ntrain:\n  lr: [1\n", LoadOptions{})
	if want := p + ":4: invalid YAML: did not find expected ',' or ']'"; msg != want {
		t.Errorf("got\n%s\nwant\n%s", msg, want)
	}
	msg, p = loadErr(t, "model:\n  cfg: a.cfg\n    size: 32\n", LoadOptions{})
	if want := p + ":3: invalid YAML: mapping values are not allowed in this context"; msg != want {
		t.Errorf("got\n%s\nwant\n%s", msg, want)
	}

	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), LoadOptions{Env: noEnv})
	if !IsConfigError(err) || !strings.HasSuffix(err.Error(), "missing.yaml: file not found") {
		t.Errorf("missing file: %v", err)
	}
}

func TestValidateRules(t *testing.T) {
	c := Default()
	c.Model.Cfg, c.Data.Root = "n.cfg", "d"
	c.Data.Names = []string{"a", "", "a"}
	c.Data.NamesFile = "n.txt"
	c.Data.Format = "darknet"
	c.Data.Train = "train.txt"
	c.Train.LR = 11
	c.Train.Steps = []float64{0.9, 0.8}
	c.Train.WarmupEpochs = 100
	c.Train.Schedule = "cosine"
	c.Train.FinalLR = 20
	c.Eval.Size = Square(8)
	c.Eval.Conf = 1
	c.Eval.Metric = "map"
	c.Train.Device = "tpu"
	c.Data.Workers = -1
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`data.format = "darknet": must be "voc", "coco" or "yolo"`,
		`data.train = "train.txt": must be a split name, without .txt (the file is <splits>/train.txt)`,
		`data.names_file = "n.txt": set only one of data.names and data.names_file`,
		`data.names[1] = "": must not be empty`,
		`data.names[2] = "a": duplicate of data.names[0]`,
		`data.workers = -1: must be between 0 and 64`,
		`train.lr = 11: must be <= 10`,
		`train.steps = [0.9, 0.8]: must be strictly increasing`,
		`train.warmup_epochs = 100: must be < train.epochs (100)`,
		`train.final_lr = 20: must be <= train.lr (11) for the cosine schedule`,
		`train.device = "tpu": must be "cpu", "cuda" or "cuda:N" (N a GPU ordinal)`,
		`eval.size = 8: each side must be between 32 and 4096 (or 0 for the cfg's size)`,
		`eval.conf = 1: must be >= 0 and < 1`,
		`eval.metric = "map": must be "voc07", "voc" or "coco"`,
	}
	if got := err.(*Error).Problems; !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), ": :") || strings.HasPrefix(err.Error(), ":") {
		t.Errorf("no file, yet the message has a file prefix: %s", err)
	}
}

func TestSets(t *testing.T) {
	p := write(t, "x.yaml", minimal+"train:\n  lr: 0.1\n  batch: 8\n")
	c, err := Load(p, LoadOptions{Env: noEnv, Sets: []string{
		"train.lr=0.01",
		"data.names=[cat, dog, 'a b']",
		"train.steps=0.5,0.7",
		"data.val=",
		"Train.Seed=7",
		"model.weights=w.weights",
		"data.skip_bad=true",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Train.LR != 0.01 || c.Train.Batch != 8 || c.Train.Seed != 7 || !c.Data.SkipBad || c.Data.Val != "" {
		t.Errorf("train after --set: %+v, data.val %q", c.Train, c.Data.Val)
	}
	if want := []string{"cat", "dog", "a b"}; !reflect.DeepEqual(c.Data.Names, want) {
		t.Errorf("data.names = %q, want %q", c.Data.Names, want)
	}
	if want := []float64{0.5, 0.7}; !reflect.DeepEqual(c.Train.Steps, want) {
		t.Errorf("train.steps = %v, want %v", c.Train.Steps, want)
	}

	msg, _ := loadErr(t, minimal, LoadOptions{Sets: []string{"train.lrr=0.1", "lr=1", "train.batch=big", "nokey"}})
	wantContains(t, msg,
		`--set train.lrr=0.1: unknown key "train.lrr" (did you mean "train.lr"?)`,
		`--set lr=1: unknown key "lr" (keys go under a section: did you mean train.lr?)`,
		`--set train.batch=big: train.batch = "big": expected an integer`,
		`--set "nokey": expected section.key=value`,
	)

	// No file: defaults, environment and --set only.
	c, err = Load("", LoadOptions{Env: []string{"DETTRAIN_DATA_ROOT=/d"}, Sets: []string{"model.cfg=/m.cfg", "data.names=a"}})
	if err != nil || c.Model.Cfg != "/m.cfg" || c.Data.Root != "/d" || len(c.Data.Names) != 1 {
		t.Errorf("Load without a file: %+v, %v", c, err)
	}
	_, err = Load("", LoadOptions{Env: noEnv})
	if err == nil || !strings.HasPrefix(err.Error(), `model.cfg = "": required`) {
		t.Errorf("Load without a file or keys: %v", err)
	}

	// A value from --set breaking a rule says where it came from.
	msg, p = loadErr(t, minimal, LoadOptions{Sets: []string{"train.lr=-1"}})
	wantContains(t, msg, p+`: train.lr = -1: must be > 0 (from --set train.lr=-1)`)
}

func TestEnv(t *testing.T) {
	p := write(t, "x.yaml", minimal+"train:\n  lr: 0.1\n  weight_decay: 0.1\n")
	env := []string{
		"DETTRAIN_TRAIN_LR=0.01",
		"DETTRAIN_TRAIN_WEIGHT_DECAY=0.001",
		"DETTRAIN_DATA_NAMES=x,y,z",
		"DETTRAIN_TRAIN_EPOCHS=", // empty: ignored, as viper does
		"DETTRAIN_TRAIN_BATCH=32",
		"dettrain_train_seed=9", // names are upper case
		"PATH=/bin",
	}
	c, err := Load(p, LoadOptions{Env: env, Sets: []string{"train.batch=4"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Train.LR != 0.01 || c.Train.WeightDecay != 0.001 || c.Train.Epochs != 100 || c.Train.Seed != 1 {
		t.Errorf("train from the environment: %+v", c.Train)
	}
	if c.Train.Batch != 4 {
		t.Errorf("train.batch = %d: --set must win over the environment", c.Train.Batch)
	}
	if want := []string{"x", "y", "z"}; !reflect.DeepEqual(c.Data.Names, want) {
		t.Errorf("data.names = %q, want %q", c.Data.Names, want)
	}

	msg, p := loadErr(t, minimal, LoadOptions{Env: []string{"DETTRAIN_TRAIN_BATCH=lots", "DETTRAIN_EVAL_NMS=2"}})
	wantContains(t, msg,
		p+`: environment DETTRAIN_TRAIN_BATCH: train.batch = "lots": expected an integer`,
		p+`: eval.nms = 2: must be > 0 and <= 1 (from environment DETTRAIN_EVAL_NMS)`,
	)
}

func TestYAMLRoundTrip(t *testing.T) {
	c, err := Load("../configs/voc-yolov3.yaml", LoadOptions{Env: noEnv, Sets: []string{
		"train.weight_decay=1e-5", "data.names_file=names.txt", "data.names=", "model.weights=w.weights",
		"train.final_lr=0.0001", "data.val=", "train.steps=[]", "train.lr=100e-4",
	}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	wantContains(t, text, "model:\n  cfg: /", "  weight_decay: 1e-05\n", "  val: \"\"\n", "  steps: []\n", "  names: []\n", "  lr: 0.01\n")
	// Written elsewhere, it loads back to the same Config.
	p := write(t, "config.yaml", text)
	back, err := Load(p, LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", c, back)
	}

	// The demo, with names and steps.
	c, err = Load("../configs/demo.yaml", LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	out, err = c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, string(out), "  names: [circle, square, triangle, cross]\n", "  steps: [0.8, 0.9]\n", "  flip: true\n")
	back, err = Load(write(t, "config.yaml", string(out)), LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", c, back)
	}
}

func TestRelativePaths(t *testing.T) {
	p := write(t, "x.yaml", `
model:
  cfg: models/net.cfg
  weights: ../w/net.weights
data:
  root: /abs/data/./set
  names_file: names.txt
output:
  dir: runs
`)
	dir := filepath.Dir(p)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, LoadOptions{Env: []string{"DETTRAIN_MODEL_WEIGHTS=env.weights"}, Sets: []string{"output.dir=out/run1"}})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ key, got, want string }{
		{"model.cfg (file)", c.Model.Cfg, filepath.Join(dir, "models", "net.cfg")},
		{"model.weights (env)", c.Model.Weights, filepath.Join(wd, "env.weights")},
		{"data.root (absolute)", c.Data.Root, "/abs/data/set"},
		{"data.names_file (file)", c.Data.NamesFile, filepath.Join(dir, "names.txt")},
		{"output.dir (--set)", c.Output.Dir, filepath.Join(wd, "out", "run1")},
		{"data.images (under root, kept)", c.Data.Images, "JPEGImages"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.key, ch.got, ch.want)
		}
	}

	// Default output.dir, not in the file: the working directory.
	c, err = Load(write(t, "y.yaml", minimal), LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "runs", "train"); c.Output.Dir != want {
		t.Errorf("default output.dir = %q, want %q", c.Output.Dir, want)
	}
}

func TestClassNames(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "names.txt")
	if err := os.WriteFile(file, []byte("cat\r\n\n  dog \nbird\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.Data.NamesFile = file
	names, err := c.ClassNames()
	if err != nil || !reflect.DeepEqual(names, []string{"cat", "dog", "bird"}) {
		t.Errorf("ClassNames = %q, %v", names, err)
	}

	c.Data.NamesFile = filepath.Join(dir, "none.txt")
	_, err = c.ClassNames()
	if !IsConfigError(err) || err.Error() != c.Data.NamesFile+": data.names_file: file not found" {
		t.Errorf("missing file: %v", err)
	}

	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, []byte("\n \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Data.NamesFile = empty
	if _, err = c.ClassNames(); err == nil || err.Error() != empty+": data.names_file: no class names in the file" {
		t.Errorf("empty file: %v", err)
	}

	dup := filepath.Join(dir, "dup.txt")
	if err := os.WriteFile(dup, []byte("a\nb\na\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Data.NamesFile = dup
	if _, err = c.ClassNames(); err == nil || err.Error() != dup+`:3: duplicate class name "a" (first on line 1)` {
		t.Errorf("duplicate: %v", err)
	}

	c.Data.Names = []string{"x"}
	if names, err := c.ClassNames(); err != nil || !reflect.DeepEqual(names, []string{"x"}) {
		t.Errorf("ClassNames with names = %q, %v", names, err)
	}
}

func TestDeviceKeys(t *testing.T) {
	for _, tc := range []struct {
		device  string
		devices string
		sets    []string
		want    string // "" = valid
	}{
		{"cpu", "[]", nil, ""},
		{"cuda", "[]", nil, ""},
		{"cuda:3", "[]", nil, ""},
		{"cuda", "[0, 1]", []string{"train.replicas=2"}, ""},
		{"cuda", "[0, 0]", []string{"train.replicas=2"}, ""},
		{"cuda", "[0, 1]", nil, `train.devices = [0, 1]: lists 2 GPUs but train.replicas is 1: one replica per GPU (set train.replicas: 2)`},
		{"cpu", "[0]", nil, `train.devices = [0]: needs train.device "cuda"`},
		{"cuda:x", "[]", nil, `train.device = "cuda:x": must be "cpu", "cuda" or "cuda:N" (N a GPU ordinal)`},
		{"cuda", "[-1]", nil, `train.devices[0] = -1: must be a GPU ordinal between 0 and 63`},
		{"cuda", "[]", []string{"train.amp=true"}, ""},
		{"cpu", "[]", []string{"train.amp=true"}, `train.amp = true: mixed precision runs on the GPU only: needs train.device "cuda"`},
	} {
		sets := append([]string{"train.device=" + tc.device, "train.devices=" + tc.devices}, tc.sets...)
		_, err := Load("../configs/demo.yaml", LoadOptions{Env: noEnv, Sets: sets})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", sets, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want %q", sets, err, tc.want)
		}
	}
	if d, _ := ParseDevice("cuda:2"); d != 2 {
		t.Errorf("ParseDevice(cuda:2) = %d", d)
	}
}
