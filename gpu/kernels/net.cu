// net.cu: kernels of the executor (gpu/net.go) itself.

// Sets *flag when one of the four loss terms (double[4]: obj, xy, wh, cls) is
// not finite, so that the step's update is skipped on the device.
extern "C" __global__ void loss_flag(const double* loss, int* flag) {
  if (blockIdx.x == 0 && threadIdx.x < 4) {
    double v = loss[threadIdx.x];
    if (v != v || v - v != 0) atomicOr(flag, 1);
  }
}
