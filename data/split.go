package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// AllSplit is the split name that stands for every annotated image of a
// data set without split lists (config data.train: all).
const AllSplit = "all"

// COCOAllFile returns the annotation file of a COCO data set read whole
// (split "all"): Annotations/all.json or Annotations/instances_all.json
// when one exists, else the only *.json in the annotation folder. Several
// candidates, or none, are an error listing what was found.
func COCOAllFile(l VOCLayout) (string, error) {
	for _, p := range cocoFileNames(l, AllSplit)[:2] {
		if isFile(p) {
			return p, nil
		}
	}
	dir := l.Path(l.Annotations)
	found, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("split %q: no COCO annotation file: no *.json in %s", AllSplit, dir)
	}
	return "", fmt.Errorf("split %q: %d COCO annotation files in %s (%s): name the one to split as data.train, or keep one", AllSplit, len(found), dir, strings.Join(found, ", "))
}

// LoadAll reads every annotated image of a data set in format, for a data
// set without split lists (split "all"), as Load reads one split:
//
//   - voc: every *.xml directly in Root/Annotations, sorted by name, its
//     image in Root/Images (a labelImg or CVAT export);
//   - coco: the file of COCOAllFile, images looked for as LoadCOCO does;
//   - yolo: every image below Root/Images, its label below
//     Root/Annotations (an image without one is a background image).
func LoadAll(format string, l VOCLayout, names []string, probe Prober, check bool) (*Dataset, *COCOSplit, *Report, error) {
	switch format {
	case FormatVOC:
		if check && probe == nil {
			return nil, nil, nil, errors.New("data.LoadAll: no Prober given")
		}
		annDir, imgDir := l.Path(l.Annotations), l.Path(l.Images)
		ents, err := os.ReadDir(annDir)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("split %q: %w", AllSplit, err)
		}
		var es []splitEntry
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() || !strings.EqualFold(filepath.Ext(n), ".xml") {
				continue
			}
			es = append(es, splitEntry{id: strings.TrimSuffix(n, filepath.Ext(n)), ann: filepath.Join(annDir, n), imgDir: imgDir})
		}
		if len(es) == 0 {
			return nil, nil, nil, fmt.Errorf("split %q: no *.xml in %s", AllSplit, annDir)
		}
		ds, rep := loadEntries(l, es, names, probe, check)
		return ds, nil, rep, nil
	case FormatCOCO:
		if check && probe == nil {
			return nil, nil, nil, errors.New("data.LoadAll: no Prober given")
		}
		file, err := COCOAllFile(l)
		if err != nil {
			return nil, nil, nil, err
		}
		f, err := ReadCOCO(file)
		if err != nil {
			return nil, nil, nil, err
		}
		cs, rep, err := f.toSplit(l, file, []string{l.Path(l.Images), filepath.Dir(file), l.Root}, names, probe, check)
		if err != nil {
			return nil, nil, nil, err
		}
		return cs.Dataset, cs, rep, nil
	case FormatYOLO:
		if probe == nil {
			return nil, nil, nil, errors.New("data.LoadYOLO: no Prober given (YOLO labels need each image's size)")
		}
		imgDir, lblDir := l.Path(l.Images), l.Path(l.Annotations)
		if st, err := os.Stat(imgDir); err != nil || !st.IsDir() {
			return nil, nil, nil, fmt.Errorf("split %q: the image folder %s does not exist", AllSplit, imgDir)
		}
		items, err := yoloFolderItems(imgDir, lblDir, "")
		if err != nil {
			return nil, nil, nil, fmt.Errorf("split %q: %w", AllSplit, err)
		}
		ds, rep := loadYOLOItems(l, items, names, probe)
		return ds, nil, rep, nil
	}
	return nil, nil, nil, fmt.Errorf("unknown data format %q (want voc, coco or yolo)", format)
}

// SplitExists reports whether split names a split of the data set in
// format that Load can read (a list file, folder or annotation file on
// disk), without reading it.
func SplitExists(format string, l VOCLayout, split string) bool {
	switch format {
	case FormatVOC:
		_, err := os.Stat(filepath.Join(l.Path(l.Splits), split+".txt"))
		if err == nil {
			return true
		}
		st, err := os.Stat(filepath.Join(l.Path(l.Annotations), split))
		return err == nil && st.IsDir()
	case FormatCOCO:
		_, err := COCOFileOf(l, split)
		return err == nil
	case FormatYOLO:
		_, _, err := YOLODirs(l, split)
		return err == nil || isFile(YOLOListFile(l, split))
	}
	return false
}

