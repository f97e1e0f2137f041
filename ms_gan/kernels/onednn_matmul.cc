// oneDNN matrix products as MindSpore AOT custom operators (CPU): the Dense layers of the small presets.
//
// MindSpore 2.10's CPU MatMul is its own (nnacl) kernel: on mlp_mnist's shapes (batch 64, 128..1024
// features) it ran at 0.55-0.7x the speed of PyTorch's sgemm on one thread (bench/NOTES.md, session 5),
// and MatMul is ~83% of an mlp_mnist iteration's kernel time. oneDNN's matmul primitive (brgemm kernels)
// runs them at PyTorch's speed. Built with onednn_conv.cc into one library by ms_gan/kernels/build.py.
//
//   MsGanMatMul(a, b, spec) -> c          c = op(a) @ op(b), spec int64 [transpose_a, transpose_b]
//   MsGanMatMulBias(a, b, bias, spec) -> c  the same plus bias (1-d, c's columns) in the same kernel
// All tensors 2-d float32, row-major; a transposed operand is a strided view (no copy).
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <vector>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#include "oneapi/dnnl/dnnl_threadpool.h"
#include "oneapi/dnnl/dnnl_threadpool.hpp"
#include "oneapi/dnnl/dnnl_threadpool_iface.hpp"

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

class OmpPool : public dnnl::threadpool_interop::threadpool_iface {
 public:
  int threads = 1;
  int get_num_threads() const override { return threads; }
  bool get_in_parallel() const override { return omp_in_parallel(); }
  uint64_t get_flags() const override { return 0; }
  void parallel_for(int n, const std::function<void(int, int)> &fn) override {
    if (threads == 1 || n == 1) {  // no OpenMP region for one thread: saves its fork/join per call
      for (int i = 0; i < n; i++) fn(i, n);
      return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int i = 0; i < n; i++) fn(i, n);
  }
};

struct Op {
  dnnl::matmul prim;
  memory a, b, bias, c;  // handles re-pointed at each call's tensors
};

struct State {
  std::mutex lock;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  OmpPool pool;
  dnnl::stream stream;
  std::map<std::string, std::unique_ptr<Op>> cache;
  State() { stream = dnnl::threadpool_interop::make_stream(engine, &pool); }
};

State &state() {
  static State s;
  return s;
}

int run(bool with_bias, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  const int expected = with_bias ? 5 : 4;  // a, b, [bias], spec, c
  if (nparam != expected) {
    std::fprintf(stderr, "ms_gan kernels: matmul expected %d tensors, got %d\n", expected, nparam);
    return 1;
  }
  const int spec_i = with_bias ? 3 : 2, out = nparam - 1;
  for (int i : {0, 1, out}) {
    if (ndims[i] != 2 || std::strcmp(dtypes[i], "float32") != 0) {
      std::fprintf(stderr, "ms_gan kernels: matmul tensor %d is not a 2-d float32 tensor (%s)\n", i, dtypes[i]);
      return 1;
    }
  }
  if (ndims[spec_i] != 1 || shapes[spec_i][0] != 2 || std::strcmp(dtypes[spec_i], "int64") != 0) {
    std::fprintf(stderr, "ms_gan kernels: the matmul spec is not 2 int64 values\n");
    return 1;
  }
  const int64_t *spec = static_cast<const int64_t *>(params[spec_i]);
  const bool ta = spec[0] != 0, tb = spec[1] != 0;
  const int64_t m = ta ? shapes[0][1] : shapes[0][0], k = ta ? shapes[0][0] : shapes[0][1];
  const int64_t n = tb ? shapes[1][0] : shapes[1][1], kb = tb ? shapes[1][1] : shapes[1][0];
  if (k != kb || shapes[out][0] != m || shapes[out][1] != n ||
      (with_bias && (ndims[2] != 1 || shapes[2][0] != n || std::strcmp(dtypes[2], "float32") != 0))) {
    std::fprintf(stderr, "ms_gan kernels: matmul shapes do not agree\n");
    return 1;
  }
  State &s = state();
  std::lock_guard<std::mutex> guard(s.lock);
  try {
    dnnl_threadpool_interop_set_max_concurrency(s.pool.threads);
    std::string key = std::to_string(m) + "," + std::to_string(k) + "," + std::to_string(n) + "," +
                      std::to_string(ta) + std::to_string(tb) + std::to_string(with_bias) + "," +
                      std::to_string(s.pool.threads);
    auto it = s.cache.find(key);
    if (it == s.cache.end()) {
      auto op = std::make_unique<Op>();
      memory::desc a_d({m, k}, dt::f32, ta ? tag::ba : tag::ab), b_d({k, n}, dt::f32, tb ? tag::ba : tag::ab),
          c_d({m, n}, dt::f32, tag::ab);
      memory::desc bias_d({1, n}, dt::f32, tag::ab);
      auto pd = with_bias ? dnnl::matmul::primitive_desc(s.engine, a_d, b_d, bias_d, c_d)
                          : dnnl::matmul::primitive_desc(s.engine, a_d, b_d, c_d);
      op->prim = dnnl::matmul(pd);
      op->a = memory(a_d, s.engine, nullptr);
      op->b = memory(b_d, s.engine, nullptr);
      op->c = memory(c_d, s.engine, nullptr);
      if (with_bias) op->bias = memory(bias_d, s.engine, nullptr);
      it = s.cache.emplace(key, std::move(op)).first;
    }
    Op &op = *it->second;
    op.a.set_data_handle(params[0]);
    op.b.set_data_handle(params[1]);
    op.c.set_data_handle(params[out]);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, op.a}, {DNNL_ARG_WEIGHTS, op.b}, {DNNL_ARG_DST, op.c}};
    if (with_bias) {
      op.bias.set_data_handle(params[2]);
      args.insert({DNNL_ARG_BIAS, op.bias});
    }
    op.prim.execute(s.stream, args);
    s.stream.wait();
  } catch (const dnnl::error &e) {
    std::fprintf(stderr, "ms_gan kernels: oneDNN error %d: %s\n", static_cast<int>(e.status), e.what());
    return 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "ms_gan kernels: %s\n", e.what());
    return 1;
  }
  return 0;
}


