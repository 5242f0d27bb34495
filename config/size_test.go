package config

import (
	"testing"
)

// TestSizes: model.size and eval.size take N or WxH from the file, the
// environment and --set; 0 (the default) means the cfg's own size; the
// YAML written for a run reads back the same; bad sizes are reported with
// the key and the line.
func TestSizes(t *testing.T) {
	const sized = "model:\n  cfg: m.cfg\n  size: 352x288\ndata:\n  root: d\n  names: [a]\n"
	p := write(t, "x.yaml", sized)
	c, err := Load(p, LoadOptions{Env: []string{"DETTRAIN_EVAL_SIZE=320X256"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Model.Size != (Size{352, 288}) || c.Eval.Size != (Size{320, 256}) {
		t.Fatalf("model.size %v, eval.size %v; want 352x288 and 320x256", c.Model.Size, c.Eval.Size)
	}
	y, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(y)
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	if back.Model.Size != c.Model.Size || back.Eval.Size != c.Eval.Size {
		t.Errorf("YAML round trip: %v %v, want %v %v", back.Model.Size, back.Eval.Size, c.Model.Size, c.Eval.Size)
	}
	c, err = Load(p, LoadOptions{Env: noEnv, Sets: []string{"model.size=416", "eval.size=0"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Model.Size != Square(416) || !c.Eval.Size.IsZero() {
		t.Errorf("--set: model.size %v eval.size %v", c.Model.Size, c.Eval.Size)
	}
	msg, file := loadErr(t, "model:\n  cfg: m.cfg\n  size: 352x\ndata:\n  root: d\n  names: [a]\neval:\n  size: 320x250\n", LoadOptions{})
	wantContains(t, msg, file+":3: model.size = \"352x\": expected a size: N or WxH", "eval.size = 320x250: each side must be a multiple of 32")
	for _, v := range []string{"416", "352x288", "0", "64 x 32"} {
		if _, ok := ParseSize(v); !ok {
			t.Errorf("ParseSize(%q) refused", v)
		}
	}
	for _, v := range []string{"", "x", "-32", "32x", "0x32", "a"} {
		if s, ok := ParseSize(v); ok {
			t.Errorf("ParseSize(%q) = %v, want a refusal", v, s)
		}
	}
}
