package data

import (
	"fmt"

	"github.com/dettrain/dettrain/box"
)

// Object is one annotated object of a sample.
type Object struct {
	Class     int     // index into the data set's class names
	Name      string  // the class name as written in the annotation
	Box       box.Box // in original image pixels, clipped to the image
	Difficult bool    // VOC <difficult>1</difficult>: kept out of training targets
}

// Sample is one image and its annotation.
type Sample struct {
	ID                 string // the id from the split file (or the XML file name without .xml)
	ImagePath, AnnPath string
	Width, Height      int // from the XML <size>, or probed when the XML has none
	Objects            []Object
}

// Dataset is one split of a data set: the samples that loaded without problems.
type Dataset struct {
	Root    string
	Names   []string
	Samples []Sample
}

// Problem is one thing wrong with one file of a data set.
type Problem struct {
	File string
	Msg  string
}

// String returns "FILE: MSG".
func (p Problem) String() string { return p.File + ": " + p.Msg }

// Prober reads an image's header only (no full decode) and returns its size.
// Implementations must be safe for concurrent use.
type Prober interface {
	Probe(path string) (w, h int, err error)
}

// Decoder loads an image, resizes it to w x h (a plain resize, no letterbox,
// like OpenCV's blobFromImage) and writes it into dst (len 3*w*h) as RGB
// float32 in CHW order with values in [0,1]:
//
//	dst[c*h*w + y*w + x], c = 0 (R), 1 (G), 2 (B)
//
// It returns the size of the image before resizing. Implementations must be
// safe for concurrent use: the Loader calls Load from several goroutines.
type Decoder interface {
	Load(path string, w, h int, dst []float32) (origW, origH int, err error)
}

func (d *Dataset) String() string {
	return fmt.Sprintf("%s: %d samples, %d classes", d.Root, len(d.Samples), len(d.Names))
}
