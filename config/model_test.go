package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestModelDarknetKeys: model.bn_eps, model.anchors and model.partial are
// checked and reported together, and read from --set.
func TestModelDarknetKeys(t *testing.T) {
	c := Default()
	c.Model.Cfg, c.Data.Root, c.Data.Names = "n.cfg", "d", []string{"a"}
	c.Model.BNEps = 0
	c.Model.Anchors = "kmeans"
	c.Model.Partial = -1
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`model.bn_eps = 0: must be > 0 and <= 0.01`,
		`model.anchors = "kmeans": must be "" (the cfg's anchors) or "auto"`,
		`model.partial = -1: must be >= 0`,
	}
	if got := err.(*Error).Problems; !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	l, err := Load("", LoadOptions{Env: []string{}, Sets: []string{"model.cfg=/m.cfg", "data.root=/d", "data.names=a",
		"model.bn_eps=1e-6", "model.anchors=auto", "model.partial=29"}})
	if err != nil {
		t.Fatal(err)
	}
	if l.Model.BNEps != 1e-6 || l.Model.Anchors != "auto" || l.Model.Partial != 29 {
		t.Errorf("model section %+v", l.Model)
	}
}
