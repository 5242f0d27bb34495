package data

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dettrain/dettrain/box"
)

// VOCLayout says where a PASCAL VOC style data set keeps its files. The
// three folder names are relative to Root, unless absolute (then used as
// they are); the VOC devkit's own layout is {Images: "JPEGImages",
// Annotations: "Annotations", Splits: "ImageSets/Main"}. The COCO and YOLO
// readers use the same struct.
type VOCLayout struct {
	Root, Images, Annotations, Splits string
	// AllowOutside lets the paths written inside the data set's files (a
	// COCO file_name, a VOC split list's id, a YOLO list's image path) lead
	// outside Root. Default false: such a path is a problem naming the
	// file and the entry. See Inside.
	AllowOutside bool
}

// Path returns p below Root, or p itself when it is absolute.
func (l VOCLayout) Path(p ...string) string {
	if len(p) > 0 && filepath.IsAbs(p[0]) {
		return filepath.Join(p...)
	}
	return filepath.Join(append([]string{l.Root}, p...)...)
}

// Inside reports whether path p, found by joining a name from a data set's
// file to the folder dir, may be read: always with AllowOutside, else when
// p lies inside Root or inside dir (a folder of the layout given as an
// absolute path outside Root). The test is lexical, on cleaned absolute
// paths (filepath.Abs); symbolic links are not followed, so a link the
// data set's owner made is honoured.
func (l VOCLayout) Inside(p, dir string) bool {
	if l.AllowOutside {
		return true
	}
	return within(p, l.Root) || (dir != "" && within(p, dir))
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	ap, err1 := filepath.Abs(p)
	ad, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(ad, ap)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// outsideMsg is the problem of a path that leaves the data set's root.
func outsideMsg(what, p, root string) string {
	return fmt.Sprintf("%s %s leads outside the data set's root %s (set data.allow_outside: true to allow it)", what, p, root)
}

// DefaultVOCLayout returns the VOC devkit layout rooted at root.
func DefaultVOCLayout(root string) VOCLayout {
	return VOCLayout{Root: root, Images: "JPEGImages", Annotations: "Annotations", Splits: filepath.Join("ImageSets", "Main")}
}

// imageExts are tried, in this order, after the XML <filename>.
var imageExts = []string{".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp"}

// LoadVOC reads the split named split of a VOC data set.
//
// The split is the list of ids in Root/Splits/SPLIT.txt (the first field of
// each line; blank lines ignored). When that file does not exist but
// Root/Annotations/SPLIT is a folder, the split is every *.xml in that
// folder, sorted by name, and its images are in Root/Images/SPLIT. An id
// whose annotation would lie outside Root and the annotation folder (an id
// with "../") is a problem unless l.AllowOutside.
//
// For each id, the annotation is Annotations/ID.xml and the image is the
// XML's <filename> in the image folder if that file exists, else ID with the
// first of .jpg .jpeg .png .JPG .JPEG .PNG .bmp that exists.
//
// Boxes are converted with box.FromVOC and clipped to the image (counted in
// Report.Clipped). A box with xmin == xmax or ymin == ymax is a click rather
// than a drawn box (BCCD has two): it is dropped and counted in
// Report.ZeroAreaDropped, as is any box left with zero area by clipping.
// Neither is a problem.
//
// Problems are collected, never fatal: a missing or malformed XML, a missing
// image, a class not in names, a box with xmax < xmin or ymax < ymin, a box
// entirely outside the image, a number that does not parse, or a missing
// <size> when probe is nil. A sample with any problem is left out of the
// Dataset and listed in Report.Problems. When the XML has no <size> (or a
// zero one) and probe is not nil, the image's header gives the size.
//
// The only returned error is a split that does not exist.
func LoadVOC(l VOCLayout, split string, names []string, probe Prober) (*Dataset, *Report, error) {
	return load(l, split, names, probe, false)
}

// Check loads the split like LoadVOC and also reads every image's header
// with probe, reporting images that cannot be read and images whose size
// differs from the XML's <size> (the image's size is then used to clip the
// boxes). The report has no problems when the split is fit for training;
// the Dataset holds the samples without problems.
func Check(l VOCLayout, split string, names []string, probe Prober) (*Dataset, *Report, error) {
	if probe == nil {
		return nil, nil, errors.New("data.Check: no Prober given")
	}
	return load(l, split, names, probe, true)
}

// splitEntry is one sample to read: its id and where its files are.
type splitEntry struct {
	id, ann, imgDir string
	outside         string // the problem of an id that leaves the root, or ""
}

// listSplit resolves a split name to its entries (see LoadVOC).
func listSplit(l VOCLayout, split string) ([]splitEntry, error) {
	annDir := l.Path(l.Annotations)
	imgDir := l.Path(l.Images)
	listFile := filepath.Join(l.Path(l.Splits), split+".txt")
	b, err := os.ReadFile(listFile)
	if err == nil {
		var es []splitEntry
		for i, text := range strings.Split(string(b), "\n") {
			line := i + 1
			f := strings.Fields(text)
			if len(f) == 0 {
				continue
			}
			e := splitEntry{id: f[0], ann: filepath.Join(annDir, f[0]+".xml"), imgDir: imgDir}
			if !l.Inside(e.ann, annDir) {
				e.outside = fmt.Sprintf("%s: line %d: %s", listFile, line, outsideMsg("id "+strconv.Quote(f[0])+": annotation", e.ann, l.Root))
			}
			es = append(es, e)
		}
		return es, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("split %q: %w", split, err)
	}
	folder := filepath.Join(annDir, split)
	if st, serr := os.Stat(folder); serr != nil || !st.IsDir() {
		return nil, fmt.Errorf("split %q: neither %s nor the folder %s exists", split, listFile, folder)
	}
	ents, err := os.ReadDir(folder)
	if err != nil {
		return nil, fmt.Errorf("split %q: %w", split, err)
	}
	var es []splitEntry
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.EqualFold(filepath.Ext(n), ".xml") {
			continue
		}
		es = append(es, splitEntry{
			id:     strings.TrimSuffix(n, filepath.Ext(n)),
			ann:    filepath.Join(folder, n),
			imgDir: filepath.Join(imgDir, split),
		})
	}
	return es, nil
}

