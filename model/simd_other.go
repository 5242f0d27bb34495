//go:build !amd64

package model

// Without amd64 assembly every kernel is the Go loop of simd.go.

const useAVX2 = false

func affineLeakyAVX2(x, y []float32, a, b float32, leaky bool) { panic("no AVX2") }
func sumAVX2(x []float32) float64                              { panic("no AVX2") }
func sqDevAVX2(x []float32, mean float64) float64              { panic("no AVX2") }
func leakyGradSumsAVX2(x, y, dy, g []float32) (s1, s2 float32) { panic("no AVX2") }
func axpbycAVX2(g, x []float32, a, b, c float32)               { panic("no AVX2") }
func addToAVX2(dst, src []float32)                             { panic("no AVX2") }
