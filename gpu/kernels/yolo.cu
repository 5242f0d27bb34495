// yolo.cu: the YOLOv3 loss of one head (model/yolo.go yoloLoss), its value
// and its gradient in one pass, in double precision as the CPU computes it.

static __device__ __forceinline__ double yolo_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

// yolo_bce is model/yolo.go's bce: the stable binary cross-entropy with
// logits, max(x,0) - t*x + log(1+exp(-|x|)), and its derivative sigmoid(x)-t.
static __device__ __forceinline__ double yolo_bce(double x, double t, double* grad) {
  *grad = yolo_sigmoid(x) - t;
  return (x > 0.0 ? x : 0.0) - t * x + log1p(exp(-fabs(x)));
}

static __device__ __forceinline__ double yolo_max0(double v) { return v > 0.0 ? v : 0.0; }

// yolo_iou is box.IoU of the corner boxes a and b (x1,y1,x2,y2).
static __device__ __forceinline__ double yolo_iou(double ax1, double ay1, double ax2, double ay2, const double* b) {
  double iw = (ax2 < b[2] ? ax2 : b[2]) - (ax1 > b[0] ? ax1 : b[0]);
  double ih = (ay2 < b[3] ? ay2 : b[3]) - (ay1 > b[1] ? ay1 : b[1]);
  if (iw <= 0.0 || ih <= 0.0) return 0.0;
  double inter = iw * ih;
  double ua = yolo_max0(ax2 - ax1) * yolo_max0(ay2 - ay1);
  double ub = yolo_max0(b[2] - b[0]) * yolo_max0(b[3] - b[1]);
  double uni = ua + ub - inter;
  if (uni <= 0.0) return 0.0;
  return inter / uni;
}

// yolo_block_add sums v over the block (YOLO_BLOCK threads, every thread
// calling) in shared memory and adds the sums to dst from thread 0: one
// atomic add per block and term. (A tree in shared memory, not warp
// shuffles: clang's check of this source without CUDA headers rejects
// them.)
#define YOLO_BLOCK 256
static __device__ void yolo_block_add(const double v[5], double* dst, double red[5][YOLO_BLOCK]) {
  const int t = threadIdx.x;
  for (int k = 0; k < 5; k++) red[k][t] = v[k];
  __syncthreads();
  for (int s = YOLO_BLOCK / 2; s > 0; s >>= 1) {
    if (t < s)
      for (int k = 0; k < 5; k++) red[k][t] += red[k][t + s];
    __syncthreads();
  }
  if (t == 0)
    for (int k = 0; k < 5; k++) atomicAdd(dst + k, red[k][0]);
}

