// ops.cu: the layer ops of a darknet network's training step (model/act.go,
// bnact.go, syncbn.go, pool.go, route.go, scale.go, dropout.go; the SGD and
// EMA updates of train/sgd.go and train/ema.go), NCHW contiguous. Activation
// tensors (inputs, outputs, pre-activations and their gradients) are act_t
// (common.h: float, or bfloat16 under ACT_BF16), read with ld() and written
// with cv() or store(); the arithmetic, the per-channel arrays, the partial
// sums and the parameters are float (or double). Go wrappers: gpu/ops.go.
//
// Sizes are C ints (every tensor has fewer than 2^31 elements). Outputs with
// an acc flag are written with store(): acc = 0 overwrites (the old contents,
// possibly NaN, are never read), acc = 1 adds. Element-wise kernels read
// their inputs before they write the output element, so an output may alias
// an input of the same shape (in-place).
//
// Element-wise kernels run on a capped grid (gpu/ops.go's ewGrid), each
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

// ---- helpers ----

// op_div(x, m, s) = x / d for 0 <= x < 2^31, (m, s) = gpu/ops.go's
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

template <int A>
struct OpActFwd {
  act_t* y;
  const act_t* x;
  struct In {
    float x;
  };
  __device__ In load(unsigned i) const { return In{ld(x[i])}; }
  __device__ void put(unsigned i, In v) const { y[i] = cv(op_actf<A>(v.x)); }
};
template <int A>
static __device__ void op_act_fwd_body(act_t* y, const act_t* x, int n) {
  op_ew(OpActFwd<A>{y, x}, n);
}
// y = act(x).
extern "C" __global__ void op_act_fwd(act_t* y, const act_t* x, int n, int act) {
  OP_ACT_DISPATCH(act, op_act_fwd_body, (y, x, n))
}

template <int A>
struct OpActBwd {
  act_t* dx;
  const act_t* dy;
  const act_t* x;
  int acc;
  struct In {
    float dy, x;
  };
  __device__ In load(unsigned i) const { return In{ld(dy[i]), ld(x[i])}; }
  __device__ void put(unsigned i, In v) const { store(dx + i, v.dy * op_actg<A>(v.x), acc); }
};
template <int A>
static __device__ void op_act_bwd_body(act_t* dx, const act_t* dy, const act_t* x, int n, int acc) {
  op_ew(OpActBwd<A>{dx, dy, x, acc}, n);
}
// dx (+)= dy * act'(x), x the activation's input.
extern "C" __global__ void op_act_bwd(act_t* dx, const act_t* dy, const act_t* x, int n, int act, int acc) {
  OP_ACT_DISPATCH(act, op_act_bwd_body, (dx, dy, x, n, acc))
}

template <int A>
struct OpBiasActFwd {
  act_t* y;
  const act_t* x;
  const float* b;
  OpChan ch;
  struct In {
    float x, b;
  };
  __device__ In load(unsigned i) const { return In{ld(x[i]), b[ch.chan(i)]}; }
  __device__ void put(unsigned i, In v) const { y[i] = cv(op_actf<A>(v.x + v.b)); }
};
template <int A>
static __device__ void op_bias_act_fwd_body(act_t* y, const act_t* x, const float* b, int total, OpChan ch) {
  op_ew(OpBiasActFwd<A>{y, x, b, ch}, total);
}
// y = act(x + b[ch]); (hwm, hws), (cm, cs) = fastDiv(hw), fastDiv(c).
extern "C" __global__ void op_bias_act_fwd(act_t* y, const act_t* x, const float* b, int total, int c, unsigned hwm,
                                           int hws, unsigned cm, int cs, int act) {
  OpChan ch{hwm, cm, (unsigned)c, hws, cs};
  OP_ACT_DISPATCH(act, op_bias_act_fwd_body, (y, x, b, total, ch))
}

