#include "textflag.h"

// AVX2 kernels for the float32 element-wise loops of bnact.go, conv.go and
// route.go (simd.go dispatches to them; each handles the multiple of 8 or 16
// elements it documents and leaves the tail to the Go caller). Element-wise
// results are bit-identical to the Go loops: the same operations in the same
// order, multiply and add separately rounded (no FMA).

DATA ·pointOne32+0(SB)/4, $0x3dcccccd // float32(0.1)
GLOBL ·pointOne32(SB), RODATA|NOPTR, $4
DATA ·one32+0(SB)/4, $0x3f800000 // float32(1)
GLOBL ·one32(SB), RODATA|NOPTR, $4

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	RET

// func affineLeakyAVX2(x, y []float32, a, b float32, leaky bool)
// y[j] = z or max(z, 0.1*z) with z = a*x[j] + b, for j < len(x)&^7.
TEXT ·affineLeakyAVX2(SB), NOSPLIT, $0-57
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), DI
	VBROADCASTSS a+48(FP), Y0
	VBROADCASTSS b+52(FP), Y1
	VBROADCASTSS ·pointOne32(SB), Y2
	MOVBLZX leaky+56(FP), DX
	SHRQ $3, CX
	JZ affdone
	TESTQ DX, DX
	JZ afflin
affloop:
	VMULPS (SI), Y0, Y3
	VADDPS Y1, Y3, Y3
	VMULPS Y2, Y3, Y4
	VMAXPS Y4, Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ affloop
	JMP affdone
afflin:
	VMULPS (SI), Y0, Y3
	VADDPS Y1, Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ afflin
affdone:
	VZEROUPPER
	RET

// func sumAVX2(x []float32) float64
// The float64 sum of x[:len(x)&^15], 16 partial sums.
TEXT ·sumAVX2(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $4, CX
	JZ sumdone
sumloop:
	VCVTPS2PD (SI), Y4
	VCVTPS2PD 16(SI), Y5
	VCVTPS2PD 32(SI), Y6
	VCVTPS2PD 48(SI), Y7
	VADDPD Y4, Y0, Y0
	VADDPD Y5, Y1, Y1
	VADDPD Y6, Y2, Y2
	VADDPD Y7, Y3, Y3
	ADDQ $64, SI
	DECQ CX
	JNZ sumloop
sumdone:
	VADDPD Y1, Y0, Y0
	VADDPD Y3, Y2, Y2
	VADDPD Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	VMOVSD X0, ret+24(FP)
	VZEROUPPER
	RET

// func sqDevAVX2(x []float32, mean float64) float64
// The float64 sum of (x[j]-mean)^2 over x[:len(x)&^15], 16 partial sums.
TEXT ·sqDevAVX2(SB), NOSPLIT, $0-40
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSD mean+24(FP), Y8
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $4, CX
	JZ sqdone
sqloop:
	VCVTPS2PD (SI), Y4
	VCVTPS2PD 16(SI), Y5
	VCVTPS2PD 32(SI), Y6
	VCVTPS2PD 48(SI), Y7
	VSUBPD Y8, Y4, Y4
	VSUBPD Y8, Y5, Y5
	VSUBPD Y8, Y6, Y6
	VSUBPD Y8, Y7, Y7
	VFMADD231PD Y4, Y4, Y0
	VFMADD231PD Y5, Y5, Y1
	VFMADD231PD Y6, Y6, Y2
	VFMADD231PD Y7, Y7, Y3
	ADDQ $64, SI
	DECQ CX
	JNZ sqloop
sqdone:
	VADDPD Y1, Y0, Y0
	VADDPD Y3, Y2, Y2
	VADDPD Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	VMOVSD X0, ret+32(FP)
	VZEROUPPER
	RET

// func leakyGradSumsAVX2(x, y, dy, g []float32) (s1, s2 float32)
// For j < len(y)&^15: g[j] = dy[j] * (y[j] > 0 ? 1 : 0.1); s1 = sum g,
// s2 = sum g*x (float32, 16 partial sums each).
TEXT ·leakyGradSumsAVX2(SB), NOSPLIT, $0-104
	MOVQ x_base+0(FP), SI
	MOVQ y_base+24(FP), R8
	MOVQ y_len+32(FP), CX
	MOVQ dy_base+48(FP), R9
	MOVQ g_base+72(FP), DI
	VBROADCASTSS ·pointOne32(SB), Y14
	VBROADCASTSS ·one32(SB), Y15
	VXORPS Y13, Y13, Y13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	SHRQ $4, CX
	JZ lgdone
lgloop:
	VMOVUPS (R8), Y4
	VMOVUPS 32(R8), Y5
	VCMPPS $0x0e, Y13, Y4, Y6 // y > 0
	VCMPPS $0x0e, Y13, Y5, Y7
	VBLENDVPS Y6, Y15, Y14, Y6 // 1 where y > 0, else 0.1
	VBLENDVPS Y7, Y15, Y14, Y7
	VMULPS (R9), Y6, Y6 // g
	VMULPS 32(R9), Y7, Y7
	VMOVUPS Y6, (DI)
	VMOVUPS Y7, 32(DI)
	VADDPS Y6, Y0, Y0
	VADDPS Y7, Y1, Y1
	VFMADD231PS (SI), Y6, Y2
	VFMADD231PS 32(SI), Y7, Y3
	ADDQ $64, SI
	ADDQ $64, R8
	ADDQ $64, R9
	ADDQ $64, DI
	DECQ CX
	JNZ lgloop
lgdone:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VEXTRACTF128 $1, Y2, X3
	VADDPS X3, X2, X2
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X2, X2, X2
	VHADDPS X2, X2, X2
	VMOVSS X0, s1+96(FP)
	VMOVSS X2, s2+100(FP)
	VZEROUPPER
	RET

// func axpbycAVX2(g, x []float32, a, b, c float32)
// g[j] = (a*g[j] + b*x[j]) + c for j < len(g)&^7.
TEXT ·axpbycAVX2(SB), NOSPLIT, $0-60
	MOVQ g_base+0(FP), DI
	MOVQ g_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	VBROADCASTSS a+48(FP), Y0
	VBROADCASTSS b+52(FP), Y1
	VBROADCASTSS c+56(FP), Y2
	SHRQ $3, CX
	JZ axdone
axloop:
	VMULPS (DI), Y0, Y3
	VMULPS (SI), Y1, Y4
	VADDPS Y4, Y3, Y3
	VADDPS Y2, Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ axloop
axdone:
	VZEROUPPER
	RET

// func addToAVX2(dst, src []float32)
// dst[j] += src[j] for j < len(dst)&^7.
TEXT ·addToAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	SHRQ $3, CX
	JZ adddone
addloop:
	VMOVUPS (DI), Y0
	VADDPS (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ addloop
adddone:
	VZEROUPPER
	RET
