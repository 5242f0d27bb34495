package model

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// The fuzz targets run their seed corpus as ordinary tests (go test); to
// search for crashes, run for example
//
//	go test ./model -run '^$' -fuzz FuzzParseCfg -fuzztime 5m
//	go test ./model -run '^$' -fuzz FuzzWeights -fuzztime 5m

// FuzzParseCfg: no cfg text makes the parser or NewNetwork panic or allocate
// without bound, and a cfg that builds is written by Text so that it reads
// back to the same text.
func FuzzParseCfg(f *testing.F) {
	for _, p := range []string{"../configs/models/yolov3-tiny.cfg", "../configs/models/demo-tiny.cfg"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(smallCfg(2)))
	f.Add([]byte("[net]\n[convolutional]\nfilters=6\nsize=1\n[route]\nlayers=-1\ngroups=2\ngroup_id=1\n[shortcut]\nfrom=-2\n[avgpool]\n[scale_channels]\nfrom=-2\n[dropout]\n[upsample]\n" + tinyHead))
	f.Add([]byte("[net]\r\n#c\r\n[maxpool]\r\nsize=2\r\n[yolo]\r\nmask=0\r\nanchors=1,1\r\n"))
	f.Add([]byte("[net]\n[convolutional]\nfilters=99999999\nsize=99999\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := ParseCfg("fuzz.cfg", text)
		if err != nil {
			return
		}
		n, err := NewNetwork(c, 0)
		if err != nil {
			return
		}
		out := n.Cfg.Text()
		if !bytes.Equal(out, text) {
			t.Fatalf("an unchanged cfg is written differently")
		}
		c2, err := ParseCfg("again.cfg", out)
		if err != nil {
			t.Fatalf("Text does not parse: %v", err)
		}
		if _, err := NewNetwork(c2, 2); err != nil && n.Classes > 0 {
			// Refitting the heads may legitimately overflow the limits; it must not panic.
			return
		}
	})
}

// FuzzWeights: no byte string makes the weights readers (ReadWeights and the
// partial import) panic, and a file ReadWeights accepts is written back byte
// for byte with the header it returned.
func FuzzWeights(f *testing.F) {
	n := mustParseF(f, smallCfg(2))
	n.Init(1)
	var good bytes.Buffer
	if err := n.writeWeights(&good, DefaultHeader); err != nil {
		f.Fatal(err)
	}
	var old bytes.Buffer
	n.writeWeights(&old, WeightsHeader{0, 1, 0, 5})
	f.Add(good.Bytes())
	f.Add(old.Bytes())
	f.Add(good.Bytes()[:good.Len()/2])
	f.Add(good.Bytes()[:20])
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := n.ReadWeights(bytes.NewReader(b), int64(len(b)), "fuzz.weights")
		if err == nil {
			var out bytes.Buffer
			if err := n.writeWeights(&out, h); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), b) {
				t.Fatalf("read and written back, %d bytes became %d", len(b), out.Len())
			}
		}
		n.loadPartial(b, "fuzz.weights", 0, io.Discard)
		n.loadPartial(b, "fuzz.weights", 2, io.Discard)
	})
}

func mustParseF(f *testing.F, text string) *Network {
	c, err := ParseCfg("f.cfg", []byte(text))
	if err != nil {
		f.Fatal(err)
	}
	n, err := NewNetwork(c, 0)
	if err != nil {
		f.Fatal(err)
	}
	return n
}