func load(l VOCLayout, split string, names []string, probe Prober, probeAll bool) (*Dataset, *Report, error) {
	entries, err := listSplit(l, split)
	if err != nil {
		return nil, nil, err
	}
	ds, rep := loadEntries(l, entries, names, probe, probeAll)
	return ds, rep, nil
}

func loadEntries(l VOCLayout, entries []splitEntry, names []string, probe Prober, probeAll bool) (*Dataset, *Report) {
	classOf := make(map[string]int, len(names))
	for i, n := range names {
		classOf[n] = i
	}
	ds := &Dataset{Root: l.Root, Names: names}
	rep := &Report{PerClass: make([]int, len(names))}
	for _, e := range entries {
		sr := readSample(e, names, classOf, probe, probeAll)
		if rep.add(sr.sample, sr.problems, sr.zeroArea, sr.clipped) {
			ds.Samples = append(ds.Samples, sr.sample)
		}
	}
	return ds, rep
}

// vocObject is an <object> as written, numbers still text so that a bad one
// can be reported with its key.
type vocObject struct {
	Name      string `xml:"name"`
	Difficult string `xml:"difficult"`
	Bndbox    *struct {
		Xmin string `xml:"xmin"`
		Ymin string `xml:"ymin"`
		Xmax string `xml:"xmax"`
		Ymax string `xml:"ymax"`
	} `xml:"bndbox"`
	line int
}

type vocSize struct {
	Width  string `xml:"width"`
	Height string `xml:"height"`
	line   int
}

type vocAnnotation struct {
	filename string
	size     *vocSize
	objects  []vocObject
}

// parseVOCXML reads the parts of a VOC annotation that dettrain uses,
// remembering the line of each <size> and <object>.
func parseVOCXML(r io.Reader) (*vocAnnotation, error) {
	d := xml.NewDecoder(r)
	a := &vocAnnotation{}
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if depth != 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return a, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				depth++
				continue
			}
			line, _ := d.InputPos()
			switch t.Name.Local {
			case "filename":
				var s string
				if err := d.DecodeElement(&s, &t); err != nil {
					return nil, err
				}
				a.filename = strings.TrimSpace(s)
			case "size":
				s := &vocSize{line: line}
				if err := d.DecodeElement(s, &t); err != nil {
					return nil, err
				}
				a.size = s
			case "object":
				o := vocObject{line: line}
				if err := d.DecodeElement(&o, &t); err != nil {
					return nil, err
				}
				a.objects = append(a.objects, o)
			default:
				if err := d.Skip(); err != nil {
					return nil, err
				}
			}
		case xml.EndElement:
			depth--
		}
	}
}

type sampleResult struct {
	sample            Sample
	problems          []Problem
	zeroArea, clipped int
}