template <int A>
struct OpBNActFwd {
  act_t* y;
  const act_t* x;
  const float* mean;
  const float* invstd;
  const float* gamma;
  const float* beta;
  OpChan ch;
  struct In {
    float x, m, s, g, b;
  };
  __device__ In load(unsigned i) const {
    unsigned k = ch.chan(i);
    return In{ld(x[i]), mean[k], invstd[k], gamma[k], beta[k]};
  }
  __device__ void put(unsigned i, In v) const { y[i] = cv(op_actf<A>(v.g * ((v.x - v.m) * v.s) + v.b)); }
};
template <int A>
static __device__ void op_bn_act_fwd_body(act_t* y, const act_t* x, const float* mean, const float* invstd,
                                          const float* gamma, const float* beta, int total, OpChan ch) {
  op_ew(OpBNActFwd<A>{y, x, mean, invstd, gamma, beta, ch}, total);
}
// y = act(gamma*(x-mean)*invstd + beta).
extern "C" __global__ void op_bn_act_fwd(act_t* y, const act_t* x, const float* mean, const float* invstd,
                                         const float* gamma, const float* beta, int total, int c, unsigned hwm, int hws,
                                         unsigned cm, int cs, int act) {
  OpChan ch{hwm, cm, (unsigned)c, hws, cs};
  OP_ACT_DISPATCH(act, op_bn_act_fwd_body, (y, x, mean, invstd, gamma, beta, total, ch))
}

