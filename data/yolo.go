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
// (Roboflow's YOLO export: train/images, train/labels).
func YOLODirs(l VOCLayout, split string) (images, labels string, err error) {
	cands := [][2]string{
		{filepath.Join(l.Root, l.Images, split), filepath.Join(l.Root, l.Annotations, split)},
		{filepath.Join(l.Root, split, l.Images), filepath.Join(l.Root, split, l.Annotations)},
	}
	for _, c := range cands {
		if st, err := os.Stat(c[0]); err == nil && st.IsDir() {
			return c[0], c[1], nil
		}
	}
	return "", "", fmt.Errorf("split %q: neither %s nor %s is a folder (for the Ultralytics layout set data.images: images and data.annotations: labels)",
		split, cands[0][0], cands[1][0])
}

// LoadYOLO reads the split named split of a YOLO (darknet / Ultralytics)
// data set. Its images are every image file below the image folder of
// YOLODirs (sub-folders included, sorted by path); the label of
// IMAGES/REL/NAME.EXT is LABELS/REL/NAME.txt. A missing label file is an
// image without objects (Ultralytics calls it a background image); a
// missing label folder is an error.
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
// errors are a split whose folders do not exist and a nil probe.
func LoadYOLO(l VOCLayout, split string, names []string, probe Prober) (*Dataset, *Report, error) {
	if probe == nil {
		return nil, nil, errors.New("data.LoadYOLO: no Prober given (YOLO labels need each image's size)")
	}
	imgDir, lblDir, err := YOLODirs(l, split)
	if err != nil {
		return nil, nil, err
	}
	if st, err := os.Stat(lblDir); err != nil || !st.IsDir() {
		return nil, nil, fmt.Errorf("split %q: the label folder %s does not exist", split, lblDir)
	}
	var rels []string
	err = filepath.WalkDir(imgDir, func(p string, d fs.DirEntry, err error) error {
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
		return nil, nil, fmt.Errorf("split %q: %w", split, err)
	}
	slices.Sort(rels)

	ds := &Dataset{Root: l.Root, Names: names}
	rep := &Report{PerClass: make([]int, len(names))}
	for _, rel := range rels {
		stem := strings.TrimSuffix(rel, filepath.Ext(rel))
		s, probs, zero, clipped := readYOLOSample(filepath.Join(imgDir, rel), filepath.Join(lblDir, stem+".txt"), filepath.ToSlash(stem), names, probe)
		if len(probs) > 0 {
			rep.Problems = append(rep.Problems, probs...)
			rep.Skipped++
			continue
		}
		ds.Samples = append(ds.Samples, s)
		rep.Images++
		rep.ZeroAreaDropped += zero
		rep.Clipped += clipped
		for _, o := range s.Objects {
			rep.Objects++
			rep.PerClass[o.Class]++
		}
	}
	return ds, rep, nil
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
