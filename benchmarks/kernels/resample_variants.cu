// Microbenchmark of the resample kernel's configurations (issue #2): a copy
// roofline, the kernel as it was (resample_baseline.cuh), the library's shape
// heuristic, every configuration of csrc/resample_configs.cuh and a split
// plan/gather diagnostic, on the large case (B=256 S=2000 D=256 T=1000 bf16)
// and the training case (B=256 S=500 D=32 T=50, f32 and bf16).
//
// Timing: a CUDA graph of back-to-back launches (as XLA runs them), the
// inputs and outputs rotated over enough copies to exceed the L2; median per
// launch over the replays, two rounds in opposite orders (min reported, the
// spread between them shown). GB/s counts the bytes of
// benchmarks/suites/resample.py's bytes_moved (value rows referenced, queries,
// output) for the same inputs. Correctness: every variant's out and valid
// are compared bit for bit with the baseline's, on the timed inputs and on
// "mixed" inputs (ragged lengths with garbage padding, duplicate timestamps,
// unsorted, out-of-range, exact and NaN queries, NaN values, every method and
// out-of-range policy, shared times/queries, unvectorised and long rows).
//
// Build and run: bash benchmarks/kernels/run_resample_variants.sh
#define ROBOCACHE_RESAMPLE_NO_HANDLER
#include "resample.cu"  // csrc/ on the include path

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "resample_baseline.cuh"
#include "resample_split.cuh"

#include "cuda_check.cuh"
namespace rc = robocache;
namespace cfg = robocache::resample_cfg;
using bf16 = __nv_bfloat16;


// ---- inputs -----------------------------------------------------------------
__device__ uint64_t Mix(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}
// N(0, 1) values (Box-Muller on a hash), a fraction of them NaN.
template <typename V>
__global__ void FillNormal(V* v, size_t n, uint64_t seed, float nan_frac) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    const uint64_t h = Mix(seed * 0x9e3779b97f4a7c15ULL + i);
    const float u1 = ((h >> 40) + 1) * (1.0f / 16777217.0f), u2 = ((h >> 16) & 0xffffff) * (1.0f / 16777216.0f);
    float x = sqrtf(-2.f * logf(u1)) * cospif(2.f * u2);
    if ((h & 0xffff) < nan_frac * 65536.f) x = __int_as_float(0x7fc00000);
    v[i] = static_cast<V>(x);
  }
}

struct Problem {
  std::string name;
  int B, S, D, T;
  bool is_bf16;
  int method = rc::kLinear, oor = rc::kClamp;
  bool mixed = false;   // adversarial inputs (see the file comment)
  bool shared = false;  // times [1, S], queries [1, T], lengths [1]
  bool sorted = true;   // queries sorted within each episode
  int copies = 1;
  int per_graph = 1;  // launches per timed graph
  std::vector<void*> values, out;
  std::vector<float*> times, queries;
  std::vector<int32_t*> lengths;
  std::vector<bool*> valid;
  double bytes = 0;  // bytes_moved, mean over copies
  size_t item() const { return is_bf16 ? 2 : 4; }
  size_t out_bytes() const { return size_t(B) * T * D * item(); }
};

void* DevAlloc(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 256)));
  return p;
}

