package config

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// isYAMLNames reports whether a names file is read as YAML (by extension).
func isYAMLNames(file string) bool {
	ext := strings.ToLower(filepath.Ext(file))
	return ext == ".yaml" || ext == ".yml"
}

// yamlNames reads the class names from a YAML file like Ultralytics'
// data.yaml: its top-level "names" is either a list (names: [a, b]) or a map
// from class index to name (names: {0: a, 1: b}) whose keys must be 0..n-1.
// Other keys (path, train, val, nc, ...) are ignored, except that nc, when
// present, must equal the number of names. Problems are returned as
// messages, prefixed with their line when known.
func yamlNames(raw []byte) ([]string, []string) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, []string{"invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, []string{"data.names_file: a YAML names file must be a mapping with a \"names\" key"}
	}
	top := doc.Content[0]
	var names []string
	var problems []string
	nc := -1
	ncLine := 0
	found := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "nc":
			n, err := strconv.Atoi(v.Value)
			if err != nil || n < 0 {
				problems = append(problems, fmt.Sprintf("%d: nc %q is not a class count", v.Line, v.Value))
				continue
			}
			nc, ncLine = n, v.Line
		case "names":
			found = true
			switch v.Kind {
			case yaml.SequenceNode:
				for _, it := range v.Content {
					names = append(names, strings.TrimSpace(it.Value))
				}
			case yaml.MappingNode:
				byIndex := map[int]string{}
				for j := 0; j+1 < len(v.Content); j += 2 {
					idx, err := strconv.Atoi(v.Content[j].Value)
					if err != nil || idx < 0 {
						problems = append(problems, fmt.Sprintf("%d: names key %q is not a class index", v.Content[j].Line, v.Content[j].Value))
						continue
					}
					byIndex[idx] = strings.TrimSpace(v.Content[j+1].Value)
				}
				idxs := make([]int, 0, len(byIndex))
				for i := range byIndex {
					idxs = append(idxs, i)
				}
				sort.Ints(idxs)
				for want, got := range idxs {
					if got != want {
						problems = append(problems, fmt.Sprintf("%d: names has no class %d (the indices must be 0..n-1)", v.Line, want))
						break
					}
					names = append(names, byIndex[got])
				}
			default:
				problems = append(problems, fmt.Sprintf("%d: names must be a list or a map from class index to name", v.Line))
			}
		}
	}
	if !found {
		problems = append(problems, "data.names_file: no \"names\" key in the YAML file")
	}
	seen := map[string]int{}
	for i, n := range names {
		if n == "" {
			problems = append(problems, fmt.Sprintf("names[%d] is empty", i))
		} else if j, dup := seen[n]; dup {
			problems = append(problems, fmt.Sprintf("names[%d] %q: duplicate of names[%d]", i, n, j))
		}
		seen[n] = i
	}
	if nc >= 0 && found && nc != len(names) && len(problems) == 0 {
		problems = append(problems, fmt.Sprintf("%d: nc is %d but names has %d entries", ncLine, nc, len(names)))
	}
	if len(names) == 0 && len(problems) == 0 {
		problems = append(problems, "data.names_file: no class names in the file")
	}
	return names, problems
}

// ReadNamesFile reads class names from file as data.names_file is read:
// one name per line, or a YAML file's "names". Errors are *Error values
// naming the file.
func ReadNamesFile(file string) ([]string, error) {
	c := Config{Data: Data{NamesFile: file}}
	return c.ClassNames()
}
