// scale.cu: scale_channels (model/scale.go). Go wrappers: gpu/scale.go.

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
