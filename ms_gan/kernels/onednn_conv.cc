// oneDNN convolutions with blocked layouts, as MindSpore AOT custom operators (CPU).
//
// MindSpore 2.10's own CPU convolutions hand oneDNN plain NCHW memory, so oneDNN runs im2col + gemm
// (~80 GFLOP/s on 2 cores); with `format_tag::any` it picks blocked layouts and its direct / brgemm
// kernels (~190 GFLOP/s, PyTorch's speed; bench/NOTES.md attempts 20+). This file is compiled at first
// use by ms_gan/kernels/build.py against the oneDNN MindSpore ships (lib/libdnnl.so.3, threadpool
// runtime) and oneDNN's public headers (PyPI onednn-devel).
//
// Every op takes NCHW float32 tensors plus a `spec` int64 tensor
//   [stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right]
// and describes one convolution src (N, C, H, W) * weights (O, C, KH, KW) -> dst (N, O, OH, OW):
//   MsGanConvForward(src, weights, spec) -> dst
//   MsGanConvBackwardData(diff_dst, weights, spec) -> diff_src      (also a transposed conv's forward)
//   MsGanConvBackwardWeights(src, diff_dst, spec) -> diff_weights
// Shapes come from MindSpore's (ndims, shapes) arguments, so the output tensor's shape fixes the
// dimensions an op cannot infer (diff_src's H, W; diff_weights' KH, KW).
// Primitives and reorders are cached per shape; reorders from/to NCHW happen inside. The blocked buffers
// and scratchpads of every cached operation share one arena: one convolution runs at a time (State's
// lock), and per-operation buffers took dcgan128_rgb's peak RSS from 3.3 to 7.2 GB (bench/NOTES.md).
#include <cstdlib>
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "oneapi/dnnl/dnnl_threadpool.h"
#include "oneapi/dnnl/dnnl_threadpool.hpp"
#include "oneapi/dnnl/dnnl_threadpool_iface.hpp"

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// oneDNN's threadpool runtime (MindSpore's build) runs on whatever pool the stream is given; without
// one it runs single-threaded. An OpenMP team measured fastest of the pools tried (issue 13's probe).
class OmpPool : public dnnl::threadpool_interop::threadpool_iface {
 public:
  int threads = 1;
  int get_num_threads() const override { return threads; }
  bool get_in_parallel() const override { return omp_in_parallel(); }
  uint64_t get_flags() const override { return 0; }  // synchronous: parallel_for returns when done
  void parallel_for(int n, const std::function<void(int, int)> &fn) override {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int i = 0; i < n; i++) fn(i, n);
  }
};

enum Kind { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

struct Geometry {
  memory::dims src, weights, dst, strides, pad_l, pad_r;
};

// One cached operation: the primitive, the plain (NCHW / OIHW) descriptors of the caller's tensors,
// the layouts the primitive chose, and a reorder + buffer for every argument whose layout differs.
struct Arg {
  int dnnl_arg;
  memory::desc plain, chosen;
  bool output;
  std::unique_ptr<dnnl::reorder> reorder;
  memory buffer;  // in the chosen layout, when it differs from plain; its data lives in the arena
  size_t offset = 0;  // of the buffer in the arena
};

struct Op {
  dnnl::primitive prim;
  std::vector<Arg> args;  // in the order of the custom op's tensors: inputs..., output
  memory scratchpad;      // the primitive's scratchpad (user mode), in the arena after the buffers
  size_t scratchpad_offset = 0;
  size_t arena_bytes = 0;  // the arena this operation needs: its buffers, then its scratchpad
};

// Memory shared by every cached operation's blocked buffers and scratchpad, grown to the largest need.
class Arena {
 public:
  ~Arena() { std::free(data_); }
  char *reserve(size_t bytes) {
    if (bytes > size_) {
      std::free(data_);
      data_ = static_cast<char *>(std::aligned_alloc(kAlign, round_up(bytes)));
      if (data_ == nullptr) {
        size_ = 0;
        throw std::bad_alloc();
      }
      size_ = round_up(bytes);
    }
    return data_;
  }
  void release() {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
  }
  static size_t round_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }
  static constexpr size_t kAlign = 4096;  // page-aligned: every buffer starts on a fresh page

 private:
  char *data_ = nullptr;
  size_t size_ = 0;
};

struct State {
  std::mutex lock;  // one convolution at a time: two concurrent OpenMP teams on 2 cores only thrash
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  OmpPool pool;
  dnnl::stream stream;
  std::map<std::string, std::unique_ptr<Op>> cache;
  Arena arena;
  bool plain_thin = true;
  State() { stream = dnnl::threadpool_interop::make_stream(engine, &pool); }
};

State &state() {
  static State s;
  return s;
}

std::string key_of(Kind kind, const Geometry &g, int threads) {
  std::string k = std::to_string(kind) + "|" + std::to_string(threads);
  for (const auto *v : {&g.src, &g.weights, &g.dst, &g.strides, &g.pad_l, &g.pad_r}) {
    k += "|";
    for (auto d : *v) k += std::to_string(d) + ",";
  }
  return k;
}