template <int A>
struct OpBNActBwdDx {
  act_t* dx;
  const act_t* dy;
  const act_t* x;
  const float* mean;
  const float* invstd;
  const float* gamma;
  const float* beta;
  const float* sumG;
  const float* sumGX;
  OpChan ch;
  float invm;
  int acc;
  struct In {
    float dy, x, m, s, g, b, sg, sgx;
  };
  __device__ In load(unsigned i) const {
    unsigned k = ch.chan(i);
    return In{ld(dy[i]), ld(x[i]), mean[k], invstd[k], gamma[k], beta[k], sumG[k], sumGX[k]};
  }
  __device__ void put(unsigned i, In v) const {
    float xh = (v.x - v.m) * v.s;
    float g = v.dy * op_actg<A>(v.g * xh + v.b);
    // gamma*invstd/m * (m*g - sumG - xhat*sumGX)
    store(dx + i, v.g * v.s * (g - v.sg * invm - xh * (v.sgx * invm)), acc);
  }
};
template <int A>
static __device__ void op_bn_act_bwd_dx_body(act_t* dx, const act_t* dy, const act_t* x, const float* mean,
                                             const float* invstd, const float* gamma, const float* beta,
                                             const float* sumG, const float* sumGX, int total, OpChan ch, float invm,
                                             int acc) {
  op_ew(OpBNActBwdDx<A>{dx, dy, x, mean, invstd, gamma, beta, sumG, sumGX, ch, invm, acc}, total);
}
// BN backward's dx from the per-channel sums (invm = 1/m, m the global
// element count per channel).
extern "C" __global__ void op_bn_act_bwd_dx(act_t* dx, const act_t* dy, const act_t* x, const float* mean,
                                            const float* invstd, const float* gamma, const float* beta,
                                            const float* sumG, const float* sumGX, int total, int c, unsigned hwm,
                                            int hws, unsigned cm, int cs, int act, float invm, int acc) {
  OpChan ch{hwm, cm, (unsigned)c, hws, cs};
  OP_ACT_DISPATCH(act, op_bn_act_bwd_dx_body, (dx, dy, x, mean, invstd, gamma, beta, sumG, sumGX, total, ch, invm, acc))
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

// ---- per-channel reductions, first level ----
//
// Grid (c, splits), OP_RED_THREADS threads: block (ch, k) reduces elements
// [k*chunk, min(L, (k+1)*chunk)) of channel ch, L = n*hw, where element
// e = b*hw + j of the channel is x[(b*c + ch)*hw + j], and writes its float
// partial to part[ch*splits + k]. Consecutive threads take consecutive
// elements (coalesced); each thread walks its elements with a cursor (b, j)
// advanced by blockDim.x without dividing, four loads in flight per step.

#define OP_RED_THREADS 256

// A reduction mode M provides:
//   struct In;                          what one element reads
//   In load(int a) const;               read element at address a
//   void use(int a, In v, double& s0, double& s1) const;  accumulate (and write)
template <class M>
static __device__ __forceinline__ void op_chan_part(const M& m, float* p0, float* p1, int n, int c, int hw, int chunk) {
  int ch = blockIdx.x, k = blockIdx.y, splits = gridDim.y;
  int L = n * hw;
  int e0 = k * chunk;
  int e1 = L - e0 < chunk ? L : e0 + chunk;
  int bd = blockDim.x, chw = c * hw, base = ch * hw;
  double s0 = 0.0, s1 = 0.0;
  int e = e0 + (int)threadIdx.x;
  if (e < e1) {
    int q = bd / hw, r = bd - q * hw;
    int b = e / hw, j = e - b * hw;
#define OP_RED_STEP        \
  {                     \
    b += q;             \
    j += r;             \
    if (j >= hw) {      \
      j -= hw;          \
      b++;              \
    }                   \
  }
    for (; e + 3 * bd < e1; e += 4 * bd) {
      int a0 = base + b * chw + j;
      OP_RED_STEP
      int a1 = base + b * chw + j;
      OP_RED_STEP
      int a2 = base + b * chw + j;
      OP_RED_STEP
      int a3 = base + b * chw + j;
      OP_RED_STEP
      typename M::In v0 = m.load(a0), v1 = m.load(a1), v2 = m.load(a2), v3 = m.load(a3);
      m.use(a0, v0, s0, s1);
      m.use(a1, v1, s0, s1);
      m.use(a2, v2, s0, s1);
      m.use(a3, v3, s0, s1);
    }
    for (; e < e1; e += bd) {
      int a = base + b * chw + j;
      OP_RED_STEP
      m.use(a, m.load(a), s0, s1);
    }
#undef OP_RED_STEP
  }
  op_block_sum2(s0, s1);
  if (threadIdx.x == 0) {
    p0[ch * splits + k] = (float)s0;
    if (p1) p1[ch * splits + k] = (float)s1;
  }
}

struct OpSumMode {
  const act_t* x;
  struct In {
    float x;
  };
  __device__ In load(int a) const { return In{ld(x[a])}; }
  __device__ void use(int, In v, double& s0, double&) const { s0 += v.x; }
};

// part[ch*splits+k] = partial sum of x over channel ch.
extern "C" __global__ void op_chan_sum_part(float* part, const act_t* x, int n, int c, int hw, int chunk) {
  OpSumMode m{x};
  op_chan_part(m, part, nullptr, n, c, hw, chunk);
}

struct OpSqDevMode {
  const act_t* x;
  float mean;
  struct In {
    float x;
  };
  __device__ In load(int a) const { return In{ld(x[a])}; }
  __device__ void use(int, In v, double& s0, double&) const {
    float d = v.x - mean;
    s0 += d * d;
  }
};

// part = partial sums of (x - mean[ch])^2.
extern "C" __global__ void op_chan_sqdev_part(float* part, const act_t* x, const float* mean, int n, int c, int hw,
                                              int chunk) {
  OpSqDevMode m{x, mean[blockIdx.x]};
  op_chan_part(m, part, nullptr, n, c, hw, chunk);
}

template <int A>
struct OpBiasActBwdMode {
  act_t* dx;
  const act_t* dy;
  const act_t* x;
  float b;
  struct In {
    float dy, x;
  };
  __device__ In load(int a) const { return In{ld(dy[a]), ld(x[a])}; }
  __device__ void use(int a, In v, double& s0, double&) const {
    float g = v.dy * op_actg<A>(v.x + b);
    dx[a] = cv(g);  // the sum takes g before the rounding
    s0 += g;
  }
};

template <int A>
static __device__ void op_bias_act_bwd_body(float* part, act_t* dx, const act_t* dy, const act_t* x, const float* b, int n,
                                         int c, int hw, int chunk) {
  OpBiasActBwdMode<A> m{dx, dy, x, b[blockIdx.x]};
  op_chan_part(m, part, nullptr, n, c, hw, chunk);
}
// dx = dy*act'(x+b[ch]); part = partial sums of dx.
extern "C" __global__ void op_bias_act_bwd_part(float* part, act_t* dx, const act_t* dy, const act_t* x, const float* b,
                                                int n, int c, int hw, int chunk, int act) {
  OP_ACT_DISPATCH(act, op_bias_act_bwd_body, (part, dx, dy, x, b, n, c, hw, chunk))
}

template <int A>
struct OpBNBwdMode {
  const act_t* dy;
  const act_t* x;
  float mean, invstd, gamma, beta;
  struct In {
    float dy, x;
  };
  __device__ In load(int a) const { return In{ld(dy[a]), ld(x[a])}; }
  __device__ void use(int, In v, double& s0, double& s1) const {
    float xh = (v.x - mean) * invstd;
    float g = v.dy * op_actg<A>(gamma * xh + beta);
    s0 += g;
    s1 += g * xh;
  }
};

template <int A>
static __device__ void op_bn_act_bwd_body(float* p0, float* p1, const act_t* dy, const act_t* x, const float* mean,
                                       const float* invstd, const float* gamma, const float* beta, int n, int c, int hw,
                                       int chunk) {
  int ch = blockIdx.x;
  OpBNBwdMode<A> m{dy, x, mean[ch], invstd[ch], gamma[ch], beta[ch]};
  op_chan_part(m, p0, p1, n, c, hw, chunk);
}
// p0, p1 = partial sums of g and g*xhat, g = dy*act'(gamma*xhat+beta).
extern "C" __global__ void op_bn_act_bwd_part(float* p0, float* p1, const act_t* dy, const act_t* x, const float* mean,
                                              const float* invstd, const float* gamma, const float* beta, int n, int c,
                                              int hw, int chunk, int act) {
  OP_ACT_DISPATCH(act, op_bn_act_bwd_body, (p0, p1, dy, x, mean, invstd, gamma, beta, n, c, hw, chunk))
}

// ---- per-channel reductions, second level ----

// One warp per channel (8 channels per 256-thread block), grid.y = 1 or 2
// (out1/part1 for y = 1): out[ch] = sum of part[ch*splits .. +splits) in
// double, lane-strided then a shuffle tree (fixed order).
extern "C" __global__ void op_reduce_finish(float* out0, float* out1, const float* part0, const float* part1, int c,
                                            int splits) {
  float* out = blockIdx.y ? out1 : out0;
  const float* part = blockIdx.y ? part1 : part0;
  int lane = threadIdx.x & 31;
  int ch = (int)(blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5));
  if (ch >= c) return;  // whole warps leave together
  const float* p = part + (long long)ch * splits;
  double s = 0.0;
  for (int k = lane; k < splits; k += 32) s += p[k];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if (lane == 0) out[ch] = (float)s;
}