func readSample(e splitEntry, names []string, classOf map[string]int, probe Prober, probeAll bool) sampleResult {
	var res sampleResult
	s := Sample{ID: e.id, AnnPath: e.ann}
	bad := func(file, format string, args ...any) {
		res.problems = append(res.problems, Problem{File: file, Msg: fmt.Sprintf(format, args...)})
	}
	if e.outside != "" {
		file, msg, _ := strings.Cut(e.outside, ": ")
		bad(file, "%s", msg)
		return res
	}

	f, err := os.Open(e.ann)
	if err != nil {
		bad(e.ann, "cannot read annotation: %v", unwrapPath(err))
		return res
	}
	a, err := parseVOCXML(f)
	f.Close()
	if err != nil {
		bad(e.ann, "malformed XML: %v", err)
		return res
	}

	s.ImagePath = findImage(e.imgDir, a.filename, e.id)
	if s.ImagePath == "" {
		tried := e.id + "{" + strings.Join(imageExts, ",") + "}"
		if a.filename != "" {
			tried = filepath.Base(a.filename) + ", " + tried
		}
		bad(e.ann, "image not found in %s (tried %s)", e.imgDir, tried)
	}

	// The image size: <size>, else the image header; in Check mode always
	// the header, and it wins.
	sizeBad := false
	if a.size != nil {
		w, werr := parseSize(a.size.Width)
		h, herr := parseSize(a.size.Height)
		switch {
		case werr != nil:
			bad(e.ann, "line %d: <size><width>: %v", a.size.line, werr)
			sizeBad = true
		case herr != nil:
			bad(e.ann, "line %d: <size><height>: %v", a.size.line, herr)
			sizeBad = true
		default:
			s.Width, s.Height = w, h
		}
	}
	haveXMLSize := s.Width > 0 && s.Height > 0
	if s.ImagePath != "" && probe != nil && (probeAll || (!haveXMLSize && !sizeBad)) {
		w, h, err := probe.Probe(s.ImagePath)
		switch {
		case err != nil:
			bad(s.ImagePath, "unreadable image: %v", err)
		case haveXMLSize && (w != s.Width || h != s.Height):
			bad(e.ann, "<size> says %dx%d but the image is %dx%d; using the image's size", s.Width, s.Height, w, h)
			s.Width, s.Height = w, h
		default:
			s.Width, s.Height = w, h
		}
	}
	sizeKnown := s.Width > 0 && s.Height > 0
	if !sizeKnown && probe == nil && !sizeBad {
		bad(e.ann, "no <size> (or a zero one) and no prober to read the image's size")
	}
	W, H := float64(s.Width), float64(s.Height)

	for i, o := range a.objects {
		at := fmt.Sprintf("line %d: object %d", o.line, i+1)
		name := strings.TrimSpace(o.Name)
		cls, ok := classOf[name]
		if !ok {
			bad(e.ann, "%s: unknown class %q (known: %s)", at, name, strings.Join(names, ", "))
		}
		difficult := false
		if d := strings.TrimSpace(o.Difficult); d != "" {
			n, err := strconv.Atoi(d)
			if err != nil {
				bad(e.ann, "%s: <difficult> %q is not an integer", at, d)
			}
			difficult = n != 0
		}
		if o.Bndbox == nil {
			bad(e.ann, "%s: no <bndbox>", at)
			continue
		}
		var v [4]float64
		numOK := true
		for k, f := range []struct{ key, s string }{
			{"xmin", o.Bndbox.Xmin}, {"ymin", o.Bndbox.Ymin}, {"xmax", o.Bndbox.Xmax}, {"ymax", o.Bndbox.Ymax},
		} {
			x, err := parseCoord(f.s)
			if err != nil {
				bad(e.ann, "%s: <bndbox><%s>: %v", at, f.key, err)
				numOK = false
			}
			v[k] = x
		}
		if !numOK {
			continue
		}
		vs := fmt.Sprintf("(xmin,ymin,xmax,ymax)=(%g,%g,%g,%g)", v[0], v[1], v[2], v[3])
		if v[2] < v[0] || v[3] < v[1] {
			bad(e.ann, "%s: box %s has xmax < xmin or ymax < ymin", at, vs)
			continue
		}
		if v[2] == v[0] || v[3] == v[1] {
			res.zeroArea++
			continue
		}
		b := box.FromVOC(v[0], v[1], v[2], v[3])
		if sizeKnown {
			if b.X1 >= W || b.Y1 >= H || b.X2 <= 0 || b.Y2 <= 0 {
				bad(e.ann, "%s: box %s lies entirely outside the %dx%d image", at, vs, s.Width, s.Height)
				continue
			}
			c := b.Clip(W, H)
			if c != b {
				res.clipped++
			}
			if c.Area() == 0 {
				res.zeroArea++
				continue
			}
			b = c
		}
		if ok {
			s.Objects = append(s.Objects, Object{Class: cls, Name: name, Box: b, Difficult: difficult})
		}
	}
	res.sample = s
	return res
}

