package gpu

import (
	"math/rand"
	"testing"
)

// TestPlanSlots: buffers whose lives overlap never share a slot, every slot
// holds its largest buffer, and a chain of short-lived buffers reuses memory.
func TestPlanSlots(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.Intn(30)
		sizes, def, last := make([]int, n), make([]int, n), make([]int, n)
		for i := range sizes {
			sizes[i] = 1 + r.Intn(1000)
			def[i] = i - 1 + r.Intn(2)
			last[i] = def[i] + r.Intn(6)
		}
		slotOf, slotSize := planSlots(sizes, def, last)
		for i := range sizes {
			if slotSize[slotOf[i]] < sizes[i] {
				t.Fatalf("trial %d: buffer %d (%d) in slot %d of %d", trial, i, sizes[i], slotOf[i], slotSize[slotOf[i]])
			}
			for j := i + 1; j < n; j++ {
				overlap := def[i] <= last[j] && def[j] <= last[i]
				if overlap && slotOf[i] == slotOf[j] {
					t.Fatalf("trial %d: buffers %d [%d,%d] and %d [%d,%d] overlap and share slot %d", trial, i, def[i], last[i], j, def[j], last[j], slotOf[i])
				}
			}
		}
	}
	// A chain: each buffer read only by the next layer needs two slots.
	sizes, def, last := []int{5, 5, 5, 5, 5}, []int{0, 1, 2, 3, 4}, []int{1, 2, 3, 4, 5}
	if _, slotSize := planSlots(sizes, def, last); len(slotSize) != 2 {
		t.Errorf("a chain of 5 used %d slots, want 2", len(slotSize))
	}
}