// ---- batch-norm statistics (per channel, tiny) ----

// mean = sum/m.
extern "C" __global__ void op_bn_mean(float* mean, const float* sum, int c, double m) {
  FOR_N(i, c) mean[i] = (float)((double)sum[i] / m);
}

// invstd = 1/sqrt(sqdev/m + eps); with update, the running statistics move
// towards the batch's (unbiased variance), as model/bnact.go.
extern "C" __global__ void op_bn_finalize(float* invstd, float* runMean, float* runVar, const float* mean,
                                          const float* sqdev, int c, double m, double mo, double eps, int update) {
  FOR_N(i, c) {
    double ss = sqdev[i];
    invstd[i] = (float)(1.0 / sqrt(ss / m + eps));
    if (update) {
      double unbiased = m > 1.0 ? ss / (m - 1.0) : ss / m;
      runMean[i] = (float)((1.0 - mo) * (double)runMean[i] + mo * (double)mean[i]);
      runVar[i] = (float)((1.0 - mo) * (double)runVar[i] + mo * unbiased);
    }
  }
}

// mean = runMean, invstd = 1/sqrt(runVar + eps).
extern "C" __global__ void op_bn_inference(float* mean, float* invstd, const float* runMean, const float* runVar, int c,
                                           double eps) {
  FOR_N(i, c) {
    mean[i] = runMean[i];
    invstd[i] = (float)(1.0 / sqrt((double)runVar[i] + eps));
  }
}

