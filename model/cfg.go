package model

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Section is one [type] block of a darknet .cfg file. It remembers the line
// of every key so that errors can point at it, and which keys were read so
// that an unsupported key is an error instead of being silently ignored.
type Section struct {
	Type  string // "net", "convolutional", ...
	Line  int    // line of the [type] header
	Index int    // layer index (-1 for [net])
	File  string
	opts  map[string]option
	keys  []string // in file order
	last  int      // line of the last key (or of the header)
}

type option struct {
	value string
	line  int // 0 for a key added by Set
	used  bool
	dirty bool // changed by Set
}

// CfgError is an error at a place in a cfg file.
type CfgError struct {
	File string
	Line int
	Msg  string
}

func (e *CfgError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Cfg is a parsed darknet .cfg: the [net] section and the layer sections.
type Cfg struct {
	File   string
	Net    *Section
	Layers []*Section
	raw    []byte // the text parsed, for Text and Clone
}

// ReadCfg parses a darknet .cfg file.
func ReadCfg(path string) (*Cfg, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading model cfg: %w", err)
	}
	return ParseCfg(path, b)
}

// ParseCfg parses darknet .cfg text: "[section]" headers, "key=value" lines,
// comments starting with '#' or ';'. name is used in errors.
func ParseCfg(name string, text []byte) (*Cfg, error) {
	c := &Cfg{File: name, raw: bytes.Clone(text)}
	var cur *Section
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	ln := 0
	for sc.Scan() {
		ln++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, &CfgError{name, ln, fmt.Sprintf("malformed section header %q", line)}
			}
			typ := strings.ToLower(strings.TrimSpace(line[1 : len(line)-1]))
			cur = &Section{Type: typ, Line: ln, File: name, opts: map[string]option{}, last: ln}
			switch {
			case c.Net == nil && len(c.Layers) == 0 && (typ == "net" || typ == "network"):
				cur.Type, cur.Index = "net", -1
				c.Net = cur
			case typ == "net" || typ == "network":
				return nil, &CfgError{name, ln, "[net] must be the first section and appear once"}
			default:
				cur.Index = len(c.Layers)
				c.Layers = append(c.Layers, cur)
			}
			continue
		}
		if cur == nil {
			return nil, &CfgError{name, ln, fmt.Sprintf("%q before the first [section]", line)}
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, &CfgError{name, ln, fmt.Sprintf("expected key=value, got %q", line)}
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			return nil, &CfgError{name, ln, fmt.Sprintf("empty key in %q", line)}
		}
		if prev, dup := cur.opts[k]; dup {
			return nil, &CfgError{name, ln, fmt.Sprintf("key %q repeated (first at line %d)", k, prev.line)}
		}
		cur.opts[k] = option{value: v, line: ln}
		cur.keys = append(cur.keys, k)
		cur.last = ln
	}
	if err := sc.Err(); err != nil {
		return nil, &CfgError{name, 0, err.Error()}
	}
	if c.Net == nil {
		return nil, &CfgError{name, 1, "no [net] section: not a darknet cfg"}
	}
	if len(c.Layers) == 0 {
		return nil, &CfgError{name, 0, "no layers after [net]"}
	}
	return c, nil
}

func (s *Section) errf(line int, format string, a ...any) error {
	if line == 0 {
		line = s.Line
	}
	where := fmt.Sprintf("[%s]", s.Type)
	if s.Index >= 0 {
		where = fmt.Sprintf("[%s] #%d", s.Type, s.Index)
	}
	return &CfgError{s.File, line, where + ": " + fmt.Sprintf(format, a...)}
}

// Has reports whether key is set.
func (s *Section) Has(key string) bool { _, ok := s.opts[key]; return ok }

// Str returns key's value or def, marking the key as read.
func (s *Section) Str(key, def string) string {
	o, ok := s.opts[key]
	if !ok {
		return def
	}
	o.used = true
	s.opts[key] = o
	return o.value
}

// Int returns key's integer value or def.
func (s *Section) Int(key string, def int) (int, error) {
	o, ok := s.opts[key]
	if !ok {
		return def, nil
	}
	s.Str(key, "")
	v, err := strconv.Atoi(o.value)
	if err != nil {
		return 0, s.errf(o.line, "%s=%q is not an integer", key, o.value)
	}
	return v, nil
}

