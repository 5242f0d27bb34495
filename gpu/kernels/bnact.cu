// bnact.cu: bias + activation and batch norm + activation
// (model/bnact.go), and the per-channel statistics of batch norm
// (synchronized over replicas in model/syncbn.go). Go wrappers:
// gpu/bnact.go.

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
