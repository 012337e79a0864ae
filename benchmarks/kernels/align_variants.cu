// Standalone timing of the align kernel's launch variants on issue #3's
// benchmark shapes (benchmarks/suites/align.py), against a plain copy.
//
// Build + run: benchmarks/kernels/run_align_variants.sh [OUT_DIR]
//
// What it does, in one process:
//   copy   a 1 GiB -> 1 GiB float4 copy kernel (and cudaMemcpyAsync): the roofline,
//          bytes read + written over time;
//   base   the align kernel before the rework (align_baseline.cuh, frozen);
//   others csrc/align.cu's AlignKernel with the AlignTune of each row of kVariants.
// Cases: fuse_T250, fuse_T50 (three linear streams) and mixed_T250 (linear
// vision with a tolerance, previous proprio, 20 ms window_mean force): B=256
// episodes of 5 s, vision 150x512 bf16, proprio 2500x14 f32, force 5000x6 f32,
// concatenated float32 [B, T, 532] output + valid/age per stream. Inputs are
// drawn on the device (jittered clocks, sorted targets inside every stream's
// range, as make_inputs does) in kSets sets (~115 MB each) that the timed
// launches rotate through, so no launch finds its inputs in the 50-60 MB L2.
// Time: the median over kGroups groups of kLaunches back-to-back launches
// (cudaEvents around each group). GB/s and % of copy use the benchmark's
// byte count (bytes_moved of suites/align.py: referenced value rows, targets,
// the output and 5 bytes of valid + age per target and stream). Every
// variant's out/valid/age are compared bit for bit with base's on fresh
// poisoned buffers.
#include "align.cu"  // the production kernel and its tunings (-Icsrc)

#include "align_baseline.cuh"

#include "cuda_check.cuh"
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace rc = robocache;


constexpr int kB = 256;
constexpr int kSets = 4;      // input sets rotated through (4 x ~115 MB >> L2)
constexpr int kGroups = 7;    // timing groups (median reported)
constexpr int kLaunches = 20; // launches per group
constexpr int kWidth = 532;   // 512 + 14 + 6 output columns
constexpr int kCopyWarmups = 3;

// ---- the variants -------------------------------------------------------------
using rc::AlignTune;
using rc::kFused;
using rc::kInterleaved;
using rc::kPerStream;

struct Variant {
  const char* name;
  const char* what;
  void (*launch)(const rc::AlignArgs&, int64_t, cudaStream_t);
  const void* func;
};

template <typename Tune>
void LaunchTuned(const rc::AlignArgs& a, int64_t B, cudaStream_t s) {
  rc::LaunchAlign<float, Tune>(a, B, s);
}
template <typename Tune>
Variant V(const char* name, const char* what) {
  return {name, what, &LaunchTuned<Tune>,
          reinterpret_cast<const void*>(&rc::AlignKernel<float, Tune>)};
}

// Template arguments: <mode, tile, batch, min blocks per SM, streaming stores, wide loads>.
// The production tuning is csrc/align.cu's `using AlignTuning = ...` (listed first).
std::vector<Variant> Variants() {
  return {
      V<rc::AlignTuning>("default", "csrc/align.cu's AlignTuning (interleaved t64 b4 mb3)"),
      V<AlignTune<kInterleaved, 64, 1, 4>>("inter_t64_b1", "no batch: cp.async staging + grid only"),
      V<AlignTune<kPerStream, 128, 1, 4>>("perstr_t128_b1", "old grid/tile, widest first, cp.async"),
      V<AlignTune<kPerStream, 64, 4, 3>>("perstr_t64_b4", "grid.y = stream, widest first"),
      V<AlignTune<kInterleaved, 64, 2, 4>>("inter_t64_b2_mb4", "batch 2, 64 regs"),
      V<AlignTune<kInterleaved, 64, 8, 2>>("inter_t64_b8_mb2", "batch 8, 128 regs"),
      V<AlignTune<kInterleaved, 32, 4, 3>>("inter_t32_b4", "tile 32"),
      V<AlignTune<kInterleaved, 128, 4, 3>>("inter_t128_b4", "tile 128"),
      V<AlignTune<kInterleaved, 64, 4, 3, true>>("inter_t64_b4_cs", "evict-first stores"),
      V<AlignTune<kInterleaved, 64, 4, 3, false, true>>("inter_t64_b4_wide", "16-byte bf16 loads"),
      V<AlignTune<kFused, 64, 2, 2>>("fused_t64_b2", "one block per tile, all streams"),
      V<AlignTune<kFused, 32, 2, 2>>("fused_t32_b2", "fused, tile 32"),
  };
}

