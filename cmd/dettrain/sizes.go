package main

import (
	"github.com/dettrain/dettrain/model"
)

// sizeFlag is a --size flag: N or WxH; unset (zero) means the cfg's own
// [net] width x height.
type sizeFlag struct{ s *model.Size }

func (f sizeFlag) String() string {
	if f.s == nil || f.s.IsZero() {
		return "the cfg's [net] width x height"
	}
	return f.s.String()
}

func (f sizeFlag) Set(v string) error {
	s, err := model.ParseSize(v)
	if err != nil {
		return err
	}
	if err := s.CheckStride(32); err != nil {
		return err
	}
	*f.s = s
	return nil
}

func (sizeFlag) Type() string { return "N|WxH" }
