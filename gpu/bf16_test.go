package gpu

import (
	"encoding/binary"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bf16Host is the host program around common.h's act_t part (between its
// "act_t begin" and "act_t end" lines): for each float (bits, little-endian
// uint32) of the input file it writes the bits of ld(cv(f)), after
// sizeof(act_t).
const bf16Host = `#include <stdio.h>
#include <string.h>
#define __device__
#define __forceinline__ inline
static inline unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
static inline float __uint_as_float(unsigned u) { float x; memcpy(&x, &u, 4); return x; }
%ACT%
int main(int argc, char** argv) {
  if (argc != 3) return 2;
  FILE* in = fopen(argv[1], "rb");
  FILE* out = fopen(argv[2], "wb");
  if (!in || !out) return 2;
  unsigned u = sizeof(act_t);
  fwrite(&u, 4, 1, out);
  while (fread(&u, 4, 1, in) == 1) {
    u = __float_as_uint(ld(cv(__uint_as_float(u))));
    fwrite(&u, 4, 1, out);
  }
  return fclose(out) == 0 ? 0 : 1;
}
`

// bf16RNE is the reference rounding of the float32 with bits u to bfloat16,
// written without common.h's bit trick: the nearest of the two bfloat16
// values around it (compared in float64, where the differences are exact),
// the one with the even last bit on a tie; above the largest finite
// bfloat16 the upper neighbour is 2^128 (rounds to Inf). A NaN stays a NaN
// with its sign and top payload bits, quieted.
func bf16RNE(u uint32) uint16 {
	f := math.Float32frombits(u)
	if f != f {
		return uint16(u>>16) | 0x40
	}
	lo := u &^ 0xffff // towards zero
	if lo == u {
		return uint16(u >> 16) // exact, Inf included
	}
	hi := lo + 0x10000 // away from zero
	a, v := float64(math.Float32frombits(lo)), float64(f)
	b := float64(math.Float32frombits(hi))
	if hi&0x7fffffff == 0x7f800000 {
		b = math.Copysign(math.Ldexp(1, 128), v)
	}
	da, db := math.Abs(v-a), math.Abs(b-v)
	if da < db || da == db && lo&0x10000 == 0 {
		return uint16(lo >> 16)
	}
	return uint16(hi >> 16)
}

// bf16Inputs are float bits to round: every bfloat16 (so every exponent,
// subnormals, zeros, Infs and NaNs of both signs) with low halves below, at
// and above the tie, plus random floats.
func bf16Inputs() []uint32 {
	var in []uint32
	lows := []uint32{0, 1, 0x3fff, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff}
	for h := uint32(0); h < 1<<16; h++ {
		for _, l := range lows {
			in = append(in, h<<16|l)
		}
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 200000; i++ {
		in = append(in, r.Uint32())
	}
	return in
}

// TestKernelsBF16Rounding compiles common.h's act_t part (ld, cv) as host
// C++ with clang++ and checks it on bf16Inputs: under ACT_BF16, cv against
// bf16RNE and ld as the exact widening (ld(cv(f)) = bf16RNE(f) << 16); by
// default, ld(cv(f)) = f bit for bit. It skips without clang++.
func TestKernelsBF16Rounding(t *testing.T) {
	cxx, err := exec.LookPath("clang++")
	if err != nil {
		t.Skip("clang++ not installed: bfloat16 rounding not checked on this machine")
	}
	b, err := kernelFS.ReadFile("kernels/common.h")
	if err != nil {
		t.Fatal(err)
	}
	h := string(b)
	i, j := strings.Index(h, "// ---- act_t begin"), strings.Index(h, "// ---- act_t end")
	if i < 0 || j < i {
		t.Fatal(`common.h: no "act_t begin" ... "act_t end" lines`)
	}
	part := h[i:j]

	dir := t.TempDir()
	inputs := bf16Inputs()
	raw := make([]byte, 4*len(inputs))
	for k, u := range inputs {
		binary.LittleEndian.PutUint32(raw[4*k:], u)
	}
	inPath := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(inPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name, prefix string
		size         uint32
		want         func(uint32) uint32
	}{
		{"float", "", 4, func(u uint32) uint32 { return u }},
		{"bf16", "#define ACT_BF16 1\n", 2, func(u uint32) uint32 { return uint32(bf16RNE(u)) << 16 }},
	} {
		src, exe, outPath := filepath.Join(dir, m.name+".cc"), filepath.Join(dir, m.name), filepath.Join(dir, m.name+".bin")
		if err := os.WriteFile(src, []byte(strings.Replace(bf16Host, "%ACT%", m.prefix+part, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(cxx, "-std=c++17", "-O2", "-Wall", "-Werror", "-o", exe, src).CombinedOutput(); err != nil {
			t.Fatalf("%s: clang++: %v\n%s", m.name, err, firstLines(string(out), 40))
		}
		if out, err := exec.Command(exe, inPath, outPath).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", m.name, err, out)
		}
		got, err := os.ReadFile(outPath)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4+len(raw) {
			t.Fatalf("%s: %d bytes out, want %d", m.name, len(got), 4+len(raw))
		}
		if s := binary.LittleEndian.Uint32(got); s != m.size {
			t.Errorf("%s: sizeof(act_t) = %d, want %d", m.name, s, m.size)
		}
		bad := 0
		for k, u := range inputs {
			g, w := binary.LittleEndian.Uint32(got[4+4*k:]), m.want(u)
			if g != w {
				if bad++; bad <= 10 {
					t.Errorf("%s: %#08x (%g): ld(cv) = %#08x, want %#08x", m.name, u, math.Float32frombits(u), g, w)
				}
			}
		}
		if bad > 10 {
			t.Errorf("%s: %d mismatches of %d", m.name, bad, len(inputs))
		}
	}
}

// TestKernelsBF16Reference checks bf16RNE itself on hand-worked cases.
func TestKernelsBF16Reference(t *testing.T) {
	for _, c := range []struct {
		u    uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // tie, even below
		{0x3f818000, 0x3f82}, // tie, even above
		{0x3f808001, 0x3f81}, // just above the tie
		{0x3f807fff, 0x3f80}, // just below the tie
		{0xbf818000, 0xbf82}, // negative tie
		{0x7f7fffff, 0x7f80}, // largest float rounds to Inf
		{0x7f7f7fff, 0x7f7f}, // stays the largest bfloat16
		{0x7f7f8000, 0x7f80}, // tie at the top: Inf
		{0xff7f8000, 0xff80}, // and -Inf
		{0x7f800000, 0x7f80}, // Inf
		{0xff800000, 0xff80}, // -Inf
		{0x7f800001, 0x7fc0}, // signalling NaN, quieted
		{0xffc00000, 0xffc0}, // quiet NaN
		{0x7fa12345, 0x7fe1}, // payload kept
		{0x00000000, 0x0000}, // +0
		{0x80000000, 0x8000}, // -0
		{0x00000001, 0x0000}, // smallest subnormal rounds to 0
		{0x00008000, 0x0000}, // subnormal tie, even below
		{0x00018000, 0x0002}, // subnormal tie, even above
		{0x007fffff, 0x0080}, // largest subnormal rounds up to the smallest normal
		{0x80008001, 0x8001}, // negative subnormal above the tie
	} {
		if g := bf16RNE(c.u); g != c.want {
			t.Errorf("bf16RNE(%#08x) = %#04x, want %#04x", c.u, g, c.want)
		}
	}
}
