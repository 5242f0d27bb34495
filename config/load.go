package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"
)

// LoadOptions are the overlays applied on top of the file.
type LoadOptions struct {
	// Sets are "section.key=value" overrides (the CLI's --set flags), applied
	// last, in order. The value is read as YAML, so numbers, booleans and
	// flow sequences work (train.lr=0.01, data.names=[a,b]); a list also
	// accepts comma-separated items (data.names=a,b). A string value that is
	// not a YAML scalar is taken verbatim.
	Sets []string
	// Env is the environment, as "NAME=value" strings; nil means the
	// process's, read by viper (tests set it with t.Setenv). A non-nil list
	// replaces the process environment; use an empty, non-nil slice for none.
	Env []string
}

// EnvPrefix is the prefix of the environment variables that override keys:
// train.weight_decay is DETTRAIN_TRAIN_WEIGHT_DECAY.
const EnvPrefix = "DETTRAIN"

// field is one configurable key.
type field struct {
	section, key string // YAML names
	index        []int  // reflect index path from Config
	path         bool   // a file or folder path resolved against a base
}

func (f *field) name() string { return f.section + "." + f.key }

// envName is the environment variable that overrides f, named as the
// loader's viper names it (SetEnvPrefix(EnvPrefix), SetEnvKeyReplacer(
// strings.NewReplacer(".", "_")), BindEnv(f.name())): upper-cased prefix,
// "_", upper-cased key with "." replaced by "_".
func (f *field) envName() string {
	return strings.ReplaceAll(strings.ToUpper(EnvPrefix+"_"+f.name()), ".", "_")
}

var (
	sections  []string              // in Config order
	fields    []*field              // in Config order
	fieldsBy  = map[string]*field{} // by "section.key"
	pathKeys  = []string{"model.cfg", "model.weights", "data.root", "data.names_file", "output.dir"}
	typeNames = map[reflect.Type]string{
		reflect.TypeFor[int]():       "an integer",
		reflect.TypeFor[int64]():     "an integer",
		reflect.TypeFor[float64]():   "a number",
		reflect.TypeFor[string]():    "a string",
		reflect.TypeFor[bool]():      "true or false",
		reflect.TypeFor[[]string]():  "a list of strings",
		reflect.TypeFor[[]float64](): "a list of numbers",
		reflect.TypeFor[[]int]():     "a list of integers",
		reflect.TypeFor[Size]():      "a size: N or WxH (416, 352x288), 0 for the cfg's own",
	}
)

func init() {
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		sf := ct.Field(i)
		sec := yamlName(sf)
		sections = append(sections, sec)
		for j := range sf.Type.NumField() {
			kf := sf.Type.Field(j)
			if _, ok := typeNames[kf.Type]; !ok {
				panic("config: no decoder for " + kf.Type.String())
			}
			f := &field{section: sec, key: yamlName(kf), index: []int{i, j}}
			f.path = slices.Contains(pathKeys, f.name())
			fields = append(fields, f)
			fieldsBy[f.name()] = f
		}
	}
}

func yamlName(sf reflect.StructField) string {
	name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	if name == "" {
		panic("config: field " + sf.Name + " has no yaml tag")
	}
	return name
}

// origin records which layer a key's value came from.
type origin struct {
	src  string // "" default, "file", "env", "set"
	line int    // file line
	text string // the --set string or the environment variable's name
}

// The values Load hands to viper, one type per layer, so that the value
// viper picks (v.Get) says which layer it came from. Each is decoded
// strictly, with its source, before viper sees it: viper only chooses the
// winner. The environment's values are viper's own strings.
type (
	// fileValue is a key of the file (viper's config layer).
	fileValue struct {
		line int           // the key's line
		val  reflect.Value // decoded into the field's type
	}
	// setValue is a --set (viper's override layer, v.Set).
	setValue struct {
		text string // the whole --set string
		val  reflect.Value
	}
)

