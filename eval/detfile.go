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

// Corners is the pixel convention of the corners "x1 y1 x2 y2" in a
// detection txt file.
type Corners int

const (
	// Continuous corners are box.Box's own: 0-based, x2 = x1 + width, used
	// as read. This is the convention of COCO and YOLO data sets (and of
	// Ultralytics' xyxy boxes and pycocotools, which add 1 to nothing).
	Continuous Corners = iota
	// VOCPixels corners are the PASCAL VOC devkit's: 1-based inclusive
	// pixel indices, as in a VOC data set's XML and in darknet's `detector
	// valid` output. They are read with box.FromVOC (x1-1, y1-1, x2, y2),
	// the conversion the ground truth gets, so that box.IoU equals the
	// devkit's IoU with its "+1" widths.
	VOCPixels
)

// ReadOptions say how detection files are read. The zero value reads
// continuous corners and skips unknown images and classes.
type ReadOptions struct {
	// Corners is the convention of txt files' corners (default
	// Continuous). A COCO results JSON's bbox [x, y, w, h] is always
	// continuous, as pycocotools reads it.
	Corners Corners
	// Strict makes a detection of an image that is not in the split, or of
	// a class that is not in the data set, an error naming the file and
	// line or entry. Without it such detections are left out and counted
	// in Skipped (pycocotools and voc_eval.py score only the ground
	// truth's categories and images).
	Strict bool
}

// Skipped counts the detections a non-strict read left out.
type Skipped struct {
	// Images is the number of detections of images that are not in the
	// split; ImageNames lists those images (the txt file's ID, or the
	// entry's file_name or image_id) in the order first seen.
	Images     int
	ImageNames []string
	// Classes is the number of detections of a known image whose class is
	// not in the data set; ClassNames lists those classes (a name, or an
	// index or category_id as written) in the order first seen.
	Classes    int
	ClassNames []string
}

// Total is the number of detections left out, Images + Classes.
func (s Skipped) Total() int { return s.Images + s.Classes }

// Empty reports whether nothing was left out (no detection and no file of
// an unknown image, which may be empty).
func (s Skipped) Empty() bool { return len(s.ImageNames) == 0 && len(s.ClassNames) == 0 }

func (s *Skipped) image(name string, n int) {
	s.Images += n
	if !containsString(s.ImageNames, name) {
		s.ImageNames = append(s.ImageNames, name)
	}
}

func (s *Skipped) class(name string) {
	s.Classes++
	if !containsString(s.ClassNames, name) {
		s.ClassNames = append(s.ClassNames, name)
	}
}

