// sgd.cu: the optimizer updates, SGD with momentum and weight decay
// (train/sgd.go) and the EMA of the weights (train/ema.go). Go wrappers:
// gpu/sgd.go.

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
