package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dettrain/dettrain/box"
)

// Resolver maps what a detection file names to image and class indices.
// A nil function means that kind of reference is not accepted.
type Resolver struct {
	// ImageByID maps a numeric COCO image_id.
	ImageByID func(id int64) (int, bool)
	// ImageByName maps a file name or sample ID (image_id given as a
	// string, or dettrain's "file_name").
	ImageByName func(name string) (int, bool)
	// ClassByID maps a numeric category_id.
	ClassByID func(id int64) (int, bool)
	// ClassByName maps a class name.
	ClassByName func(name string) (int, bool)
}

// cocoResult is one entry of a COCO results file, with dettrain predict's
// optional file_name and category_name.
type cocoResult struct {
	ImageID      json.RawMessage `json:"image_id"`
	FileName     string          `json:"file_name"`
	CategoryID   *int64          `json:"category_id"`
	CategoryName string          `json:"category_name"`
	BBox         []float64       `json:"bbox"`
	Score        *float64        `json:"score"`
}

// ParseCOCOResults reads a COCO results file: a JSON list of
// {"image_id", "category_id", "bbox": [x, y, w, h], "score"} as
// pycocotools' loadRes reads it. The image is file_name when present, else
// image_id (a number through r.ImageByID, a string through r.ImageByName);
// the class is category_name when present, else category_id. Every entry
// must resolve: the first that does not is an error naming its index, as
// is a bbox that is not 4 finite numbers with w, h >= 0 or a missing
// score. name is used in messages.
func ParseCOCOResults(raw []byte, name string, r Resolver) ([]Detection, error) {
	var rs []cocoResult
	if err := json.Unmarshal(raw, &rs); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("%s: line %d: invalid JSON: %v", name, 1+bytes.Count(raw[:min(int(se.Offset), len(raw))], []byte{'\n'}), se)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%s: line %d: %s: wrong type (%s): a COCO results file is a list of {image_id, category_id, bbox, score}",
				name, 1+bytes.Count(raw[:min(int(te.Offset), len(raw))], []byte{'\n'}), te.Field, te.Value)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dets := make([]Detection, 0, len(rs))
	for i, e := range rs {
		at := fmt.Sprintf("%s: entry %d", name, i)
		var d Detection
		var ok bool
		switch {
		case e.FileName != "" && r.ImageByName != nil:
			if d.Image, ok = r.ImageByName(e.FileName); !ok {
				return nil, fmt.Errorf("%s: file_name %q is not an image of the split", at, e.FileName)
			}
		case len(e.ImageID) > 0 && e.ImageID[0] == '"':
			var s string
			_ = json.Unmarshal(e.ImageID, &s)
			if r.ImageByName == nil {
				return nil, fmt.Errorf("%s: image_id %q: string image ids are not accepted here", at, s)
			}
			if d.Image, ok = r.ImageByName(s); !ok {
				return nil, fmt.Errorf("%s: image_id %q is not an image of the split", at, s)
			}
		case len(e.ImageID) > 0:
			id, err := strconv.ParseInt(string(e.ImageID), 10, 64)
			if err != nil || r.ImageByID == nil {
				return nil, fmt.Errorf("%s: image_id %s is not an image id", at, e.ImageID)
			}
			if d.Image, ok = r.ImageByID(id); !ok {
				return nil, fmt.Errorf("%s: image_id %d is not an image of the split", at, id)
			}
		default:
			return nil, fmt.Errorf("%s: no image_id", at)
		}
		switch {
		case e.CategoryName != "" && r.ClassByName != nil:
			if d.Class, ok = r.ClassByName(e.CategoryName); !ok {
				return nil, fmt.Errorf("%s: category_name %q is not a class of the data set", at, e.CategoryName)
			}
		case e.CategoryID != nil && r.ClassByID != nil:
			if d.Class, ok = r.ClassByID(*e.CategoryID); !ok {
				return nil, fmt.Errorf("%s: category_id %d is not a category of the data set", at, *e.CategoryID)
			}
		default:
			return nil, fmt.Errorf("%s: no category_id", at)
		}
		if len(e.BBox) != 4 {
			return nil, fmt.Errorf("%s: bbox has %d numbers, want 4 (x, y, width, height)", at, len(e.BBox))
		}
		for _, v := range e.BBox {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%s: bbox %v is not finite", at, e.BBox)
			}
		}
		if e.BBox[2] < 0 || e.BBox[3] < 0 {
			return nil, fmt.Errorf("%s: bbox %v has a negative width or height", at, e.BBox)
		}
		if e.Score == nil || math.IsNaN(*e.Score) {
			return nil, fmt.Errorf("%s: no score", at)
		}
		d.Score = *e.Score
		d.Box = box.FromXYWH(e.BBox[0], e.BBox[1], e.BBox[2], e.BBox[3])
		dets = append(dets, d)
	}
	return dets, nil
}

// ReadTxtDetections reads a folder of detection txt files, one per image:
// DIR/ID.txt for the image whose sample ID is ids[i] (an ID with "/" is a
// sub-folder). Each non-blank line is "class score x1 y1 x2 y2": the class
// name or its 0-based index, the confidence, and the box corners in
// pixels of the original image (box.Box: continuous, 0-based, x2 = x1 +
// width). A missing file is an image without detections; a file that is not
// an image of the split is an error, as is any malformed line (named by
// file and line).
func ReadTxtDetections(dir string, ids []string, classByName func(string) (int, bool), nClasses int) ([]Detection, error) {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: not a folder of detection txt files", dir)
	}
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[filepath.Clean(filepath.FromSlash(id))+".txt"] = true
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".txt") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !known[rel] {
			return fmt.Errorf("%s: no image %s in the split", p, strings.TrimSuffix(filepath.ToSlash(rel), ".txt"))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var dets []Detection
	for i, id := range ids {
		p := filepath.Join(dir, filepath.FromSlash(id)+".txt")
		raw, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(nil, len(raw)+1)
		for line := 1; sc.Scan(); line++ {
			f := strings.Fields(sc.Text())
			if len(f) == 0 {
				continue
			}
			at := fmt.Sprintf("%s:%d", p, line)
			if len(f) != 6 {
				return nil, fmt.Errorf("%s: %d fields, want 6: class score x1 y1 x2 y2", at, len(f))
			}
			cls, ok := classByName(f[0])
			if !ok {
				n, err := strconv.Atoi(f[0])
				if err != nil || n < 0 || n >= nClasses {
					return nil, fmt.Errorf("%s: class %q is neither a class name nor an index in 0..%d", at, f[0], nClasses-1)
				}
				cls = n
			}
			var v [5]float64
			for k, s := range f[1:] {
				x, err := strconv.ParseFloat(s, 64)
				if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
					return nil, fmt.Errorf("%s: %q is not a number", at, s)
				}
				v[k] = x
			}
			if v[3] < v[1] || v[4] < v[2] {
				return nil, fmt.Errorf("%s: x2 < x1 or y2 < y1", at)
			}
			dets = append(dets, Detection{Image: i, Class: cls, Score: v[0], Box: box.Box{X1: v[1], Y1: v[2], X2: v[3], Y2: v[4]}})
		}
	}
	return dets, nil
}