// ---- per-plane reductions: one block per (image, channel) plane ----

// y[p] = mean of plane p's hw elements (double sum).
extern "C" __global__ void op_global_avg_fwd(act_t* y, const act_t* x, int hw) {
  int p = blockIdx.x;
  const act_t* xp = x + (long long)p * hw;
  double s = 0.0, u = 0.0;
  for (int j = threadIdx.x; j < hw; j += blockDim.x) s += ld(xp[j]);
  op_block_sum2(s, u);
  if (threadIdx.x == 0) y[p] = cv((float)(s / (double)hw));
}

// dx (+)= dy*sc[p]; dsc[p] (+)= sum over the plane of dy*x (float products,
// double sum, as model/scale.go).
extern "C" __global__ void op_scale_ch_bwd(act_t* dx, act_t* dsc, const act_t* dy, const act_t* x, const act_t* sc,
                                           int hw, int accX, int accS) {
  int p = blockIdx.x;
  long long off = (long long)p * hw;
  float k = ld(sc[p]);
  double s = 0.0, u = 0.0;
  for (int j = threadIdx.x; j < hw; j += blockDim.x) {
    float d = ld(dy[off + j]), v = ld(x[off + j]);
    store(dx + off + j, d * k, accX);
    s += d * v;
  }
  op_block_sum2(s, u);
  if (threadIdx.x == 0) store(dsc + p, (float)s, accS);
}

// ---- element-wise per-plane ops ----

struct OpAvgBwd {
  act_t* dx;
  const act_t* dy;
  OpChan ch;
  float fhw;
  int acc;
  struct In {
    float d;
  };
  __device__ In load(unsigned i) const { return In{ld(dy[ch.plane(i)])}; }
  __device__ void put(unsigned i, In v) const { store(dx + i, v.d / fhw, acc); }
};
// dx (+)= dy[p]/hw, p = i/hw; (hwm, hws) = fastDiv(hw).
extern "C" __global__ void op_global_avg_bwd(act_t* dx, const act_t* dy, int total, int hw, unsigned hwm, int hws,
                                             int acc) {
  op_ew(OpAvgBwd{dx, dy, OpChan{hwm, 0, 0, hws, 0}, (float)hw, acc}, total);
}

struct OpScaleFwd {
  act_t* y;
  const act_t* x;
  const act_t* sc;
  OpChan ch;
  struct In {
    float x, s;
  };
  __device__ In load(unsigned i) const { return In{ld(x[i]), ld(sc[ch.plane(i)])}; }
  __device__ void put(unsigned i, In v) const { y[i] = cv(v.x * v.s); }
};
// y = x * sc[p], p = i/hw the (image, channel) plane.
extern "C" __global__ void op_scale_ch_fwd(act_t* y, const act_t* x, const act_t* sc, int total, unsigned hwm, int hws) {
  op_ew(OpScaleFwd{y, x, sc, OpChan{hwm, 0, 0, hws, 0}}, total);
}

// ---- pooling ----