// ---- input generation (device) ----------------------------------------------------
__device__ __forceinline__ uint32_t Hash(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
  return static_cast<uint32_t>(x);
}
__device__ __forceinline__ float Uniform(uint64_t seed, uint64_t i) {  // [0, 1)
  return (Hash(seed * 0x9E3779B97F4A7C15ULL + i) >> 8) * (1.0f / 16777216.0f);
}
template <typename T>
__global__ void FillValues(T* v, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float x = 4.0f * Uniform(seed, i) - 2.0f;
    if constexpr (std::is_same_v<T, float>) v[i] = x;
    else v[i] = __float2bfloat16_rn(x);
  }
}
// Jittered clock of one 5 s episode per thread: t = cumsum(U(0.5, 1.5) * 5 / S).
__global__ void MakeTimes(float* t, int B, int S, uint64_t seed) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= B) return;
  double acc = 0;
  for (int i = 0; i < S; ++i) {
    acc += (0.5 + Uniform(seed, int64_t{b} * S + i)) * (5.0 / S);
    t[int64_t{b} * S + i] = static_cast<float>(acc);
  }
}
// Sorted targets in [lo, hi]: one per stratum of (hi - lo) / T.
__global__ void MakeQueries(float* q, int B, int T, float lo, float hi, uint64_t seed) {
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i >= int64_t{B} * T) return;
  const int j = static_cast<int>(i % T);
  q[i] = lo + (hi - lo) * ((j + Uniform(seed, i)) / T);
}
__global__ void CopyKernel(const float4* __restrict__ src, float4* __restrict__ dst, int64_t n) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {  // 4 independent 16-byte loads in flight
    const float4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
    dst[i] = a; dst[i + stride] = b; dst[i + 2 * stride] = c; dst[i + 3 * stride] = d;
  }
  for (; i < n; i += stride) dst[i] = src[i];
}
// Counts differing bytes (bit-for-bit comparison) and the first one.
__global__ void CompareBytes(const unsigned char* a, const unsigned char* b, int64_t n,
                             unsigned long long* count, unsigned long long* first) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    if (a[i] != b[i]) {
      atomicAdd(count, 1ULL);
      atomicMin(first, static_cast<unsigned long long>(i));
    }
  }
}

// ---- cases ---------------------------------------------------------------------
struct StreamSpec {
  const char* name;
  int S, D;
  bool bf16;
  int column;
};
// In align's stream order (sorted names: force, proprio, vision); columns in
// fuse_multimodal's concatenation order (vision, proprio, force).
const StreamSpec kStreams[3] = {{"force", 5000, 6, false, 526},
                                {"proprio", 2500, 14, false, 512},
                                {"vision", 150, 512, true, 0}};

struct Method {
  int32_t method;
  double tolerance, window;
};
struct Case {
  const char* name;
  int T;
  Method m[3];
};
const double kInf = std::numeric_limits<double>::infinity();
const Case kCases[3] = {
    {"fuse_T250", 250, {{rc::kLinear, kInf, 0}, {rc::kLinear, kInf, 0}, {rc::kLinear, kInf, 0}}},
    {"fuse_T50", 50, {{rc::kLinear, kInf, 0}, {rc::kLinear, kInf, 0}, {rc::kLinear, kInf, 0}}},
    {"mixed_T250", 250,
     {{rc::kWindowMean, kInf, 0.02}, {rc::kPrevious, 0.01, 0}, {rc::kLinear, 0.1, 0}}},
};

struct Inputs {  // one set
  void* values[3];
  float* times[3];
};

