package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dettrain/dettrain/box"
)

// yoloImageExts are the image extensions a YOLO split folder is scanned for
// (compared in lower case), as Ultralytics' IMG_FORMATS less the exotic ones.
var yoloImageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true, ".tif": true, ".tiff": true, ".webp": true}

// YOLODirs returns the image and label folders of split: Root/Images/SPLIT
// and Root/Annotations/SPLIT (Ultralytics: images/train, labels/train) when
// the first exists, else Root/SPLIT/Images and Root/SPLIT/Annotations
// (Roboflow's YOLO export: train/images, train/labels). An absolute Images
// or Annotations is used as it is, and then only the first pair is tried.
func YOLODirs(l VOCLayout, split string) (images, labels string, err error) {
	cands := [][2]string{{filepath.Join(l.Path(l.Images), split), filepath.Join(l.Path(l.Annotations), split)}}
	if !filepath.IsAbs(l.Images) && !filepath.IsAbs(l.Annotations) {
		cands = append(cands, [2]string{filepath.Join(l.Root, split, l.Images), filepath.Join(l.Root, split, l.Annotations)})
	}
	for _, c := range cands {
		if st, err := os.Stat(c[0]); err == nil && st.IsDir() {
			return c[0], c[1], nil
		}
	}
	var tried []string
	for _, c := range cands {
		tried = append(tried, c[0])
	}
	return "", "", fmt.Errorf("split %q: neither %s nor %s is a folder (for the Ultralytics layout set data.images: images and data.annotations: labels)",
		split, strings.Join(tried, " nor "), YOLOListFile(l, split))
}

// YOLOListFile is the image list of split when it has no folder:
// Root/SPLIT.txt, the file an Ultralytics data.yaml names as "train:
// train.txt" (and `dettrain data split` writes).
func YOLOListFile(l VOCLayout, split string) string { return l.Path(split + ".txt") }

// yoloItem is one image of a YOLO split and its label file.
type yoloItem struct {
	img, lbl, id string
	problem      *Problem // a list entry that cannot be read
}

// LoadYOLO reads the split named split of a YOLO (darknet / Ultralytics)
// data set. Its images are every image file below the image folder of
// YOLODirs (sub-folders included, sorted by path); the label of
// IMAGES/REL/NAME.EXT is LABELS/REL/NAME.txt. A missing label file is an
// image without objects (Ultralytics calls it a background image); a
// missing label folder is an error.
//
// When the split has no folder, its images are the lines of the list file
// YOLOListFile (Root/SPLIT.txt): one image path a line, absolute or
// relative to the list's folder ("./images/a.jpg", as Ultralytics'
// autosplit writes them); blank lines are skipped. The label of an image
// below Root/Images at REL is Root/Annotations/REL with .txt; of any
// other, the path with its last "images" folder replaced by "labels"
// (Ultralytics' img2label_paths). A listed image outside Root is a problem
// unless l.AllowOutside.
//
// Each non-blank line of a label file is "class cx cy w h": the 0-based
// class index into names and the box centre and size divided by the image
// width and height (box.FromRelCXCYWH). A line with 7 or more values after
// the class, an even number of them, is a polygon "x1 y1 x2 y2 ..."
// (Ultralytics' segment labels) and its box is the polygon's extent.
// Problems: a wrong number of values, a value that is not a number, a class
// that is not an integer in 0..len(names)-1, a negative size, a coordinate
// outside [0, 1] by more than 1e-6, an unreadable label file or image. A
// zero width or height drops the box (Report.ZeroAreaDropped); boxes are
// clipped to the image (Report.Clipped). YOLO labels have no difficult flag.
//
// The image size comes from probe, which is required. The only returned
// errors are a split whose folders (and list file) do not exist and a nil
// probe.
func LoadYOLO(l VOCLayout, split string, names []string, probe Prober) (*Dataset, *Report, error) {
	if probe == nil {
		return nil, nil, errors.New("data.LoadYOLO: no Prober given (YOLO labels need each image's size)")
	}
	items, err := yoloItems(l, split)
	if err != nil {
		return nil, nil, err
	}
	ds, rep := loadYOLOItems(l, items, names, probe)
	return ds, rep, nil
}

// yoloItems lists the images of split and their label files.
func yoloItems(l VOCLayout, split string) ([]yoloItem, error) {
	imgDir, lblDir, err := YOLODirs(l, split)
	if err != nil {
		if list := YOLOListFile(l, split); isFile(list) {
			return yoloListItems(l, list)
		}
		return nil, err
	}
	if st, err := os.Stat(lblDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("split %q: the label folder %s does not exist", split, lblDir)
	}
	items, err := yoloFolderItems(imgDir, lblDir, "")
	if err != nil {
		return nil, fmt.Errorf("split %q: %w", split, err)
	}
	return items, nil
}

