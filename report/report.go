// Package report writes what a run leaves for people to read: results.csv
// with one row per training epoch, PNG charts of the training curves
// (loss, learning rate, mAP) and of an evaluation (precision-recall curves
// per class, confusion matrix), drawn with gonum/plot.
//
// Every chart is written atomically (a temporary file renamed into place),
// so a reader never sees half a PNG while training goes on.
package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// Epoch is one row of results.csv: one training epoch. A metric that was
// not evaluated in that epoch is NaN (an empty cell in the CSV, no point on
// the chart).
type Epoch struct {
	Epoch   int     // 1-based
	Seconds float64 // wall time from the start of training to the end of the epoch
	LR      float64 // learning rate at the end of the epoch
	// Loss is the epoch's mean total loss; LossObj, LossXY, LossWH and
	// LossCls its parts (objectness, centre, size, class), also means.
	Loss, LossObj, LossXY, LossWH, LossCls float64
	ImgPerSec                              float64
	// MAP50VOC07, MAP50VOC are the VOC2007 11-point and all-point mAP at
	// IoU .5; MAPCOCO and MAP50COCO the COCO AP@[.50:.95] and AP@.50 of the
	// validation split (NaN when not evaluated).
	MAP50VOC07, MAP50VOC, MAPCOCO, MAP50COCO float64
}

// Columns are results.csv's header, in order.
var Columns = []string{"epoch", "seconds", "lr", "loss", "loss_obj", "loss_xy", "loss_wh", "loss_cls", "img_per_s",
	"map50_voc07", "map50_voc", "map_coco", "map50_coco"}

func (e Epoch) values() []float64 {
	return []float64{float64(e.Epoch), e.Seconds, e.LR, e.Loss, e.LossObj, e.LossXY, e.LossWH, e.LossCls, e.ImgPerSec,
		e.MAP50VOC07, e.MAP50VOC, e.MAPCOCO, e.MAP50COCO}
}

// NoMetrics returns e with every mAP set to NaN (not evaluated), for
// building a row of an epoch without evaluation.
func (e Epoch) NoMetrics() Epoch {
	nan := math.NaN()
	e.MAP50VOC07, e.MAP50VOC, e.MAPCOCO, e.MAP50COCO = nan, nan, nan, nan
	return e
}

// WriteResultsCSV writes the header (Columns) and one line per row; numbers
// in the shortest form that reads back exactly, NaN as an empty cell.
func WriteResultsCSV(w io.Writer, rows []Epoch) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Columns); err != nil {
		return err
	}
	rec := make([]string, len(Columns))
	for _, r := range rows {
		for i, v := range r.values() {
			switch {
			case math.IsNaN(v):
				rec[i] = ""
			case i == 0:
				rec[i] = strconv.Itoa(r.Epoch)
			default:
				rec[i] = strconv.FormatFloat(v, 'g', -1, 64)
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteResultsFile writes rows to path (results.csv) atomically.
func WriteResultsFile(path string, rows []Epoch) error {
	var b bytes.Buffer
	if err := WriteResultsCSV(&b, rows); err != nil {
		return err
	}
	return writeAtomic(path, b.Bytes())
}

// writeAtomic writes data to a temporary file beside path and renames it
// into place.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