// envFlag is one variable of an explicit LoadOptions.Env. Viper reads the
// environment with os.LookupEnv only, so an explicit list is handed to it as
// a changed flag (BindFlagValue): viper's flag layer sits where its
// environment layer does, above the file and below Set, and the process
// environment is then not bound at all.
type envFlag struct{ name, val string }

func (e envFlag) HasChanged() bool    { return true }
func (e envFlag) Name() string        { return e.name }
func (e envFlag) ValueString() string { return e.val }
func (e envFlag) ValueType() string   { return "string" }

// loader accumulates one Load.
type loader struct {
	v        *viper.Viper // this Load's own; never the global one
	cfg      Config
	origins  map[string]origin
	file     map[string]fileValue     // the file's decoded keys, by "section.key"
	env      map[string]reflect.Value // the environment's decoded values
	problems []string                 // in the order found
	lined    []linedProblem
	broken   bool // the file is not valid YAML: skip validation
}

type linedProblem struct {
	line int
	msg  string
}

func (l *loader) fileProblem(line int, format string, args ...any) {
	l.lined = append(l.lined, linedProblem{line, fmt.Sprintf(format, args...)})
}

func (l *loader) value(f *field) reflect.Value {
	return reflect.ValueOf(&l.cfg).Elem().FieldByIndex(f.index)
}

// zero returns a new, settable zero value of f's type.
func (f *field) zero() reflect.Value {
	return reflect.New(reflect.TypeFor[Config]().FieldByIndex(f.index).Type).Elem()
}

// Load reads the YAML file at path strictly and applies the overlays, in
// the order Default() < file < DETTRAIN_* environment < opts.Sets, through
// one viper.New() of its own, then validates the result. path "" means no
// file.
//
// Unknown keys, duplicate keys and values of the wrong type are reported
// with the file's line, all at once and together with the bad environment
// variables and --set flags and the validation problems, in one *Error. Relative paths (model.cfg, model.weights,
// data.root, data.names_file, output.dir) written in the file are resolved
// against the file's folder; those from the environment, --set or the
// defaults against the working directory. Every non-empty path of the
// returned Config is absolute and clean. Load does not check that the paths
// exist.
func Load(path string, opts LoadOptions) (*Config, error) {
	var raw []byte
	if path != "" {
		var err error
		if raw, err = os.ReadFile(path); err != nil {
			return nil, &Error{File: path, Problems: []string{readProblem(err)}}
		}
	}
	return load(path, raw, opts)
}

// Parse decodes a config written by (*Config).YAML (a run's config.yaml, a
// checkpoint's copy) strictly, with no environment and no overrides.
func Parse(raw []byte) (*Config, error) {
	return load("", raw, LoadOptions{Env: []string{}})
}