struct Buffers {
  Inputs sets[kSets];
  int32_t* lengths[3];
  float* queries[3][kSets];  // per case
  float* out;                // [B, Tmax, 532]
  bool* valid;               // [3][B, Tmax]
  float* age;                // [3][B, Tmax]
  float* ref_out;
  bool* ref_valid;
  float* ref_age;
};

rc::AlignArgs NewArgs(const Buffers& buf, const Case& c, int set, float* out, bool* valid,
                      float* age) {
  rc::AlignArgs a{};
  const int64_t BT = int64_t{kB} * c.T;
  for (int k = 0; k < 3; ++k) {
    const StreamSpec& st = kStreams[k];
    rc::StreamDesc& d = a.streams[k];
    d.values = buf.sets[set].values[k];
    d.times = buf.sets[set].times[k];
    d.lengths = buf.lengths[k];
    d.out = out + st.column;
    d.valid = valid + k * BT;
    d.age = age + k * BT;
    d.S = st.S;
    d.D = st.D;
    d.out_stride = kWidth;
    d.times_stride = st.S;
    d.lengths_stride = 0;
    d.offset = 0;
    d.tolerance = c.m[k].tolerance;
    d.window = c.m[k].window;
    d.method = c.m[k].method;
    d.value_type = st.bf16 ? rc::kBF16 : rc::kF32;
    d.out_type = rc::kF32;
    d.item = st.bf16 ? 2 : 4;
    d.out_item = 4;
    d.aligned = rc::Aligned16(d.values) && rc::Aligned16(out) && (st.column * 4) % 16 == 0 &&
                (kWidth * 4) % 16 == 0;
  }
  a.queries = buf.queries[&c - kCases][set];
  a.T = c.T;
  a.queries_stride = c.T;
  a.K = 3;
  a.oor = rc::kClamp;
  return a;
}

// The frozen kernel's launch, as its AlignImpl did it.
void LaunchBase(const rc::AlignArgs& n, int64_t B, cudaStream_t s) {
  rc::base::AlignArgs a{};
  int64_t staged = 0;
  for (int k = 0; k < n.K; ++k) {
    const rc::StreamDesc& x = n.streams[k];
    rc::base::StreamDesc& d = a.streams[k];
    d.values = x.values; d.times = x.times; d.lengths = x.lengths; d.out = x.out;
    d.valid = x.valid; d.age = x.age; d.S = x.S; d.D = x.D; d.out_stride = x.out_stride;
    d.times_stride = x.times_stride; d.lengths_stride = x.lengths_stride;
    d.offset = x.offset; d.tolerance = x.tolerance; d.window = x.window;
    d.method = x.method; d.value_type = x.value_type; d.out_type = x.out_type;
    const int vec = 16 / std::max(x.item, x.out_item);
    d.vec = x.aligned && x.D % vec == 0 ? vec : 1;  // (same condition as its DescribeStream)
    d.chunks = static_cast<int32_t>(x.D / d.vec);
    d.lane_shift = 0;
    while (d.lane_shift < 5 && (1 << d.lane_shift) < d.chunks) ++d.lane_shift;
    const int64_t bytes = x.S * 4;
    d.stage_times = bytes <= rc::base::kMaxStagedTimeBytes;
    staged = std::max(staged, d.stage_times ? bytes : int64_t{0});
  }
  a.queries = n.queries;
  a.T = n.T;
  a.tiles = rc::CeilDiv(n.T, rc::base::kQueriesPerBlock);
  a.queries_stride = n.queries_stride;
  a.oor = n.oor;
  const dim3 grid(static_cast<unsigned>(B * a.tiles), static_cast<unsigned>(n.K));
  rc::base::AlignKernel<float><<<grid, rc::base::kThreads, staged, s>>>(a);
}