// Pool geometry: input planes of h x w, output planes of ho x wo, windows of
// size at i*stride + off (off = -pad/2); (*m, *s) = fastDiv of w, h, wo, ho
// and stride. Kernels take it as the scalars OP_POOL_PARAMS (gpu/ops.go's
// poolArgs) and rebuild it with OP_POOL_MAKE.
struct OpPool {
  int h, w, ho, wo, size, stride, off;
  unsigned wm, hm, wom, hom, sm;
  int ws, hs, wos, hos, ss;
};
#define OP_POOL_PARAMS                                                                                              \
  int h, int w, int ho, int wo, int size, int stride, int off, unsigned wm, int ws, unsigned hm, int hs, unsigned wom, \
      int wos, unsigned hom, int hos, unsigned sm, int ss
#define OP_POOL_MAKE OpPool{h, w, ho, wo, size, stride, off, wm, hm, wom, hom, sm, ws, hs, wos, hos, ss}

// darknet maxpool (model/pool.go): positions outside the plane are skipped,
// the first maximum wins; arg = its index in the input plane, -1 (and
// y = -inf) for a window with no position inside.
struct OpMaxPoolFwd {
  act_t* y;
  int* arg;
  const act_t* x;
  OpPool g;
  struct In {
    float best;
    int a;
  };
  __device__ In load(unsigned o) const {
    unsigned r = op_div(o, g.wom, g.wos);  // output row over all planes
    unsigned p = op_div(r, g.hom, g.hos);
    int j = (int)(o - r * g.wo), i = (int)(r - p * g.ho);
    const act_t* xp = x + (unsigned)p * g.h * g.w;
    float best = -__int_as_float(0x7f800000);
    int a = -1;
    int y0 = i * g.stride + g.off, x0 = j * g.stride + g.off;
    for (int u = 0; u < g.size; u++) {
      int yy = y0 + u;
      if (yy < 0 || yy >= g.h) continue;
      for (int v = 0; v < g.size; v++) {
        int xx = x0 + v;
        if (xx < 0 || xx >= g.w) continue;
        float val = ld(xp[yy * g.w + xx]);
        if (a < 0 || val > best) {
          best = val;
          a = yy * g.w + xx;
        }
      }
    }
    return In{best, a};
  }
  __device__ void put(unsigned o, In v) const {
    y[o] = cv(v.best);
    arg[o] = v.a;
  }
};
extern "C" __global__ void op_maxpool_fwd(act_t* y, int* arg, const act_t* x, int total, OP_POOL_PARAMS) {
  op_ew(OpMaxPoolFwd{y, arg, x, OP_POOL_MAKE}, total);
}

// Gather form of the maxpool gradient: each input element sums, in output
// order (as model/pool.go's scatter), dy of the outputs whose argmax it is,
// looking only at the windows that can contain it: window i holds row yy
// when i*stride + off <= yy <= i*stride + off + size - 1.
struct OpMaxPoolBwd {
  act_t* dx;
  const act_t* dy;
  const int* arg;
  OpPool g;
  int acc;
  struct In {
    float s;
  };
  __device__ In load(unsigned e) const {
    unsigned r = op_div(e, g.wm, g.ws);  // input row over all planes
    unsigned p = op_div(r, g.hm, g.hs);
    int xx = (int)(e - r * g.w), yy = (int)(r - p * g.h);
    int self = yy * g.w + xx;
    int ny = yy - g.off - g.size + 1, nx = xx - g.off - g.size + 1;
    int i0 = ny <= 0 ? 0 : (int)op_div(ny + g.stride - 1, g.sm, g.ss);
    int j0 = nx <= 0 ? 0 : (int)op_div(nx + g.stride - 1, g.sm, g.ss);
    int i1 = (int)op_div(yy - g.off, g.sm, g.ss), j1 = (int)op_div(xx - g.off, g.sm, g.ss);
    if (i1 > g.ho - 1) i1 = g.ho - 1;
    if (j1 > g.wo - 1) j1 = g.wo - 1;
    unsigned base = (unsigned)p * g.ho * g.wo;
    float s = 0.0f;
    for (int i = i0; i <= i1; i++)
      for (int j = j0; j <= j1; j++) {
        unsigned k = base + i * g.wo + j;
        if (arg[k] == self) s += ld(dy[k]);
      }
    return In{s};
  }
  __device__ void put(unsigned e, In v) const { store(dx + e, v.s, acc); }
};
extern "C" __global__ void op_maxpool_bwd(act_t* dx, const act_t* dy, const int* arg, int total, int acc,
                                          OP_POOL_PARAMS) {
  op_ew(OpMaxPoolBwd{dx, dy, arg, OP_POOL_MAKE, acc}, total);
}

