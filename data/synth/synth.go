// Package synth generates dettrain's default data set: small images of
// filled shapes (circle, square, triangle, cross) on textured backgrounds, in
// PASCAL VOC layout, the same bytes for the same seed.
//
// The package uses only the standard library (no cgo), so that
// `dettrain synth` works on any machine.
package synth

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Classes are the class names, in class-index order.
var Classes = []string{"circle", "square", "triangle", "cross"}

// JPEGQuality is the quality every image is encoded with.
const JPEGQuality = 92

// Options configure Generate. Zero values take the defaults given.
type Options struct {
	Images int   // number of images (default 600)
	Seed   int64 // random seed (default 1; 0 means 1)
	Size   int   // width and height of the square images in pixels (default 160)
}

func (o Options) withDefaults() Options {
	if o.Images <= 0 {
		o.Images = 600
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Size <= 0 {
		o.Size = 160
	}
	return o
}

// Summary counts what Generate wrote.
type Summary struct {
	Images, Objects  int
	PerClass         []int // objects per class, indexed like Classes
	Train, Val, Test int   // images per split
}

// Generate writes a data set of o.Images images to dir in VOC layout:
//
//	dir/JPEGImages/000001.jpg        square images, JPEG quality 92
//	dir/Annotations/000001.xml       VOC XML: <size>, <object>s with 1-based inclusive <bndbox>
//	dir/ImageSets/Main/{train,val,test}.txt   70% / 15% / 15% of the ids
//	dir/classes.txt                  circle, square, triangle, cross, one a line
//	dir/README.txt                   how it was generated
//
// Each image has a textured background (a random base colour, low-contrast
// stripes or blobs, per-pixel noise) and 0..4 shapes (about 8% of images
// have none) of a colour far from the background's: circles (ellipses),
// squares (rectangles) and crosses of aspect 0.6..1.6, isosceles triangles,
// their longer side 18..70 pixels at Size 160 (scaled with Size), up to 15%
// of a side over the image border, their rectangles overlapping with IoU at
// most 0.3. A box is the tight extent of the pixels its shape shows in the
// image (so a shape partly hidden by a later one gets the box of what is
// visible). Shapes are drawn by a point-in-shape test at each pixel centre,
// without anti-aliasing.
//
// Image i is drawn from its own math/rand source seeded from (Seed, i), and
// the split from one seeded from Seed, so the files are byte-identical for a
// given Options. Files of an earlier, larger run in dir are not removed.
func Generate(dir string, o Options) (*Summary, error) {
	o = o.withDefaults()
	for _, d := range []string{"JPEGImages", "Annotations", filepath.Join("ImageSets", "Main")} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}

	type result struct {
		perClass []int
		err      error
	}
	results := make([]result, o.Images)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), o.Images) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				pc, err := writeImage(dir, o, i)
				results[i] = result{pc, err}
			}
		}()
	}
	for i := range o.Images {
		next <- i
	}
	close(next)
	wg.Wait()

	sum := &Summary{Images: o.Images, PerClass: make([]int, len(Classes))}
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		for c, n := range r.perClass {
			sum.PerClass[c] += n
			sum.Objects += n
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs[:min(len(errs), 5)]...)
	}

	splits := split(o)
	for _, s := range []struct {
		name string
		ids  []int
		n    *int
	}{{"train", splits[0], &sum.Train}, {"val", splits[1], &sum.Val}, {"test", splits[2], &sum.Test}} {
		var b strings.Builder
		for _, i := range s.ids {
			b.WriteString(ID(i) + "\n")
		}
		*s.n = len(s.ids)
		if err := os.WriteFile(filepath.Join(dir, "ImageSets", "Main", s.name+".txt"), []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "classes.txt"), []byte(strings.Join(Classes, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte(readme(o, sum)), 0o644); err != nil {
		return nil, err
	}
	return sum, nil
}

// ID is the file name stem of image i (0-based): "000001" for i = 0.
func ID(i int) string { return fmt.Sprintf("%06d", i+1) }

// imageRand is the random source of image i: seeded from (seed, i) through
// SplitMix64 so that neighbouring seeds give unrelated images.
func imageRand(seed int64, i int) *rand.Rand {
	return rand.New(rand.NewSource(int64(splitmix(uint64(seed) ^ splitmix(uint64(i)+0x9E3779B97F4A7C15)))))
}

// splitmix is SplitMix64's output function (Steele, Lea, Flood 2014).
func splitmix(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// split shuffles the image indices with a source seeded from Seed and cuts
// them 70/15/15 (train = round(0.7n), val = round(0.15n), test the rest);
// each list is sorted.
func split(o Options) [3][]int {
	perm := rand.New(rand.NewSource(o.Seed)).Perm(o.Images)
	nTrain := int(math.Round(0.7 * float64(o.Images)))
	nVal := int(math.Round(0.15 * float64(o.Images)))
	nVal = min(nVal, o.Images-nTrain)
	out := [3][]int{perm[:nTrain], perm[nTrain : nTrain+nVal], perm[nTrain+nVal:]}
	for _, s := range out {
		sort.Ints(s)
	}
	return out
}

// writeImage renders image i and writes its JPEG and XML; it returns the
// objects per class.
func writeImage(dir string, o Options, i int) ([]int, error) {
	sc := render(imageRand(o.Seed, i), o.Size)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, sc.img, &jpeg.Options{Quality: JPEGQuality}); err != nil {
		return nil, fmt.Errorf("encode image %d: %w", i+1, err)
	}
	id := ID(i)
	if err := os.WriteFile(filepath.Join(dir, "JPEGImages", id+".jpg"), buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "Annotations", id+".xml"), vocXML(id+".jpg", o.Size, sc.shapes), 0o644); err != nil {
		return nil, err
	}
	pc := make([]int, len(Classes))
	for _, s := range sc.shapes {
		pc[s.class]++
	}
	return pc, nil
}

