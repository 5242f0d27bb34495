// common.h: included first in dettrain's one NVRTC program (gpu/nvrtc.go
// KernelSource). Under NVRTC, __global__, threadIdx, expf, atomicAdd and the
// rest are built in. The #else branch lets clang's CUDA mode compile the same
// source without CUDA headers (gpu/kernels_test.go), to catch errors on
// machines without a GPU.
#ifdef __CUDACC_RTC__
#else
#include <__clang_cuda_builtin_vars.h>
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __forceinline__ __attribute__((always_inline))
extern "C" __device__ float __nv_expf(float);
extern "C" __device__ float __nv_logf(float);
extern "C" __device__ float __nv_log1pf(float);
extern "C" __device__ float __nv_tanhf(float);
extern "C" __device__ float __nv_sqrtf(float);
extern "C" __device__ float __nv_rsqrtf(float);
extern "C" __device__ float __nv_fabsf(float);
extern "C" __device__ float __nv_fminf(float, float);
extern "C" __device__ float __nv_fmaxf(float, float);
extern "C" __device__ double __nv_exp(double);
extern "C" __device__ double __nv_log(double);
extern "C" __device__ double __nv_log1p(double);
extern "C" __device__ double __nv_sqrt(double);
extern "C" __device__ double __nv_fabs(double);
extern "C" __device__ double __nv_tanh(double);
extern "C" __device__ int __nv_isnanf(float);
extern "C" __device__ int __nv_isinff(float);
static __device__ inline float expf(float x) { return __nv_expf(x); }
static __device__ inline float logf(float x) { return __nv_logf(x); }
static __device__ inline float log1pf(float x) { return __nv_log1pf(x); }
static __device__ inline float tanhf(float x) { return __nv_tanhf(x); }
static __device__ inline float sqrtf(float x) { return __nv_sqrtf(x); }
static __device__ inline float rsqrtf(float x) { return __nv_rsqrtf(x); }
static __device__ inline float fabsf(float x) { return __nv_fabsf(x); }
static __device__ inline float fminf(float a, float b) { return __nv_fminf(a, b); }
static __device__ inline float fmaxf(float a, float b) { return __nv_fmaxf(a, b); }
static __device__ inline double exp(double x) { return __nv_exp(x); }
static __device__ inline double log(double x) { return __nv_log(x); }
static __device__ inline double log1p(double x) { return __nv_log1p(x); }
static __device__ inline double sqrt(double x) { return __nv_sqrt(x); }
static __device__ inline double fabs(double x) { return __nv_fabs(x); }
static __device__ inline double tanh(double x) { return __nv_tanh(x); }
static __device__ inline int isfinite(float x) { return !__nv_isnanf(x) && !__nv_isinff(x); }
static __device__ inline float atomicAdd(float* p, float v) { return __nvvm_atom_add_gen_f(p, v); }
static __device__ inline double atomicAdd(double* p, double v) { return __nvvm_atom_add_gen_d(p, v); }
static __device__ inline float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
static __device__ inline unsigned __float_as_uint(float x) { return __builtin_bit_cast(unsigned, x); }
static __device__ inline float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }
static __device__ inline int atomicOr(int* p, int v) { return __nvvm_atom_or_gen_i(p, v); }
// clang 14 accepts its shuffle builtins only in functions with a PTX >= 6.0 feature.
static __device__ inline float __shfl_down_sync(unsigned m, float v, int d) __attribute__((target("ptx60")));
static __device__ inline double __shfl_down_sync(unsigned m, double v, int d) __attribute__((target("ptx60")));
static __device__ inline float __shfl_down_sync(unsigned m, float v, int d) { return __nvvm_shfl_sync_down_f32(m, v, d, 31); }
static __device__ inline double __shfl_down_sync(unsigned m, double v, int d) {
  long long l = __builtin_bit_cast(long long, v);
  int lo = __nvvm_shfl_sync_down_i32(m, (int)l, d, 31), hi = __nvvm_shfl_sync_down_i32(m, (int)(l >> 32), d, 31);
  return __builtin_bit_cast(double, ((long long)hi << 32) | (unsigned)lo);
}
#endif

