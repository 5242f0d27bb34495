package engine

import (
	"bufio"
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
	RunCfg     = "model.cfg"
	RunNames   = "names.txt"
	RunConfig  = "config.yaml"
	RunWeights = "weights"
	RunBest    = "best.weights"
)

// Run is an opened run folder.
type Run struct {
	Dir    string
	Cfg    string   // DIR/model.cfg
	Config string   // DIR/config.yaml
	Names  []string // from names.txt, else from config.yaml's data section
}

// Weights is the path of one of the run's weights files ("" = best.weights).
func (r *Run) Weights(name string) string {
	if name == "" {
		name = RunBest
	}
	return filepath.Join(r.Dir, RunWeights, name)
}

// OpenRun opens a run folder, with one error naming the folder and what is
// missing when it is not one.
func OpenRun(dir string) (*Run, error) {
	r := &Run{Dir: dir, Cfg: filepath.Join(dir, RunCfg), Config: filepath.Join(dir, RunConfig)}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--run %s: not a folder", dir)
	}
	if _, err := os.Stat(r.Cfg); err != nil {
		return nil, fmt.Errorf("--run %s: not a dettrain run folder: it has no %s (train writes it when it starts)", dir, RunCfg)
	}
	names, err := ReadRunNames(r)
	if err != nil {
		return nil, err
	}
	r.Names = names
	return r, nil
}

// ReadRunNames reads DIR/names.txt; runs written before it existed have the
// names in config.yaml (data.names or data.names_file).
func ReadRunNames(r *Run) ([]string, error) {
	p := filepath.Join(r.Dir, RunNames)
	names, err := ReadNames(p)
	if err == nil {
		return names, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("run %s: %w", r.Dir, err)
	}
	c, err := config.Load(r.Config, config.LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("run %s has no %s, and its %s cannot be read: %w", r.Dir, RunNames, RunConfig, err)
	}
	if names, err = ClassNames(c); err != nil {
		return nil, fmt.Errorf("run %s has no %s, and its config's class names cannot be read: %w", r.Dir, RunNames, err)
	}
	return names, nil
}

// RunOfWeights returns the run folder that weights lies in
// (DIR/weights/X.weights with DIR/model.cfg beside it), or "".
func RunOfWeights(weights string) string {
	abs, err := filepath.Abs(weights)
	if err != nil || filepath.Base(filepath.Dir(abs)) != RunWeights {
		return ""
	}
	dir := filepath.Dir(filepath.Dir(abs))
	if _, err := os.Stat(filepath.Join(dir, RunCfg)); err != nil {
		return ""
	}
	return dir
}

// WriteRunFiles writes the run's model.cfg (with its input size in [net])
// and names.txt.
func WriteRunFiles(dir string, net *model.Network, names []string) error {
	if err := model.WriteAtomic(filepath.Join(dir, RunCfg), func(w io.Writer) error { _, err := w.Write(net.Cfg.Text()); return err }); err != nil {
		return err
	}
	text := strings.Join(names, "\n") + "\n"
	return model.WriteAtomic(filepath.Join(dir, RunNames), func(w io.Writer) error { _, err := w.Write([]byte(text)); return err })
}

// CheckAnchors refuses to build a model from a config whose anchors were
// fitted at training time (model.anchors: auto) when the weights do not
// come with their run: the cfg's own anchors would give another model.
func CheckAnchors(c *config.Config, weights string) error {
	if c.Model.Anchors != "auto" {
		return nil
	}
	return fmt.Errorf("%s: model.anchors is auto, so the anchors these weights were trained with were fitted on the training split and exist only in the run's %s; "+
		"the cfg's own anchors (%s) would evaluate a different model. Use --run RUN_DIR, or --weights RUN_DIR/weights/%s, or point model.cfg at RUN_DIR/%s and set model.anchors: \"\"",
		weights, RunCfg, c.Model.Cfg, RunBest, RunCfg)
}

// ResolveRun finds the run a command's model comes from: --run DIR (the
// weights defaulting to DIR/weights/best.weights), or the run folder that
// *weights lies in. It says which in one line on w. nil: no run.
func ResolveRun(dir string, weights *string, w io.Writer) (*Run, error) {
	from := "--run"
	if dir == "" {
		if dir = RunOfWeights(*weights); dir == "" {
			return nil, nil
		}
		from = "--weights"
	}
	r, err := OpenRun(dir)
	if err != nil {
		return nil, err
	}
	if *weights == "" {
		*weights = r.Weights("")
	}
	fmt.Fprintf(w, "model of run %s (from %s): %s, %d class names, weights %s\n", r.Dir, from, r.Cfg, len(r.Names), *weights)
	return r, nil
}

// ResolveModel is ResolveRun for commands that take --model too: the cfg
// defaults to the run's model.cfg, and without a run --model is required.
func ResolveModel(dir string, cfg, weights *string, w io.Writer) (*Run, error) {
	run, err := ResolveRun(dir, weights, w)
	if err != nil {
		return nil, err
	}
	if run != nil && *cfg == "" {
		*cfg = run.Cfg
	}
	if *cfg == "" {
		return nil, Usagef("--model is required: %s is not inside a run folder (RUN/weights/*.weights)", *weights)
	}
	return run, nil
}

// ReadNames reads --names: one name per line, or a YAML file's names.
func ReadNames(path string) ([]string, error) {
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		return config.ReadNamesFile(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no class names", path)
	}
	return names, sc.Err()
}
