// route.cu: route (channel concatenation, with groups) and shortcut
// (model/route.go). Go wrappers: gpu/route.go.

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
