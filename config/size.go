package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Size is an input size in pixels, width x height. In YAML, the environment
// and --set it is written N (N x N) or WxH (352x288); 0 means "the model
// cfg's own [net] width x height" (see Model.Size and Eval.Size).
type Size struct{ W, H int }

// Square is the size n x n.
func Square(n int) Size { return Size{n, n} }

// IsZero reports whether s is unset (take the cfg's size).
func (s Size) IsZero() bool { return s.W == 0 && s.H == 0 }

// String is "N" for a square size (and "0" unset), "WxH" otherwise.
func (s Size) String() string {
	if s.W == s.H {
		return strconv.Itoa(s.W)
	}
	return fmt.Sprintf("%dx%d", s.W, s.H)
}

// ParseSize reads "N" or "WxH" (either side a non-negative integer; "0" is
// the unset size). Range and multiple-of-32 rules are Validate's.
func ParseSize(v string) (Size, bool) {
	v = strings.TrimSpace(v)
	w, h, two := strings.Cut(strings.ToLower(v), "x")
	wi, err1 := strconv.Atoi(strings.TrimSpace(w))
	hi, err2 := wi, error(nil)
	if two {
		hi, err2 = strconv.Atoi(strings.TrimSpace(h))
	}
	if err1 != nil || err2 != nil || wi < 0 || hi < 0 || (wi == 0) != (hi == 0) {
		return Size{}, false
	}
	return Size{wi, hi}, true
}
