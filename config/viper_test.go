package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// These tests use the process environment (LoadOptions.Env nil), which
// viper reads itself; t.Setenv restores it afterwards.

// TestEnvPrecedence: Default() < file < DETTRAIN_* < --set, key by key.
func TestEnvPrecedence(t *testing.T) {
	p := write(t, "x.yaml", minimal+"train:\n  lr: 0.1\n  batch: 8\n  epochs: 5\n")
	t.Setenv("DETTRAIN_TRAIN_LR", "0.01")
	t.Setenv("DETTRAIN_TRAIN_BATCH", "32")
	t.Setenv("DETTRAIN_TRAIN_WEIGHT_DECAY", "0.001") // "_" inside a key
	t.Setenv("DETTRAIN_DATA_NAMES", "x,y,z")
	t.Setenv("DETTRAIN_TRAIN_EPOCHS", "") // empty: ignored, as viper does
	t.Setenv("DETTRAIN_MODEL_WEIGHTS", "env.weights")
	t.Setenv("DETTRAIN_CACHE", "/tmp/cache") // not a config variable
	c, err := Load(p, LoadOptions{Sets: []string{"train.batch=4"}})
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"train.lr (env over file)", c.Train.LR, 0.01},
		{"train.batch (--set over env over file)", c.Train.Batch, 4},
		{"train.epochs (file; empty env ignored)", c.Train.Epochs, 5},
		{"train.weight_decay (env over default)", c.Train.WeightDecay, 0.001},
		{"train.momentum (default)", c.Train.Momentum, 0.9},
		{"data.names (env over file)", c.Data.Names, []string{"x", "y", "z"}},
		{"model.weights (env: against the working directory)", c.Model.Weights, filepath.Join(wd, "env.weights")},
		{"model.cfg (file: against its folder)", c.Model.Cfg, filepath.Join(filepath.Dir(p), "net.cfg")},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}

	// A value from the environment breaking a rule says where it came from.
	t.Setenv("DETTRAIN_EVAL_NMS", "2")
	_, err = Load(p, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), p+`: eval.nms = 2: must be > 0 and <= 1 (from environment DETTRAIN_EVAL_NMS)`) {
		t.Errorf("bad range from the environment: %v", err)
	}
	// --set over it: no problem left.
	if _, err = Load(p, LoadOptions{Sets: []string{"eval.nms=0.5"}}); err != nil {
		t.Errorf("--set over a bad environment range: %v", err)
	}

	// An explicit LoadOptions.Env replaces the process environment, and
	// Parse reads none.
	c, err = Load(p, LoadOptions{Env: []string{"DETTRAIN_TRAIN_BATCH=2"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Train.LR != 0.1 || c.Train.Batch != 2 || c.Model.Weights != "" {
		t.Errorf("explicit Env: lr %v batch %d weights %q, want 0.1, 2 and none", c.Train.LR, c.Train.Batch, c.Model.Weights)
	}
	c, err = Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Train.LR != 0.001 || c.Data.Names[0] != "a" {
		t.Errorf("Parse read the environment: %+v", c)
	}
}

// TestEnvUnknown: a DETTRAIN_<SECTION>_ variable that names no key is
// refused with its name, from the process environment and from an explicit
// list alike; other DETTRAIN_ variables and lower-case names are not ours.
func TestEnvUnknown(t *testing.T) {
	env := map[string]string{
		"DETTRAIN_TRAIN_LRR":    "0.1",
		"DETTRAIN_TRAIN_lr":     "0.1",
		"DETTRAIN_DATA_SEED":    "3",
		"DETTRAIN_OUTPUT_WHERE": "x",
		"DETTRAIN_EVAL_NOPE":    "", // empty: ignored, as a known one would be
		"DETTRAIN_CACHE":        "/tmp/cache",
		"DETTRAIN_CUDA_PATH":    "/usr/local/cuda",
		"dettrain_train_xyz":    "1",
	}
	want := []string{
		`environment DETTRAIN_DATA_SEED: unknown key "data.seed" (did you mean DETTRAIN_TRAIN_SEED?)`,
		`environment DETTRAIN_OUTPUT_WHERE: unknown key "output.where"`,
		`environment DETTRAIN_TRAIN_LRR: unknown key "train.lrr" (did you mean DETTRAIN_TRAIN_LR?)`,
		`environment DETTRAIN_TRAIN_lr: unknown key "train.lr" (names are upper case: DETTRAIN_TRAIN_LR)`,
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	p := write(t, "x.yaml", minimal)
	_, err := Load(p, LoadOptions{Env: list})
	if got := problems(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("explicit Env:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	_, err = Load(p, LoadOptions{})
	if got := problems(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("process environment:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestEveryBadValue: a bad value is reported even where a higher layer hides
// it, all at once, in the order file lines, environment, --set, rules.
func TestEveryBadValue(t *testing.T) {
	p := write(t, "x.yaml", minimal+"train:\n  lr: -1\n  batch: 8.5\n")
	t.Setenv("DETTRAIN_TRAIN_LR", "fast")
	t.Setenv("DETTRAIN_TRAIN_BATCH", "lots")
	t.Setenv("DETTRAIN_TRAIN_EPOCHS", "ten")
	_, err := Load(p, LoadOptions{Sets: []string{"train.epochs=many", "train.epochs=3", "train.batch=4", "eval.nms=2"}})
	want := []string{
		// The file's lr stands under the refused variable: its rule is
		// checked, on its line.
		`8: train.lr = -1: must be > 0`,
		`9: train.batch = 8.5: expected an integer`,
		`environment DETTRAIN_TRAIN_EPOCHS: train.epochs = "ten": expected an integer`,
		`environment DETTRAIN_TRAIN_BATCH: train.batch = "lots": expected an integer`,
		`environment DETTRAIN_TRAIN_LR: train.lr = "fast": expected a number`,
		`--set train.epochs=many: train.epochs = "many": expected an integer`,
		`eval.nms = 2: must be > 0 and <= 1 (from --set eval.nms=2)`,
	}
	if got := problems(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func problems(t *testing.T, err error) []string {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %v (%T), want a *Error", err, err)
	}
	return e.Problems
}
