package data

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The annotation formats, as data.format names them.
const (
	FormatVOC  = "voc"
	FormatCOCO = "coco"
	FormatYOLO = "yolo"
)

// Formats lists the formats in the order they are documented.
var Formats = []string{FormatVOC, FormatCOCO, FormatYOLO}

// Load reads one split of a data set in format (voc, coco or yolo) with
// LoadVOC, LoadCOCO or LoadYOLO; with check it reads every image header as
// Check and CheckCOCO do (LoadYOLO always does). The Dataset and Report are
// the same kind whatever the format. For COCO the *COCOSplit is returned
// too (nil for the other formats).
func Load(format string, l VOCLayout, split string, names []string, probe Prober, check bool) (*Dataset, *COCOSplit, *Report, error) {
	switch format {
	case FormatVOC:
		read := LoadVOC
		if check {
			read = Check
		}
		ds, rep, err := read(l, split, names, probe)
		return ds, nil, rep, err
	case FormatCOCO:
		read := LoadCOCO
		if check {
			read = CheckCOCO
		}
		cs, rep, err := read(l, split, names, probe)
		if err != nil {
			return nil, nil, nil, err
		}
		return cs.Dataset, cs, rep, nil
	case FormatYOLO:
		ds, rep, err := LoadYOLO(l, split, names, probe)
		return ds, nil, rep, err
	}
	return nil, nil, nil, fmt.Errorf("unknown data format %q (want voc, coco or yolo)", format)
}

// SplitData is one split to write.
type SplitData struct {
	Name    string
	Dataset *Dataset
	// COCO, when the split was read from COCO JSON, keeps its image and
	// category ids and annotation areas in a COCO output; nil numbers
	// images 1..N and categories 1..K in class order.
	COCO *COCOSplit
}

// WriteReport says what a Write call wrote.
type WriteReport struct {
	Images, Objects int
	// LeftOut counts difficult (VOC) or crowd (COCO) objects not written to
	// YOLO labels, which have no such flag (as Ultralytics' own VOC and
	// COCO converters do).
	LeftOut int
	// Files are the annotation and list files written, for the user.
	Files []string
	// Config is a data: section for a dettrain config that reads the output.
	Config string
}