// containsString is a linear search: the lists are short (unknown names).
func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// String is the one-line summary used as eval's warning, e.g.
//
//	skipped 7 detections: 5 of 2 classes not in the data set ("bird", "17"), 2 of 1 image not in the split ("zzz") (--strict makes this an error)
//
// naming at most 5 of each; "" when s is Empty.
func (s Skipped) String() string {
	if s.Empty() {
		return ""
	}
	var parts []string
	if len(s.ClassNames) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %s not in the data set (%s)", s.Classes, plural(len(s.ClassNames), "class", "classes"), quoteList(s.ClassNames)))
	}
	if len(s.ImageNames) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %s not in the split (%s)", s.Images, plural(len(s.ImageNames), "image", "images"), quoteList(s.ImageNames)))
	}
	return fmt.Sprintf("skipped %s: %s (--strict makes this an error)", plural(s.Total(), "detection", "detections"), strings.Join(parts, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// quoteList quotes the first 5 names and counts the rest.
func quoteList(names []string) string {
	const show = 5
	q := make([]string, 0, show+1)
	for i, n := range names {
		if i == show {
			q = append(q, fmt.Sprintf("and %d more", len(names)-show))
			break
		}
		q = append(q, strconv.Quote(n))
	}
	return strings.Join(q, ", ")
}

// COCODetection is one entry of a COCO results file as `dettrain predict`
// writes it (predictions.json): pycocotools' loadRes fields (image_id,
// category_id, bbox as [x, y, width, height] in pixels, score) plus the
// image's file name and the class name, which ParseCOCOResults reads back.
type COCODetection struct {
	ImageID      int        `json:"image_id"`
	FileName     string     `json:"file_name"`
	CategoryID   int        `json:"category_id"`
	CategoryName string     `json:"category_name"`
	BBox         [4]float64 `json:"bbox"`
	Score        float64    `json:"score"`
}

// COCODetections lists dets as results entries: image i is id i+1 with file
// name files[i], class c is category c+1 named names[c] (the ids
// dettrain's COCO writer gives).
func COCODetections(dets []Detection, files, names []string) []COCODetection {
	out := make([]COCODetection, 0, len(dets))
	for _, d := range dets {
		out = append(out, COCODetection{ImageID: d.Image + 1, FileName: files[d.Image], CategoryID: d.Class + 1, CategoryName: names[d.Class], BBox: d.Box.XYWH(), Score: d.Score})
	}
	return out
}

// cocoResult is one entry of a COCO results file, with dettrain predict's
// optional file_name and category_name. The ids stay raw so that a string
// image_id, an integral float (1.0) and a wrong type can be told apart.
type cocoResult struct {
	ImageID      json.RawMessage `json:"image_id"`
	FileName     string          `json:"file_name"`
	CategoryID   json.RawMessage `json:"category_id"`
	CategoryName string          `json:"category_name"`
	BBox         []float64       `json:"bbox"`
	Score        *float64        `json:"score"`
}

// parseID reads a numeric JSON id: an integer, or a float with no fraction
// (1.0, as numpy-based tools write) of magnitude below 2^53, where every
// integer is exact.
func parseID(raw json.RawMessage) (int64, bool) {
	s := string(raw)
	if id, err := strconv.ParseInt(s, 10, 64); err == nil {
		return id, true
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x != math.Trunc(x) || math.Abs(x) >= 1<<53 {
		return 0, false
	}
	return int64(x), true
}

// ParseCOCOResults reads a COCO results file: a JSON list of
// {"image_id", "category_id", "bbox": [x, y, w, h], "score"} as
// pycocotools' loadRes reads it, the bbox in continuous pixels
// (box.FromXYWH; nothing is added or subtracted). The image is file_name
// when present, else image_id (a number through r.ImageByID, a string
// through r.ImageByName); the class is category_name when present, else
// category_id. A numeric id may be written as an integral float (1.0).
//
// An entry whose image or class does not resolve is left out and counted
// in the returned Skipped (image first: an entry of an unknown image is
// counted there whatever its class); with o.Strict it is an error naming
// the entry. Malformed entries are errors in either mode, naming the entry
// (its 0-based index): no image_id or category_id, an id that is not a
// number, a bbox that is not 4 finite numbers with w, h >= 0 (and finite
// x+w, y+h), a missing score. name is used in messages.
func ParseCOCOResults(raw []byte, name string, r Resolver, o ReadOptions) ([]Detection, Skipped, error) {
	var sk Skipped
	var rs []cocoResult
	if err := json.Unmarshal(raw, &rs); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, sk, fmt.Errorf("%s: line %d: invalid JSON: %v", name, 1+bytes.Count(raw[:min(int(se.Offset), len(raw))], []byte{'\n'}), se)
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "top level"
			}
			return nil, sk, fmt.Errorf("%s: line %d: %s: wrong type (%s): a COCO results file is a list of {image_id, category_id, bbox, score}",
				name, 1+bytes.Count(raw[:min(int(te.Offset), len(raw))], []byte{'\n'}), field, te.Value)
		}
		return nil, sk, fmt.Errorf("%s: %w", name, err)
	}
	dets := make([]Detection, 0, len(rs))
	for i, e := range rs {
		if string(e.ImageID) == "null" { // as if absent, like any other JSON null
			e.ImageID = nil
		}
		if string(e.CategoryID) == "null" {
			e.CategoryID = nil
		}
		at := fmt.Sprintf("%s: entry %d", name, i)
		// The structure first, in both modes.
		var d Detection
		var imgName string
		var imgID int64
		byName := false
		switch {
		case e.FileName != "" && r.ImageByName != nil:
			imgName, byName = e.FileName, true
		case len(e.ImageID) > 0 && e.ImageID[0] == '"':
			var s string
			if err := json.Unmarshal(e.ImageID, &s); err != nil {
				return nil, sk, fmt.Errorf("%s: image_id %s is not a string", at, e.ImageID)
			}
			if r.ImageByName == nil {
				return nil, sk, fmt.Errorf("%s: image_id %q: string image ids are not accepted here", at, s)
			}
			imgName, byName = s, true
		case len(e.ImageID) > 0:
			id, ok := parseID(e.ImageID)
			if !ok || r.ImageByID == nil {
				return nil, sk, fmt.Errorf("%s: image_id %s is not an image id", at, e.ImageID)
			}
			imgID = id
		default:
			return nil, sk, fmt.Errorf("%s: no image_id", at)
		}
		var catID int64
		catByName := false
		switch {
		case e.CategoryName != "" && r.ClassByName != nil:
			catByName = true
		case len(e.CategoryID) > 0 && r.ClassByID != nil:
			id, ok := parseID(e.CategoryID)
			if !ok {
				return nil, sk, fmt.Errorf("%s: category_id %s is not a category id", at, e.CategoryID)
			}
			catID = id
		default:
			return nil, sk, fmt.Errorf("%s: no category_id", at)
		}
		if len(e.BBox) != 4 {
			return nil, sk, fmt.Errorf("%s: bbox has %d numbers, want 4 (x, y, width, height)", at, len(e.BBox))
		}
		for _, v := range e.BBox {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, sk, fmt.Errorf("%s: bbox %v is not finite", at, e.BBox)
			}
		}
		if e.BBox[2] < 0 || e.BBox[3] < 0 {
			return nil, sk, fmt.Errorf("%s: bbox %v has a negative width or height", at, e.BBox)
		}
		if e.Score == nil || math.IsNaN(*e.Score) {
			return nil, sk, fmt.Errorf("%s: no score", at)
		}
		d.Score = *e.Score
		d.Box = box.FromXYWH(e.BBox[0], e.BBox[1], e.BBox[2], e.BBox[3])
		if math.IsInf(d.Box.X2, 0) || math.IsInf(d.Box.Y2, 0) {
			return nil, sk, fmt.Errorf("%s: bbox %v: x+width or y+height is beyond the float64 range", at, e.BBox)
		}
		// Then what it refers to.
		var ok bool
		if byName {
			if d.Image, ok = r.ImageByName(imgName); !ok {
				what := "image_id"
				if e.FileName != "" {
					what = "file_name"
				}
				if o.Strict {
					return nil, sk, fmt.Errorf("%s: %s %q is not an image of the split", at, what, imgName)
				}
				sk.image(imgName, 1)
				continue
			}
		} else if d.Image, ok = r.ImageByID(imgID); !ok {
			if o.Strict {
				return nil, sk, fmt.Errorf("%s: image_id %d is not an image of the split", at, imgID)
			}
			sk.image(strconv.FormatInt(imgID, 10), 1)
			continue
		}
		if catByName {
			if d.Class, ok = r.ClassByName(e.CategoryName); !ok {
				if o.Strict {
					return nil, sk, fmt.Errorf("%s: category_name %q is not a class of the data set", at, e.CategoryName)
				}
				sk.class(e.CategoryName)
				continue
			}
		} else if d.Class, ok = r.ClassByID(catID); !ok {
			if o.Strict {
				return nil, sk, fmt.Errorf("%s: category_id %d is not a category of the data set", at, catID)
			}
			sk.class(strconv.FormatInt(catID, 10))
			continue
		}
		dets = append(dets, d)
	}
	return dets, sk, nil
}