// ---- Dense layers and BatchNorm1d: fewer, fused kernels for the MLP preset ----
// A `dspec` float32 tensor [activation, slope]: activation 0 none, 1 (leaky) ReLU with `slope`
// (0 = ReLU), 2 tanh. y = act(x @ w^T + b) in one oneDNN matmul (bias and activation as its post-ops), so a
// Dense + activation is one kernel forward (MindSpore: MatMul, BiasAdd, ReLU or LeakyReLU's 5) and two
// backward (MatMul, MatMul, BiasAddGrad, ReluGrad / Mul).

std::unique_ptr<Op> make_matmul(State &s, int64_t m, int64_t k, int64_t n, bool ta, bool tb, bool with_bias,
                                bool relu, float slope) {
  auto op = std::make_unique<Op>();
  memory::desc a_d({m, k}, dt::f32, ta ? tag::ba : tag::ab), b_d({k, n}, dt::f32, tb ? tag::ba : tag::ab),
      c_d({m, n}, dt::f32, tag::ab), bias_d({1, n}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops po;
    po.append_eltwise(dnnl::algorithm::eltwise_relu, slope, 0.f);
    attr.set_post_ops(po);
  }
  auto pd = with_bias ? dnnl::matmul::primitive_desc(s.engine, a_d, b_d, bias_d, c_d, attr)
                      : dnnl::matmul::primitive_desc(s.engine, a_d, b_d, c_d, attr);
  op->prim = dnnl::matmul(pd);
  op->a = memory(a_d, s.engine, nullptr);
  op->b = memory(b_d, s.engine, nullptr);
  op->c = memory(c_d, s.engine, nullptr);
  if (with_bias) op->bias = memory(bias_d, s.engine, nullptr);
  return op;
}

// c = op(a) @ op(b) (+ bias) (then leaky ReLU) on the cached primitive of that shape; caller holds s.lock.
void matmul(State &s, const void *a, const void *b, const void *bias, void *c, int64_t m, int64_t k, int64_t n,
            bool ta, bool tb, bool relu, float slope) {
  char key[160];
  std::snprintf(key, sizeof key, "d%lld,%lld,%lld,%d%d%d%d,%a,%d", (long long)m, (long long)k, (long long)n, ta, tb,
                bias != nullptr, relu, slope, s.pool.threads);
  auto it = s.cache.find(key);
  if (it == s.cache.end()) it = s.cache.emplace(key, make_matmul(s, m, k, n, ta, tb, bias != nullptr, relu, slope)).first;
  Op &op = *it->second;
  op.a.set_data_handle(const_cast<void *>(a));
  op.b.set_data_handle(const_cast<void *>(b));
  op.c.set_data_handle(c);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, op.a}, {DNNL_ARG_WEIGHTS, op.b}, {DNNL_ARG_DST, op.c}};
  if (bias != nullptr) {
    op.bias.set_data_handle(const_cast<void *>(bias));
    args.insert({DNNL_ARG_BIAS, op.bias});
  }
  op.prim.execute(s.stream, args);
  s.stream.wait();
}

