package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/dettrain/dettrain/box"
)

// COCOFile is a COCO object-detection annotation file (instances_*.json) as
// far as dettrain reads and writes it: the images, the box annotations and
// the categories; info and licenses are carried through unchanged.
type COCOFile struct {
	Info        json.RawMessage  `json:"info,omitempty"`
	Licenses    json.RawMessage  `json:"licenses,omitempty"`
	Images      []COCOImage      `json:"images"`
	Annotations []COCOAnnotation `json:"annotations"`
	Categories  []COCOCategory   `json:"categories"`

	// The line of each image, annotation and category in the file, for
	// messages (0 when the file was not read from disk).
	imageLines, annLines, catLines []int
}

// COCOImage is one entry of "images".
type COCOImage struct {
	ID       int64  `json:"id"`
	FileName string `json:"file_name"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
}

// COCOAnnotation is one entry of "annotations". BBox is [x, y, width,
// height] in pixels, (x, y) the top-left corner (box.FromXYWH); Area is the
// object's area (the segmentation's on COCO itself), used by the COCO
// metric's area ranges; IsCrowd 1 marks a crowd region.
type COCOAnnotation struct {
	ID           int64           `json:"id"`
	ImageID      int64           `json:"image_id"`
	CategoryID   int64           `json:"category_id"`
	BBox         []float64       `json:"bbox"`
	Area         float64         `json:"area"`
	IsCrowd      int             `json:"iscrowd"`
	Segmentation json.RawMessage `json:"segmentation,omitempty"`
}

// COCOCategory is one entry of "categories".
type COCOCategory struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Supercategory string `json:"supercategory,omitempty"`
}

// ReadCOCO reads and parses a COCO annotation file. A file that is not
// valid JSON or whose values have the wrong type gives an error naming the
// file, the line and the key, e.g. `val.json: line 12: annotations[3].bbox:
// a string where a number belongs`.
func ReadCOCO(file string) (*COCOFile, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, unwrapPath(err))
	}
	f, err := ParseCOCO(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return f, nil
}

