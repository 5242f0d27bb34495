package main

import (
	"strconv"

	"github.com/dettrain/dettrain/config"
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

func modelSize(s config.Size) model.Size { return model.Size{W: s.W, H: s.H} }

// trainSize is the training input size: model.size, or the cfg's [net]
// width x height.
func trainSize(m config.Model, net *model.Network) model.Size {
	if !m.Size.IsZero() {
		return modelSize(m.Size)
	}
	return net.InputSize()
}

// evalSize is the evaluation input size: eval.size, else the training size.
func evalSize(c *config.Config, net *model.Network) model.Size {
	if !c.Eval.Size.IsZero() {
		return modelSize(c.Eval.Size)
	}
	return trainSize(c.Model, net)
}

// setNetSize makes s the network's own input size, in the Network and in
// its cfg's [net] section, so that the model.cfg written from it tells every
// later command the size the model was trained at.
func setNetSize(net *model.Network, s model.Size) {
	net.Width, net.Height = s.W, s.H
	net.Cfg.Net.Set("width", strconv.Itoa(s.W))
	net.Cfg.Net.Set("height", strconv.Itoa(s.H))
}
