package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registers GIF for image.DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io"
	"os"
)

// Probe returns the size of the image at path from its header, without
// decoding the pixels: JPEG, PNG and GIF through the standard library's
// image.DecodeConfig, BMP from its header. It also checks that the file is
// not cut short: a JPEG must end with its EOI marker (FF D9), a PNG with its
// IEND chunk, a GIF with its trailer (3B), a BMP must hold the pixel rows its
// header promises. Padding after the end marker is ignored, however long (a
// JPEG padded with zeros to 256 KiB or 512 KiB by an exporter or a block
// copy decodes in OpenCV without a warning): padding is any run of the bytes
// 00 (zero fill), FF (erased-flash fill), CR, LF and space at the end of the
// file. A JPEG cut inside its entropy-coded data cannot end in FF D9 before
// such padding, since FF in that data is always followed by 00 or an RST
// marker (ITU T.81 B.1.1.5), so padding never hides a truncation. Other
// formats (TIFF, WebP, ...) are decoded in full with OpenCV. Errors name the
// file.
func (OpenCV) Probe(path string) (w, h int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var head [32]byte
	n, _ := io.ReadFull(f, head[:])
	if n >= 2 && head[0] == 'B' && head[1] == 'M' {
		return probeBMP(path, f, head[:n])
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, 0, err
	}
	cfg, format, err := image.DecodeConfig(f)
	if errors.Is(err, image.ErrFormat) {
		m, err := read(path)
		if err != nil {
			return 0, 0, err
		}
		defer m.Close()
		return m.Cols(), m.Rows(), nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("corrupt image %s: %v", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, 0, fmt.Errorf("corrupt image %s: %s header says %dx%d", path, format, cfg.Width, cfg.Height)
	}
	tail, err := readTail(f, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	var ok bool
	switch format {
	case "jpeg":
		ok = bytes.HasSuffix(tail, []byte{0xFF, 0xD9})
	case "png":
		ok = bytes.HasSuffix(tail, []byte{0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82})
	case "gif":
		ok = bytes.HasSuffix(tail, []byte{0x3B})
	default:
		ok = true
	}
	if !ok {
		return 0, 0, fmt.Errorf("truncated image %s: the %s data does not end with its end marker", path, format)
	}
	return cfg.Width, cfg.Height, nil
}

// Size returns the width and height of the image at path (see OpenCV.Probe).
func Size(path string) (w, h int, err error) { return OpenCV{}.Probe(path) }

// isPadding reports whether c may follow an image's end marker: zero fill,
// erased-flash fill (FF), CR, LF or space. (Not bytes.TrimRight: with FF in
// its cutset it compares runes, and a lone D9 decodes to the same
// utf8.RuneError as FF.)
func isPadding(c byte) bool {
	return c == 0x00 || c == 0xFF || c == '\r' || c == '\n' || c == ' '
}

// readTail returns the last n bytes of f before its trailing padding
// (fewer when the file is shorter). The padding is skipped from the end in
// 64 KiB blocks, so a file padded to any length is read only once from its
// last data byte backwards.
func readTail(f *os.File, n int64) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	const block = 64 << 10
	end := st.Size() // the file without its padding is [0, end)
	buf := make([]byte, block)
	for end > 0 {
		k := min(int64(block), end)
		b := buf[:k]
		if _, err := f.ReadAt(b, end-k); err != nil {
			return nil, err
		}
		i := len(b)
		for i > 0 && isPadding(b[i-1]) {
			i--
		}
		end -= k - int64(i)
		if i > 0 {
			break
		}
	}
	n = min(n, end)
	b := make([]byte, n)
	if _, err := f.ReadAt(b, end-n); err != nil {
		return nil, err
	}
	return b, nil
}

// probeBMP reads a BMP's size from its headers (BITMAPCOREHEADER or
// BITMAPINFOHEADER and later) and, for uncompressed bitmaps, checks that the
// file holds offset + |height| * stride bytes, stride = ceil(width*bpp/32)*4.
func probeBMP(path string, f *os.File, head []byte) (int, int, error) {
	bad := func(why string) (int, int, error) {
		return 0, 0, fmt.Errorf("corrupt image %s: BMP %s", path, why)
	}
	if len(head) < 26 {
		return bad("header cut short")
	}
	le := binary.LittleEndian
	offset := int64(le.Uint32(head[10:]))
	var w, h int64
	var bpp, compression uint32
	switch dib := le.Uint32(head[14:]); {
	case dib == 12:
		w, h = int64(le.Uint16(head[18:])), int64(le.Uint16(head[20:]))
		bpp = uint32(le.Uint16(head[24:]))
	case dib >= 40 && len(head) >= 32:
		w, h = int64(int32(le.Uint32(head[18:]))), int64(int32(le.Uint32(head[22:])))
		bpp = uint32(le.Uint16(head[28:]))
		// compression at offset 30 straddles our 32-byte head; read it.
		var c [4]byte
		if _, err := f.ReadAt(c[:], 30); err != nil {
			return bad("header cut short")
		}
		compression = le.Uint32(c[:])
	default:
		return bad(fmt.Sprintf("header of unknown size %d", dib))
	}
	if h < 0 {
		h = -h // top-down bitmap
	}
	if w <= 0 || h <= 0 || bpp == 0 || bpp > 32 {
		return bad(fmt.Sprintf("header says %dx%d at %d bits per pixel", w, h, bpp))
	}
	if compression == 0 || compression == 3 { // BI_RGB, BI_BITFIELDS
		st, err := f.Stat()
		if err != nil {
			return 0, 0, err
		}
		stride := (w*int64(bpp) + 31) / 32 * 4
		if need := offset + h*stride; st.Size() < need {
			return 0, 0, fmt.Errorf("truncated image %s: BMP of %dx%d needs %d bytes, the file has %d", path, w, h, need, st.Size())
		}
	}
	return int(w), int(h), nil
}
