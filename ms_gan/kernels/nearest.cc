// Nearest-neighbour 2x upsampling (Keras UpSampling2D, nn.Upsample(scale_factor=2, mode="nearest")) and
// its gradient, as MindSpore AOT custom operators (CPU).
//
// MindSpore 2.10's ResizeNearestNeighborV2 took 0.45 s and its gradient 1.4 s per call on dcgan128_rgb's
// (32, 128, 64, 64) -> 128x128 maps, 4.6 s of a 12.7 s training iteration (mindspore.Profiler;
// bench/NOTES.md attempt 62); these loops are bandwidth-bound copies and sums. The gradient adds each
// 2x2 block in the order MindSpore's kernel accumulates it (row by row), so the results are identical.
//   MsGanNearest2x(x (N, C, H, W)) -> y (N, C, 2H, 2W)
//   MsGanNearest2xGrad(dy (N, C, 2H, 2W), x [shape only, not read]) -> dx (N, C, H, W)
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

int threads = 1;

bool f32_4d(int i, int *ndims, const char **dtypes) {
  return ndims[i] == 4 && std::strcmp(dtypes[i], "float32") == 0;
}

// The shapes of a (small, large) pair: large = small with H and W doubled.
bool doubled(const int64_t *small, const int64_t *large) {
  return large[0] == small[0] && large[1] == small[1] && large[2] == 2 * small[2] && large[3] == 2 * small[3];
}

}  // namespace

#define MS_GAN_EXPORT __attribute__((visibility("default")))

extern "C" {

MS_GAN_EXPORT int MsGanNearest2x(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                 void *, void *) {
  if (nparam != 2 || !f32_4d(0, ndims, dtypes) || !f32_4d(1, ndims, dtypes) || !doubled(shapes[0], shapes[1])) {
    std::fprintf(stderr, "ms_gan kernels: MsGanNearest2x expects float32 (N, C, H, W) -> (N, C, 2H, 2W)\n");
    return 1;
  }
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const int64_t rows = shapes[0][0] * shapes[0][1] * shapes[0][2], width = shapes[0][3], out_width = 2 * width;
  // Input row r of plane p, row h (r = p * H + h) becomes output rows 2r and 2r + 1.
#pragma omp parallel for num_threads(threads) if (threads > 1 && rows * width > 65536) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *src = x + r * width;
    float *dst = y + 2 * r * out_width;
    for (int64_t w = 0; w < width; w++) dst[2 * w] = dst[2 * w + 1] = src[w];
    std::memcpy(dst + out_width, dst, sizeof(float) * out_width);
  }
  return 0;
}

MS_GAN_EXPORT int MsGanNearest2xGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                     void *, void *) {
  if (nparam != 3 || !f32_4d(0, ndims, dtypes) || !f32_4d(2, ndims, dtypes) || !doubled(shapes[2], shapes[0])) {
    std::fprintf(stderr, "ms_gan kernels: MsGanNearest2xGrad expects float32 (N, C, 2H, 2W) -> (N, C, H, W)\n");
    return 1;
  }
  const float *dy = static_cast<const float *>(params[0]);
  float *dx = static_cast<float *>(params[2]);
  const int64_t rows = shapes[2][0] * shapes[2][1] * shapes[2][2], width = shapes[2][3], out_width = 2 * width;
#pragma omp parallel for num_threads(threads) if (threads > 1 && rows * width > 65536) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *top = dy + 2 * r * out_width, *bottom = top + out_width;
    float *dst = dx + r * width;
    for (int64_t w = 0; w < width; w++) dst[w] = ((top[2 * w] + top[2 * w + 1]) + bottom[2 * w]) + bottom[2 * w + 1];
  }
  return 0;
}

// Threads of the OpenMP team (ms_gan sets it with the convolutions', from --threads).
MS_GAN_EXPORT void MsGanNearestSetThreads(int n) { threads = n < 1 ? 1 : n; }
}
