// pool.cu: darknet's maxpool, nearest upsampling and global average
// pooling (model/pool.go). Go wrappers: gpu/pool.go.

// ---- pooling ----

// Pool geometry: input planes of h x w, output planes of ho x wo, windows of
// size at i*stride + off (off = -pad/2); (*m, *s) = fastDiv of w, h, wo, ho
// and stride. Kernels take it as the scalars OP_POOL_PARAMS (gpu/pool.go's
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

// ---- global average pooling ----

// y[p] = mean of plane p's hw elements (double sum).
extern "C" __global__ void op_global_avg_fwd(act_t* y, const act_t* x, int hw) {
  int p = blockIdx.x;
  const act_t* xp = x + (long long)p * hw;
  double s = 0.0, u = 0.0;
  for (int j = threadIdx.x; j < hw; j += blockDim.x) s += ld(xp[j]);
  op_block_sum2(s, u);
  if (threadIdx.x == 0) y[p] = cv((float)(s / (double)hw));
}

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