bool check(bool ok, const char *what) {
  if (!ok) std::fprintf(stderr, "ms_gan kernels: %s\n", what);
  return ok;
}

bool is_f32(int nd, const char *dtype, int want_nd) { return nd == want_nd && std::strcmp(dtype, "float32") == 0; }

template <typename F>
int guarded(F &&body) {
  State &s = state();
  std::lock_guard<std::mutex> guard(s.lock);
  try {
    dnnl_threadpool_interop_set_max_concurrency(s.pool.threads);
    body(s);
  } catch (const dnnl::error &e) {
    std::fprintf(stderr, "ms_gan kernels: oneDNN error %d: %s\n", static_cast<int>(e.status), e.what());
    return 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "ms_gan kernels: %s\n", e.what());
    return 1;
  }
  return 0;
}

// g = dy * act'(y) (y > 0: 1, else slope; y > 0 exactly when the pre-activation is) into scratch; or dy.
const float *activation_grad(State &s, const float *dy, const float *y, const float *spec, int64_t count,
                             std::vector<float> &scratch) {
  if (spec[0] == 0.f) return dy;
  const float slope = spec[1];
  scratch.resize(count);
  float *g = scratch.data();
  if (spec[0] == 2.f) {  // tanh: dy * (1 - y^2), as PyTorch's tanh_backward and MindSpore's TanhGrad
#pragma omp parallel for num_threads(s.pool.threads) if (s.pool.threads > 1 && count > 65536) schedule(static)
    for (int64_t i = 0; i < count; i++) g[i] = dy[i] * (1.f - y[i] * y[i]);
    return g;
  }
#pragma omp parallel for num_threads(s.pool.threads) if (s.pool.threads > 1 && count > 65536) schedule(static)
  for (int64_t i = 0; i < count; i++) g[i] = y[i] > 0.f ? dy[i] : dy[i] * slope;
  return g;
}

}  // namespace

#define MS_GAN_EXPORT __attribute__((visibility("default")))

extern "C" {

// (x (N, K), w (O, K), b (O), dspec) -> y = act(x @ w^T + b) (N, O)
MS_GAN_EXPORT int MsGanDenseForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                    void *, void *) {
  if (!check(nparam == 5 && is_f32(ndims[0], dtypes[0], 2) && is_f32(ndims[1], dtypes[1], 2) &&
                 is_f32(ndims[2], dtypes[2], 1) && is_f32(ndims[3], dtypes[3], 1) && is_f32(ndims[4], dtypes[4], 2) &&
                 shapes[0][1] == shapes[1][1] && shapes[2][0] == shapes[1][0] && shapes[4][0] == shapes[0][0] &&
                 shapes[4][1] == shapes[1][0],
             "dense forward: expected x (N, K), w (O, K), b (O), spec -> y (N, O), float32"))
    return 1;
  const float *spec = static_cast<const float *>(params[3]);
  return guarded([&](State &s) {
    matmul(s, params[0], params[1], params[2], params[4], shapes[0][0], shapes[0][1], shapes[1][0], false, true,
           spec[0] == 1.f, spec[1]);
    if (spec[0] == 2.f) {  // tanh from libm (accurate to ~1 ulp; MindSpore's CPU Tanh is off by up to 1e-4)
      float *y = static_cast<float *>(params[4]);
      const int64_t count = shapes[4][0] * shapes[4][1];
#pragma omp parallel for num_threads(s.pool.threads) if (s.pool.threads > 1 && count > 65536) schedule(static)
      for (int64_t i = 0; i < count; i++) y[i] = std::tanh(y[i]);
    }
  });
}