// SplitOptions are the shares of a data set's images that Split holds out.
type SplitOptions struct {
	// Val and Test are the shares of the images for the val and test
	// splits; each in [0, 1), Val+Test < 1. The train split is the rest.
	Val, Test float64
	// Seed seeds the shuffle: the same samples and seed give the same split.
	Seed int64
}

// Split divides the samples of ds into train, val and test, returning the
// indices into ds.Samples of each (each list in ascending order).
//
// The split is stratified by each image's rarest class: the class, among
// those of its objects, that the fewest images of ds have (ties: the lower
// class index); images without objects form one more group. Groups are
// taken in the order of their class (the empty group last); within a group
// the images are shuffled by a Fisher–Yates shuffle driven by PCG (seeded
// with Seed; j = x mod (i+1) for each draw x) and the first ones go to val,
// the next to test, the rest to train. Group g gets
//
//	round(f·C_g) − round(f·C_{g−1})
//
// images of a split of share f, where C_g counts the images of groups 1..g,
// so that the split holds round(f·N) of the N images and each group is
// within one image of f times its size. A rare class thus lands in val in
// proportion, where a plain random split of a small data set could leave
// it out (the aim of Sechidis et al.'s iterative stratification, in its
// simplest one-label form).
func Split(ds *Dataset, o SplitOptions) (train, val, test []int, err error) {
	if !(o.Val >= 0 && o.Test >= 0 && o.Val+o.Test < 1) || math.IsNaN(o.Val+o.Test) {
		return nil, nil, nil, fmt.Errorf("split shares val %g and test %g: each must be >= 0 and their sum < 1", o.Val, o.Test)
	}
	nc := len(ds.Names)
	imagesOf := make([]int, nc)
	for _, s := range ds.Samples {
		seen := map[int]bool{}
		for _, ob := range s.Objects {
			if ob.Class >= 0 && ob.Class < nc && !seen[ob.Class] {
				seen[ob.Class] = true
				imagesOf[ob.Class]++
			}
		}
	}
	groups := make([][]int, nc+1) // groups[nc]: images without objects
	for i, s := range ds.Samples {
		g := nc
		for _, ob := range s.Objects {
			c := ob.Class
			if c < 0 || c >= nc {
				continue
			}
			if g == nc || imagesOf[c] < imagesOf[g] || imagesOf[c] == imagesOf[g] && c < g {
				g = c
			}
		}
		groups[g] = append(groups[g], i)
	}
	rng := rand.NewPCG(uint64(o.Seed), 0x9e3779b97f4a7c15)
	cum, valDone, testDone := 0, 0, 0
	for _, g := range groups {
		for i := len(g) - 1; i > 0; i-- {
			j := int(rng.Uint64() % uint64(i+1))
			g[i], g[j] = g[j], g[i]
		}
		cum += len(g)
		nv := int(math.Round(o.Val*float64(cum))) - valDone
		nt := int(math.Round(o.Test*float64(cum))) - testDone
		nv = min(max(nv, 0), len(g))
		nt = min(max(nt, 0), len(g)-nv)
		val = append(val, g[:nv]...)
		test = append(test, g[nv:nv+nt]...)
		train = append(train, g[nv+nt:]...)
		valDone += nv
		testDone += nt
	}
	slices.Sort(train)
	slices.Sort(val)
	slices.Sort(test)
	return train, val, test, nil
}

// Subset returns the samples of ds at idx as a new Dataset (the samples
// are shared, not copied).
func (d *Dataset) Subset(idx []int) *Dataset {
	out := &Dataset{Root: d.Root, Names: d.Names, Samples: make([]Sample, len(idx))}
	for k, i := range idx {
		out.Samples[k] = d.Samples[i]
	}
	return out
}

// Subset returns the split of cs at idx, its COCO ids and areas kept.
func (cs *COCOSplit) Subset(idx []int) *COCOSplit {
	out := &COCOSplit{Dataset: cs.Dataset.Subset(idx), File: cs.File, CategoryIDs: cs.CategoryIDs}
	for _, i := range idx {
		out.ImageIDs = append(out.ImageIDs, cs.ImageIDs[i])
		out.Areas = append(out.Areas, cs.Areas[i])
	}
	return out
}

// SplitList is one split to write as a list: its name and its samples.
type SplitList struct {
	Name    string
	Dataset *Dataset
	// COCO is the split's COCO data when the format is coco (required
	// then): its File is the source annotation file.
	COCO *COCOSplit
}

