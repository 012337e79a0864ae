// Lower bounds for voxelize `count` (issue #4's goal: within 1.3x of the time
// to read the points and write the grid at copy bandwidth), measured with bare
// kernels that do strictly less than any count kernel must:
//
//   atomics  one integer increment per point at a precomputed uniform random
//            cell (no coordinates read, no voxel index computed, no grid
//            zeroed): the scatter part alone, as one launch per pass and as
//            many passes in one launch (throughput, no launch cost);
//   memset   zeroing the grid (cudaMemsetAsync);
//   copy     reading the points and writing a grid-sized buffer once each (the
//            goal's roofline, measured here rather than computed).
//
// Build and run: bash benchmarks/floors/run_voxelize_floor.sh (nvcc, a GPU).
// Times are medians over repeats of 20 back-to-back launches (CUDA events).
#include <cuda_runtime.h>

#include "cuda_check.cuh"
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>


// passes x n increments: pass p adds 1 at cell[p * n + i] (grid-stride).
__global__ void Increment(const int32_t* cell, int64_t n, int passes, int32_t* grid) {
  const int64_t total = n * passes;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    atomicAdd(grid + cell[i], 1);  // result unused: compiles to a fire-and-forget RED
  }
}

// Reads n_in 16-byte words of `in` and writes n_out of `out` (word i of out
// is word i of in, or zero past n_in).
__global__ void Copy(const int4* in, int64_t n_in, int4* out, int64_t n_out) {
  const int64_t n = n_in > n_out ? n_in : n_out;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int4 x = i < n_in ? in[i] : int4{0, 0, 0, 0};
    if (i < n_out) out[i] = x;
  }
}

template <typename Launch>
float MedianMicroseconds(Launch launch) {
  constexpr int kLaunches = 20, kRepeats = 9;
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  for (int w = 0; w < 3; ++w) launch();
  std::vector<float> samples;
  for (int r = 0; r < kRepeats; ++r) {
    CUDA_CHECK(cudaEventRecord(start));
    for (int k = 0; k < kLaunches; ++k) launch();
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    samples.push_back(1000.0f * ms / kLaunches);
  }
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

void Case(const char* name, int64_t points, int64_t cells) {
  constexpr int kPasses = 8, kThreads = 256;
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int blocks = sms * 8;
  std::mt19937_64 rng(points);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(cells - 1));
  std::vector<int32_t> host(points * kPasses);
  for (auto& c : host) c = pick(rng);
  int32_t *cell = nullptr, *grid = nullptr;
  int4 *points_buf = nullptr, *grid_copy = nullptr;
  const int64_t point_bytes = points * 12, grid_bytes = cells * 4;
  CUDA_CHECK(cudaMalloc(&cell, host.size() * sizeof(int32_t)));
  CUDA_CHECK(cudaMalloc(&grid, grid_bytes));
  CUDA_CHECK(cudaMalloc(&points_buf, point_bytes + 16));
  CUDA_CHECK(cudaMalloc(&grid_copy, std::max(point_bytes, grid_bytes) + 16));
  CUDA_CHECK(cudaMemcpy(cell, host.data(), host.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemset(grid, 0, grid_bytes));
  CUDA_CHECK(cudaMemset(points_buf, 0, point_bytes + 16));

  const float one = MedianMicroseconds([&] { Increment<<<blocks, kThreads>>>(cell, points, 1, grid); });
  const float many = MedianMicroseconds(
                         [&] { Increment<<<blocks, kThreads>>>(cell, points, kPasses, grid); }) /
                     kPasses;
  const float zero = MedianMicroseconds([&] { CUDA_CHECK(cudaMemsetAsync(grid, 0, grid_bytes)); });
  const float copy = MedianMicroseconds([&] {
    Copy<<<blocks, kThreads>>>(points_buf, point_bytes / 16, grid_copy, grid_bytes / 16);
  });
  std::printf(
      "%-22s points %9lld cells %9lld (%5.1f MB grid) | random increments: %6.1f us per launch, "
      "%6.1f us per pass in a %d-pass launch (%5.1f G/s) | memset grid %6.1f us | read points "
      "+ write grid %6.1f us (goal 1.3x: %6.1f us)\n",
      name, static_cast<long long>(points), static_cast<long long>(cells), grid_bytes / 1e6, one,
      many, kPasses, points / many / 1e3, zero, copy, 1.3 * copy);
  CUDA_CHECK(cudaFree(cell));
  CUDA_CHECK(cudaFree(grid));
  CUDA_CHECK(cudaFree(points_buf));
  CUDA_CHECK(cudaFree(grid_copy));
}

int main() {
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20);
  Case("1M -> 128^3", 1000000, 128 * 128 * 128);
  Case("4M -> 256^3", 4000000, 256 * 256 * 256);
  return 0;
}