// yolo_loss: one thread per (image b, anchor a, cell i, j) (grid-stride,
// blocks of YOLO_BLOCK threads),
// x and dx of shape (n, na*(5+nc), gh, gw), activations (act_t: read with
// ld(), the loss in double, the gradient rounded with cv()). dx is fully
// written: the gradient of the loss (upstream gradient 1); it may be x itself
// (each thread reads each of its elements before writing it). loss[0..5) +=
// obj, xy, wh, cls and the number of positives.
//
// Targets (gpu/yolo.go YOLOTargets): truth, 6 doubles per truth of the batch
// (x1, y1, x2, y2 in input pixels, class, weight); anchor, (w, h) per mask
// entry; pos[b*na*gh*gw + a*gh*gw + i*gw + j], 0 or the index into truth
// plus one of the slot's positive; offs[b] .. offs[b+1], image b's truths.
// sx, sy are the strides netW/gw, netH/gh; area netW*netH; inv 1/n; sxy
// scale_x_y; smooth0, smooth1 the class targets used for 0 and 1.
extern "C" __global__ void yolo_loss(act_t* dx, const act_t* x, const double* truth, const double* anchor,
                                     const int* pos, const int* offs, int n, int na, int nc, int gh, int gw,
                                     double sx, double sy, double area, double inv, double ignore, double sxy,
                                     double smooth0, double smooth1, double* loss) {
  __shared__ double red[5][YOLO_BLOCK];
  const long long plane = (long long)gh * gw;
  const long long per = 5 + nc;
  const long long total = (long long)n * na * plane;
  double acc[5] = {0.0, 0.0, 0.0, 0.0, 0.0};  // obj, xy, wh, cls, positives
  FOR_N(idx, total) {
    const int j = (int)(idx % gw);
    const int i = (int)((idx / gw) % gh);
    const long long ba = idx / plane;  // b*na + a
    const int a = (int)(ba % na);
    const int b = (int)(ba / na);
    const long long base = ba * per * plane + (long long)i * gw + j;  // channel k at base + k*plane
    const act_t* xp = x + base;
    act_t* dp = dx + base;
    const double aw = anchor[2 * a], ah = anchor[2 * a + 1];
    const double tx = ld(xp[0]), ty = ld(xp[plane]), tw = ld(xp[2 * plane]), th = ld(xp[3 * plane]),
                 po = ld(xp[4 * plane]);
    const int p = pos[idx];
    if (p > 0) {
      const double* t = truth + 6 * (long long)(p - 1);
      const double m = t[5];
      double g;
      double l = yolo_bce(po, 1.0, &g);
      acc[0] += m * l * inv;
      dp[4 * plane] = cv((float)(m * g * inv));
      const double cx = (t[0] + t[2]) / 2, cy = (t[1] + t[3]) / 2;
      const double w = yolo_max0(t[2] - t[0]), ht = yolo_max0(t[3] - t[1]);
      const double bw = 2 - w * ht / area;
      const double off[2] = {cx / sx - (double)j, cy / sy - (double)i};
      const double txy[2] = {tx, ty};
      for (int k = 0; k < 2; k++) {
        const double tgt = (off[k] + (sxy - 1) / 2) / sxy;
        l = yolo_bce(txy[k], tgt, &g);
        acc[1] += m * bw * l * inv;
        dp[k * plane] = cv((float)(m * bw * g * inv));
      }
      const double twh[2] = {tw, th};
      const double lwh[2] = {log(w / aw), log(ht / ah)};
      for (int k = 0; k < 2; k++) {
        const double d = twh[k] - lwh[k];
        acc[2] += m * bw * fabs(d) * inv;
        const double sg = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);
        dp[(2 + k) * plane] = cv((float)(m * bw * sg * inv));
      }
      const double cls = t[4];
      for (int c = 0; c < nc; c++) {
        const long long o = (5 + c) * plane;
        l = yolo_bce((double)ld(xp[o]), (double)c == cls ? smooth1 : smooth0, &g);
        acc[3] += m * l * inv;
        dp[o] = cv((float)(m * g * inv));
      }
      acc[4] += 1.0;
      continue;
    }
    // A negative, unless its decoded box overlaps one of the image's truths
    // by more than the threshold.
    bool ignored = false;
    const int t0 = offs[b], t1 = offs[b + 1];
    if (t1 > t0) {
      const double px = ((double)j + (yolo_sigmoid(tx) * sxy - (sxy - 1) / 2)) * sx;
      const double py = ((double)i + (yolo_sigmoid(ty) * sxy - (sxy - 1) / 2)) * sy;
      const double pw = exp(tw < 20.0 ? tw : 20.0) * aw;
      const double ph = exp(th < 20.0 ? th : 20.0) * ah;
      const double x1 = px - pw / 2, y1 = py - ph / 2, x2 = px + pw / 2, y2 = py + ph / 2;
      for (int q = t0; q < t1; q++) {
        if (yolo_iou(x1, y1, x2, y2, truth + 6 * (long long)q) > ignore) {
          ignored = true;
          break;
        }
      }
    }
    if (ignored) {
      dp[4 * plane] = cv(0.0f);
    } else {
      double g;
      const double l = yolo_bce(po, 0.0, &g);
      acc[0] += l * inv;
      dp[4 * plane] = cv((float)(g * inv));
    }
    for (int k = 0; k < 4; k++) dp[k * plane] = cv(0.0f);
    for (int c = 0; c < nc; c++) dp[(5 + c) * plane] = cv(0.0f);
  }
  yolo_block_add(acc, loss, red);
}