memory::desc plain4(const memory::dims &d, tag t) { return memory::desc(d, dt::f32, t); }
memory::desc any4(const memory::dims &d) { return memory::desc(d, dt::f32, tag::any); }

void add_arg(Op &op, const dnnl::engine &eng, int dnnl_arg, const memory::desc &plain,
             const memory::desc &chosen, bool output) {
  Arg a{dnnl_arg, plain, chosen, output, nullptr, memory()};
  if (chosen != plain) {
    a.buffer = memory(chosen, eng, DNNL_MEMORY_NONE);
    a.offset = op.arena_bytes;
    op.arena_bytes += Arena::round_up(chosen.get_size());
    a.reorder = output ? std::make_unique<dnnl::reorder>(dnnl::reorder::primitive_desc(eng, chosen, eng, plain))
                       : std::make_unique<dnnl::reorder>(dnnl::reorder::primitive_desc(eng, plain, eng, chosen));
  }
  op.args.push_back(std::move(a));
}

std::unique_ptr<Op> make_op(Kind kind, const Geometry &g, const dnnl::engine &eng, bool plain_thin) {
  auto alg = dnnl::algorithm::convolution_direct;
  auto src_p = plain4(g.src, tag::nchw), w_p = plain4(g.weights, tag::oihw), dst_p = plain4(g.dst, tag::nchw);
  // A 1-channel side (DCGAN's image layers) gains nothing from blocking and its backward-data ran
  // 4-10x faster as plain gemm in the probe: those passes keep NCHW.
  bool thin = plain_thin && (g.src[1] == 1 || g.dst[1] == 1);
  auto pick = [&](const memory::desc &plain, const memory::dims &d) { return thin ? plain : any4(d); };
  auto src_a = pick(src_p, g.src), w_a = pick(w_p, g.weights), dst_a = pick(dst_p, g.dst);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::convolution_forward::primitive_desc fwd(eng, dnnl::prop_kind::forward_training, alg, src_a, w_a,
                                                dst_a, g.strides, g.pad_l, g.pad_r, attr);
  auto op = std::make_unique<Op>();
  memory::desc scratchpad;
  if (kind == kForward) {
    op->prim = dnnl::convolution_forward(fwd);
    scratchpad = fwd.scratchpad_desc();
    add_arg(*op, eng, DNNL_ARG_SRC, src_p, fwd.src_desc(), false);
    add_arg(*op, eng, DNNL_ARG_WEIGHTS, w_p, fwd.weights_desc(), false);
    add_arg(*op, eng, DNNL_ARG_DST, dst_p, fwd.dst_desc(), true);
  } else if (kind == kBackwardData) {
    dnnl::convolution_backward_data::primitive_desc bwd(eng, alg, src_a, w_a, dst_a, g.strides, g.pad_l,
                                                        g.pad_r, fwd, attr);
    op->prim = dnnl::convolution_backward_data(bwd);
    scratchpad = bwd.scratchpad_desc();
    add_arg(*op, eng, DNNL_ARG_DIFF_DST, dst_p, bwd.diff_dst_desc(), false);
    add_arg(*op, eng, DNNL_ARG_WEIGHTS, w_p, bwd.weights_desc(), false);
    add_arg(*op, eng, DNNL_ARG_DIFF_SRC, src_p, bwd.diff_src_desc(), true);
  } else {
    dnnl::convolution_backward_weights::primitive_desc bwd(eng, alg, src_a, w_a, dst_a, g.strides, g.pad_l,
                                                           g.pad_r, fwd, attr);
    op->prim = dnnl::convolution_backward_weights(bwd);
    scratchpad = bwd.scratchpad_desc();
    add_arg(*op, eng, DNNL_ARG_SRC, src_p, bwd.src_desc(), false);
    add_arg(*op, eng, DNNL_ARG_DIFF_DST, dst_p, bwd.diff_dst_desc(), false);
    add_arg(*op, eng, DNNL_ARG_DIFF_WEIGHTS, w_p, bwd.diff_weights_desc(), true);
  }
  if (scratchpad.get_size() > 0) {
    op->scratchpad = memory(scratchpad, eng, DNNL_MEMORY_NONE);
    op->scratchpad_offset = op->arena_bytes;
    op->arena_bytes += Arena::round_up(scratchpad.get_size());
  }
  return op;
}

memory::dims dims_of(int ndim, const int64_t *shape) { return memory::dims(shape, shape + ndim); }

// TensorFlow's SAME padding of one spatial axis: the total that makes dst = ceil(src / stride),
// the odd pixel at the end (MindSpore's and Keras's convention).
void same_pads(int64_t src, int64_t dst, int64_t kernel, int64_t stride, int64_t &before, int64_t &after) {
  int64_t total = (dst - 1) * stride + kernel - src;
  if (total < 0) total = 0;
  before = total / 2;
  after = total - before;
}