func load(path string, raw []byte, opts LoadOptions) (*Config, error) {
	l := &loader{
		v:       viper.New(),
		cfg:     Default(),
		origins: map[string]origin{},
		file:    map[string]fileValue{},
		env:     map[string]reflect.Value{},
	}
	fileDir := ""
	if path != "" {
		var err error
		if fileDir, err = filepath.Abs(filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	// The layers go into this Load's viper, lowest first; each value is
	// checked as it goes in, so that every bad one is reported, even one a
	// higher layer hides.
	if raw != nil {
		l.decodeFile(raw)
	}
	l.mergeFile()
	l.bindEnv(opts.Env)
	for _, s := range opts.Sets {
		l.applySet(s)
	}
	l.resolve()
	if err := l.resolvePaths(fileDir); err != nil {
		return nil, err
	}
	l.cfg.normalize()
	var checks []problem
	if !l.broken {
		checks = l.cfg.check()
	}
	for _, p := range checks {
		o := l.origins[p.key]
		switch o.src {
		case "file":
			l.fileProblem(o.line, "%s", p.msg)
		case "env":
			l.problems = append(l.problems, p.msg+" (from environment "+o.text+")")
		case "set":
			l.problems = append(l.problems, p.msg+" (from --set "+o.text+")")
		default:
			l.problems = append(l.problems, p.msg)
		}
	}
	if len(l.lined)+len(l.problems) > 0 {
		slices.SortStableFunc(l.lined, func(a, b linedProblem) int { return a.line - b.line })
		e := &Error{File: path}
		for _, p := range l.lined {
			e.Problems = append(e.Problems, strconv.Itoa(p.line)+": "+p.msg)
		}
		e.Problems = append(e.Problems, l.problems...)
		return nil, e
	}
	cfg := l.cfg
	return &cfg, nil
}

func readProblem(err error) string {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "file not found"
	case errors.As(err, &pe):
		return "cannot read it: " + pe.Err.Error()
	}
	return "cannot read it: " + err.Error()
}

var yamlErrRE = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// parserErrors are the libyaml parser errors whose line yaml.v3 v3.0.1 gives
// 0-based (parser.fail adds 1 to scanner errors only): the line of the
// construct left open, minus one.
var parserErrors = []string{
	"did not find expected <document start>",
	"did not find expected key",
	"did not find expected '-' indicator",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected node content",
}

func (l *loader) decodeFile(raw []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF { // empty file or only comments
			return
		}
		l.syntaxProblem(err)
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		l.fileProblem(extra.Line, "a second YAML document (---): a config file holds one")
	} else if err != io.EOF {
		l.syntaxProblem(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	root = deref(root)
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return
	}
	if root.Kind != yaml.MappingNode {
		l.fileProblem(root.Line, "expected a mapping of sections (%s), got %s", strings.Join(sections, ", "), describe(root))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], deref(root.Content[i+1])
		if at, dup := seen[k.Value]; dup {
			l.fileProblem(k.Line, "duplicate key %q (first at line %d)", k.Value, at)
			continue
		}
		seen[k.Value] = k.Line
		if !slices.Contains(sections, k.Value) {
			l.fileProblem(k.Line, "unknown key %q at the top level%s", k.Value, suggestTop(k.Value))
			continue
		}
		l.decodeSection(k.Value, v)
	}
}

func (l *loader) syntaxProblem(err error) {
	l.broken = true
	msg := err.Error()
	if m := yamlErrRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		if slices.Contains(parserErrors, m[2]) {
			n++ // yaml.v3 reports these parser errors' 0-based line
		}
		l.fileProblem(n, "invalid YAML: %s", m[2])
		return
	}
	l.problems = append(l.problems, "invalid YAML: "+strings.TrimPrefix(msg, "yaml: "))
}

func (l *loader) decodeSection(sec string, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // "train:" with nothing under it
	}
	if n.Kind != yaml.MappingNode {
		l.fileProblem(n.Line, "%s: expected a mapping of keys, got %s", sec, describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if at, dup := seen[k.Value]; dup {
			l.fileProblem(k.Line, "duplicate key %q in %s (first at line %d)", k.Value, sec, at)
			continue
		}
		seen[k.Value] = k.Line
		f := fieldsBy[sec+"."+k.Value]
		if f == nil {
			l.fileProblem(k.Line, "unknown key %q in %s%s", k.Value, sec, suggestIn(sec, k.Value))
			continue
		}
		val := f.zero()
		if line, msg := assign(val, f.name(), v); msg != "" {
			l.fileProblem(line, "%s", msg)
			continue
		}
		l.file[f.name()] = fileValue{line: k.Line, val: val}
	}
}