// Write writes splits, all with the class list names, as a data set of
// format in the folder out (created; files already there are
// overwritten). Images are hard-linked where possible, else copied, under
// their sample ID and original extension. The layouts written, each read
// back by Load with the layout in WriteReport.Config:
//
//	voc:  JPEGImages/ID.ext, Annotations/ID.xml, ImageSets/Main/SPLIT.txt, classes.txt
//	coco: images/SPLIT/ID.ext, annotations/instances_SPLIT.json
//	yolo: images/SPLIT/ID.ext, labels/SPLIT/ID.txt, data.yaml, classes.txt
//
// VOC boxes are written as 1-based inclusive corners (box.Box.VOC), an
// integer when within 1e-9 of one, else the shortest decimal that reads
// back to the same float64; COCO boxes as [x, y, w, h] floats; YOLO boxes
// as relative centre and size, shortest decimals. Difficult objects are
// VOC difficult and COCO iscrowd=1, and are left out of YOLO labels.
func Write(format, out string, names []string, splits []SplitData) (*WriteReport, error) {
	if !slices.Contains(Formats, format) {
		return nil, fmt.Errorf("unknown data format %q (want voc, coco or yolo)", format)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	rep := &WriteReport{}
	var err error
	switch format {
	case FormatVOC:
		err = writeVOC(out, names, splits, rep)
	case FormatCOCO:
		err = writeCOCO(out, names, splits, rep)
	case FormatYOLO:
		err = writeYOLO(out, names, splits, rep)
	}
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// namesYAML is the class list as a YAML flow sequence of quoted names.
func namesYAML(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func writeNames(out string, names []string, rep *WriteReport) error {
	p := filepath.Join(out, "classes.txt")
	rep.Files = append(rep.Files, p)
	return os.WriteFile(p, []byte(strings.Join(names, "\n")+"\n"), 0o644)
}

// writeFile writes b to the file p, creating p's folder.
func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// placeImage links or copies src to dst, creating dst's folder.
func placeImage(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if same, _ := sameFile(src, dst); same {
		return nil
	}
	_ = os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}

// sameContent reports whether two paths are the same file or hold the
// same bytes.
func sameContent(a, b string) bool {
	if same, _ := sameFile(a, b); same {
		return true
	}
	x, err := os.ReadFile(a)
	if err != nil {
		return false
	}
	y, err := os.ReadFile(b)
	return err == nil && bytes.Equal(x, y)
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// imageName is the output name of a sample's image: its ID with the image's
// extension.
func imageName(s Sample) string { return s.ID + filepath.Ext(s.ImagePath) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Source is a data set found on disk by Detect: its format, where its
// files are, its splits and its class names.
type Source struct {
	Format string
	Layout VOCLayout
	Splits []string
	Names  []string
	// NamesFrom says where the names came from, for the user.
	NamesFrom string
}

// firstDir returns the first of names that is a folder below root, or "".
func firstDir(root string, names ...string) string {
	for _, n := range names {
		if st, err := os.Stat(filepath.Join(root, n)); err == nil && st.IsDir() {
			return n
		}
	}
	return ""
}

// standardSplits orders split names: train, val, test first, then the
// others sorted; trainval is left out when train and val are both there.
func standardSplits(found []string) []string {
	set := map[string]bool{}
	for _, s := range found {
		set[s] = true
	}
	if set["train"] && set["val"] {
		delete(set, "trainval")
	}
	var out []string
	for _, s := range []string{"train", "val", "valid", "test"} {
		if set[s] {
			out = append(out, s)
			delete(set, s)
		}
	}
	var rest []string
	for s := range set {
		rest = append(rest, s)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// Detect finds a data set of format in dir, for conversion without a
// config:
//
//   - voc: images in JPEGImages or images, XML in Annotations or
//     annotations; splits are the lists in ImageSets/Main, splits/Main or
//     splits (train, val, test and any other NAME.txt without "_", the VOC
//     per-class lists), else the sub-folders of the XML folder; names are
//     every <name> of the splits' XML files, sorted, unless given.
//   - coco: annotations/NAME.json, annotations/instances_NAME.json (split
//     NAME) or NAME/_annotations.coco.json; images in images/ or dir
//     itself; names are the categories ordered by id.
//   - yolo: images/SPLIT with labels/SPLIT, or SPLIT/images with
//     SPLIT/labels; names from data.yaml (or any .yaml with "names" read by
//     readNames), classes.txt, obj.names or *.names, unless given.
//
// readNames reads a names file (config.ReadNamesFile); names, when not nil,
// is used as is.
func Detect(format, dir string, names []string, readNames func(string) ([]string, error)) (*Source, error) {
	src := &Source{Format: format, Names: names, NamesFrom: "given"}
	switch format {
	case FormatVOC:
		l := VOCLayout{Root: dir, Images: firstDir(dir, "JPEGImages", "images"), Annotations: firstDir(dir, "Annotations", "annotations")}
		if l.Images == "" || l.Annotations == "" {
			return nil, fmt.Errorf("%s: not a VOC data set: no JPEGImages (or images) and Annotations (or annotations) folders", dir)
		}
		l.Splits = firstDir(dir, filepath.Join("ImageSets", "Main"), filepath.Join("splits", "Main"), "splits")
		var found []string
		if l.Splits != "" {
			ents, _ := os.ReadDir(filepath.Join(dir, l.Splits))
			for _, e := range ents {
				if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".txt") && !strings.Contains(n, "_") {
					found = append(found, strings.TrimSuffix(n, ".txt"))
				}
			}
		}
		if len(found) == 0 {
			l.Splits = filepath.Join("ImageSets", "Main")
			ents, _ := os.ReadDir(filepath.Join(dir, l.Annotations))
			for _, e := range ents {
				if e.IsDir() {
					found = append(found, e.Name())
				}
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no split lists in ImageSets/Main, splits/Main or splits, and no split sub-folders in %s", dir, l.Annotations)
		}
		src.Layout, src.Splits = l, standardSplits(found)
		if names == nil {
			n, err := vocClassNames(l, src.Splits)
			if err != nil {
				return nil, err
			}
			src.Names, src.NamesFrom = n, "the XML files' <name>s, sorted"
		}
	case FormatCOCO:
		l := VOCLayout{Root: dir, Images: ".", Annotations: firstDir(dir, "annotations", "Annotations")}
		if firstDir(dir, "images") != "" {
			l.Images = "images"
		}
		var found []string
		if l.Annotations != "" {
			ents, _ := os.ReadDir(filepath.Join(dir, l.Annotations))
			for _, e := range ents {
				if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".json") {
					found = append(found, strings.TrimPrefix(strings.TrimSuffix(n, ".json"), "instances_"))
				}
			}
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() && isFile(filepath.Join(dir, e.Name(), "_annotations.coco.json")) {
				found = append(found, e.Name())
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: not a COCO data set: no annotations/*.json and no */_annotations.coco.json", dir)
		}
		if l.Annotations == "" {
			l.Annotations = "annotations"
		}
		src.Layout, src.Splits = l, standardSplits(found)
		if names == nil {
			var all []COCOCategory
			for _, s := range src.Splits {
				file, err := COCOFileOf(l, s)
				if err != nil {
					return nil, err
				}
				f, err := ReadCOCO(file)
				if err != nil {
					return nil, err
				}
				all = append(all, f.Categories...)
			}
			src.Names, src.NamesFrom = (&COCOFile{Categories: all}).COCONames(), "the categories, by id"
		}
	case FormatYOLO:
		l := VOCLayout{Root: dir, Images: "images", Annotations: "labels"}
		var found []string
		ents, _ := os.ReadDir(filepath.Join(dir, "images"))
		for _, e := range ents {
			if e.IsDir() {
				found = append(found, e.Name())
			}
		}
		ents, _ = os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() && firstDir(filepath.Join(dir, e.Name()), "images") != "" && e.Name() != "images" {
				found = append(found, e.Name())
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: not a YOLO data set: no images/SPLIT or SPLIT/images folders", dir)
		}
		src.Layout, src.Splits = l, standardSplits(found)
		if names == nil {
			var cands []string
			for _, n := range []string{"data.yaml", "dataset.yaml", "data.yml", "classes.txt", "obj.names", "classes.names"} {
				cands = append(cands, filepath.Join(dir, n))
			}
			more, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
			cands = append(cands, more...)
			more, _ = filepath.Glob(filepath.Join(dir, "*.names"))
			cands = append(cands, more...)
			var errs []error
			for _, p := range cands {
				if !isFile(p) {
					continue
				}
				n, err := readNames(p)
				if err == nil {
					src.Names, src.NamesFrom = n, p
					break
				}
				errs = append(errs, err)
			}
			if src.Names == nil {
				return nil, fmt.Errorf("%s: no class names found (looked for data.yaml, classes.txt, obj.names, *.names; give --names): %w", dir, errors.Join(errs...))
			}
		}
	default:
		return nil, fmt.Errorf("unknown data format %q (want voc, coco or yolo)", format)
	}
	return src, nil
}

// vocClassNames collects the <name> of every object of the splits' XML
// files, sorted. Unreadable files are skipped: loading reports them.
func vocClassNames(l VOCLayout, splits []string) ([]string, error) {
	var all []splitEntry
	for _, s := range splits {
		es, err := listSplit(l, s)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
	}
	return vocEntryNames(l, all)
}

// vocEntryNames collects the <name>s of the entries' XML files, sorted.
func vocEntryNames(l VOCLayout, es []splitEntry) ([]string, error) {
	set := map[string]bool{}
	for _, e := range es {
		f, err := os.Open(e.ann)
		if err != nil {
			continue
		}
		a, err := parseVOCXML(f)
		f.Close()
		if err != nil {
			continue
		}
		for _, o := range a.objects {
			if n := strings.TrimSpace(o.Name); n != "" {
				set[n] = true
			}
		}
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("%s: no object names in the XML files; give --names", l.Root)
	}
	var names []string
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
