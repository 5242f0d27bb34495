package model

import (
	"bufio"
	"encoding/binary"
	"errors"
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

// DefaultHeader is the header dettrain writes: version 0.2.5, darknet's
// current one (AlexeyAB and pjreddie), with a 64-bit seen.
var DefaultHeader = WeightsHeader{Major: 0, Minor: 2, Revision: 5}

// seenBytes is the size of `seen` for this version: darknet's load_weights
// reads a uint64 when major*10+minor >= 2 (and neither is over 1000), else
// a uint32.
func (h WeightsHeader) seenBytes() int {
	if h.Major*10+h.Minor >= 2 && h.Major < 1000 && h.Minor < 1000 {
		return 8
	}
	return 4
}

// Size is the header's length in bytes: 20 or 16.
func (h WeightsHeader) Size() int { return 12 + h.seenBytes() }

// ErrWeights matches (errors.Is) every *WeightsError.
var ErrWeights = errors.New("bad darknet weights")

// WeightsError is a problem with a .weights file's content: its header, or a
// size that does not fit the cfg.
type WeightsError struct {
	File, Msg string
}

func (e *WeightsError) Error() string        { return e.File + ": " + e.Msg }
func (e *WeightsError) Is(target error) bool { return target == ErrWeights }

func weightsErr(name, format string, a ...any) error {
	return &WeightsError{name, fmt.Sprintf(format, a...)}
}

// readHeader reads and checks a header: versions must not be negative, and
// major or minor over 1000 (darknet's flag for transposed fully-connected
// weights) is refused, as OpenCV refuses it.
func readHeader(r io.Reader, name string) (WeightsHeader, error) {
	var h WeightsHeader
	var v [3]int32
	if err := binary.Read(r, binary.LittleEndian, &v); err != nil {
		return h, weightsErr(name, "truncated header (%v)", err)
	}
	h.Major, h.Minor, h.Revision = v[0], v[1], v[2]
	if h.Major < 0 || h.Minor < 0 || h.Revision < 0 {
		return h, weightsErr(name, "header version %d.%d.%d: not a darknet .weights file", h.Major, h.Minor, h.Revision)
	}
	if h.Major > 1000 || h.Minor > 1000 {
		return h, weightsErr(name, "header version %d.%d.%d marks transposed weights, which dettrain does not read", h.Major, h.Minor, h.Revision)
	}
	if h.seenBytes() == 8 {
		if err := binary.Read(r, binary.LittleEndian, &h.Seen); err != nil {
			return h, weightsErr(name, "truncated header (%v)", err)
		}
	} else {
		var s uint32
		if err := binary.Read(r, binary.LittleEndian, &s); err != nil {
			return h, weightsErr(name, "truncated header (%v)", err)
		}
		h.Seen = uint64(s)
	}
	return h, nil
}

// convParts lists the float slices of a conv layer in file order.
func convParts(c *ConvLayer) [][]float32 {
	parts := [][]float32{f32s(c.Bias)}
	if c.BatchNorm {
		parts = append(parts, f32s(c.Gamma), c.BN.Mean, c.BN.Var)
	}
	return append(parts, f32s(c.W))
}

// LoadWeights reads a darknet .weights file into the network. A file whose
// size does not match the cfg is refused, naming the expected and actual
// number of floats.
func (n *Network) LoadWeights(path string) (WeightsHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return WeightsHeader{}, fmt.Errorf("reading weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return WeightsHeader{}, fmt.Errorf("reading weights: %w", err)
	}
	return n.ReadWeights(bufio.NewReaderSize(f, 1<<20), st.Size(), path)
}

// ReadWeights reads darknet weights of size bytes from r into the network;
// name is used in errors. The size is checked before anything is read.
func (n *Network) ReadWeights(r io.Reader, size int64, name string) (WeightsHeader, error) {
	h, err := readHeader(r, name)
	if err != nil {
		return h, err
	}
	hdr := int64(h.Size())
	want := n.floatCount()
	if body := size - hdr; body != 4*int64(want) {
		return h, weightsErr(name, "has %d floats after its %d-byte header%s, but %s needs %d: the weights do not belong to this cfg (or the file is truncated)",
			body/4, hdr, partialFloat(body), n.Cfg.File, want)
	}
	for i, l := range n.Layers {
		if c, ok := l.(*ConvLayer); ok {
			for _, p := range convParts(c) {
				if err := binary.Read(r, binary.LittleEndian, p); err != nil {
					return h, weightsErr(name, "layer %d: %v", i, err)
				}
			}
		}
	}
	return h, nil
}

// floatCount is the number of floats of the network's .weights body.
func (n *Network) floatCount() int {
	total := 0
	for _, l := range n.Layers {
		if c, ok := l.(*ConvLayer); ok {
			total += convFloats(c)
		}
	}
	return total
}

func convFloats(c *ConvLayer) int {
	k := c.Filters + len(f32s(c.W))
	if c.BatchNorm {
		k += 3 * c.Filters
	}
	return k
}

func partialFloat(body int64) string {
	if body%4 != 0 {
		return fmt.Sprintf(" and %d more bytes", body%4)
	}
	return ""
}

// WriteWeights writes the network as darknet .weights (version 0.2.5 with a
// 64-bit seen), atomically: a temporary file in the same folder, fsync, rename.
func (n *Network) WriteWeights(path string, seen uint64) error {
	h := DefaultHeader
	h.Seen = seen
	return n.WriteWeightsHeader(path, h)
}

// WriteWeightsHeader writes the network as darknet .weights with header h
// (seen as 64 or 32 bits as h's version says), atomically. A network loaded
// with LoadWeights and written with the header it returned gives back the
// same bytes.
func (n *Network) WriteWeightsHeader(path string, h WeightsHeader) error {
	return WriteAtomic(path, func(w io.Writer) error { return n.writeWeights(w, h) })
}

// EncodeWeights writes the network as darknet .weights with header h to w
// (what WriteWeightsHeader writes into its file).
func (n *Network) EncodeWeights(w io.Writer, h WeightsHeader) error { return n.writeWeights(w, h) }

func (n *Network) writeWeights(w io.Writer, h WeightsHeader) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := binary.Write(bw, binary.LittleEndian, [3]int32{h.Major, h.Minor, h.Revision}); err != nil {
		return err
	}
	var err error
	if h.seenBytes() == 8 {
		err = binary.Write(bw, binary.LittleEndian, h.Seen)
	} else {
		err = binary.Write(bw, binary.LittleEndian, uint32(h.Seen))
	}
	if err != nil {
		return err
	}
	for _, l := range n.Layers {
		if c, ok := l.(*ConvLayer); ok {
			for _, p := range convParts(c) {
				if err := binary.Write(bw, binary.LittleEndian, p); err != nil {
					return err
				}
			}
		}
	}
	return bw.Flush()
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
	// fsync the folder: the rename is atomic but not durable until then.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("writing %s: syncing its folder: %w", path, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: syncing its folder (the file is in place but may not survive a power cut): %w", path, err)
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