// SplitListFile is where WriteSplitLists writes split name of format:
// VOC Root/Splits/NAME.txt, YOLO Root/NAME.txt (YOLOListFile), COCO
// Root/Annotations/instances_NAME.json. Each is what Load reads for that
// split name.
func SplitListFile(format string, l VOCLayout, name string) string {
	switch format {
	case FormatVOC:
		return filepath.Join(l.Path(l.Splits), name+".txt")
	case FormatYOLO:
		return YOLOListFile(l, name)
	}
	return filepath.Join(l.Path(l.Annotations), "instances_"+name+".json")
}

// WriteSplitLists writes each split as a list in the format's own layout
// (SplitListFile): VOC one sample ID a line; YOLO one image path a line,
// "./" and the path relative to Root (Ultralytics' autosplit form); COCO
// the source file's images, annotations and categories (info and licenses
// too) restricted to the split's images, each entry as it was. A file
// that exists already is an error naming it, unless force. It returns the
// files written.
func WriteSplitLists(format string, l VOCLayout, splits []SplitList, force bool) ([]string, error) {
	var files []string
	for _, sp := range splits {
		p := SplitListFile(format, l, sp.Name)
		if _, err := os.Stat(p); err == nil && !force {
			return nil, fmt.Errorf("%s exists already (use --force to overwrite it)", p)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		files = append(files, p)
	}
	for k, sp := range splits {
		var b []byte
		switch format {
		case FormatVOC, FormatYOLO:
			var sb strings.Builder
			for _, s := range sp.Dataset.Samples {
				if format == FormatVOC {
					sb.WriteString(s.ID + "\n")
					continue
				}
				rel, err := filepath.Rel(l.Root, s.ImagePath)
				if err != nil || !within(s.ImagePath, l.Root) {
					rel = s.ImagePath // outside Root: written absolute
				} else {
					rel = "./" + filepath.ToSlash(rel)
				}
				sb.WriteString(rel + "\n")
			}
			b = []byte(sb.String())
		case FormatCOCO:
			if sp.COCO == nil {
				return nil, fmt.Errorf("split %s: no COCO data to write", sp.Name)
			}
			src, err := ReadCOCO(sp.COCO.File)
			if err != nil {
				return nil, err
			}
			keep := map[int64]bool{}
			for _, id := range sp.COCO.ImageIDs {
				keep[id] = true
			}
			out := COCOFile{Info: src.Info, Licenses: src.Licenses, Images: []COCOImage{}, Annotations: []COCOAnnotation{}, Categories: src.Categories}
			for _, im := range src.Images {
				if keep[im.ID] {
					out.Images = append(out.Images, im)
					keep[im.ID] = false // a duplicate id once only
				}
			}
			in := map[int64]bool{}
			for _, id := range sp.COCO.ImageIDs {
				in[id] = true
			}
			for _, a := range src.Annotations {
				if in[a.ImageID] {
					out.Annotations = append(out.Annotations, a)
				}
			}
			if b, err = json.Marshal(out); err != nil {
				return nil, err
			}
			b = append(b, '\n')
		default:
			return nil, fmt.Errorf("unknown data format %q (want voc, coco or yolo)", format)
		}
		if err := os.MkdirAll(filepath.Dir(files[k]), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(files[k], b, 0o644); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// AllNames finds the class names of a data set read whole, for `dettrain
// data split` without a config: VOC every <name> of the XML files of
// Root/Annotations, sorted; COCO the categories by id (COCONames); YOLO the
// first of Root/data.yaml, Root/classes.txt and Root/obj.names that exists,
// read with readNames (config.ReadNamesFile).
func AllNames(format string, l VOCLayout, readNames func(string) ([]string, error)) ([]string, error) {
	switch format {
	case FormatVOC:
		annDir := l.Path(l.Annotations)
		ents, err := os.ReadDir(annDir)
		if err != nil {
			return nil, err
		}
		var es []splitEntry
		for _, e := range ents {
			if n := e.Name(); !e.IsDir() && strings.EqualFold(filepath.Ext(n), ".xml") {
				es = append(es, splitEntry{ann: filepath.Join(annDir, n)})
			}
		}
		return vocEntryNames(l, es)
	case FormatCOCO:
		return COCONames(l, AllSplit)
	case FormatYOLO:
		for _, n := range []string{"data.yaml", "classes.txt", "obj.names"} {
			if p := filepath.Join(l.Root, n); isFile(p) {
				return readNames(p)
			}
		}
		return nil, fmt.Errorf("%s: no class names found (looked for data.yaml, classes.txt, obj.names; give --names)", l.Root)
	}
	return nil, fmt.Errorf("unknown data format %q (want voc, coco or yolo)", format)
}