void Build(Problem& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> U(0.0, 1.0);
  const int Bt = p.shared ? 1 : p.B;
  double rows_total = 0;  // over all copies
  for (int k = 0; k < p.copies; ++k) {
    double rows = 0;
    std::vector<float> t(size_t(Bt) * p.S), q(size_t(Bt) * p.T);
    std::vector<int32_t> len(Bt, p.S);
    for (int b = 0; b < Bt; ++b) {
      float* tb = &t[size_t(b) * p.S];
      float* qb = &q[size_t(b) * p.T];
      double acc = 0;  // suites/resample.py: jittered gaps over 5 s
      for (int s = 0; s < p.S; ++s) {
        double gap = (0.5 + U(rng)) * (5.0 / p.S);
        if (p.mixed && U(rng) < 0.1) gap = 0;  // duplicate timestamps
        acc += gap;
        tb[s] = float(acc);
      }
      if (p.mixed) {
        const double r = U(rng);
        len[b] = r < 0.1 ? 0 : (r < 0.2 ? 1 : (r < 0.5 ? int(U(rng) * p.S) : p.S));
        for (int s = len[b]; s < p.S; ++s) {  // padding: garbage, NaN included
          tb[s] = U(rng) < 0.2 ? std::numeric_limits<float>::quiet_NaN() : float(U(rng) * 10 - 5);
        }
      }
      const int n = len[b];
      const double lo = p.S ? tb[0] : 0, hi = (n > 0) ? tb[n - 1] : 1;
      for (int i = 0; i < p.T; ++i) {
        double v = lo + U(rng) * (hi - lo);
        if (p.mixed) {
          const double r = U(rng);
          const double span = hi - lo + 1e-3;
          if (r < 0.15) v = lo - 0.1 * span + U(rng) * 1.2 * span;  // out of range too
          else if (r < 0.25 && n > 0) v = tb[int(U(rng) * n)];       // exact sample times
          else if (r < 0.28) v = std::numeric_limits<double>::quiet_NaN();
          else if (r < 0.30) v = (r < 0.29) ? lo : hi;
        }
        qb[i] = float(v);
      }
      if (p.sorted) {  // NaN last
        std::sort(qb, qb + p.T, [](float x, float y) { return x < y || (x == x && y != y); });
      }
      // bytes_moved's rows: clip(searchsorted(t, q, right) - 1, 0, S - 1) and its
      // successor (timed problems only: mixed times are not sorted)
      std::vector<char> used(std::max(p.S, 1), 0);
      for (int i = 0; i < p.T && !p.mixed; ++i) {
        int r = int(std::upper_bound(tb, tb + p.S, qb[i]) - tb) - 1;
        r = std::clamp(r, 0, p.S - 1);
        used[r] = used[std::min(r + 1, p.S - 1)] = 1;
      }
      for (char u : used) rows += u;
    }
    rows_total += p.shared ? rows * p.B : rows;  // shared: every episode uses the same rows
    const size_t nval = size_t(p.B) * p.S * p.D;
    void* v = DevAlloc(nval * p.item());
    if (p.is_bf16) FillNormal<<<1024, 256>>>(static_cast<bf16*>(v), nval, seed + k, p.mixed ? 0.01f : 0.f);
    else FillNormal<<<1024, 256>>>(static_cast<float*>(v), nval, seed + k, p.mixed ? 0.01f : 0.f);
    CUDA_CHECK(cudaGetLastError());
    p.values.push_back(v);
    p.times.push_back(static_cast<float*>(DevAlloc(t.size() * 4)));
    p.queries.push_back(static_cast<float*>(DevAlloc(q.size() * 4)));
    p.lengths.push_back(static_cast<int32_t*>(DevAlloc(len.size() * 4)));
    CUDA_CHECK(cudaMemcpy(p.times.back(), t.data(), t.size() * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(p.queries.back(), q.data(), q.size() * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(p.lengths.back(), len.data(), len.size() * 4, cudaMemcpyHostToDevice));
    p.out.push_back(DevAlloc(p.out_bytes()));
    p.valid.push_back(static_cast<bool*>(DevAlloc(size_t(p.B) * p.T)));
  }
  p.bytes = (rows_total / p.copies) * p.D * p.item() + double(p.B) * p.T * 4 + double(p.out_bytes());
  CUDA_CHECK(cudaDeviceSynchronize());
}

rc::ResampleArgs Args(const Problem& p, int k) {
  rc::ResampleArgs a{};
  a.values = p.values[k]; a.times = p.times[k]; a.queries = p.queries[k];
  a.lengths = p.lengths[k]; a.out = p.out[k]; a.valid = p.valid[k];
  a.S = p.S; a.D = p.D; a.T = p.T;
  a.times_stride = p.shared ? 0 : p.S;
  a.queries_stride = p.shared ? 0 : p.T;
  a.lengths_stride = p.shared ? 0 : 1;
  a.method = p.method; a.oor = p.oor;
  return a;
}

// ---- variants -----------------------------------------------------------------
using LaunchFn = rc::ffi::Error (*)(cudaStream_t, const rc::ResampleArgs&, int64_t);
struct Variant {
  std::string name, what;
  LaunchFn bf16_fn, f32_fn;
  const void* large_kernel;  // the bf16 N=8 kernel, for registers and occupancy
  int threads;
  bool writes_valid = true;
};

// (Unvectorised rows are instantiated for float32 only: fewer kernels to build.)
template <typename Cfg, typename V>
rc::ffi::Error RunCfg(cudaStream_t s, const rc::ResampleArgs& a, int64_t B) {
  if (rc::Vectorisable<V>(a)) return rc::LaunchCfg<Cfg, V, float, 16 / sizeof(V)>(s, a, B);
  if constexpr (std::is_same_v<V, float>) return rc::LaunchCfg<Cfg, V, float, 1>(s, a, B);
  return rc::ffi::Error::InvalidArgument("not built");
}
template <typename V>
rc::ffi::Error RunLibrary(cudaStream_t s, const rc::ResampleArgs& a, int64_t B) {
  return rc::LaunchResample<V, float>(s, a, B);
}
template <typename V>
rc::ffi::Error RunBaseline(cudaStream_t s, const rc::ResampleArgs& a, int64_t B) {
  resample_baseline::ResampleArgs o{a.values, a.times, a.queries, a.lengths, a.out, a.valid,
                                    a.S, a.D, a.T, rc::CeilDiv(a.T, resample_baseline::kQueriesPerBlock),
                                    a.times_stride, a.queries_stride, a.lengths_stride,
                                    a.method, a.oor, 0, 0, false};
  return resample_baseline::Launch<V, float>(s, o, B);
}
resample_split::GPlan* g_plans = nullptr;  // [B * T] of the largest problem
template <typename V>
rc::ffi::Error RunSplit(cudaStream_t s, const rc::ResampleArgs& a, int64_t B) {
  return resample_split::Launch<V>(s, a, B, g_plans, false);
}
template <typename V>
rc::ffi::Error RunGather(cudaStream_t s, const rc::ResampleArgs& a, int64_t B) {
  return resample_split::Launch<V>(s, a, B, g_plans, true);  // plans of the last RunSplit
}

template <typename Cfg>
Variant CfgVariant(const char* name, const char* what) {
  return {name, what, &RunCfg<Cfg, bf16>, &RunCfg<Cfg, float>,
          reinterpret_cast<const void*>(&rc::ResampleKernel<Cfg, bf16, float, 8>), Cfg::kThreads};
}

std::vector<Variant> Variants() {
  std::vector<Variant> v = {
      {"baseline", "main's kernel: block plans, 1 row in flight, serial staging",
       &RunBaseline<bf16>, &RunBaseline<float>,
       reinterpret_cast<const void*>(&resample_baseline::ResampleKernel<bf16, float, 8>), 256},
      {"library", "what csrc/resample.cu runs (shape heuristic)", &RunLibrary<bf16>,
       &RunLibrary<float>, nullptr, 0},
      CfgVariant<cfg::Block2>("Block2", "block plans, 2 rows in flight, parallel staging"),
      CfgVariant<cfg::Block4>("Block4", "Block2 with 4 rows in flight, one pass"),
      CfgVariant<cfg::Block4NcCs>("Block4NcCs", "Block4 + ld.global.nc + st.global.cs"),
      CfgVariant<cfg::Block512>("Block512", "Block4NcCs, 512 threads x 256 queries"),
      CfgVariant<cfg::Block4Persist>("Block4Persist", "Block4NcCs on a persistent grid"),
      CfgVariant<cfg::Warp2>("Warp2", "warp plans (8 x 32 queries), 2 rows in flight"),
      CfgVariant<cfg::Warp4>("Warp4", "warp plans, 4 rows in flight"),
      CfgVariant<cfg::Warp4Cs>("Warp4Cs", "Warp4 + st.global.cs"),
      CfgVariant<cfg::Warp4CsNc>("Warp4CsNc", "Warp4Cs + ld.global.nc"),
      CfgVariant<cfg::Warp4CsNa>("Warp4CsNa", "Warp4Cs + ld.global.nc.L1::no_allocate"),
      CfgVariant<cfg::Warp4CsNcDd>("Warp4CsNcDd", "Warp4CsNc + reuse of shared rows"),
      CfgVariant<cfg::Warp8CsNcDd>("Warp8CsNcDd", "Warp4CsNcDd with 8 rows in flight"),
      CfgVariant<cfg::Warp4Small>("Warp4Small", "Warp4CsNcDd, 128 threads x 128 queries"),
      CfgVariant<cfg::Warp4NoStage>("Warp4NoStage", "Warp4CsNcDd, search in global (no staging)"),
      CfgVariant<cfg::Warp4Persist>("Warp4Persist", "Warp4CsNcDd on a persistent grid"),
      CfgVariant<cfg::Warp4Prefetch>("Warp4Prefetch", "Warp4CsNcDd + L2 prefetch of the next batch"),
      CfgVariant<cfg::Warp4Occ>("Warp4Occ", "Warp4CsNcDd capped at 64 registers (4 blocks/SM)"),
      {"split", "plan kernel + gather kernel (diagnostic)", &RunSplit<bf16>, &RunSplit<float>,
       nullptr, 0},
      {"gather-only", "split's gather kernel alone (diagnostic)", &RunGather<bf16>,
       &RunGather<float>, nullptr, 0, false},
  };
  return v;
}

// ---- running, checking, timing -------------------------------------------------------
// Launches variant v on copy k of p; false (with a note) when it refuses the shape.
bool Launch(const Variant& v, const Problem& p, int k, cudaStream_t s, std::string* why) {
  const auto e = (p.is_bf16 ? v.bf16_fn : v.f32_fn)(s, Args(p, k), p.B);
  if (e.failure()) {
    if (why) *why = e.message();
    return false;
  }
  return true;
}

std::vector<unsigned char> Fetch(const void* d, size_t bytes) {
  std::vector<unsigned char> h(bytes);
  CUDA_CHECK(cudaMemcpy(h.data(), d, bytes, cudaMemcpyDeviceToHost));
  return h;
}

struct Result { std::vector<unsigned char> out, valid; bool ran = false; };

// One run on poisoned outputs (copy 0): out and valid as written.
Result RunOnce(const Variant& v, const Problem& p, cudaStream_t s) {
  Result r;
  CUDA_CHECK(cudaMemsetAsync(p.out[0], 0xff, std::max<size_t>(p.out_bytes(), 1), s));
  CUDA_CHECK(cudaMemsetAsync(p.valid[0], 0x55, size_t(p.B) * p.T, s));
  std::string why;
  if (!Launch(v, p, 0, s, &why)) return r;
  const cudaError_t e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) {
    std::printf("FAULT %s on %s: %s\n", v.name.c_str(), p.name.c_str(), cudaGetErrorString(e));
    std::exit(1);
  }
  r.ran = true;
  r.out = Fetch(p.out[0], p.out_bytes());
  r.valid = Fetch(p.valid[0], size_t(p.B) * p.T);
  return r;
}

// Median microseconds per launch of a graph of p.per_graph launches over the copies.
double TimeUs(const Variant& v, const Problem& p, cudaStream_t s, int reps) {
  cudaGraph_t g;
  cudaGraphExec_t ge;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  bool ok = true;
  for (int i = 0; i < p.per_graph; ++i) ok = ok && Launch(v, p, i % p.copies, s, nullptr);
  CUDA_CHECK(cudaStreamEndCapture(s, &g));
  if (!ok) { CUDA_CHECK(cudaGraphDestroy(g)); return -1; }
  CUDA_CHECK(cudaGraphInstantiate(&ge, g, 0));
  cudaEvent_t e0, e1;
  CUDA_CHECK(cudaEventCreate(&e0));
  CUDA_CHECK(cudaEventCreate(&e1));
  CUDA_CHECK(cudaGraphLaunch(ge, s));  // warm-up
  CUDA_CHECK(cudaStreamSynchronize(s));
  std::vector<float> ms;
  for (int r = 0; r < reps; ++r) {
    CUDA_CHECK(cudaEventRecord(e0, s));
    CUDA_CHECK(cudaGraphLaunch(ge, s));
    CUDA_CHECK(cudaEventRecord(e1, s));
    CUDA_CHECK(cudaEventSynchronize(e1));
    float t;
    CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
    ms.push_back(t);
  }
  CUDA_CHECK(cudaGetLastError());
  std::sort(ms.begin(), ms.end());
  CUDA_CHECK(cudaEventDestroy(e0));
  CUDA_CHECK(cudaEventDestroy(e1));
  CUDA_CHECK(cudaGraphExecDestroy(ge));
  CUDA_CHECK(cudaGraphDestroy(g));
  return 1000.0 * ms[ms.size() / 2] / p.per_graph;
}

// Copy roofline: one pass over 1 GiB (read + write bytes), a kernel and cudaMemcpy.
__global__ void CopyKernel(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
    dst[i] = a; dst[i + stride] = b; dst[i + 2 * stride] = c; dst[i + 3 * stride] = d;
  }
  for (; i < n; i += stride) dst[i] = src[i];
}

