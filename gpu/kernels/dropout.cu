// dropout.cu: dropout with counter-based masks (model/dropout.go draws its
// own). Go wrappers: gpu/dropout.go.

// ---- dropout ----

// op_keep24 is the top 24 bits of splitmix64's finalizer of (seed << 32 | i):
// a uniform integer in [0, 2^24); element i is kept when it is >= thresh =
// ceil(p * 2^24), i.e. when op_keep24/2^24 >= p. gpu/dropout.go's dropoutHash24
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
