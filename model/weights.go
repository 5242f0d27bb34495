package model

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Darknet .weights layout (darknet's load_weights / save_weights):
// int32 major, minor, revision; then `seen` (images trained on) as uint64 when
// major*10+minor >= 2, else uint32; then for every [convolutional] layer in
// order: biases[F]; with batch_normalize scales[F], rolling_mean[F],
// rolling_variance[F]; then weights[F * C/groups * size * size]; all float32
// little-endian.

// WeightsHeader is the header of a .weights file.
type WeightsHeader struct {
	Major, Minor, Revision int32
	Seen                   uint64
}

func (n *Network) floatCount() int {
	total := 0
	for _, l := range n.Layers {
		if c, ok := l.(*ConvLayer); ok {
			total += c.Filters + len(f32s(c.W))
			if c.BatchNorm {
				total += 3 * c.Filters
			}
		}
	}
	return total
}

// LoadWeights reads a darknet .weights file into the network. A file whose
// size does not match the cfg is refused, naming the expected and actual
// number of floats.
func (n *Network) LoadWeights(path string) (WeightsHeader, error) {
	var h WeightsHeader
	f, err := os.Open(path)
	if err != nil {
		return h, fmt.Errorf("reading weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return h, fmt.Errorf("reading weights: %w", err)
	}
	r := bufio.NewReader(f)
	var v [3]int32
	if err := binary.Read(r, binary.LittleEndian, &v); err != nil {
		return h, fmt.Errorf("%s: truncated header: %v", path, err)
	}
	h.Major, h.Minor, h.Revision = v[0], v[1], v[2]
	hdr := int64(12)
	if h.Major*10+h.Minor >= 2 && h.Major < 1000 && h.Minor < 1000 {
		if err := binary.Read(r, binary.LittleEndian, &h.Seen); err != nil {
			return h, fmt.Errorf("%s: truncated header: %v", path, err)
		}
		hdr += 8
	} else {
		var s uint32
		if err := binary.Read(r, binary.LittleEndian, &s); err != nil {
			return h, fmt.Errorf("%s: truncated header: %v", path, err)
		}
		h.Seen = uint64(s)
		hdr += 4
	}
	want := n.floatCount()
	if got := (st.Size() - hdr) / 4; got != int64(want) || (st.Size()-hdr)%4 != 0 {
		return h, fmt.Errorf("%s: has %d floats after its %d-byte header, but %s needs %d: the weights do not belong to this cfg (or the file is truncated)",
			path, got, hdr, n.Cfg.File, want)
	}
	read := func(dst []float32) error { return binary.Read(r, binary.LittleEndian, dst) }
	for _, l := range n.Layers {
		c, ok := l.(*ConvLayer)
		if !ok {
			continue
		}
		if err := read(f32s(c.Bias)); err != nil {
			return h, fmt.Errorf("%s: %v", path, err)
		}
		if c.BatchNorm {
			for _, d := range [][]float32{f32s(c.Gamma), c.BN.Mean, c.BN.Var} {
				if err := read(d); err != nil {
					return h, fmt.Errorf("%s: %v", path, err)
				}
			}
		}
		if err := read(f32s(c.W)); err != nil {
			return h, fmt.Errorf("%s: %v", path, err)
		}
	}
	return h, nil
}

// WriteWeights writes the network as darknet .weights (version 0.2.5 with a
// 64-bit seen), atomically: a temporary file in the same folder, fsync, rename.
func (n *Network) WriteWeights(path string, seen uint64) error {
	return WriteAtomic(path, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		if err := binary.Write(bw, binary.LittleEndian, [3]int32{0, 2, 5}); err != nil {
			return err
		}
		if err := binary.Write(bw, binary.LittleEndian, seen); err != nil {
			return err
		}
		for _, l := range n.Layers {
			c, ok := l.(*ConvLayer)
			if !ok {
				continue
			}
			parts := [][]float32{f32s(c.Bias)}
			if c.BatchNorm {
				parts = append(parts, f32s(c.Gamma), c.BN.Mean, c.BN.Var)
			}
			parts = append(parts, f32s(c.W))
			for _, p := range parts {
				if err := binary.Write(bw, binary.LittleEndian, p); err != nil {
					return err
				}
			}
		}
		return bw.Flush()
	})
}

// WriteAtomic writes a file through fn so that path holds either its old
// content or the complete new one, never a partial file: temp file in the
// same folder, fsync, rename, fsync of the folder.
func WriteAtomic(path string, fn func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after the rename
	if err := fn(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// HasNonFinite reports the first parameter holding NaN or Inf, or "".
func (n *Network) HasNonFinite() string {
	for _, p := range n.Params() {
		for _, v := range f32s(p.Value) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return p.Name
			}
		}
	}
	return ""
}