// bytes_moved of benchmarks/suites/align.py for set 0 (host copy of times and targets).
double BytesMoved(const Buffers& buf, const Case& c) {
  const int T = c.T;
  std::vector<float> q(int64_t{kB} * T);
  CUDA_CHECK(cudaMemcpy(q.data(), buf.queries[&c - kCases][0], q.size() * 4, cudaMemcpyDeviceToHost));
  double total = q.size() * 4.0;
  for (int k = 0; k < 3; ++k) {
    const StreamSpec& st = kStreams[k];
    std::vector<float> t(int64_t{kB} * st.S);
    CUDA_CHECK(cudaMemcpy(t.data(), buf.sets[0].times[k], t.size() * 4, cudaMemcpyDeviceToHost));
    int64_t rows = 0;
    std::vector<int> mark(st.S, -1);
    for (int b = 0; b < kB; ++b) {
      const float* tb = &t[int64_t{b} * st.S];
      for (int j = 0; j < T; ++j) {
        const float qq = q[int64_t{b} * T + j];
        int i = static_cast<int>(std::upper_bound(tb, tb + st.S, qq) - tb) - 1;
        i = std::min(std::max(i, 0), st.S - 1);
        for (int r : {i, std::min(i + 1, st.S - 1)}) {
          if (mark[r] != b) { mark[r] = b; ++rows; }
        }
      }
    }
    total += static_cast<double>(rows) * st.D * (st.bf16 ? 2 : 4) + 5.0 * kB * T;
  }
  return total + 4.0 * kB * T * kWidth;
}

template <typename F>
float MedianMs(F&& launch_group, cudaStream_t s, float* best) {
  cudaEvent_t e0, e1;
  CUDA_CHECK(cudaEventCreate(&e0));
  CUDA_CHECK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int g = 0; g < kGroups; ++g) {
    CUDA_CHECK(cudaEventRecord(e0, s));
    launch_group();
    CUDA_CHECK(cudaEventRecord(e1, s));
    CUDA_CHECK(cudaEventSynchronize(e1));
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
    ms.push_back(t);
  }
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaEventDestroy(e0));
  CUDA_CHECK(cudaEventDestroy(e1));
  std::sort(ms.begin(), ms.end());
  *best = ms.front();
  return ms[ms.size() / 2];
}