// findImage returns the image of sample id in dir: the XML's filename if that
// file exists there, else id with the first extension of imageExts that
// exists; "" when none does.
func findImage(dir, filename, id string) string {
	if filename != "" {
		p := filepath.Join(dir, filepath.Base(filename))
		if isFile(p) {
			return p
		}
	}
	for _, ext := range imageExts {
		p := filepath.Join(dir, id+ext)
		if isFile(p) {
			return p
		}
	}
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// parseCoord parses a box coordinate: an integer or a finite float.
func parseCoord(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("missing")
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return x, nil
}

// parseSize parses a <size> dimension: a non-negative integer (a float with
// no fraction is accepted). 0 means unknown.
func parseSize(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x < 0 || x != math.Trunc(x) || x > 1<<30 {
		return 0, fmt.Errorf("%q is not a size in pixels", s)
	}
	return int(x), nil
}

// unwrapPath drops the path from an *fs.PathError: the Problem already names
// the file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fmtCoord writes a coordinate: an integer when within 1e-9 of one, else
// the shortest decimal that parses back to v.
func fmtCoord(v float64) string {
	if r := math.Round(v); math.Abs(v-r) < 1e-9 {
		return strconv.FormatFloat(r, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// writeVOC is Write for format voc: JPEGImages/ID.ext, Annotations/ID.xml,
// ImageSets/Main/SPLIT.txt and classes.txt, read back by LoadVOC.
func writeVOC(out string, names []string, splits []SplitData, rep *WriteReport) error {
	type written struct{ split, image string }
	done := map[string]written{}
	for _, sp := range splits {
		var ids bytes.Buffer
		for _, s := range sp.Dataset.Samples {
			if s.Width <= 0 || s.Height <= 0 {
				return fmt.Errorf("split %s: %s: image size unknown", sp.Name, s.ID)
			}
			fmt.Fprintln(&ids, s.ID)
			if w, ok := done[s.ID]; ok {
				if w.image != s.ImagePath && !sameContent(w.image, s.ImagePath) {
					return fmt.Errorf("image id %q is in split %s (%s) and in split %s (%s): VOC keeps every split's images in one folder", s.ID, w.split, w.image, sp.Name, s.ImagePath)
				}
				continue
			}
			done[s.ID] = written{sp.Name, s.ImagePath}
			img := imageName(s)
			if err := placeImage(s.ImagePath, filepath.Join(out, "JPEGImages", filepath.FromSlash(img))); err != nil {
				return err
			}
			var b bytes.Buffer
			b.WriteString("<annotation>\n\t<folder>JPEGImages</folder>\n")
			fmt.Fprintf(&b, "\t<filename>%s</filename>\n", xmlText(path.Base(img)))
			fmt.Fprintf(&b, "\t<size>\n\t\t<width>%d</width>\n\t\t<height>%d</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n", s.Width, s.Height)
			for _, o := range s.Objects {
				x1, y1, x2, y2 := o.Box.VOC()
				fmt.Fprintf(&b, "\t<object>\n\t\t<name>%s</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>%d</difficult>\n", xmlText(o.Name), b2i(o.Difficult))
				fmt.Fprintf(&b, "\t\t<bndbox>\n\t\t\t<xmin>%s</xmin>\n\t\t\t<ymin>%s</ymin>\n\t\t\t<xmax>%s</xmax>\n\t\t\t<ymax>%s</ymax>\n\t\t</bndbox>\n\t</object>\n",
					fmtCoord(x1), fmtCoord(y1), fmtCoord(x2), fmtCoord(y2))
				rep.Objects++
			}
			b.WriteString("</annotation>\n")
			p := filepath.Join(out, "Annotations", filepath.FromSlash(s.ID)+".xml")
			if err := writeFile(p, b.Bytes()); err != nil {
				return err
			}
			rep.Images++
		}
		p := filepath.Join(out, "ImageSets", "Main", sp.Name+".txt")
		if err := writeFile(p, ids.Bytes()); err != nil {
			return err
		}
		rep.Files = append(rep.Files, p)
	}
	rep.Config = fmt.Sprintf("data:\n  format: voc\n  root: %s\n  images: JPEGImages\n  annotations: Annotations\n  splits: ImageSets/Main\n  names_file: %s\n",
		out, filepath.Join(out, "classes.txt"))
	return writeNames(out, names, rep)
}

// xmlText escapes s for XML character data.
func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
