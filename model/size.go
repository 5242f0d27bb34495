package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Size is a network input size in pixels, width x height (darknet's [net]
// width= and height=). Sizes compare with == and key maps.
type Size struct{ W, H int }

// Square is the size n x n.
func Square(n int) Size { return Size{n, n} }

// DefaultSize is the input size of a cfg whose [net] names none (darknet's
// parse_net_options default is 0 and refuses to run; 416 is YOLOv3's).
var DefaultSize = Square(416)

// String is "W" for a square size and "WxH" otherwise, the forms ParseSize
// and the --size flags accept.
func (s Size) String() string {
	if s.W == s.H {
		return strconv.Itoa(s.W)
	}
	return fmt.Sprintf("%dx%d", s.W, s.H)
}

// IsZero reports whether s is unset.
func (s Size) IsZero() bool { return s.W == 0 && s.H == 0 }

// ParseSize reads "N" (N x N) or "WxH" (also "W,H"). Both sides must be
// positive integers; whether they suit a network is checked where it is built.
func ParseSize(v string) (Size, error) {
	v = strings.TrimSpace(v)
	w, h, two := strings.Cut(strings.ToLower(v), "x")
	if !two {
		w, h, two = strings.Cut(v, ",")
	}
	wi, err1 := strconv.Atoi(strings.TrimSpace(w))
	hi := wi
	var err2 error
	if two {
		hi, err2 = strconv.Atoi(strings.TrimSpace(h))
	}
	if err1 != nil || err2 != nil || wi <= 0 || hi <= 0 {
		return Size{}, fmt.Errorf("size %q: want N or WxH with positive integers (416, 352x288)", v)
	}
	return Size{wi, hi}, nil
}

// CheckStride reports an error unless both sides are positive multiples of
// stride (32 for YOLOv3's heads, the largest stride of the usual cfgs).
func (s Size) CheckStride(stride int) error {
	if s.W <= 0 || s.H <= 0 || s.W%stride != 0 || s.H%stride != 0 {
		return fmt.Errorf("input size %s: each side must be a positive multiple of %d", s, stride)
	}
	return nil
}

// InputSize is the size the network was made for: [net] width x height, or
// DefaultSize when the cfg gives neither. A cfg that gives one side only is
// taken as square (darknet requires both; OpenCV's importer defaults the
// other to 416, which no real cfg relies on).
func (n *Network) InputSize() Size {
	switch {
	case n.Width > 0 && n.Height > 0:
		return Size{n.Width, n.Height}
	case n.Width > 0:
		return Square(n.Width)
	case n.Height > 0:
		return Square(n.Height)
	}
	return DefaultSize
}