int main(int argc, char** argv) {
  const char* out_dir = argc > 1 ? argv[1] : nullptr;
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs, L2 %.0f MB, smem/SM %zu KB\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize / 1e6,
              prop.sharedMemPerMultiprocessor / 1024);
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreate(&s));

  // (a) copy roofline: 1 GiB -> 1 GiB.
  double copy_gbs = 0;
  {
    const int64_t bytes = int64_t{1} << 30, n = bytes / 16;
    float4 *src, *dst;
    CUDA_CHECK(cudaMalloc(&src, bytes));
    CUDA_CHECK(cudaMalloc(&dst, bytes));
    CUDA_CHECK(cudaMemset(src, 0x3c, bytes));
    const int grid = prop.multiProcessorCount * 8;
    for (int i = 0; i < kCopyWarmups; ++i) CopyKernel<<<grid, 256, 0, s>>>(src, dst, n);
    float best = 0;
    const float ms = MedianMs([&] { for (int i = 0; i < 5; ++i) CopyKernel<<<grid, 256, 0, s>>>(src, dst, n); }, s, &best) / 5;
    const float ms_mc = MedianMs([&] { for (int i = 0; i < 5; ++i) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s)); }, s, &best) / 5;
    copy_gbs = 2.0 * bytes / (ms * 1e-3) / 1e9;
    std::printf("copy kernel 1 GiB: %.1f us = %.0f GB/s (read + write); cudaMemcpyAsync %.0f GB/s\n",
                ms * 1e3, copy_gbs, 2.0 * bytes / (ms_mc * 1e-3) / 1e9);
    CUDA_CHECK(cudaFree(src));
    CUDA_CHECK(cudaFree(dst));
  }

  // Inputs.
  Buffers buf{};
  for (int r = 0; r < kSets; ++r) {
    for (int k = 0; k < 3; ++k) {
      const StreamSpec& st = kStreams[k];
      const int64_t n = int64_t{kB} * st.S * st.D;
      CUDA_CHECK(cudaMalloc(&buf.sets[r].values[k], n * (st.bf16 ? 2 : 4)));
      CUDA_CHECK(cudaMalloc(&buf.sets[r].times[k], int64_t{kB} * st.S * 4));
      const uint64_t seed = 1000 * r + 10 * k + 1;
      if (st.bf16) FillValues<<<1024, 256, 0, s>>>(static_cast<__nv_bfloat16*>(buf.sets[r].values[k]), n, seed);
      else FillValues<<<1024, 256, 0, s>>>(static_cast<float*>(buf.sets[r].values[k]), n, seed);
      MakeTimes<<<(kB + 63) / 64, 64, 0, s>>>(buf.sets[r].times[k], kB, st.S, seed + 5);
    }
  }
  for (int k = 0; k < 3; ++k) {
    CUDA_CHECK(cudaMalloc(&buf.lengths[k], 4));
    CUDA_CHECK(cudaMemcpy(buf.lengths[k], &kStreams[k].S, 4, cudaMemcpyHostToDevice));
  }
  CUDA_CHECK(cudaStreamSynchronize(s));
  CUDA_CHECK(cudaGetLastError());
  for (int r = 0; r < kSets; ++r) {  // targets inside every stream's range, as make_inputs
    float lo = -1e30f, hi = 1e30f;
    for (int k = 0; k < 3; ++k) {
      const int S = kStreams[k].S;
      std::vector<float> first(kB), last(kB);
      CUDA_CHECK(cudaMemcpy2D(first.data(), 4, buf.sets[r].times[k], S * 4, 4, kB, cudaMemcpyDeviceToHost));
      CUDA_CHECK(cudaMemcpy2D(last.data(), 4, buf.sets[r].times[k] + S - 1, S * 4, 4, kB, cudaMemcpyDeviceToHost));
      lo = std::max(lo, *std::max_element(first.begin(), first.end()));
      hi = std::min(hi, *std::min_element(last.begin(), last.end()));
    }
    for (int c = 0; c < 3; ++c) {
      const int64_t n = int64_t{kB} * kCases[c].T;
      CUDA_CHECK(cudaMalloc(&buf.queries[c][r], n * 4));
      MakeQueries<<<(n + 255) / 256, 256, 0, s>>>(buf.queries[c][r], kB, kCases[c].T, lo, hi, 77 + r);
    }
  }
  const int64_t max_bt = int64_t{kB} * 250;
  CUDA_CHECK(cudaMalloc(&buf.out, max_bt * kWidth * 4));
  CUDA_CHECK(cudaMalloc(&buf.valid, 3 * max_bt));
  CUDA_CHECK(cudaMalloc(&buf.age, 3 * max_bt * 4));
  CUDA_CHECK(cudaMalloc(&buf.ref_out, max_bt * kWidth * 4));
  CUDA_CHECK(cudaMalloc(&buf.ref_valid, 3 * max_bt));
  CUDA_CHECK(cudaMalloc(&buf.ref_age, 3 * max_bt * 4));
  unsigned long long* counters;
  CUDA_CHECK(cudaMalloc(&counters, 16));
  CUDA_CHECK(cudaStreamSynchronize(s));
  CUDA_CHECK(cudaGetLastError());

  std::vector<Variant> variants = Variants();
  variants.insert(variants.begin(), Variant{"base", "align kernel before the rework (frozen copy)",
                                            nullptr, reinterpret_cast<const void*>(&rc::base::AlignKernel<float>)});
  std::printf("\n%-18s %5s %6s  %s\n", "variant", "regs", "local", "what");
  for (const Variant& v : variants) {
    cudaFuncAttributes attr;
    CUDA_CHECK(cudaFuncGetAttributes(&attr, v.func));
    std::printf("%-18s %5d %6zu  %s\n", v.name, attr.numRegs, attr.localSizeBytes, v.what);
  }

  FILE* csv = nullptr;
  if (out_dir) csv = std::fopen((std::string(out_dir) + "/align_variants.csv").c_str(), "w");
  if (csv) std::fprintf(csv, "case,variant,us_median,us_best,gbs,pct_copy,bitexact\n");
  std::string table;
  char line[256];
  for (const Case& c : kCases) {
    const double bytes = BytesMoved(buf, c);
    const int64_t bt = int64_t{kB} * c.T;
    std::printf("\n%s: B=%d T=%d, %.1f MB moved (suites/align.py's count); copy roofline %.1f us\n",
                c.name, kB, c.T, bytes / 1e6, bytes / (copy_gbs * 1e9) * 1e6);
    // Reference: base on set 0, on poisoned buffers.
    CUDA_CHECK(cudaMemsetAsync(buf.ref_out, 0xff, bt * kWidth * 4, s));
    CUDA_CHECK(cudaMemsetAsync(buf.ref_valid, 0xff, 3 * bt, s));
    CUDA_CHECK(cudaMemsetAsync(buf.ref_age, 0xff, 3 * bt * 4, s));
    LaunchBase(NewArgs(buf, c, 0, buf.ref_out, buf.ref_valid, buf.ref_age), kB, s);
    CUDA_CHECK(cudaStreamSynchronize(s));
    CUDA_CHECK(cudaGetLastError());
    for (const Variant& v : variants) {
      auto launch = [&](int set) {
        const rc::AlignArgs a = NewArgs(buf, c, set, buf.out, buf.valid, buf.age);
        if (v.launch) v.launch(a, kB, s);
        else LaunchBase(a, kB, s);
      };
      // Bit-for-bit check on fresh poisoned buffers.
      CUDA_CHECK(cudaMemsetAsync(buf.out, 0xff, bt * kWidth * 4, s));
      CUDA_CHECK(cudaMemsetAsync(buf.valid, 0xff, 3 * bt, s));
      CUDA_CHECK(cudaMemsetAsync(buf.age, 0xff, 3 * bt * 4, s));
      launch(0);
      CUDA_CHECK(cudaStreamSynchronize(s));
      CUDA_CHECK(cudaGetLastError());
      unsigned long long diff[3] = {0, 0, 0}, first = 0;
      const std::pair<const void*, const void*> cmp[3] = {
          {buf.out, buf.ref_out}, {buf.valid, buf.ref_valid}, {buf.age, buf.ref_age}};
      const int64_t cmp_bytes[3] = {bt * kWidth * 4, 3 * bt, 3 * bt * 4};
      for (int i = 0; i < 3; ++i) {
        const unsigned long long init[2] = {0, ~0ULL};
        CUDA_CHECK(cudaMemcpy(counters, init, 16, cudaMemcpyHostToDevice));
        CompareBytes<<<1024, 256, 0, s>>>(static_cast<const unsigned char*>(cmp[i].first),
                                          static_cast<const unsigned char*>(cmp[i].second),
                                          cmp_bytes[i], counters, counters + 1);
        unsigned long long got[2];
        CUDA_CHECK(cudaMemcpy(got, counters, 16, cudaMemcpyDeviceToHost));
        diff[i] = got[0];
        if (got[0] && !first) first = got[1] + 1;
      }
      const bool exact = !diff[0] && !diff[1] && !diff[2];
      for (int i = 0; i < 3; ++i) launch(i % kSets);  // warm-up
      float best = 0;
      const float ms = MedianMs([&] { for (int i = 0; i < kLaunches; ++i) launch(i % kSets); }, s, &best);
      const double us = ms * 1e3 / kLaunches, us_best = best * 1e3 / kLaunches;
      const double gbs = bytes / (us * 1e-6) / 1e9;
      std::snprintf(line, sizeof line, "%-11s %-18s %8.1f %8.1f %7.0f %6.1f%%  %s", c.name, v.name,
                    us, us_best, gbs, 100 * gbs / copy_gbs,
                    exact ? "bit-exact" : "MISMATCH");
      std::printf("%s", line);
      if (!exact) {
        std::printf(" (bytes differing: out %llu, valid %llu, age %llu; first at byte %llu)",
                    diff[0], diff[1], diff[2], first - 1);
      }
      std::printf("\n");
      table += std::string(line) + "\n";
      if (csv) std::fprintf(csv, "%s,%s,%.2f,%.2f,%.0f,%.1f,%d\n", c.name, v.name, us, us_best, gbs,
                            100 * gbs / copy_gbs, exact);
    }
  }
  if (csv) std::fclose(csv);
  std::printf("\nSummary (copy %.0f GB/s):\n%-11s %-18s %8s %8s %7s %7s\n%s", copy_gbs, "case",
              "variant", "us p50", "us min", "GB/s", "%copy", table.c_str());
  return 0;
}