// mergeFile hands the file's keys to viper's config layer. The file is not
// read by viper itself (v.ReadConfig): viper's YAML decoding keeps no line
// numbers and its UnmarshalExact names no key's position (spf13/viper#1724),
// so the yaml.v3 node walk above checks the file and viper gets its decoded
// values.
func (l *loader) mergeFile() {
	layer := map[string]any{}
	for _, f := range fields {
		fv, ok := l.file[f.name()]
		if !ok {
			continue
		}
		sec, _ := layer[f.section].(map[string]any)
		if sec == nil {
			sec = map[string]any{}
			layer[f.section] = sec
		}
		sec[f.key] = fv
	}
	if len(layer) > 0 {
		if err := l.v.MergeConfigMap(layer); err != nil {
			panic("config: viper refused the file's keys: " + err.Error()) // it never does (v1.21)
		}
	}
}

// bindEnv binds the environment: env nil means the process's, read by viper
// itself (SetEnvPrefix(EnvPrefix), "." replaced by "_", every key bound with
// BindEnv); an explicit list goes through viper's flag layer instead (see
// envFlag). Either way viper ignores an empty variable, as its AllowEmptyEnv
// false does. Every variable of a key is then read through viper and decoded,
// before --set is applied, so that a bad one is reported even where a --set
// hides it; then variables with a section's prefix that name no key are
// refused.
func (l *loader) bindEnv(env []string) {
	if env == nil {
		l.v.SetEnvPrefix(EnvPrefix)
		l.v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
		for _, f := range fields {
			if err := l.v.BindEnv(f.name()); err != nil {
				panic("config: " + err.Error()) // only for a missing key
			}
		}
		env = os.Environ()
	} else {
		vars := map[string]string{}
		for _, kv := range env {
			if name, val, ok := strings.Cut(kv, "="); ok {
				vars[name] = val
			}
		}
		for _, f := range fields {
			if val := vars[f.envName()]; val != "" {
				if err := l.v.BindFlagValue(f.name(), envFlag{f.envName(), val}); err != nil {
					panic("config: " + err.Error()) // only for a nil flag
				}
			}
		}
	}
	for _, f := range fields {
		// --set is not applied yet, so a string can only be the environment's.
		text, ok := l.v.Get(f.name()).(string)
		if !ok {
			continue
		}
		val := f.zero()
		if msg := overlay(val, f.name(), text); msg != "" {
			l.problems = append(l.problems, "environment "+f.envName()+": "+msg)
			continue
		}
		l.env[f.name()] = val
	}
	l.unknownEnv(env)
}

// unknownEnv refuses the variables DETTRAIN_<SECTION>_<KEY> (SECTION one of
// the config's sections) that name no key, sorted by name. Only the
// sections' prefixes are the config's: other DETTRAIN_ variables
// (DETTRAIN_CACHE, DETTRAIN_CUDA_PATH, ...) belong to other parts of the
// program. Names are case-sensitive, as viper reads them: dettrain_train_lr
// is not one of ours and is ignored.
func (l *loader) unknownEnv(env []string) {
	known := map[string]bool{}
	for _, f := range fields {
		known[f.envName()] = true
	}
	seen := map[string]bool{}
	var bad []string
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || val == "" || known[name] || seen[name] {
			continue
		}
		for _, sec := range sections {
			rest, ok := strings.CutPrefix(name, EnvPrefix+"_"+strings.ToUpper(sec)+"_")
			if !ok {
				continue
			}
			seen[name] = true
			key := strings.ToLower(rest)
			bad = append(bad, fmt.Sprintf("environment %s: unknown key %q%s", name, sec+"."+key, suggestEnv(sec, key)))
			break
		}
	}
	slices.Sort(bad)
	l.problems = append(l.problems, bad...)
}

func (l *loader) applySet(s string) {
	key, val, ok := strings.Cut(s, "=")
	if !ok {
		l.problems = append(l.problems, fmt.Sprintf("--set %q: expected section.key=value", s))
		return
	}
	key = strings.ToLower(strings.TrimSpace(key))
	f := fieldsBy[key]
	if f == nil {
		l.problems = append(l.problems, fmt.Sprintf("--set %s: unknown key %q%s", s, key, suggestKey(key)))
		return
	}
	v := f.zero()
	if msg := overlay(v, f.name(), val); msg != "" {
		l.problems = append(l.problems, "--set "+s+": "+msg)
		return
	}
	l.v.Set(f.name(), setValue{text: s, val: v})
}