int run(Kind kind, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  // Tensors: a, b, spec, [reference input giving the output's shape: not read], output.
  if (nparam != 4 && nparam != 5) {
    std::fprintf(stderr, "ms_gan kernels: expected 3 or 4 inputs and 1 output, got %d tensors\n", nparam);
    return 1;
  }
  const int out = nparam - 1;
  for (int i : {0, 1, out}) {
    if (ndims[i] != 4 || std::strcmp(dtypes[i], "float32") != 0) {
      std::fprintf(stderr, "ms_gan kernels: tensor %d is not a 4-d float32 tensor (%s)\n", i, dtypes[i]);
      return 1;
    }
  }
  if (ndims[2] != 1 || shapes[2][0] != 6 || std::strcmp(dtypes[2], "int64") != 0) {
    std::fprintf(stderr, "ms_gan kernels: the spec is not 6 int64 values\n");
    return 1;
  }
  const int64_t *spec = static_cast<const int64_t *>(params[2]);
  Geometry g;
  memory::dims a = dims_of(4, shapes[0]), b = dims_of(4, shapes[1]), o = dims_of(4, shapes[out]);
  if (kind == kForward) {
    g.src = a, g.weights = b, g.dst = o;
  } else if (kind == kBackwardData) {
    g.dst = a, g.weights = b, g.src = o;
  } else {
    g.src = a, g.dst = b, g.weights = o;
  }
  g.strides = {spec[0], spec[1]};
  g.pad_l = {spec[2], spec[4]};
  g.pad_r = {spec[3], spec[5]};
  if (spec[2] < 0) {
    same_pads(g.src[2], g.dst[2], g.weights[2], spec[0], g.pad_l[0], g.pad_r[0]);
    same_pads(g.src[3], g.dst[3], g.weights[3], spec[1], g.pad_l[1], g.pad_r[1]);
  }
  State &s = state();
  std::lock_guard<std::mutex> guard(s.lock);
  try {
    // oneDNN sizes its kernels' blocking by the calling thread's max concurrency (thread-local under
    // the threadpool runtime): MindSpore's kernel threads must be told the pool's size.
    dnnl_threadpool_interop_set_max_concurrency(s.pool.threads);
    std::string key = key_of(kind, g, s.pool.threads);
    auto it = s.cache.find(key);
    if (it == s.cache.end()) it = s.cache.emplace(key, make_op(kind, g, s.engine, s.plain_thin)).first;
    Op &op = *it->second;
    char *arena = s.arena.reserve(op.arena_bytes);
    std::unordered_map<int, memory> exec_args;
    if (op.scratchpad) {
      op.scratchpad.set_data_handle(arena + op.scratchpad_offset);
      exec_args.insert({DNNL_ARG_SCRATCHPAD, op.scratchpad});
    }
    std::vector<std::pair<size_t, memory>> outputs;
    void *tensor_ptr[3] = {params[0], params[1], params[out]};
    for (size_t i = 0; i < op.args.size(); i++) {
      Arg &arg = op.args[i];
      memory user(arg.plain, s.engine, tensor_ptr[i]);
      if (!arg.reorder) {
        exec_args.insert({arg.dnnl_arg, user});
        continue;
      }
      arg.buffer.set_data_handle(arena + arg.offset);
      if (!arg.output) arg.reorder->execute(s.stream, user, arg.buffer);
      else outputs.emplace_back(i, user);
      exec_args.insert({arg.dnnl_arg, arg.buffer});
    }
    op.prim.execute(s.stream, exec_args);
    for (auto &o : outputs) op.args[o.first].reorder->execute(s.stream, op.args[o.first].buffer, o.second);
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

}  // namespace

#define MS_GAN_EXPORT __attribute__((visibility("default")))

extern "C" {

MS_GAN_EXPORT int MsGanConvForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *,
                     void *) {
  return run(kForward, nparam, params, ndims, shapes, dtypes);
}

MS_GAN_EXPORT int MsGanConvBackwardData(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *,
                          void *) {
  return run(kBackwardData, nparam, params, ndims, shapes, dtypes);
}

MS_GAN_EXPORT int MsGanConvBackwardWeights(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *, void *) {
  return run(kBackwardWeights, nparam, params, ndims, shapes, dtypes);
}

// Threads of the kernels' OpenMP team (ms_gan sets it from the process's CPU threads, --threads).
MS_GAN_EXPORT void MsGanKernelsSetThreads(int threads) {
  State &s = state();
  std::lock_guard<std::mutex> guard(s.lock);
  s.pool.threads = threads < 1 ? 1 : threads;  // primitives are cached per thread count (blocking differs)
}

// 0: every pass uses blocked layouts; 1 (default): passes with a 1-channel side keep NCHW.
MS_GAN_EXPORT void MsGanKernelsSetPlainThin(int on) {
  State &s = state();
  std::lock_guard<std::mutex> guard(s.lock);
  s.plain_thin = on != 0;
  s.cache.clear();
  s.arena.release();
}

// Operations cached so far (tests check that shapes are cached, not rebuilt).
MS_GAN_EXPORT int MsGanKernelsCached() {
  State &s = state();
  std::lock_guard<std::mutex> guard(s.lock);
  return static_cast<int>(s.cache.size());
}
}