// vocXML writes a VOC annotation; boxes are 1-based inclusive pixel indices.
func vocXML(filename string, size int, shapes []shape) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>%s</filename>\n", filename)
	b.WriteString("\t<source>\n\t\t<database>dettrain synth</database>\n\t</source>\n")
	fmt.Fprintf(&b, "\t<size>\n\t\t<width>%d</width>\n\t\t<height>%d</height>\n\t\t<depth>3</depth>\n\t</size>\n", size, size)
	b.WriteString("\t<segmented>0</segmented>\n")
	for _, s := range shapes {
		trunc := 0
		if s.truncated {
			trunc = 1
		}
		fmt.Fprintf(&b, "\t<object>\n\t\t<name>%s</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>%d</truncated>\n\t\t<difficult>0</difficult>\n", Classes[s.class], trunc)
		fmt.Fprintf(&b, "\t\t<bndbox>\n\t\t\t<xmin>%d</xmin>\n\t\t\t<ymin>%d</ymin>\n\t\t\t<xmax>%d</xmax>\n\t\t\t<ymax>%d</ymax>\n\t\t</bndbox>\n\t</object>\n",
			s.minX+1, s.minY+1, s.maxX+1, s.maxY+1)
	}
	b.WriteString("</annotation>\n")
	return b.Bytes()
}

func readme(o Options, s *Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Synthetic shapes data set generated by `dettrain synth --images %d --seed %d`\n", o.Images, o.Seed)
	fmt.Fprintf(&b, "(package github.com/dettrain/dettrain/data/synth, Options{Images: %d, Seed: %d, Size: %d}).\n\n", o.Images, o.Seed, o.Size)
	fmt.Fprintf(&b, "%d images of %dx%d pixels, JPEG quality %d, %d objects:", s.Images, o.Size, o.Size, JPEGQuality, s.Objects)
	for c, n := range s.PerClass {
		fmt.Fprintf(&b, " %s %d", Classes[c], n)
	}
	fmt.Fprintf(&b, ".\nSplits (ImageSets/Main): train %d, val %d, test %d.\n\n", s.Train, s.Val, s.Test)
	b.WriteString("Layout: PASCAL VOC (JPEGImages/, Annotations/, ImageSets/Main/); classes.txt lists the\n")
	b.WriteString("class names in index order. Boxes are 1-based inclusive pixel indices of the tight extent of\n")
	b.WriteString("each shape's visible pixels. The same options give byte-identical files.\n")
	return b.String()
}