// ParseTxtDetections reads the text of one detection txt file, the
// detections of image image: each non-blank line is "class score x1 y1 x2
// y2", the class a name (classByName) or a 0-based index below nClasses,
// the corners in the convention o.Corners (Continuous: as box.Box;
// VOCPixels: box.FromVOC). name (the file) is used in messages.
//
// A malformed line is an error naming name and the line, in either mode: a
// number of fields other than 6, a score or corner that is not a finite
// number, x2 < x1 or y2 < y1. A line whose class is unknown is skipped and
// counted (Skipped.Classes), or with o.Strict an error.
func ParseTxtDetections(raw []byte, name string, image int, classByName func(string) (int, bool), nClasses int, o ReadOptions) ([]Detection, Skipped, error) {
	var sk Skipped
	var dets []Detection
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, len(raw)+1)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		at := fmt.Sprintf("%s:%d", name, line)
		if len(f) != 6 {
			return nil, sk, fmt.Errorf("%s: %d fields, want 6: class score x1 y1 x2 y2", at, len(f))
		}
		var v [5]float64
		for k, s := range f[1:] {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, sk, fmt.Errorf("%s: %q is not a number", at, s)
			}
			v[k] = x
		}
		if v[3] < v[1] || v[4] < v[2] {
			return nil, sk, fmt.Errorf("%s: x2 < x1 or y2 < y1", at)
		}
		cls, ok := classByName(f[0])
		if !ok {
			n, err := strconv.Atoi(f[0])
			if err != nil || n < 0 || n >= nClasses {
				if o.Strict {
					return nil, sk, fmt.Errorf("%s: class %q is neither a class name nor an index in 0..%d", at, f[0], nClasses-1)
				}
				sk.class(f[0])
				continue
			}
			cls = n
		}
		b := box.Box{X1: v[1], Y1: v[2], X2: v[3], Y2: v[4]}
		if o.Corners == VOCPixels {
			b = box.FromVOC(v[1], v[2], v[3], v[4])
		}
		dets = append(dets, Detection{Image: image, Class: cls, Score: v[0], Box: b})
	}
	return dets, sk, nil
}

