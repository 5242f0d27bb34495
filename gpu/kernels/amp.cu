// amp.cu: conversions between float tensors and activation tensors (act_t,
// common.h) for mixed precision: plain copies when act_t is float.

// y = x rounded to act_t (nearest, ties to even).
extern "C" __global__ void op_to_act(act_t* y, const float* x, long long n) {
  FOR_N(i, n) y[i] = cv(x[i]);
}

// y = x widened to float (exact).
extern "C" __global__ void op_from_act(float* y, const act_t* x, long long n) {
  FOR_N(i, n) y[i] = ld(x[i]);
}