// Nearest upsampling by stride s = g.stride: y[p, i, j] = x[p, i/s, j/s]
// (input h x w, output ho x wo).
struct OpUpFwd {
  act_t* y;
  const act_t* x;
  OpPool g;
  struct In {
    float v;
  };
  __device__ In load(unsigned o) const {
    unsigned r = op_div(o, g.wom, g.wos);
    unsigned p = op_div(r, g.hom, g.hos);
    unsigned j = o - r * g.wo, i = r - p * g.ho;
    return In{ld(x[((unsigned)p * g.h + op_div(i, g.sm, g.ss)) * g.w + op_div(j, g.sm, g.ss)])};
  }
  __device__ void put(unsigned o, In v) const { y[o] = cv(v.v); }
};
extern "C" __global__ void op_upsample_fwd(act_t* y, const act_t* x, int total, OP_POOL_PARAMS) {
  op_ew(OpUpFwd{y, x, OP_POOL_MAKE}, total);
}

// dx (+)= the sum of dy over the element's s x s block, row-major order.
struct OpUpBwd {
  act_t* dx;
  const act_t* dy;
  OpPool g;
  int acc;
  struct In {
    float s;
  };
  __device__ In load(unsigned e) const {
    unsigned r = op_div(e, g.wm, g.ws);
    unsigned p = op_div(r, g.hm, g.hs);
    unsigned xx = e - r * g.w, yy = r - p * g.h;
    int s = g.stride;
    const act_t* d = dy + ((unsigned)p * g.ho + (unsigned)yy * s) * g.wo + (unsigned)xx * s;
    float sum = 0.0f;
    for (int u = 0; u < s; u++)
      for (int v = 0; v < s; v++) sum += ld(d[u * g.wo + v]);
    return In{sum};
  }
  __device__ void put(unsigned e, In v) const { store(dx + e, v.s, acc); }
};
extern "C" __global__ void op_upsample_bwd(act_t* dx, const act_t* dy, int total, int acc, OP_POOL_PARAMS) {
  op_ew(OpUpBwd{dx, dy, OP_POOL_MAKE, acc}, total);
}

// ---- route, shortcut ----

// dst[b, dstOff+k, :] (+)= src[b, srcOff+k, :] for k < count: element i of
// the n*count*hw copied is image b = i/per (per = count*hw, (pm, ps) =
// fastDiv(per)), offset i - b*per in the slot.
struct OpCopyCh {
  act_t* dst;
  const act_t* src;
  unsigned pm;
  int ps;
  int per, dstStride, dstBase, srcStride, srcBase, acc;
  struct In {
    float v;
  };
  __device__ In load(unsigned i) const {
    unsigned b = op_div(i, pm, ps);
    return In{ld(src[(unsigned)b * srcStride + srcBase + (i - b * per)])};
  }
  __device__ void put(unsigned i, In v) const {
    unsigned b = op_div(i, pm, ps);
    store(dst + (unsigned)b * dstStride + dstBase + (i - b * per), v.v, acc);
  }
};
extern "C" __global__ void op_copy_channels(act_t* dst, const act_t* src, int total, unsigned pm, int ps, int per,
                                            int dstStride, int dstBase, int srcStride, int srcBase, int acc) {
  op_ew(OpCopyCh{dst, src, pm, ps, per, dstStride, dstBase, srcStride, srcBase, acc}, total);
}

