package model

import (
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestSlotsShareMemory checks that planSlots gives yolov3's gradient buffers
// far less memory than one buffer each, and that the gradients are the same
// with and without sharing (TestBackwardMatchesGorgonia compares them with
// gorgonia's Grad).
func TestSlotsShareMemory(t *testing.T) {
	net := mustNet(t, "../configs/models/yolov3.cfg", 3)
	g, err := net.NewGraph(2, Square(64), true)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	private := 0
	for _, n := range g.g.AllNodes() {
		if slotRef(n) != nil && inPlaceSource(g.g, n) == nil {
			private += 4 * n.Shape().TotalSize()
		}
	}
	slots, shared := slotBytes(g.g)
	t.Logf("yolov3 at 64, batch 2: %d slots, %d KiB shared; one buffer each: %d KiB", slots, shared>>10, private>>10)
	if slots == 0 || shared*4 > private {
		t.Fatalf("%d slots of %d bytes for %d bytes of gradient buffers: want less than a quarter", slots, shared, private)
	}
}

// TestCheckLive checks that a tensor whose slot was written by another op
// since is refused instead of read.
func TestCheckLive(t *testing.T) {
	s := &gradSlot{size: 6}
	var a, b *tensor.Dense
	var o opBase
	x := o.gradBuffer(s, &a, tensor.Float32, 2, 3)
	if err := checkLive(x); err != nil {
		t.Fatal(err)
	}
	y := o.gradBuffer(s, &b, tensor.Float32, 6)
	if err := checkLive(y); err != nil {
		t.Fatal(err)
	}
	if err := checkLive(x); err == nil || !strings.Contains(err.Error(), "reused") {
		t.Fatalf("reading a reused slot: err %v", err)
	}
	if _, err := dense(G.Value(x)); err == nil {
		t.Fatal("dense accepted a reused slot's tensor")
	}
}