// resolve copies into the Config, key by key, the value viper picks: its
// override layer (--set) over its flag or environment layer over its config
// layer (the file); a key none of them has keeps Default()'s value. The
// defaults are not given to viper (SetDefault): Default() is where they are
// written and documented.
func (l *loader) resolve() {
	for _, f := range fields {
		switch x := l.v.Get(f.name()).(type) {
		case nil:
		case fileValue:
			l.value(f).Set(x.val)
			l.origins[f.name()] = origin{src: "file", line: x.line}
		case string:
			val, ok := l.env[f.name()]
			if !ok { // refused in bindEnv: the file's value stands, as it did
				if fv, ok := l.file[f.name()]; ok {
					l.value(f).Set(fv.val)
					l.origins[f.name()] = origin{src: "file", line: fv.line}
				}
				continue
			}
			l.value(f).Set(val)
			l.origins[f.name()] = origin{src: "env", text: f.envName()}
		case setValue:
			l.value(f).Set(x.val)
			l.origins[f.name()] = origin{src: "set", text: x.text}
		default:
			panic(fmt.Sprintf("config: viper gave %s a %T", f.name(), x))
		}
	}
}

// overlay parses text, from the environment or --set, into v, the value of
// key.
func overlay(v reflect.Value, key, text string) string {
	n := parseScalarText(text)
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: text}
		}
	case reflect.Slice:
		quoted := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
		if n.Kind == yaml.ScalarNode && quoted {
			n = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: 1, Content: []*yaml.Node{n}}
		} else if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			// As viper's weak decoding does, a plain string is split on commas.
			seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: 1}
			for item := range strings.SplitSeq(text, ",") {
				seq.Content = append(seq.Content, parseScalarText(strings.TrimSpace(item)))
			}
			n = seq
		}
	}
	_, msg := assign(v, key, n)
	return msg
}

// parseScalarText reads text as one YAML value; text that is not valid YAML
// becomes a plain string, empty text a null.
func parseScalarText(text string) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: text, Line: 1}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: 1}
	}
	return deref(doc.Content[0])
}

// assign decodes n into v strictly. On failure it returns the line of the
// offending node and a message naming the key, the value and the expected
// type; v is then unchanged.
func assign(v reflect.Value, key string, n *yaml.Node) (int, string) {
	n = deref(n)
	want := typeNames[v.Type()]
	bad := func(n *yaml.Node, key string) (int, string) {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			return n.Line, fmt.Sprintf("%s = %q: expected %s", key, n.Value, want)
		}
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			return n.Line, fmt.Sprintf("%s = %s: expected %s", key, n.Value, want)
		}
		return n.Line, fmt.Sprintf("%s: expected %s, got %s", key, want, describe(n))
	}
	if v.Kind() == reflect.Slice {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
			v.SetZero()
			return 0, ""
		}
		if n.Kind != yaml.SequenceNode {
			return bad(n, key)
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			item = deref(item)
			elemKey := fmt.Sprintf("%s[%d]", key, i)
			if !scalarInto(out.Index(i), item) {
				want = typeNames[v.Type().Elem()]
				return bad(item, elemKey)
			}
		}
		v.Set(out)
		return 0, ""
	}
	if v.Kind() == reflect.String && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		v.SetString("")
		return 0, ""
	}
	if !scalarInto(v, n) {
		return bad(n, key)
	}
	return 0, ""
}