// ReadTxtDetections reads a folder of detection txt files, one per image:
// DIR/ID.txt for the image whose sample ID is ids[i] (an ID with "/" is a
// sub-folder), each read with ParseTxtDetections (lines "class score x1 y1
// x2 y2", corners in o.Corners' convention). A missing file is an image
// without detections. A txt file that is not an image of the split is read
// too (a malformed line is still an error) and its detections are skipped
// and counted (Skipped.Images, named by ID), or with o.Strict it is an
// error naming the file; so are lines of an unknown class.
func ReadTxtDetections(dir string, ids []string, classByName func(string) (int, bool), nClasses int, o ReadOptions) ([]Detection, Skipped, error) {
	var sk Skipped
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil, sk, fmt.Errorf("%s: not a folder of detection txt files", dir)
	}
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[filepath.Clean(filepath.FromSlash(id))+".txt"] = true
	}
	var unknown []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".txt") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !known[rel] {
			if o.Strict {
				return fmt.Errorf("%s: no image %s in the split", p, strings.TrimSuffix(filepath.ToSlash(rel), ".txt"))
			}
			unknown = append(unknown, rel)
		}
		return nil
	})
	if err != nil {
		return nil, sk, err
	}
	for _, rel := range unknown {
		p := filepath.Join(dir, rel)
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, sk, err
		}
		d, s, err := ParseTxtDetections(raw, p, -1, classByName, nClasses, o)
		if err != nil {
			return nil, sk, err
		}
		sk.image(strings.TrimSuffix(filepath.ToSlash(rel), ".txt"), len(d)+s.Classes)
	}
	var dets []Detection
	for i, id := range ids {
		p := filepath.Join(dir, filepath.FromSlash(id)+".txt")
		raw, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, sk, err
		}
		d, s, err := ParseTxtDetections(raw, p, i, classByName, nClasses, o)
		if err != nil {
			return nil, sk, err
		}
		dets = append(dets, d...)
		for _, n := range s.ClassNames {
			if !containsString(sk.ClassNames, n) {
				sk.ClassNames = append(sk.ClassNames, n)
			}
		}
		sk.Classes += s.Classes
	}
	return dets, sk, nil
}