double CopyGBs(cudaStream_t s, int sms) {
  const size_t bytes = size_t(1) << 30;
  void *src = DevAlloc(bytes), *dst = DevAlloc(bytes);
  FillNormal<<<4096, 256>>>(static_cast<float*>(src), bytes / 4, 7, 0.f);
  CUDA_CHECK(cudaDeviceSynchronize());
  cudaEvent_t e0, e1;
  CUDA_CHECK(cudaEventCreate(&e0));
  CUDA_CHECK(cudaEventCreate(&e1));
  double best = 0;
  for (int kind = 0; kind < 2; ++kind) {
    std::vector<float> ms;
    for (int r = 0; r < 12; ++r) {
      CUDA_CHECK(cudaEventRecord(e0, s));
      if (kind == 0) {
        CopyKernel<<<sms * 8, 256, 0, s>>>(static_cast<const uint4*>(src), static_cast<uint4*>(dst), bytes / 16);
      } else {
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
      }
      CUDA_CHECK(cudaEventRecord(e1, s));
      CUDA_CHECK(cudaEventSynchronize(e1));
      float t;
      CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
      if (r >= 2) ms.push_back(t);
    }
    CUDA_CHECK(cudaGetLastError());
    std::sort(ms.begin(), ms.end());
    const double gbs = 2.0 * bytes / (ms[ms.size() / 2] * 1e-3) / 1e9;
    std::printf("copy %-14s %8.1f us  %7.0f GB/s (read + write of 1 GiB)\n",
                kind ? "cudaMemcpy" : "kernel", ms[ms.size() / 2] * 1e3, gbs);
    best = std::max(best, gbs);
  }
  CUDA_CHECK(cudaFree(src));
  CUDA_CHECK(cudaFree(dst));
  return best;
}

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows even if a kernel faults
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20);
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const double copy = CopyGBs(s, prop.multiProcessorCount);
  CUDA_CHECK(cudaMalloc(&g_plans, size_t(256) * 1000 * sizeof(resample_split::GPlan)));

  // Timed problems (copies x inputs > L2) and checked-only "mixed" ones.
  std::vector<Problem> timed = {
      {"large_bf16", 256, 2000, 256, 1000, true},
      {"train_f32", 256, 500, 32, 50, false},
      {"train_bf16", 256, 500, 32, 50, true},
  };
  timed[0].copies = 4; timed[0].per_graph = 20;
  for (int i = 1; i < 3; ++i) { timed[i].copies = 32; timed[i].per_graph = 100; }  // 32 x 4.7 MB touched > L2
  std::vector<Problem> checks;
  auto mixed = [&](const char* name, int B, int S, int D, int T, bool is_bf16, int method, int oor) {
    Problem p{name, B, S, D, T, is_bf16, method, oor, true};
    p.sorted = false;
    checks.push_back(p);
  };
  mixed("mix_bf16_linear_clamp", 37, 300, 256, 333, true, rc::kLinear, rc::kClamp);
  mixed("mix_bf16_linear_nan", 37, 300, 256, 333, true, rc::kLinear, rc::kNan);
  mixed("mix_bf16_linear_extrap", 37, 300, 256, 333, true, rc::kLinear, rc::kExtrapolate);
  mixed("mix_f32_nearest_clamp", 37, 300, 32, 333, false, rc::kNearest, rc::kClamp);
  mixed("mix_f32_previous_nan", 37, 300, 32, 333, false, rc::kPrevious, rc::kNan);
  mixed("mix_f32_d6_unvectorised", 37, 300, 6, 333, false, rc::kLinear, rc::kExtrapolate);
  mixed("mix_f32_slerp", 37, 300, 4, 333, false, rc::kSlerp, rc::kClamp);
  mixed("mix_bf16_d1024_long_rows", 8, 300, 1024, 333, true, rc::kLinear, rc::kClamp);
  mixed("mix_f32_s1", 3, 1, 32, 5, false, rc::kLinear, rc::kClamp);
  mixed("mix_bf16_sorted_large", 20, 2000, 256, 1000, true, rc::kLinear, rc::kClamp);  // > 8 MiB out
  checks.back().sorted = true;  // consecutive queries share rows: the dedupe paths
  mixed("mix_f32_shared", 37, 300, 32, 333, false, rc::kLinear, rc::kClamp);
  checks.back().shared = true;
  uint64_t seed = 1;
  for (auto& p : timed) Build(p, seed++);
  for (auto& p : checks) Build(p, seed++);
  for (auto& p : timed) std::printf("%s: bytes_moved %.1f MB\n", p.name.c_str(), p.bytes / 1e6);

  const std::vector<Variant> vars = Variants();
  const int nv = int(vars.size());
  // Bitwise checks against the baseline (variant 0).
  std::vector<std::string> verdict(nv, "ok");
  std::vector<int> compared(nv, 0);
  std::vector<Problem*> all;
  for (auto& p : timed) all.push_back(&p);
  for (auto& p : checks) all.push_back(&p);
  for (Problem* p : all) {
    const Result ref = RunOnce(vars[0], *p, s);
    for (int i = 1; i < nv; ++i) {
      const Result r = RunOnce(vars[i], *p, s);
      if (!r.ran) continue;  // the configuration refuses this shape (e.g. one-pass, slerp)
      ++compared[i];
      if (r.out != ref.out || (vars[i].writes_valid && r.valid != ref.valid)) {
        size_t bad = 0;
        for (size_t k = 0; k < r.out.size(); ++k) bad += r.out[k] != ref.out[k];
        std::printf("MISMATCH %s on %s: %zu of %zu out bytes differ, valid %s\n",
                    vars[i].name.c_str(), p->name.c_str(), bad, r.out.size(),
                    r.valid == ref.valid ? "equal" : "DIFFERS");
        verdict[i] = "MISMATCH";
      }
    }
    std::printf("checked %s\n", p->name.c_str());
  }

  // Two timing rounds, opposite orders: us[round][variant][problem].
  std::vector<std::vector<std::vector<double>>> us(2, std::vector<std::vector<double>>(nv, std::vector<double>(timed.size(), -1)));
  for (int round = 0; round < 2; ++round) {
    for (int n = 0; n < nv; ++n) {
      const int i = round == 0 ? n : nv - 1 - n;
      for (size_t j = 0; j < timed.size(); ++j) {
        if (vars[i].name == "gather-only") RunOnce(vars[i - 1], timed[j], s);  // its plans
        us[round][i][j] = TimeUs(vars[i], timed[j], s, j == 0 ? 10 : 20);
      }
      std::printf("round %d %-14s %8.2f %8.2f %8.2f us\n", round + 1, vars[i].name.c_str(),
                  us[round][i][0], us[round][i][1], us[round][i][2]);
    }
  }

  FILE* csv = nullptr;
  if (const char* out = std::getenv("OUT")) {
    csv = std::fopen((std::string(out) + "/resample_variants.csv").c_str(), "w");
    if (csv) std::fprintf(csv, "variant,problem,us_round1,us_round2,bytes,copy_GBs,regs,blocks_per_sm,bits\n");
  }
  std::printf("\nvariants:\n");
  for (const auto& v : vars) std::printf("  %-14s %s\n", v.name.c_str(), v.what.c_str());
  std::printf("\ncopy roofline %.0f GB/s; large_bf16 moves %.1f MB (bytes_moved); regs and blocks/SM of the large (bf16) kernel\n",
              copy, timed[0].bytes / 1e6);
  std::printf("%-14s %4s %6s | %8s %7s %6s %6s | %9s %10s | %s\n", "variant", "regs", "blk/SM",
              "large us", "GB/s", "%copy", "spread", "train f32", "train bf16", "bits vs baseline");
  const size_t smem_large = 2000 * 4;
  for (int i = 0; i < nv; ++i) {
    int regs = 0, blocks = 0;
    if (vars[i].large_kernel) {
      cudaFuncAttributes fa;
      CUDA_CHECK(cudaFuncGetAttributes(&fa, vars[i].large_kernel));
      regs = fa.numRegs;
      CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, vars[i].large_kernel, vars[i].threads, smem_large));
    }
    double best[3];
    for (int j = 0; j < 3; ++j) {
      const double a = us[0][i][j], b = us[1][i][j];
      best[j] = (a < 0 || b < 0) ? -1 : std::min(a, b);
      if (csv) std::fprintf(csv, "%s,%s,%.3f,%.3f,%.0f,%.0f,%d,%d,%s\n", vars[i].name.c_str(),
                            timed[j].name.c_str(), a, b, timed[j].bytes, copy, regs, blocks, verdict[i].c_str());
    }
    const double gbs = best[0] > 0 ? timed[0].bytes / (best[0] * 1e-6) / 1e9 : 0;
    const double spread = best[0] > 0 ? 100.0 * std::abs(us[0][i][0] - us[1][i][0]) / best[0] : 0;
    const std::string bits = i == 0 ? "(reference)"
                                    : verdict[i] + " (" + std::to_string(compared[i]) + "/" +
                                          std::to_string(all.size()) + " inputs)";
    std::printf("%-14s %4d %6d | %8.1f %7.0f %5.1f%% %5.1f%% | %9.2f %10.2f | %s\n", vars[i].name.c_str(),
                regs, blocks, best[0], gbs, 100.0 * gbs / copy, spread, best[1], best[2], bits.c_str());
  }
  if (csv) std::fclose(csv);
  return 0;
}