// yoloFolderItems lists every image below imgDir, sorted by path, with its
// label below lblDir; ids are prefix + the path below imgDir without its
// extension.
func yoloFolderItems(imgDir, lblDir, prefix string) ([]yoloItem, error) {
	var rels []string
	err := filepath.WalkDir(imgDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && yoloImageExts[strings.ToLower(filepath.Ext(p))] {
			rel, _ := filepath.Rel(imgDir, p)
			rels = append(rels, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(rels)
	items := make([]yoloItem, len(rels))
	for i, rel := range rels {
		stem := strings.TrimSuffix(rel, filepath.Ext(rel))
		items[i] = yoloItem{img: filepath.Join(imgDir, rel), lbl: filepath.Join(lblDir, stem+".txt"), id: prefix + filepath.ToSlash(stem)}
	}
	return items, nil
}

// yoloListItems reads a list file of image paths (see LoadYOLO).
func yoloListItems(l VOCLayout, list string) ([]yoloItem, error) {
	raw, err := os.ReadFile(list)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", list, unwrapPath(err))
	}
	imgDir, lblDir := l.Path(l.Images), l.Path(l.Annotations)
	base := filepath.Dir(list)
	var items []yoloItem
	for i, text := range strings.Split(string(raw), "\n") {
		name := strings.TrimSpace(text)
		if name == "" {
			continue
		}
		img := filepath.FromSlash(name)
		if !filepath.IsAbs(img) {
			img = filepath.Join(base, img)
		}
		img = filepath.Clean(img)
		it := yoloItem{img: img}
		if !l.Inside(img, imgDir) {
			it.problem = &Problem{File: list, Msg: fmt.Sprintf("line %d: %s", i+1, outsideMsg("image", img, l.Root))}
			items = append(items, it)
			continue
		}
		if rel, err := filepath.Rel(imgDir, img); err == nil && within(img, imgDir) {
			stem := strings.TrimSuffix(rel, filepath.Ext(rel))
			it.lbl, it.id = filepath.Join(lblDir, stem+".txt"), filepath.ToSlash(stem)
		} else {
			parts := strings.Split(img, string(filepath.Separator))
			k := -1
			for j := len(parts) - 1; j >= 0; j-- {
				if parts[j] == "images" {
					k = j
					break
				}
			}
			if k < 0 {
				it.problem = &Problem{File: list, Msg: fmt.Sprintf("line %d: image %s is neither below %s nor in an \"images\" folder: no label path for it", i+1, img, imgDir)}
				items = append(items, it)
				continue
			}
			parts[k] = "labels"
			lbl := strings.Join(parts, string(filepath.Separator))
			it.lbl = strings.TrimSuffix(lbl, filepath.Ext(lbl)) + ".txt"
			rel, _ := filepath.Rel(l.Root, img)
			it.id = filepath.ToSlash(strings.TrimSuffix(rel, filepath.Ext(rel)))
		}
		items = append(items, it)
	}
	return items, nil
}

func loadYOLOItems(l VOCLayout, items []yoloItem, names []string, probe Prober) (*Dataset, *Report) {
	ds := &Dataset{Root: l.Root, Names: names}
	rep := &Report{PerClass: make([]int, len(names))}
	for _, it := range items {
		if it.problem != nil {
			rep.Problems = append(rep.Problems, *it.problem)
			rep.Skipped++
			continue
		}
		s, probs, zero, clipped := readYOLOSample(it.img, it.lbl, it.id, names, probe)
		if rep.add(s, probs, zero, clipped) {
			ds.Samples = append(ds.Samples, s)
		}
	}
	return ds, rep
}

// yoloTol is how far outside [0, 1] a relative coordinate may be (rounding
// in the tools that write them) before it is a problem.
const yoloTol = 1e-6

func readYOLOSample(img, lbl, id string, names []string, probe Prober) (s Sample, probs []Problem, zero, clipped int) {
	s = Sample{ID: id, ImagePath: img, AnnPath: lbl}
	bad := func(file, format string, args ...any) {
		probs = append(probs, Problem{File: file, Msg: fmt.Sprintf(format, args...)})
	}
	w, h, err := probe.Probe(img)
	if err != nil {
		bad(img, "unreadable image: %v", err)
		return
	}
	s.Width, s.Height = w, h
	raw, err := os.ReadFile(lbl)
	if errors.Is(err, fs.ErrNotExist) {
		s.AnnPath = ""
		return // a background image
	}
	if err != nil {
		bad(lbl, "cannot read labels: %v", unwrapPath(err))
		return
	}
	W, H := float64(w), float64(h)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, len(raw)+1)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		at := fmt.Sprintf("line %d", line)
		n := len(f) - 1
		if n != 4 && (n < 6 || n%2 != 0) {
			bad(lbl, "%s: %d values after the class, want 4 (cx cy w h) or a polygon of 3 or more x y pairs", at, n)
			continue
		}
		cls, err := strconv.Atoi(f[0])
		if err != nil {
			bad(lbl, "%s: class %q is not an integer", at, f[0])
			continue
		}
		if cls < 0 || cls >= len(names) {
			bad(lbl, "%s: class %d is not in 0..%d (%d names)", at, cls, len(names)-1, len(names))
			continue
		}
		v := make([]float64, n)
		numOK := true
		for i, t := range f[1:] {
			x, err := strconv.ParseFloat(t, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				bad(lbl, "%s: %q is not a number", at, t)
				numOK = false
				break
			}
			v[i] = x
		}
		if !numOK {
			continue
		}
		var b box.Box
		if n == 4 {
			vs := fmt.Sprintf("(cx,cy,w,h)=(%g,%g,%g,%g)", v[0], v[1], v[2], v[3])
			if v[2] < 0 || v[3] < 0 {
				bad(lbl, "%s: box %s has a negative size", at, vs)
				continue
			}
			x1, y1, x2, y2 := v[0]-v[2]/2, v[1]-v[3]/2, v[0]+v[2]/2, v[1]+v[3]/2
			if x1 < -yoloTol || y1 < -yoloTol || x2 > 1+yoloTol || y2 > 1+yoloTol {
				bad(lbl, "%s: box %s reaches outside the image (relative coordinates must be in [0, 1])", at, vs)
				continue
			}
			if v[2] == 0 || v[3] == 0 {
				zero++
				continue
			}
			b = box.FromRelCXCYWH(v[0], v[1], v[2], v[3], W, H)
		} else {
			x1, y1, x2, y2 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
			outside := false
			for i := 0; i < n; i += 2 {
				x, y := v[i], v[i+1]
				outside = outside || x < -yoloTol || y < -yoloTol || x > 1+yoloTol || y > 1+yoloTol
				x1, y1, x2, y2 = min(x1, x), min(y1, y), max(x2, x), max(y2, y)
			}
			if outside {
				bad(lbl, "%s: a polygon point lies outside the image (relative coordinates must be in [0, 1])", at)
				continue
			}
			if x2 == x1 || y2 == y1 {
				zero++
				continue
			}
			b = box.Box{X1: x1 * W, Y1: y1 * H, X2: x2 * W, Y2: y2 * H}
		}
		if c := b.Clip(W, H); c != b {
			clipped++
			b = c
		}
		if b.Area() == 0 {
			zero++
			continue
		}
		s.Objects = append(s.Objects, Object{Class: cls, Name: names[cls], Box: b})
	}
	return
}

