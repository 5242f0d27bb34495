package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Ultralytics' data.yaml as a names file: a list, an index map, and the
// errors (gaps in the indices, nc disagreeing, no names key, bad YAML), each
// naming the file and, where there is one, the line.
func TestClassNamesYAML(t *testing.T) {
	dir := t.TempDir()
	c := Default()
	for _, tc := range []struct {
		file, text string
		want       []string
		err        string
	}{
		{"list.yaml", "path: ../datasets/x\ntrain: images/train\nnc: 2\nnames: [cat, dog]\n", []string{"cat", "dog"}, ""},
		{"map.yml", "names:\n  1: dog\n  0: cat\n  2: bird\n", []string{"cat", "dog", "bird"}, ""},
		{"gap.yaml", "names:\n  0: cat\n  2: bird\n", nil, ":2: names has no class 1 (the indices must be 0..n-1)"},
		{"nc.yaml", "nc: 3\nnames: [a, b]\n", nil, ":1: nc is 3 but names has 2 entries"},
		{"none.yaml", "train: images/train\n", nil, `: data.names_file: no "names" key in the YAML file`},
		{"dup.yaml", "names: [a, b, a]\n", nil, `: names[2] "a": duplicate of names[0]`},
		{"bad.yaml", "names: [a\n", nil, ":"},
	} {
		p := filepath.Join(dir, tc.file)
		if err := os.WriteFile(p, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		c.Data.NamesFile = p
		names, err := c.ClassNames()
		if tc.err == "" {
			if err != nil || !reflect.DeepEqual(names, tc.want) {
				t.Errorf("%s: %q, %v; want %q", tc.file, names, err, tc.want)
			}
			continue
		}
		if !IsConfigError(err) || len(err.Error()) < len(p+tc.err) || err.Error()[:len(p+tc.err)] != p+tc.err {
			t.Errorf("%s: error %v, want it to start with %q", tc.file, err, p+tc.err)
		}
	}
}
