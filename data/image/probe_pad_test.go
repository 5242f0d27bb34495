package image

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestProbePaddedJPEG: a complete JPEG followed by zero or FF fill (an
// exporter's or a block copy's padding to 256 KiB or 512 KiB) probes to its
// size, and OpenCV decodes it to the same pixels as the unpadded file (the
// independent check that such a file is good input). The padding lengths
// put the end marker inside, at the end of and across the 64 KiB blocks
// readTail reads. A JPEG cut short stays truncated however it is padded,
// and bytes after the end marker that are not padding are still refused.
func TestProbePaddedJPEG(t *testing.T) {
	dir := t.TempDir()
	jpg := encode(t, noise(64, 48), "jpeg")
	if !bytes.HasSuffix(jpg, []byte{0xFF, 0xD9}) {
		t.Fatal("the encoder's JPEG does not end with FF D9")
	}
	pad := func(b []byte, fill byte, size int) []byte {
		out := append([]byte(nil), b...)
		return append(out, bytes.Repeat([]byte{fill}, size-len(b))...)
	}
	ref := make([]float32, 3*64*48)
	refPath := writeFile(t, filepath.Join(dir, "ref.jpg"), jpg)
	if _, _, err := (OpenCV{}).Load(refPath, 64, 48, ref); err != nil {
		t.Fatal(err)
	}
	good := map[string][]byte{
		"zero256k.jpg":   pad(jpg, 0, 256<<10),
		"zero512k.jpg":   pad(jpg, 0, 512<<10),
		"ff256k.jpg":     pad(jpg, 0xFF, 256<<10),
		"block.jpg":      pad(jpg, 0, len(jpg)+64<<10),   // EOI ends just before the last block
		"straddle.jpg":   pad(jpg, 0, len(jpg)+64<<10-1), // FF D9 split across two blocks
		"crlf.jpg":       append(append([]byte(nil), jpg...), "\r\n"...),
		"mixed-fill.jpg": append(pad(jpg, 0, 100<<10), 0xFF, 0xFF, ' ', '\n'),
	}
	for name, b := range good {
		p := writeFile(t, filepath.Join(dir, name), b)
		w, h, err := Size(p)
		if err != nil || w != 64 || h != 48 {
			t.Errorf("Size %s = %dx%d, %v; want 64x48", name, w, h, err)
			continue
		}
		got := make([]float32, len(ref))
		if _, _, err := (OpenCV{}).Load(p, 64, 48, got); err != nil {
			t.Errorf("OpenCV Load %s: %v", name, err)
			continue
		}
		for i := range ref {
			if got[i] != ref[i] { // the same bytes decoded: exactly equal
				t.Errorf("OpenCV decodes %s differently from the unpadded JPEG at %d: %v vs %v", name, i, got[i], ref[i])
				break
			}
		}
	}
	bad := map[string][]byte{
		"cut-zero.jpg":   pad(jpg[:len(jpg)/2], 0, 256<<10),
		"cut-ff.jpg":     pad(jpg[:len(jpg)-2], 0xFF, 256<<10),
		"cut.jpg":        jpg[:len(jpg)-1],
		"junk-after.jpg": append(append([]byte(nil), jpg...), "abc"...),
	}
	for name, b := range bad {
		p := writeFile(t, filepath.Join(dir, name), b)
		if _, _, err := Size(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("Size %s: err = %v, want a truncation error naming the file", name, err)
		}
	}
}
