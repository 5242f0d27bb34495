package model

// Declarations of simd_amd64.s and the CPU check that enables them.

//go:noescape
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

//go:noescape
func xgetbv0() (eax uint32)

//go:noescape
func affineLeakyAVX2(x, y []float32, a, b float32, leaky bool)

//go:noescape
func sumAVX2(x []float32) float64

//go:noescape
func sqDevAVX2(x []float32, mean float64) float64

//go:noescape
func leakyGradSumsAVX2(x, y, dy, g []float32) (s1, s2 float32)

//go:noescape
func axpbycAVX2(g, x []float32, a, b, c float32)

//go:noescape
func addToAVX2(dst, src []float32)

// haveAVX2 reports AVX2 and FMA with the OS saving the YMM registers.
func haveAVX2() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xgetbv0()&6 != 6 { // XMM and YMM state
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}

var useAVX2 = haveAVX2()
