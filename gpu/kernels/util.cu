// util.cu: small utility kernels.

// Sets *flag when any of x[0..n) is not finite.
extern "C" __global__ void check_finite(const float* x, long long n, int* flag) {
  FOR_N(i, n) {
    if (!isfinite(x[i])) { atomicOr(flag, 1); return; }
  }
}

// x *= alpha.
extern "C" __global__ void scale_f32(float* x, long long n, float alpha) {
  FOR_N(i, n) x[i] *= alpha;
}