// Float returns key's value or def.
func (s *Section) Float(key string, def float64) (float64, error) {
	o, ok := s.opts[key]
	if !ok {
		return def, nil
	}
	s.Str(key, "")
	v, err := strconv.ParseFloat(o.value, 64)
	if err != nil {
		return 0, s.errf(o.line, "%s=%q is not a number", key, o.value)
	}
	return v, nil
}

// Ints returns a comma-separated list of integers (nil if absent).
func (s *Section) Ints(key string) ([]int, error) {
	o, ok := s.opts[key]
	if !ok {
		return nil, nil
	}
	s.Str(key, "")
	var out []int
	for _, f := range strings.Split(o.value, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, s.errf(o.line, "%s: %q is not an integer", key, f)
		}
		out = append(out, v)
	}
	return out, nil
}

// Floats returns a comma-separated list of numbers (nil if absent).
func (s *Section) Floats(key string) ([]float64, error) {
	o, ok := s.opts[key]
	if !ok {
		return nil, nil
	}
	s.Str(key, "")
	var out []float64
	for _, f := range strings.Split(o.value, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, s.errf(o.line, "%s: %q is not a number", key, f)
		}
		out = append(out, v)
	}
	return out, nil
}

// Ignore marks keys as read without using them (training hyper-parameters
// of [net] that dettrain takes from its own config instead).
func (s *Section) Ignore(keys ...string) {
	for _, k := range keys {
		if _, ok := s.opts[k]; ok {
			s.Str(k, "")
		}
	}
}

// Unused returns an error naming the first key nobody read, or nil.
func (s *Section) Unused() error {
	var bad []string
	line := 0
	for _, k := range s.keys {
		if o := s.opts[k]; !o.used {
			if line == 0 {
				line = o.line
			}
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad[1:])
	return s.errf(line, "unsupported key %q (dettrain does not implement it; remove it or use a supported layer)", bad[0])
}

// Set replaces a key's value, or adds the key (used to adapt heads to the
// class count and to set anchors). Setting the value a key already has
// changes nothing.
func (s *Section) Set(key, value string) {
	o, ok := s.opts[key]
	if !ok {
		s.keys = append(s.keys, key)
	} else if o.value == value {
		return
	}
	o.value, o.dirty = value, true
	s.opts[key] = o
}

// Text returns the cfg as darknet text: the file as it was read, byte for
// byte, with the lines of keys changed by Set rewritten as key=value and keys
// added by Set inserted after their section's last key. Comments, blank lines
// and the order of keys are kept, so that a cfg read and written unchanged
// is identical to its source.
func (c *Cfg) Text() []byte {
	edits := map[int]string{}   // line -> replacement
	inserts := map[int]string{} // line -> lines to add after it
	for _, s := range append([]*Section{c.Net}, c.Layers...) {
		for _, k := range s.keys {
			o := s.opts[k]
			switch {
			case !o.dirty:
			case o.line > 0:
				edits[o.line] = k + "=" + o.value
			default:
				inserts[s.last] += k + "=" + o.value + "\n"
			}
		}
	}
	if len(edits) == 0 && len(inserts) == 0 {
		return bytes.Clone(c.raw)
	}
	w := &bytes.Buffer{}
	lines := bytes.SplitAfter(c.raw, []byte("\n"))
	for i, l := range lines {
		ln := i + 1
		if e, ok := edits[ln]; ok {
			w.WriteString(e)
			switch {
			case bytes.HasSuffix(l, []byte("\r\n")):
				w.WriteString("\r\n")
			case bytes.HasSuffix(l, []byte("\n")):
				w.WriteString("\n")
			}
		} else {
			w.Write(l)
		}
		if ins, ok := inserts[ln]; ok {
			if !bytes.HasSuffix(l, []byte("\n")) {
				w.WriteString("\n")
			}
			w.WriteString(ins)
		}
	}
	return w.Bytes()
}

// Clone parses the cfg's original text again: a fresh Cfg, without the
// changes made by Set, whose keys are all unread.
func (c *Cfg) Clone() *Cfg {
	n, err := ParseCfg(c.File, c.raw)
	if err != nil {
		panic(fmt.Sprintf("model: re-parsing %s: %v", c.File, err)) // it parsed once
	}
	return n
}
