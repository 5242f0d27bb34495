package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/model"
)

// A run folder (what `dettrain train` writes) is a self-describing model,
// like Ultralytics' best.pt: everything needed to use its weights is in it,
//
//	DIR/model.cfg        the network: heads fitted to the classes, the
//	                     anchors it was trained with (model.anchors: auto
//	                     writes the fitted ones here only), [net] width and
//	                     height = the training input size
//	DIR/names.txt        the class names, one per line, in class order
//	DIR/config.yaml      the resolved config (data and eval sections)
//	DIR/weights/best.weights, last.weights
//
// so eval, predict, export and bench take --run DIR, and a --weights file
// inside DIR/weights makes them use DIR's model.cfg and names.

// Files of a run folder.
const (
	runCfg     = "model.cfg"
	runNames   = "names.txt"
	runConfig  = "config.yaml"
	runWeights = "weights"
	runBest    = "best.weights"
)

// trainedRun is an opened run folder.
type trainedRun struct {
	Dir    string
	Cfg    string   // DIR/model.cfg
	Config string   // DIR/config.yaml
	Names  []string // from names.txt, else from config.yaml's data section
}

// Weights is the path of one of the run's weights files ("" = best.weights).
func (r *trainedRun) Weights(name string) string {
	if name == "" {
		name = runBest
	}
	return filepath.Join(r.Dir, runWeights, name)
}

// openRun opens a run folder, with one error naming the folder and what is
// missing when it is not one.
func openRun(dir string) (*trainedRun, error) {
	r := &trainedRun{Dir: dir, Cfg: filepath.Join(dir, runCfg), Config: filepath.Join(dir, runConfig)}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--run %s: not a folder", dir)
	}
	if _, err := os.Stat(r.Cfg); err != nil {
		return nil, fmt.Errorf("--run %s: not a dettrain run folder: it has no %s (train writes it when it starts)", dir, runCfg)
	}
	names, err := readRunNames(r)
	if err != nil {
		return nil, err
	}
	r.Names = names
	return r, nil
}

// readRunNames reads DIR/names.txt; runs written before it existed have the
// names in config.yaml (data.names or data.names_file).
func readRunNames(r *trainedRun) ([]string, error) {
	p := filepath.Join(r.Dir, runNames)
	names, err := readNames(p)
	if err == nil {
		return names, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("run %s: %w", r.Dir, err)
	}
	c, err := config.Load(r.Config, config.LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("run %s has no %s, and its %s cannot be read: %w", r.Dir, runNames, runConfig, err)
	}
	if names, err = classNames(c); err != nil {
		return nil, fmt.Errorf("run %s has no %s, and its config's class names cannot be read: %w", r.Dir, runNames, err)
	}
	return names, nil
}

// runOfWeights returns the run folder that weights lies in
// (DIR/weights/X.weights with DIR/model.cfg beside it), or "".
func runOfWeights(weights string) string {
	abs, err := filepath.Abs(weights)
	if err != nil || filepath.Base(filepath.Dir(abs)) != runWeights {
		return ""
	}
	dir := filepath.Dir(filepath.Dir(abs))
	if _, err := os.Stat(filepath.Join(dir, runCfg)); err != nil {
		return ""
	}
	return dir
}

// writeRunFiles writes the run's model.cfg (with its input size in [net])
// and names.txt.
func writeRunFiles(dir string, net *model.Network, names []string) error {
	if err := model.WriteAtomic(filepath.Join(dir, runCfg), func(w io.Writer) error { _, err := w.Write(net.Cfg.Text()); return err }); err != nil {
		return err
	}
	text := strings.Join(names, "\n") + "\n"
	return model.WriteAtomic(filepath.Join(dir, runNames), func(w io.Writer) error { _, err := w.Write([]byte(text)); return err })
}

// checkAnchors refuses to build a model from a config whose anchors were
// fitted at training time (model.anchors: auto) when the weights do not
// come with their run: the cfg's own anchors would give another model.
func checkAnchors(c *config.Config, weights string) error {
	if c.Model.Anchors != "auto" {
		return nil
	}
	return fmt.Errorf("%s: model.anchors is auto, so the anchors these weights were trained with were fitted on the training split and exist only in the run's %s; "+
		"the cfg's own anchors (%s) would evaluate a different model. Use --run RUN_DIR, or --weights RUN_DIR/weights/%s, or point model.cfg at RUN_DIR/%s and set model.anchors: \"\"",
		weights, runCfg, c.Model.Cfg, runBest, runCfg)
}

// resolveRun finds the run a command's model comes from: --run DIR (the
// weights defaulting to DIR/weights/best.weights), or the run folder that
// *weights lies in. It says which in one line on w. nil: no run.
func resolveRun(dir string, weights *string, w io.Writer) (*trainedRun, error) {
	from := "--run"
	if dir == "" {
		if dir = runOfWeights(*weights); dir == "" {
			return nil, nil
		}
		from = "--weights"
	}
	r, err := openRun(dir)
	if err != nil {
		return nil, err
	}
	if *weights == "" {
		*weights = r.Weights("")
	}
	fmt.Fprintf(w, "model of run %s (from %s): %s, %d class names, weights %s\n", r.Dir, from, r.Cfg, len(r.Names), *weights)
	return r, nil
}

// resolveModel is resolveRun for commands that take --model too: the cfg
// defaults to the run's model.cfg, and without a run --model is required.
func resolveModel(dir string, cfg, weights *string, w io.Writer) (*trainedRun, error) {
	run, err := resolveRun(dir, weights, w)
	if err != nil {
		return nil, err
	}
	if run != nil && *cfg == "" {
		*cfg = run.Cfg
	}
	if *cfg == "" {
		return nil, usagef("--model is required: %s is not inside a run folder (RUN/weights/*.weights)", *weights)
	}
	return run, nil
}