// writeYOLO is Write for format yolo: images/SPLIT/ID.ext,
// labels/SPLIT/ID.txt, data.yaml and classes.txt, read back by LoadYOLO.
func writeYOLO(out string, names []string, splits []SplitData, rep *WriteReport) error {
	var y bytes.Buffer
	fmt.Fprintf(&y, "# written by dettrain data convert\npath: .\n")
	for _, sp := range splits {
		fmt.Fprintf(&y, "%s: images/%s\n", yamlKey(sp.Name), sp.Name)
		for _, s := range sp.Dataset.Samples {
			if s.Width <= 0 || s.Height <= 0 {
				return fmt.Errorf("split %s: %s: image size unknown", sp.Name, s.ID)
			}
			img := imageName(s)
			if err := placeImage(s.ImagePath, filepath.Join(out, "images", sp.Name, filepath.FromSlash(img))); err != nil {
				return err
			}
			var b bytes.Buffer
			W, H := float64(s.Width), float64(s.Height)
			for _, o := range s.Objects {
				if o.Difficult {
					rep.LeftOut++
					continue
				}
				cx, cy, bw, bh := o.Box.RelCXCYWH(W, H)
				fmt.Fprintf(&b, "%d %s %s %s %s\n", o.Class, fmtRel(cx), fmtRel(cy), fmtRel(bw), fmtRel(bh))
				rep.Objects++
			}
			p := filepath.Join(out, "labels", sp.Name, filepath.FromSlash(s.ID)+".txt")
			if err := writeFile(p, b.Bytes()); err != nil {
				return err
			}
			rep.Images++
		}
	}
	fmt.Fprintf(&y, "nc: %d\nnames: %s\n", len(names), namesYAML(names))
	p := filepath.Join(out, "data.yaml")
	if err := os.WriteFile(p, y.Bytes(), 0o644); err != nil {
		return err
	}
	rep.Files = append(rep.Files, p)
	rep.Config = fmt.Sprintf("data:\n  format: yolo\n  root: %s\n  images: images\n  annotations: labels\n  names_file: %s\n", out, p)
	return writeNames(out, names, rep)
}

// yamlKey quotes a split name when YAML would not read it as a plain string.
func yamlKey(s string) string {
	for _, r := range s {
		if !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return strconv.Quote(s)
		}
	}
	return s
}

// fmtRel is the shortest decimal that parses back to v.
// YOLOLabelLine formats a box of a w x h image as a YOLO label line,
// "class cx cy bw bh" relative to the image with 6 decimals, and with
// withScore " score" after it (Ultralytics' save_txt and save_conf, what
// `dettrain predict` writes; LoadYOLO reads the class and the box).
func YOLOLabelLine(class int, b box.Box, w, h int, score float64, withScore bool) string {
	cx, cy, bw, bh := b.RelCXCYWH(float64(w), float64(h))
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	s := fmt.Sprintf("%d %s %s %s %s", class, f(cx), f(cy), f(bw), f(bh))
	if withScore {
		s += " " + f(score)
	}
	return s
}

func fmtRel(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