// ParseCOCO parses a COCO annotation file's contents; see ReadCOCO.
func ParseCOCO(raw []byte) (*COCOFile, error) {
	f := &COCOFile{}
	// Syntax first, on the whole file: its error offsets are absolute,
	// while the streaming decoder's are not.
	var whole json.RawMessage
	if err := json.Unmarshal(raw, &whole); err != nil {
		return nil, jsonError(raw, "", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	fail := func(what string, err error) error { return jsonError(raw, what, err) }
	seen := map[string]bool{} // the top-level keys: "images": [] is there, and empty
	tok, err := dec.Token()
	if err != nil {
		return nil, fail("", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("line 1: not a COCO file: the top level must be a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fail("", err)
		}
		key := tok.(string)
		seen[key] = true
		var err2 error
		switch key {
		case "images":
			f.imageLines, err2 = decodeArray(dec, raw, key, appendDecoded(&f.Images))
		case "annotations":
			f.annLines, err2 = decodeArray(dec, raw, key, appendDecoded(&f.Annotations))
		case "categories":
			f.catLines, err2 = decodeArray(dec, raw, key, appendDecoded(&f.Categories))
		case "info":
			err2 = dec.Decode(&f.Info)
		case "licenses":
			err2 = dec.Decode(&f.Licenses)
		default:
			var skip json.RawMessage
			err2 = dec.Decode(&skip)
		}
		if err2 != nil {
			return nil, fail(key, err2)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fail("", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("line %d: data after the top-level object", lineAt(raw, dec.InputOffset()))
	}
	if !seen["images"] || !seen["categories"] {
		return nil, errors.New(`not a COCO detection file: no "images" or no "categories"`)
	}
	return f, nil
}

// appendDecoded is decodeArray's one for elements of type T: it decodes
// one element and appends it to *dst, even when decoding fails.
func appendDecoded[T any](dst *[]T) func(*json.Decoder) error {
	return func(d *json.Decoder) error {
		var v T
		err := d.Decode(&v)
		*dst = append(*dst, v)
		return err
	}
}

// decodeArray reads a JSON array element by element, returning the line of
// each. null is an empty array.
func decodeArray(dec *json.Decoder, raw []byte, key string, one func(*json.Decoder) error) ([]int, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("line %d: %s must be a list", lineAt(raw, dec.InputOffset()), key)
	}
	var lines []int
	for i := 0; dec.More(); i++ {
		// Decode reads the value from just after the comma that precedes
		// it; offsets in its errors count from there.
		off := dec.InputOffset()
		base := off
		for base < int64(len(raw)) && strings.IndexByte(" \t\r\n", raw[base]) >= 0 {
			base++
		}
		if base < int64(len(raw)) && raw[base] == ',' {
			base++
		} else {
			base = off
		}
		line := lineAt(raw, skipSpace(raw, off))
		if err := one(dec); err != nil {
			return nil, elemError{fmt.Sprintf("%s[%d]", key, i), line, base, err}
		}
		lines = append(lines, line)
	}
	_, err = dec.Token()
	return lines, err
}

// elemError is a decoding error in one array element, which starts on line
// line; the offsets of the wrapped error count from byte start.
type elemError struct {
	what  string
	line  int
	start int64
	err   error
}

func (e elemError) Error() string { return e.what + ": " + e.err.Error() }

// jsonError turns a decoding error into "line N: what: problem".
func jsonError(raw []byte, what string, err error) error {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
		ee elemError
	)
	switch {
	case errors.As(err, &ee):
		if errors.As(ee.err, &te) {
			// te.Offset counts from the start of the element.
			return fmt.Errorf("line %d: %s.%s: %s where %s belongs", lineAt(raw, ee.start+te.Offset), ee.what, te.Field, jsonKind(te.Value), goKind(te.Type.Kind().String()))
		}
		return fmt.Errorf("line %d: %v", ee.line, ee)
	case errors.As(err, &se) && se.Offset >= int64(len(raw)):
		return fmt.Errorf("line %d: invalid JSON: the file ends too early", lineAt(raw, int64(len(raw))))
	case errors.As(err, &se):
		return fmt.Errorf("line %d: invalid JSON: %v", lineAt(raw, se.Offset), se)
	case errors.As(err, &te):
		return fmt.Errorf("line %d: %s: %s where %s belongs", lineAt(raw, te.Offset), what, jsonKind(te.Value), goKind(te.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fmt.Errorf("line %d: invalid JSON: the file ends too early", lineAt(raw, int64(len(raw))))
	}
	return err
}

func jsonKind(v string) string {
	switch v {
	case "string", "number", "object", "array", "bool":
		return "a " + v
	}
	return v
}

func goKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int") || strings.HasPrefix(k, "float") || strings.HasPrefix(k, "uint"):
		return "a number"
	case k == "slice":
		return "a list"
	case k == "struct":
		return "an object"
	}
	return "a " + k
}

// lineAt is the 1-based line of byte offset off.
func lineAt(raw []byte, off int64) int {
	off = min(max(off, 0), int64(len(raw)))
	return 1 + bytes.Count(raw[:off], []byte{'\n'})
}

// skipSpace moves off past white space and commas.
func skipSpace(raw []byte, off int64) int64 {
	for off < int64(len(raw)) && strings.IndexByte(" \t\r\n,", raw[off]) >= 0 {
		off++
	}
	return off
}

// COCOSplit is a split read from COCO JSON: the Dataset and what Sample and
// Object have no field for, index for index.
type COCOSplit struct {
	*Dataset
	// File is the JSON file the split was read from.
	File string
	// ImageIDs[i] is the COCO image id of Samples[i].
	ImageIDs []int64
	// CategoryIDs[c] is the category id of class c in the file (the one
	// whose name is Names[c]); 0 when the file has no such category.
	CategoryIDs []int64
	// Areas[i][j] is the "area" of Samples[i].Objects[j] (0 when the file
	// gives none): COCO's metric uses it for its area ranges.
	Areas [][]float64
}

// cocoFileNames are the annotation files tried for split S, in order:
// Annotations/S.json, Annotations/instances_S.json (COCO 2017's naming),
// S/_annotations.coco.json (Roboflow's COCO export), below Root (Annotations
// as it is when absolute). A split that ends in .json is itself the file,
// relative to Root or absolute (`test: annotations/instances_val2017.json`,
// as Ultralytics' and MMDetection's configs write it).
func cocoFileNames(l VOCLayout, split string) []string {
	if IsCOCOFileSplit(split) {
		return []string{l.Path(filepath.FromSlash(split))}
	}
	return []string{
		filepath.Join(l.Path(l.Annotations), split+".json"),
		filepath.Join(l.Path(l.Annotations), "instances_"+split+".json"),
		filepath.Join(l.Root, split, "_annotations.coco.json"),
	}
}

// IsCOCOFileSplit reports whether a COCO split is given as the path of its
// annotation file (it ends in .json) rather than by name.
func IsCOCOFileSplit(split string) bool { return strings.HasSuffix(strings.ToLower(split), ".json") }

// cocoSplitName is the name of a split given as a file: the file's base
// name without .json and an "instances_" prefix (instances_val2017.json:
// val2017), the name its image folder has in COCO's own layout.
func cocoSplitName(split string) string {
	if !IsCOCOFileSplit(split) {
		return split
	}
	b := path.Base(filepath.ToSlash(split))
	return strings.TrimPrefix(b[:len(b)-len(".json")], "instances_")
}

// COCOFileOf returns the annotation file of split: the first of
// Root/Annotations/SPLIT.json, Root/Annotations/instances_SPLIT.json and
// Root/SPLIT/_annotations.coco.json that exists, or the split itself when
// it is a path ending in .json (see cocoFileNames).
func COCOFileOf(l VOCLayout, split string) (string, error) {
	tried := cocoFileNames(l, split)
	for _, p := range tried {
		if isFile(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("split %q: no COCO annotation file (tried %s)", split, strings.Join(tried, ", "))
}

// COCONames returns the class names of a COCO data set that has no
// data.names: the categories of split's annotation file ordered by id
// (COCOFile.COCONames), as pycocotools' loadCats(getCatIds()) lists them.
// split is the training split: a name, a .json path, or "all" (see
// COCOAllFile). A file without categories is an error naming it.
func COCONames(l VOCLayout, split string) ([]string, error) {
	var (
		file string
		err  error
	)
	if split == "all" {
		file, err = COCOAllFile(l)
	} else {
		file, err = COCOFileOf(l, split)
	}
	if err != nil {
		return nil, err
	}
	f, err := ReadCOCO(file)
	if err != nil {
		return nil, err
	}
	names := f.COCONames()
	for i, n := range names {
		if n == "" {
			return nil, fmt.Errorf("%s: %s", file, at(lineOf(f.catLines, i), "a category has an empty name"))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no categories: give the class names as data.names", file)
	}
	return names, nil
}

// LoadCOCO reads the split named split of a COCO data set: the annotation
// file is found by COCOFileOf, and an image's file_name F (which may hold
// sub-folders, written with /) is looked for as Root/Images/SPLIT/F, then
// Root/Images/F, then F beside the JSON file, then Root/SPLIT/F (COCO
// 2017's own val2017/ folder); for a split given as a file
// (annotations/instances_val2017.json) SPLIT is the file's name less
// "instances_" and ".json". An absolute F is used as it is. A file_name
// that leads outside Root and outside the folder it is looked for in ("../",
// an absolute path elsewhere) is a problem unless l.AllowOutside; no file
// outside is opened.
//
// Classes are matched by category name: an annotation whose category's name
// is not in names is a problem, as are an annotation whose image_id or
// category_id is not in the file, a bbox that is not 4 finite numbers or
// has a negative width or height, a box entirely outside its image, an
// iscrowd other than 0 or 1, two images with the same id or a missing image
// file. A sample with a problem is left out of the Dataset; problems not
// tied to one image (an unknown image_id, a duplicate category) are listed
// and leave the samples alone.
//
// An iscrowd=1 annotation loads as a Difficult object: kept out of the
// training targets, and a crowd region for the COCO metric (eval.COCO).
// Boxes are box.FromXYWH, clipped to the image (Report.Clipped); a zero
// width or height, before or after clipping, drops the box
// (Report.ZeroAreaDropped). The image size is the JSON's width and height,
// or the probed one when those are 0 (a missing size with a nil probe is a
// problem).
//
// Samples are in the order of the file's images. The returned error is a
// split without an annotation file or a file that does not parse.
func LoadCOCO(l VOCLayout, split string, names []string, probe Prober) (*COCOSplit, *Report, error) {
	return loadCOCO(l, split, names, probe, false)
}

// CheckCOCO loads like LoadCOCO and also reads every image's header with
// probe, reporting unreadable images and sizes that differ from the JSON's
// (the image's size is then used), as Check does for VOC.
func CheckCOCO(l VOCLayout, split string, names []string, probe Prober) (*COCOSplit, *Report, error) {
	if probe == nil {
		return nil, nil, errors.New("data.CheckCOCO: no Prober given")
	}
	return loadCOCO(l, split, names, probe, true)
}

func loadCOCO(l VOCLayout, split string, names []string, probe Prober, probeAll bool) (*COCOSplit, *Report, error) {
	file, err := COCOFileOf(l, split)
	if err != nil {
		return nil, nil, err
	}
	f, err := ReadCOCO(file)
	if err != nil {
		return nil, nil, err
	}
	name := cocoSplitName(split)
	imgDirs := []string{
		filepath.Join(l.Path(l.Images), name),
		l.Path(l.Images),
		filepath.Dir(file),
		filepath.Join(l.Root, name),
	}
	return f.toSplit(l, file, imgDirs, names, probe, probeAll)
}

// line returns the recorded line of element i, or 0.
func lineOf(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}

func at(line int, format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		return fmt.Sprintf("line %d: %s", line, msg)
	}
	return msg
}

// toSplit turns a parsed file into a COCOSplit; see LoadCOCO.
func (f *COCOFile) toSplit(l VOCLayout, file string, imgDirs []string, names []string, probe Prober, probeAll bool) (*COCOSplit, *Report, error) {
	classOf := make(map[string]int, len(names))
	for i, n := range names {
		classOf[n] = i
	}
	cs := &COCOSplit{Dataset: &Dataset{Root: filepath.Dir(file), Names: names}, File: file, CategoryIDs: make([]int64, len(names))}
	rep := &Report{PerClass: make([]int, len(names))}
	fileProblem := func(line int, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{File: file, Msg: at(line, format, args...)})
	}

	type catInfo struct {
		name  string
		class int // -1: not in names
	}
	cats := make(map[int64]catInfo, len(f.Categories))
	for i, c := range f.Categories {
		line := lineOf(f.catLines, i)
		if _, dup := cats[c.ID]; dup {
			fileProblem(line, "categories[%d]: duplicate category id %d", i, c.ID)
			continue
		}
		name := strings.TrimSpace(c.Name)
		cls, ok := classOf[name]
		if !ok {
			cls = -1
		} else if cs.CategoryIDs[cls] != 0 {
			fileProblem(line, "categories[%d]: two categories are named %q (ids %d and %d)", i, name, cs.CategoryIDs[cls], c.ID)
		} else {
			cs.CategoryIDs[cls] = c.ID
		}
		cats[c.ID] = catInfo{name, cls}
	}

	imgIndex := make(map[int64]int, len(f.Images))
	for i, im := range f.Images {
		if j, dup := imgIndex[im.ID]; dup {
			fileProblem(lineOf(f.imageLines, i), "images[%d]: duplicate image id %d (also images[%d])", i, im.ID, j)
			continue
		}
		imgIndex[im.ID] = i
	}
	annsOf := make([][]int, len(f.Images))
	for i, a := range f.Annotations {
		j, ok := imgIndex[a.ImageID]
		if !ok {
			fileProblem(lineOf(f.annLines, i), "annotations[%d] (id %d): image_id %d is not in images", i, a.ID, a.ImageID)
			continue
		}
		annsOf[j] = append(annsOf[j], i)
	}

	seen := make(map[int64]bool, len(f.Images))
	for i, im := range f.Images {
		if seen[im.ID] {
			continue // a duplicate id: reported above
		}
		seen[im.ID] = true
		var probs []Problem
		bad := func(file, format string, args ...any) {
			probs = append(probs, Problem{File: file, Msg: fmt.Sprintf(format, args...)})
		}
		imLine := lineOf(f.imageLines, i)
		s := Sample{ID: strings.TrimSuffix(im.FileName, path.Ext(im.FileName)), AnnPath: file}
		if im.FileName == "" {
			bad(file, "%s", at(imLine, "images[%d] (id %d): no file_name", i, im.ID))
		} else if p, ok := outsideCOCO(l, imgDirs, filepath.FromSlash(im.FileName)); !ok {
			bad(file, "%s", at(imLine, "images[%d] (id %d): file_name %q: %s", i, im.ID, im.FileName, outsideMsg("the image", p, l.Root)))
		} else {
			s.ImagePath = findFile(imgDirs, filepath.FromSlash(im.FileName))
			if s.ImagePath == "" {
				bad(file, "%s", at(imLine, "images[%d] (id %d): image %s not found in %s", i, im.ID, im.FileName, strings.Join(imgDirs, " or ")))
			}
		}
		s.Width, s.Height = im.Width, im.Height
		if im.Width < 0 || im.Height < 0 {
			bad(file, "%s", at(imLine, "images[%d] (id %d): negative size %dx%d", i, im.ID, im.Width, im.Height))
			s.Width, s.Height = 0, 0
		}
		haveSize := s.Width > 0 && s.Height > 0
		if s.ImagePath != "" && probe != nil && (probeAll || !haveSize) {
			w, h, err := probe.Probe(s.ImagePath)
			switch {
			case err != nil:
				bad(s.ImagePath, "unreadable image: %v", err)
			case haveSize && (w != s.Width || h != s.Height):
				bad(file, "%s", at(imLine, "images[%d] (id %d) says %dx%d but the image is %dx%d; using the image's size", i, im.ID, s.Width, s.Height, w, h))
				s.Width, s.Height = w, h
			default:
				s.Width, s.Height = w, h
			}
		}
		sizeKnown := s.Width > 0 && s.Height > 0
		if !sizeKnown && probe == nil {
			bad(file, "%s", at(imLine, "images[%d] (id %d): no width and height and no prober to read the image's size", i, im.ID))
		}
		W, H := float64(s.Width), float64(s.Height)
		var areas []float64
		zero, clipped := 0, 0
		for _, ai := range annsOf[i] {
			a := f.Annotations[ai]
			where := at(lineOf(f.annLines, ai), "annotations[%d] (id %d)", ai, a.ID)
			c, ok := cats[a.CategoryID]
			switch {
			case !ok:
				bad(file, "%s: category_id %d is not in categories", where, a.CategoryID)
			case c.class < 0:
				bad(file, "%s: unknown class %q (category %d; known: %s)", where, c.name, a.CategoryID, strings.Join(names, ", "))
			}
			if a.IsCrowd != 0 && a.IsCrowd != 1 {
				bad(file, "%s: iscrowd %d is not 0 or 1", where, a.IsCrowd)
			}
			if len(a.BBox) != 4 {
				bad(file, "%s: bbox has %d numbers, want 4 (x, y, width, height)", where, len(a.BBox))
				continue
			}
			x, y, w, h := a.BBox[0], a.BBox[1], a.BBox[2], a.BBox[3]
			vs := fmt.Sprintf("[%g, %g, %g, %g]", x, y, w, h)
			if math.IsNaN(x+y+w+h) || math.IsInf(x+y+w+h, 0) {
				bad(file, "%s: bbox %s is not finite", where, vs)
				continue
			}
			if w < 0 || h < 0 {
				bad(file, "%s: bbox %s has a negative width or height", where, vs)
				continue
			}
			if w == 0 || h == 0 {
				zero++
				continue
			}
			b := box.FromXYWH(x, y, w, h)
			if sizeKnown {
				if b.X1 >= W || b.Y1 >= H || b.X2 <= 0 || b.Y2 <= 0 {
					bad(file, "%s: bbox %s lies entirely outside the %dx%d image", where, vs, s.Width, s.Height)
					continue
				}
				cb := b.Clip(W, H)
				if cb != b {
					clipped++
				}
				if cb.Area() == 0 {
					zero++
					continue
				}
				b = cb
			}
			if ok && c.class >= 0 {
				s.Objects = append(s.Objects, Object{Class: c.class, Name: c.name, Box: b, Difficult: a.IsCrowd == 1})
				areas = append(areas, a.Area)
			}
		}
		if !rep.add(s, probs, zero, clipped) {
			continue
		}
		cs.Samples = append(cs.Samples, s)
		cs.ImageIDs = append(cs.ImageIDs, im.ID)
		cs.Areas = append(cs.Areas, areas)
	}
	return cs, rep, nil
}

// findFile returns the first dir/name that is a file, or "" (name itself
// when it is absolute).
func findFile(dirs []string, name string) string {
	if filepath.IsAbs(name) {
		if isFile(name) {
			return name
		}
		return ""
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); isFile(p) {
			return p
		}
	}
	return ""
}

// outsideCOCO checks a file_name against l.Inside for every folder it is
// looked for in; when one is refused it returns that path and false.
func outsideCOCO(l VOCLayout, dirs []string, name string) (string, bool) {
	if filepath.IsAbs(name) {
		return name, l.Inside(name, "")
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); !l.Inside(p, d) {
			return p, false
		}
	}
	return "", true
}

// COCONames returns the category names of f ordered by category id: the
// class list of a COCO data set read without a config (data convert).
func (f *COCOFile) COCONames() []string {
	cs := append([]COCOCategory(nil), f.Categories...)
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].ID < cs[j-1].ID; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
	var names []string
	seen := map[string]bool{}
	for _, c := range cs {
		n := strings.TrimSpace(c.Name)
		if !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	return names
}

// writeCOCO is Write for format coco: images/SPLIT/ID.ext and
// annotations/instances_SPLIT.json, read back by LoadCOCO.
func writeCOCO(out string, names []string, splits []SplitData, rep *WriteReport) error {
	for _, sp := range splits {
		f := COCOFile{Images: []COCOImage{}, Annotations: []COCOAnnotation{}, Categories: []COCOCategory{}}
		// Category ids: the source file's where known, else after the
		// largest one, in class order.
		catIDs := make([]int64, len(names))
		var maxID int64
		if sp.COCO != nil {
			for c := range names {
				if c < len(sp.COCO.CategoryIDs) {
					catIDs[c] = sp.COCO.CategoryIDs[c]
					maxID = max(maxID, catIDs[c])
				}
			}
		}
		for c, n := range names {
			if catIDs[c] == 0 {
				maxID++
				catIDs[c] = maxID
			}
			f.Categories = append(f.Categories, COCOCategory{ID: catIDs[c], Name: n})
		}
		var annID int64
		for i, s := range sp.Dataset.Samples {
			imgID := int64(i + 1)
			if sp.COCO != nil && i < len(sp.COCO.ImageIDs) {
				imgID = sp.COCO.ImageIDs[i]
			}
			img := imageName(s)
			if err := placeImage(s.ImagePath, filepath.Join(out, "images", sp.Name, filepath.FromSlash(img))); err != nil {
				return err
			}
			f.Images = append(f.Images, COCOImage{ID: imgID, FileName: img, Width: s.Width, Height: s.Height})
			rep.Images++
			for j, o := range s.Objects {
				annID++
				xy := o.Box.XYWH()
				area := xy[2] * xy[3]
				if sp.COCO != nil && i < len(sp.COCO.Areas) && j < len(sp.COCO.Areas[i]) && sp.COCO.Areas[i][j] > 0 {
					area = sp.COCO.Areas[i][j]
				}
				f.Annotations = append(f.Annotations, COCOAnnotation{ID: annID, ImageID: imgID, CategoryID: catIDs[o.Class],
					BBox: xy[:], Area: area, IsCrowd: b2i(o.Difficult)})
				rep.Objects++
			}
		}
		p := filepath.Join(out, "annotations", "instances_"+sp.Name+".json")
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		if err := writeFile(p, append(b, '\n')); err != nil {
			return err
		}
		rep.Files = append(rep.Files, p)
	}
	rep.Config = fmt.Sprintf("data:\n  format: coco\n  root: %s\n  images: images\n  annotations: annotations\n  names: %s\n", out, namesYAML(names))
	return nil
}