struct OpAdd {
  act_t* y;
  const act_t* a;
  const act_t* b;
  struct In {
    float a, b;
  };
  __device__ In load(unsigned i) const { return In{ld(a[i]), ld(b[i])}; }
  __device__ void put(unsigned i, In v) const { y[i] = cv(v.a + v.b); }
};
// y = a + b.
extern "C" __global__ void op_add(act_t* y, const act_t* a, const act_t* b, int n) { op_ew(OpAdd{y, a, b}, n); }

struct OpAcc {
  act_t* dst;
  const act_t* src;
  int acc;
  struct In {
    float v;
  };
  __device__ In load(unsigned i) const { return In{ld(src[i])}; }
  __device__ void put(unsigned i, In v) const { store(dst + i, v.v, acc); }
};
// dst (+)= src.
extern "C" __global__ void op_accumulate(act_t* dst, const act_t* src, int n, int acc) {
  op_ew(OpAcc{dst, src, acc}, n);
}

// ---- dropout ----

// op_keep24 is the top 24 bits of splitmix64's finalizer of (seed << 32 | i):
// a uniform integer in [0, 2^24); element i is kept when it is >= thresh =
// ceil(p * 2^24), i.e. when op_keep24/2^24 >= p. gpu/ops.go's dropoutHash24
// is the same function on the host.
static __device__ __forceinline__ unsigned op_keep24(unsigned seed, unsigned i) {
  unsigned long long z = ((unsigned long long)seed << 32 | i) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (unsigned)(z >> 40);
}

struct OpDropout {
  act_t* y;
  const act_t* x;
  unsigned thresh, seed;
  float scale;
  int acc;
  struct In {
    float v;
  };
  __device__ In load(unsigned i) const { return In{ld(x[i])}; }
  __device__ void put(unsigned i, In v) const {
    store(y + i, op_keep24(seed, i) >= thresh ? v.v * scale : 0.0f, acc);
  }
};
// y (+)= keep ? x*scale : 0.
extern "C" __global__ void op_dropout(act_t* y, const act_t* x, int n, unsigned thresh, float scale, unsigned seed,
                                      int acc) {
  op_ew(OpDropout{y, x, thresh, seed, scale, acc}, n);
}

// ---- optimizer ----

struct OpSGD {
  float* w;
  float* v;
  const float* g;
  float lr, mo, decay;
  struct In {
    float w, v, g;
  };
  __device__ In load(unsigned i) const { return In{w[i], v[i], g[i]}; }
  __device__ void put(unsigned i, In a) const {
    float vi = mo * a.v - lr * (a.g + decay * a.w);
    v[i] = vi;
    w[i] = a.w + vi;
  }
};
// v = m*v - lr*(g + d*w); w += v (train/sgd.go), unless *skip.
extern "C" __global__ void op_sgd(float* w, float* v, const float* g, int n, float lr, float mo, float decay,
                                  const int* skip) {
  if (skip && *skip) return;
  op_ew(OpSGD{w, v, g, lr, mo, decay}, n);
}

struct OpEMA {
  float* e;
  const float* w;
  float a, b;
  struct In {
    float e, w;
  };
  __device__ In load(unsigned i) const { return In{e[i], w[i]}; }
  __device__ void put(unsigned i, In v) const { e[i] = a * v.e + b * v.w; }
};
// e = a*e + b*w (train/ema.go), unless *skip.
extern "C" __global__ void op_ema(float* e, const float* w, int n, float a, float b, const int* skip) {
  if (skip && *skip) return;
  op_ew(OpEMA{e, w, a, b}, n);
}