// ---- act_t begin (gpu/bf16_test.go compiles the lines up to "act_t end" on the host) ----
//
// act_t is the element type of the activation tensors (layer inputs and
// outputs, pre-activations, and their gradients): float by default, the raw
// bits of a bfloat16 when the program starts with #define ACT_BF16 1 (mixed
// precision: activations stored in 16 bits, all arithmetic in float or
// double). Activations are read with ld() and written with cv() (or store());
// per-channel arrays, partial sums, losses and the parameters stay float.
// ACT_BF16_STRICT (gpu/kernels_test.go only) makes act_t a struct, so that a
// read without ld() or a write without cv() is a compile error instead of an
// integer conversion.
#ifdef ACT_BF16
#ifdef ACT_BF16_STRICT
struct act_t {
  unsigned short bits;
};
#define ACT_BITS(v) ((unsigned)(v).bits)
#define ACT_MAKE(u) (act_t{(unsigned short)(u)})
#else
typedef unsigned short act_t;
#define ACT_BITS(v) ((unsigned)(v))
#define ACT_MAKE(u) ((act_t)(u))
#endif
// ld widens a bfloat16 to float (exact).
static __device__ __forceinline__ float ld(act_t v) { return __uint_as_float(ACT_BITS(v) << 16); }
// cv rounds f to the nearest bfloat16, ties to even (as __float2bfloat16_rn):
// overflow rounds to Inf, Inf stays Inf, subnormals round like the other
// values, and a NaN stays a NaN (quieted, sign and top payload bits kept).
static __device__ __forceinline__ act_t cv(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return ACT_MAKE((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return ACT_MAKE(u >> 16);
}
#else
typedef float act_t;
static __device__ __forceinline__ float ld(act_t v) { return v; }
static __device__ __forceinline__ act_t cv(float f) { return f; }
#endif
// ---- act_t end ----

// Grid-stride loop over [0, n).
#define FOR_N(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); i += (long long)blockDim.x * gridDim.x)

// Activations, as darknet's activations.c and model/act.go: 0 linear,
// 1 leaky (0.1), 2 relu, 3 logistic, 4 mish, 5 swish.
#define ACT_LINEAR 0
#define ACT_LEAKY 1
#define ACT_RELU 2
#define ACT_LOGISTIC 3
#define ACT_MISH 4
#define ACT_SWISH 5

// store writes v to *p, or adds it when acc is set (gradient accumulation at
// fan-out points): the float form for float outputs, the act_t form (the sum
// in float, rounded once) for activations; the same function when act_t is
// float.
static __device__ __forceinline__ void store(float* p, float v, int acc) {
  if (acc) *p += v; else *p = v;
}
#ifdef ACT_BF16
static __device__ __forceinline__ void store(act_t* p, float v, int acc) {
  if (acc) *p = cv(ld(*p) + v); else *p = cv(v);
}
#endif

// ---- layer-op helpers ----
//
// The layer ops of a darknet network's training step live one file per op,
// named after its CPU op in model/ (act.cu: model/act.go; bnact.cu:
// bnact.go and syncbn.go's statistics; pool.cu: pool.go; route.cu:
// route.go; scale.cu: scale.go; dropout.cu: dropout.go; sgd.cu: the SGD and
// EMA updates of train/sgd.go and train/ema.go), with their Go wrappers in
// gpu/<op>.go; what they share is below. NCHW contiguous. Activation
// tensors (inputs, outputs, pre-activations and their gradients) are act_t
// (float, or bfloat16 under ACT_BF16), read with ld() and written with cv()
// or store(); the arithmetic, the per-channel arrays, the partial sums and
// the parameters are float (or double).
//
// Sizes are C ints (every tensor has fewer than 2^31 elements). Outputs with
// an acc flag are written with store(): acc = 0 overwrites (the old contents,
// possibly NaN, are never read), acc = 1 adds. Element-wise kernels read
// their inputs before they write the output element, so an output may alias
// an input of the same shape (in-place).
//
// Element-wise kernels run on a capped grid (gpu/op.go's launchEW), each
// thread taking four elements a grid apart per step and loading all four
// before storing any (op_ew): memory-level parallelism, the bottleneck of
// these kernels. Indices are split into (plane, position) with op_div, a
// multiply-shift by a constant computed on the host (no integer division).
//
// Per-channel reductions are deterministic: a fixed partition of each
// channel's n*hw elements over the blocks, a fixed order inside each block
// (thread-strided double accumulators, a shuffle tree, the warps' totals in
// warp order), and the blocks' float partials summed in double in a fixed
// order by a second kernel. No float atomics anywhere.

// op_div(x, m, s) = x / d for 0 <= x < 2^31, (m, s) = gpu/op.go's
// fastDiv(d): floor(x * m / 2^s).
static __device__ __forceinline__ unsigned op_div(unsigned x, unsigned m, int s) {
  return (unsigned)(((unsigned long long)x * m) >> s);
}

// op_ew runs op over [0, n): each thread takes i, i+S, i+2S, i+3S (S the
// grid's thread count, at most 2^21) per step, loading all four before
// putting any. Op provides: struct In; In load(unsigned i) const;
// void put(unsigned i, In v) const.
template <class Op>
static __device__ __forceinline__ void op_ew(const Op& op, unsigned n) {
  unsigned S = blockDim.x * gridDim.x;
  unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  for (; i + 3 * S < n; i += 4 * S) {
    typename Op::In a = op.load(i), b = op.load(i + S), c = op.load(i + 2 * S), d = op.load(i + 3 * S);
    op.put(i, a);
    op.put(i + S, b);
    op.put(i + 2 * S, c);
    op.put(i + 3 * S, d);
  }
  for (; i < n; i += S) op.put(i, op.load(i));
}

// Divisors of the per-channel kernels: element i is in plane q = i/hw, of
// channel q % c.
struct OpChan {
  unsigned hwm, cm, c;
  int hws, cs;
  __device__ unsigned plane(unsigned i) const { return op_div(i, hwm, hws); }
  __device__ unsigned chan(unsigned i) const {
    unsigned q = op_div(i, hwm, hws);
    return q - op_div(q, cm, cs) * c;
  }
};

// ---- activations ----

static __device__ __forceinline__ float op_sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

// softplus as darknet's softplus_activate for mish (threshold 20).
static __device__ __forceinline__ float op_softplus(float z) {
  if (z > 20.0f) return z;
  if (z < -20.0f) return expf(z);
  return log1pf(expf(z));
}

template <int A>
static __device__ __forceinline__ float op_actf(float z) {
  if (A == ACT_LEAKY) return z > 0.0f ? z : 0.1f * z;
  if (A == ACT_RELU) return z > 0.0f ? z : 0.0f;
  if (A == ACT_LOGISTIC) return op_sigmoid(z);
  if (A == ACT_MISH) return z * tanhf(op_softplus(z));
  if (A == ACT_SWISH) return z / (1.0f + expf(-z));
  return z;
}

// d act/dz at the activation's input z, as model/act.go's actGrad (whose
// leaky and relu test y = act(z) > 0, the same as z > 0).
template <int A>
static __device__ __forceinline__ float op_actg(float z) {
  if (A == ACT_LEAKY) return z > 0.0f ? 1.0f : 0.1f;
  if (A == ACT_RELU) return z > 0.0f ? 1.0f : 0.0f;
  if (A == ACT_LOGISTIC) {
    float s = op_sigmoid(z);
    return s * (1.0f - s);
  }
  if (A == ACT_MISH) {
    float t = tanhf(op_softplus(z));
    return t + z * (1.0f - t * t) * op_sigmoid(z);
  }
  if (A == ACT_SWISH) {
    float s = op_sigmoid(z);
    return s + z * s * (1.0f - s);
  }
  return 1.0f;
}

// OP_ACT_DISPATCH(act, f, (args)) calls f<A>(args) with the activation A = act
// as a template constant (one switch per thread, none per element).
#define OP_ACT_DISPATCH(act, f, args)             \
  switch (act) {                                  \
    case ACT_LEAKY: f<ACT_LEAKY> args; break;       \
    case ACT_RELU: f<ACT_RELU> args; break;         \
    case ACT_LOGISTIC: f<ACT_LOGISTIC> args; break; \
    case ACT_MISH: f<ACT_MISH> args; break;         \
    case ACT_SWISH: f<ACT_SWISH> args; break;       \
    default: f<ACT_LINEAR> args; break;             \
  }

// ---- block reductions ----

// op_block_sum2 sums a and b over the block (blockDim.x a multiple of 32, at
// most 1024) in a fixed order; thread 0 gets the totals. Every thread of the
// block must call it.
static __device__ __forceinline__ void op_block_sum2(double& a, double& b) {
  __shared__ double sa[32], sb[32];
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_down_sync(0xffffffffu, a, o);
    b += __shfl_down_sync(0xffffffffu, b, o);
  }
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  if (lane == 0) {
    sa[wid] = a;
    sb[wid] = b;
  }
  __syncthreads();
  if (wid == 0) {
    a = lane < nw ? sa[lane] : 0.0;
    b = lane < nw ? sb[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) {
      a += __shfl_down_sync(0xffffffffu, a, o);
      b += __shfl_down_sync(0xffffffffu, b, o);
    }
  }
}