// (dy (N, O), y (N, O), w (O, K), dspec) -> dx = (dy * act'(y)) @ w (N, K)
MS_GAN_EXPORT int MsGanDenseBackwardData(int nparam, void **params, int *ndims, int64_t **shapes,
                                         const char **dtypes, void *, void *) {
  if (!check(nparam == 5 && is_f32(ndims[0], dtypes[0], 2) && is_f32(ndims[1], dtypes[1], 2) &&
                 is_f32(ndims[2], dtypes[2], 2) && is_f32(ndims[4], dtypes[4], 2) && shapes[0][1] == shapes[2][0] &&
                 shapes[4][1] == shapes[2][1],
             "dense backward-data: expected dy (N, O), y (N, O), w (O, K), spec -> dx (N, K), float32"))
    return 1;
  const int64_t n = shapes[0][0], o = shapes[0][1], k = shapes[2][1];
  return guarded([&](State &s) {
    static thread_local std::vector<float> scratch;
    const float *g = activation_grad(s, static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                                     static_cast<const float *>(params[3]), n * o, scratch);
    matmul(s, g, params[2], nullptr, params[4], n, o, k, false, false, false, 0.f);
  });
}

// (dy (N, O), y (N, O), x (N, K), dspec) -> (dw = g^T @ x (O, K), db = sum_n g (O)), g = dy * act'(y)
MS_GAN_EXPORT int MsGanDenseBackwardWeights(int nparam, void **params, int *ndims, int64_t **shapes,
                                            const char **dtypes, void *, void *) {
  if (!check(nparam == 6 && is_f32(ndims[0], dtypes[0], 2) && is_f32(ndims[2], dtypes[2], 2) &&
                 is_f32(ndims[4], dtypes[4], 2) && is_f32(ndims[5], dtypes[5], 1) && shapes[0][0] == shapes[2][0] &&
                 shapes[4][0] == shapes[0][1] && shapes[4][1] == shapes[2][1] && shapes[5][0] == shapes[0][1],
             "dense backward-weights: expected dy (N, O), y, x (N, K), spec -> dw (O, K), db (O), float32"))
    return 1;
  const int64_t n = shapes[0][0], o = shapes[0][1], k = shapes[2][1];
  return guarded([&](State &s) {
    static thread_local std::vector<float> scratch;
    const float *g = activation_grad(s, static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                                     static_cast<const float *>(params[3]), n * o, scratch);
    matmul(s, g, params[2], nullptr, params[4], o, n, k, true, false, false, 0.f);
    float *db = static_cast<float *>(params[5]);
    for (int64_t j = 0; j < o; j++) db[j] = 0.f;
    for (int64_t i = 0; i < n; i++) {
      const float *row = g + i * o;
      for (int64_t j = 0; j < o; j++) db[j] += row[j];
    }
  });
}

// Per-column mean of x (N, C) and the sum of squared deviations from it, for both BatchNorm passes (the
// backward recomputes them from x rather than keeping them from the forward).
static void batch_moments(const float *x, int64_t n, int64_t c, std::vector<float> &mean, std::vector<float> &sq) {
  mean.assign(c, 0.f);
  sq.assign(c, 0.f);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < c; j++) mean[j] += x[i * c + j];
  for (int64_t j = 0; j < c; j++) mean[j] /= static_cast<float>(n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < c; j++) {
      const float d = x[i * c + j] - mean[j];
      sq[j] += d * d;
    }
}

