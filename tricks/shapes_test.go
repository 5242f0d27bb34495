package tricks

import "testing"

// TestSizeAtAspect on hand-worked sizes: the drawn size is the longer side
// and the shorter one keeps the aspect, rounded to a multiple of 32:
// 352x288 at 320 -> 320 x 32*round(320*288/352/32) = 32*round(8.18) = 256;
// at 608 -> 32*round(15.55) = 512; 288x352 (portrait) at 608 -> 512x608; a
// square network gets the draw itself; 640x64 at 320 -> 32*round(1) = 32;
// the shorter side is never below 32.
func TestSizeAtAspect(t *testing.T) {
	for _, c := range []struct{ v, w, h, ww, wh int }{
		{320, 352, 288, 320, 256},
		{608, 352, 288, 608, 512},
		{608, 288, 352, 512, 608},
		{416, 416, 416, 416, 416},
		{320, 640, 64, 320, 32},
		{96, 640, 64, 96, 32}, // 96*64/640/32 = 0.3 rounds to 0: at least 32
	} {
		s := Shapes{Sizes: []int{c.v}, Every: 1}
		if w, h := s.SizeAtAspect(7, c.w, c.h); w != c.ww || h != c.wh {
			t.Errorf("%dx%d at %d: %dx%d, want %dx%d", c.w, c.h, c.v, w, h, c.ww, c.wh)
		}
	}
}