// scalarInto sets v from the scalar n, refusing anything that would lose
// information (a float into an int, a quoted "16" into a number, null into a
// number or a bool).
func scalarInto(v reflect.Value, n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	tag := n.ShortTag()
	if v.Type() == reflect.TypeFor[Size]() {
		if tag != "!!int" && tag != "!!str" {
			return false
		}
		s, ok := ParseSize(n.Value)
		if ok {
			v.Set(reflect.ValueOf(s))
		}
		return ok
	}
	switch v.Kind() {
	case reflect.String:
		if tag == "!!null" {
			return false // a null inside a list of names
		}
		v.SetString(n.Value)
		return true
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			return false
		}
		v.SetBool(b)
		return true
	case reflect.Int, reflect.Int64:
		var i int64
		switch tag {
		case "!!int":
			if n.Decode(&i) != nil {
				return false
			}
		case "!!float":
			var f float64
			if n.Decode(&f) != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return false
			}
			i = int64(f)
		default:
			return false
		}
		if v.OverflowInt(i) {
			return false
		}
		v.SetInt(i)
		return true
	case reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			return false
		}
		v.SetFloat(f)
		return true
	}
	return false
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "an empty value"
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported YAML node"
}

// resolvePaths makes every non-empty path absolute: against fileDir when the
// file set it, against the working directory otherwise.
func (l *loader) resolvePaths(fileDir string) error {
	for _, f := range fields {
		if !f.path {
			continue
		}
		v := l.value(f)
		p := v.String()
		if p == "" {
			continue
		}
		switch {
		case filepath.IsAbs(p):
			p = filepath.Clean(p)
		case l.origins[f.name()].src == "file":
			p = filepath.Join(fileDir, p)
		default:
			abs, err := filepath.Abs(p)
			if err != nil {
				return fmt.Errorf("config: resolving %s = %q: %w", f.name(), p, err)
			}
			p = abs
		}
		v.SetString(p)
	}
	return nil
}

// normalize makes empty lists nil so that equal configurations compare equal.
func (c *Config) normalize() {
	if len(c.Data.Names) == 0 {
		c.Data.Names = nil
	}
	if len(c.Train.Steps) == 0 {
		c.Train.Steps = nil
	}
}

func suggestTop(key string) string {
	var in []string
	for _, f := range fields {
		if f.key == key {
			in = append(in, f.name())
		}
	}
	if len(in) > 0 {
		return fmt.Sprintf(" (keys go under a section: did you mean %s?)", strings.Join(in, " or "))
	}
	if s := closest(key, sections); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return " (sections: " + strings.Join(sections, ", ") + ")"
}

func suggestIn(sec, key string) string {
	var keys []string
	for _, f := range fields {
		if f.section == sec {
			keys = append(keys, f.key)
		}
	}
	if s := closest(key, keys); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	var elsewhere []string
	for _, f := range fields {
		if f.key == key {
			elsewhere = append(elsewhere, f.name())
		}
	}
	if len(elsewhere) > 0 {
		return fmt.Sprintf(" (did you mean %s?)", strings.Join(elsewhere, " or "))
	}
	return ""
}

// suggestEnv is suggestIn for an environment variable: it names the
// variables.
func suggestEnv(sec, key string) string {
	if f := fieldsBy[sec+"."+key]; f != nil {
		return " (names are upper case: " + f.envName() + ")"
	}
	var keys []string
	for _, f := range fields {
		if f.section == sec {
			keys = append(keys, f.key)
		}
	}
	if s := closest(key, keys); s != "" {
		return " (did you mean " + fieldsBy[sec+"."+s].envName() + "?)"
	}
	var elsewhere []string
	for _, f := range fields {
		if f.key == key {
			elsewhere = append(elsewhere, f.envName())
		}
	}
	if len(elsewhere) > 0 {
		return " (did you mean " + strings.Join(elsewhere, " or ") + "?)"
	}
	return ""
}

func suggestKey(key string) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name()
	}
	if s := closest(key, names); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	if !strings.Contains(key, ".") {
		return suggestTop(key)
	}
	return ""
}

// closest returns the candidate within edit distance 2 of s (1 for short
// words), or "".
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	if len(s) <= 3 {
		bestD = 2
	}
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