// BatchNorm1d in training mode, MindSpore's momentum convention (momentum = the batch term's weight):
// (x (N, C), gamma, beta, moving_mean, moving_var (C), bspec [eps, momentum]) ->
//   (y (N, C), new moving_mean, new moving_var (C)); bspec [eps, momentum, 1 - momentum]; y = (x - mean) * (gamma / sqrt(var + eps)) + beta with
//   the biased batch variance, the unbiased one entering moving_var (as ms_gan.nn.workarounds.BatchNorm1d).
MS_GAN_EXPORT int MsGanBatchNormForward(int nparam, void **params, int *ndims, int64_t **shapes,
                                        const char **dtypes, void *, void *) {
  if (!check(nparam == 9 && is_f32(ndims[0], dtypes[0], 2) && is_f32(ndims[6], dtypes[6], 2) &&
                 shapes[1][0] == shapes[0][1] && shapes[6][0] == shapes[0][0] && shapes[6][1] == shapes[0][1] &&
                 shapes[0][0] > 1,
             "batch norm forward: expected x (N > 1, C), gamma, beta, mean, var (C), spec -> y, mean, var"))
    return 1;
  const int64_t n = shapes[0][0], c = shapes[0][1];
  const float *x = static_cast<const float *>(params[0]), *gamma = static_cast<const float *>(params[1]),
              *beta = static_cast<const float *>(params[2]), *mm = static_cast<const float *>(params[3]),
              *mv = static_cast<const float *>(params[4]), *spec = static_cast<const float *>(params[5]);
  float *y = static_cast<float *>(params[6]), *new_mm = static_cast<float *>(params[7]),
        *new_mv = static_cast<float *>(params[8]);
  const float eps = spec[0], momentum = spec[1], keep = spec[2];  // keep = 1 - momentum, rounded once in Python
  const float unbias = static_cast<float>(static_cast<double>(n) / (static_cast<double>(n) - 1.0));
  return guarded([&](State &s) {
    static thread_local std::vector<float> mean, scale;
    batch_moments(x, n, c, mean, scale);   // scale holds the summed squared deviations until below
    for (int64_t j = 0; j < c; j++) {
      const float var = scale[j] / static_cast<float>(n);
      new_mm[j] = keep * mm[j] + momentum * mean[j];
      new_mv[j] = keep * mv[j] + momentum * var * unbias;
      scale[j] = gamma[j] / std::sqrt(var + eps);
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < c; j++) y[i * c + j] = (x[i * c + j] - mean[j]) * scale[j] + beta[j];
  });
}

// (dy (N, C), x (N, C), gamma (C), bspec) -> (dx (N, C), dgamma, dbeta (C)) of the training-mode forward
// (batch statistics recomputed from x).
MS_GAN_EXPORT int MsGanBatchNormBackward(int nparam, void **params, int *ndims, int64_t **shapes,
                                         const char **dtypes, void *, void *) {
  if (!check(nparam == 7 && is_f32(ndims[0], dtypes[0], 2) && is_f32(ndims[1], dtypes[1], 2) &&
                 shapes[0][0] == shapes[1][0] && shapes[0][1] == shapes[1][1] && shapes[2][0] == shapes[0][1],
             "batch norm backward: expected dy (N, C), x (N, C), gamma (C), spec -> dx, dgamma, dbeta"))
    return 1;
  const int64_t n = shapes[0][0], c = shapes[0][1];
  const float *dy = static_cast<const float *>(params[0]), *x = static_cast<const float *>(params[1]),
              *gamma = static_cast<const float *>(params[2]), *spec = static_cast<const float *>(params[3]);
  float *dx = static_cast<float *>(params[4]), *dgamma = static_cast<float *>(params[5]),
        *dbeta = static_cast<float *>(params[6]);
  const float eps = spec[0];
  return guarded([&](State &s) {
    static thread_local std::vector<float> mean, rstd;
    batch_moments(x, n, c, mean, rstd);    // rstd holds the summed squared deviations until below
    for (int64_t j = 0; j < c; j++) {
      rstd[j] = 1.f / std::sqrt(rstd[j] / static_cast<float>(n) + eps);
      dgamma[j] = 0.f;
      dbeta[j] = 0.f;
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < c; j++) {
        const float g = dy[i * c + j];
        dbeta[j] += g;
        dgamma[j] += g * (x[i * c + j] - mean[j]) * rstd[j];
      }
    const float inv_n = 1.f / static_cast<float>(n);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < c; j++) {
        const float xhat = (x[i * c + j] - mean[j]) * rstd[j];
        dx[i * c + j] = gamma[j] * rstd[j] * (dy[i * c + j] - inv_n * (dbeta[j] + xhat * dgamma[j]));
      }
  });
}


MS_GAN_EXPORT int MsGanMatMul(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *,
                              void *) {
  return run(false, nparam, params, ndims, shapes, dtypes);
}

MS_GAN_EXPORT int MsGanMatMulBias(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                  void *, void *) {
  return run(true, nparam, params, ndims, shapes, dtypes);
}

MS_GAN_EXPORT void MsGanMatMulSetThreads(int threads) {
  State &s = state();
  std::lock_guard<std::mutex> guard(s.lock);
  s.pool.threads = threads < 1 ? 1 : threads;
}

MS_GAN_EXPORT int MsGanMatMulCached() {
  State &s = state();
  std::lock_guard<std::mutex> guard(s.lock);
  return static_cast<int>(s.cache.size());
}
}
