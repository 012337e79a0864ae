// voxelize: dense voxel grids of batched point clouds.
//
// Layout (canonical shapes built by jax_robocache/voxelize.py):
//   points   [Bp, N, 3]      f32, Bp in {1, B}
//   features [Bf, N, C]      f32 | bf16, Bf in {1, B} ([1, N, 0] placeholder
//                            for count/occupancy)
//   lengths  [Bl]            s32, Bl in {1, B} (valid points per cloud)
//   out      [B, X, Y, Z]    s32 (count) | f32 (occupancy)
//            [B, X, Y, Z, C] features dtype (sum, mean, max)
// with B = max(Bp, Bf, Bl), or 0 if any of them is 0. The voxel of a point is
// VoxelId (voxel_grid.cuh), the same float32 operations as the jnp rule; the
// cell of a kept point is cloud * V + voxel (V = X * Y * Z voxels per cloud).
//
// Two handlers; every mode is bitwise deterministic:
//   robocache_voxelize  count, occupancy, max, into a zeroed grid
//       (cudaMemsetAsync):
//         count      one thread per point, int32 atomicAdd (integer:
//                    order-free); a grid larger than half the L2 cache in
//                    slices (ScatterSlices).
//         occupancy  one thread per point, plain store of 1.0f (all writers
//                    agree); sliced like count.
//         max        one thread per point and channel, atomicMax of an
//                    order-preserving key of the canonical value (-0 -> +0,
//                    any NaN -> the quiet NaN, which ranks above +inf) kept in
//                    the output buffer itself: uint32 keys for f32, uint16
//                    keys (CAS loop) for bf16; key 0 marks an empty voxel. An
//                    in-place pass decodes the keys into values. Integer max
//                    is order-free and the key fixes the value's bits, so ties
//                    cannot change the result (the jnp twin names the
//                    lowest-index winner for gradients).
//   robocache_voxelize_binned  sum, mean, with a scratch workspace as its last
//       result (uint8[B, bytes per cloud], sized at lowering time by
//       VoxelizeBinnedWorkspacePerCloud; see workspace.h). The points are
//       binned by tiles of cells and one block per tile writes every voxel of
//       its tile exactly once (voxelize_binned.cu; no zeroing pass, no
//       global atomic per point): the correctly rounded float32 of the exact
//       sum of the voxel's features, whatever the order of the points, or that
//       sum / count (IEEE). A batch too large for the pipeline's int32 indices
//       is refused.
#include "voxelize.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "ffi_common.h"
#include "voxelize_args.cuh"
#include "voxelize_binned.cuh"

namespace robocache {
namespace voxelize {
namespace {

// ---- count / occupancy: atomics into a zeroed grid ------------------------
template <int32_t kMode>
__global__ void __launch_bounds__(kThreads) ScatterPointsKernel(VoxelArgs a) {
  int64_t b, i;
  if (!ThisPoint(a, &b, &i)) return;
  const int32_t vid = PointVoxel(a, b, i);
  if (vid < 0) return;
  const int64_t cell = b * a.V + vid;
  if (cell < a.cell_lo || cell >= a.cell_hi) return;  // another pass's slice
  if constexpr (kMode == kCount) {
    atomicAdd(static_cast<int32_t*>(a.out) + cell, 1);
  } else {
    static_cast<float*>(a.out)[cell] = 1.0f;
  }
}

// ---- max: order-preserving keys ---------------------------------------------
template <typename F>
struct MaxKeyOf;  // the unsigned integer key type of a feature type
template <>
struct MaxKeyOf<float> {
  using Key = uint32_t;
  __device__ static Key Bits(float v) { return __float_as_uint(v); }
};
template <>
struct MaxKeyOf<__nv_bfloat16> {
  using Key = unsigned short;
  __device__ static Key Bits(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }
};

template <typename Key>
struct KeyBits {
  static constexpr int kWidth = 8 * sizeof(Key);
  static constexpr Key kSign = static_cast<Key>(Key(1) << (kWidth - 1));
  static constexpr Key kAbs = static_cast<Key>(kSign - 1);
  // exponent all ones: +inf bits; the quiet NaN adds the top mantissa bit
  static constexpr Key kInf = sizeof(Key) == 4 ? Key(0x7f800000u) : Key(0x7f80u);
  static constexpr Key kQuietNan = sizeof(Key) == 4 ? Key(0x7fc00000u) : Key(0x7fc0u);
};

// Key of the canonical value of float bits: larger value <=> larger key, and
// never 0 (0 marks an empty voxel).
template <typename Key>
__host__ __device__ __forceinline__ Key MaxKey(Key bits) {
  using K = KeyBits<Key>;
  const Key mag = static_cast<Key>(bits & K::kAbs);
  if (mag == 0) bits = 0;                       // -0 -> +0
  else if (mag > K::kInf) bits = K::kQuietNan;  // any NaN -> the quiet NaN
  return (bits & K::kSign) ? static_cast<Key>(~bits) : static_cast<Key>(bits | K::kSign);
}

template <typename Key>
__host__ __device__ __forceinline__ Key DecodeMaxKey(Key key) {
  using K = KeyBits<Key>;
  if (key == 0) return 0;  // empty voxel: +0
  return (key & K::kSign) ? static_cast<Key>(key & K::kAbs) : static_cast<Key>(~key);
}

__device__ __forceinline__ void AtomicMaxKey(uint32_t* address, uint32_t key) {
  atomicMax(address, key);
}
__device__ __forceinline__ void AtomicMaxKey(unsigned short* address, unsigned short key) {
  unsigned short old = *reinterpret_cast<volatile unsigned short*>(address);
  while (old < key) {
    const unsigned short seen = atomicCAS(address, old, key);
    if (seen == old) break;
    old = seen;
  }
}

template <typename F>
__global__ void __launch_bounds__(kThreads) MaxKeysKernel(VoxelArgs a) {
  using Key = typename MaxKeyOf<F>::Key;
  int64_t b, i;
  if (!ThisPoint(a, &b, &i)) return;
  const int32_t vid = PointVoxel(a, b, i);
  if (vid < 0) return;
  const F* f = static_cast<const F*>(a.features) + b * a.features_stride + i * a.C;
  Key* keys = static_cast<Key*>(a.out) + (b * a.V + vid) * a.C;
  for (int64_t c = 0; c < a.C; ++c) {
    AtomicMaxKey(keys + c, MaxKey<Key>(MaxKeyOf<F>::Bits(f[c])));
  }
}

// In place: keys -> value bits; 16-byte words when `vectorised`.
template <typename Key>
__global__ void __launch_bounds__(kThreads) DecodeMaxKernel(Key* data, int64_t n,
                                                            bool vectorised) {
  constexpr int kPer = 16 / sizeof(Key);
  const int64_t words = vectorised ? n / kPer : 0;
  uint4* vec = reinterpret_cast<uint4*>(data);
  for (int64_t w = GlobalThread(); w < words; w += GridStride()) {
    union {
      uint4 u;
      Key k[kPer];
    } word;
    word.u = vec[w];
#pragma unroll
    for (int e = 0; e < kPer; ++e) word.k[e] = DecodeMaxKey(word.k[e]);
    vec[w] = word.u;
  }
  for (int64_t e = words * kPer + GlobalThread(); e < n; e += GridStride()) {
    data[e] = DecodeMaxKey(data[e]);
  }
}

// Checks the buffers against each other and the mode; fills `a`.
ffi::Error ParseArgs(ffi::AnyBuffer points, ffi::AnyBuffer features,
                     ffi::Buffer<ffi::S32> lengths, ffi::AnyBuffer out, int32_t mode,
                     ffi::Span<const float> lo, ffi::Span<const float> hi,
                     ffi::Span<const float> size, VoxelArgs* a) {
  if (auto e = ExpectRank(points.dimensions(), 3, "points"); e.failure()) return e;
  if (auto e = ExpectRank(features.dimensions(), 3, "features"); e.failure()) return e;
  if (auto e = ExpectRank(lengths.dimensions(), 1, "lengths"); e.failure()) return e;
  if (mode < kCount || mode > kMax) return ffi::Error::InvalidArgument("voxelize: bad mode");
  if (lo.size() != 3 || hi.size() != 3 || size.size() != 3) {
    return ffi::Error::InvalidArgument("voxelize: lo, hi and size need 3 values each");
  }
  const auto pd = points.dimensions(), fd = features.dimensions(), od = out.dimensions();
  const int64_t Bp = pd[0], N = pd[1], Bf = fd[0], Bl = lengths.dimensions()[0];
  const bool with_features = mode >= kSum;
  const int64_t C = with_features ? fd[2] : 1;
  const int64_t B = (Bp == 0 || Bf == 0 || Bl == 0) ? 0 : std::max({Bp, Bf, Bl});
  auto shared_or_full = [B](int64_t n) { return n == 1 || n == B; };
  const size_t out_rank = with_features ? 5 : 4;
  bool ok = pd[2] == 3 && points.element_type() == ffi::DataType::F32 &&
            shared_or_full(Bp) && shared_or_full(Bf) && shared_or_full(Bl) &&
            od.size() == out_rank && od[0] == B && (!with_features || (fd[1] == N && od[4] == C));
  for (size_t d = 1; ok && d < 4; ++d) ok = od[d] >= 1 && od[d] <= 0x7fffffffLL;
  if (!ok) {
    return ffi::Error::InvalidArgument(
        "voxelize: inconsistent shapes points=" + ShapeString(pd) +
        " features=" + ShapeString(fd) + " lengths=" + ShapeString(lengths.dimensions()) +
        " out=" + ShapeString(od));
  }
  const ffi::DataType want = mode == kCount       ? ffi::DataType::S32
                             : mode == kOccupancy ? ffi::DataType::F32
                                                  : features.element_type();
  if (out.element_type() != want ||
      (with_features && want != ffi::DataType::F32 && want != ffi::DataType::BF16)) {
    return ffi::Error::InvalidArgument("voxelize: unsupported features/out dtypes");
  }
  const int64_t V = od[1] * od[2] * od[3];
  if (V >= (int64_t{1} << 31) || N >= (int64_t{1} << 31)) {
    return ffi::Error::InvalidArgument("voxelize: grid or cloud too large for int32 indices");
  }
  *a = VoxelArgs{static_cast<const float*>(points.untyped_data()), features.untyped_data(),
                 lengths.typed_data(), out.untyped_data(), B, N, C, V,
                 Bp == B ? N * 3 : 0, Bf == B ? N * C : 0, Bl == B ? 1 : 0, GridParams{},
                 static_cast<uint32_t>(CeilDiv(N, kThreads)), 0, 0, B * V};
  if (B * static_cast<int64_t>(a->tiles) > 0x7fffffffLL) {
    return ffi::Error::InvalidArgument("voxelize: too many clouds x point tiles");
  }
  for (int d = 0; d < 3; ++d) {
    a->grid.lo[d] = lo[d];
    a->grid.hi[d] = hi[d];
    a->grid.size[d] = size[d];
    a->grid.dims[d] = static_cast<int32_t>(od[d + 1]);
  }
  return ffi::Error::Success();
}

ffi::Error ZeroGrid(cudaStream_t stream, ffi::AnyBuffer out) {
  return CheckCuda(cudaMemsetAsync(out.untyped_data(), 0, out.size_bytes(), stream),
                   "voxelize: zeroing the grid");
}

template <typename F>
ffi::Error LaunchMax(cudaStream_t stream, const VoxelArgs& a) {
  using Key = typename MaxKeyOf<F>::Key;
  MaxKeysKernel<F><<<PointBlocks(a), kThreads, 0, stream>>>(a);
  if (auto e = LastCudaError("voxelize max kernel launch"); e.failure()) return e;
  const int64_t n = a.B * a.V * a.C;
  DecodeMaxKernel<Key><<<Blocks(CeilDiv(n, 16 / sizeof(Key))), kThreads, 0, stream>>>(
      static_cast<Key*>(a.out), n, Aligned16(a.out));
  return LastCudaError("voxelize max decode kernel launch");
}

// count / occupancy: integer atomics (or stores) at random cells. A grid much
// larger than the L2 cache makes most of them DRAM round trips, so such a grid
// is done in slices of at most half the L2 (at most kMaxSlicesPerCloud per
// cloud): each pass zeroes its slice, then scatters the points whose cell falls
// in it (the points are read once per pass, the cells stay in L2).
constexpr int64_t kMaxSlicesPerCloud = 8;
constexpr int64_t kMinPointsToSlice = int64_t{1} << 18;

ffi::Error ScatterSlices(cudaStream_t stream, VoxelArgs a, int32_t mode, size_t cell_bytes) {
  const int64_t cells = a.B * a.V;
  int64_t slice = cells;
  if (a.B * a.N >= kMinPointsToSlice) {
    int device = 0, l2_bytes = 0;
    if (auto e = CheckCuda(cudaGetDevice(&device), "voxelize: cudaGetDevice"); e.failure()) {
      return e;
    }
    if (auto e = CheckCuda(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device),
                           "voxelize: L2 cache size");
        e.failure()) {
      return e;
    }
    slice = std::max<int64_t>(l2_bytes / 2 / static_cast<int64_t>(cell_bytes), 1);
    slice = std::max(slice, CeilDiv(a.V, kMaxSlicesPerCloud));
  }
  char* out = static_cast<char*>(a.out);
  for (int64_t lo = 0; lo < cells; lo += slice) {
    const int64_t hi = std::min(cells, lo + slice);
    if (auto e = CheckCuda(cudaMemsetAsync(out + lo * cell_bytes, 0, (hi - lo) * cell_bytes,
                                           stream),
                           "voxelize: zeroing the grid");
        e.failure()) {
      return e;
    }
    if (a.N == 0) continue;
    a.first_cloud = lo / a.V;
    a.cell_lo = lo;
    a.cell_hi = hi;
    const int64_t blocks = ((hi - 1) / a.V - a.first_cloud + 1) * a.tiles;
    if (mode == kCount) {
      ScatterPointsKernel<kCount><<<blocks, kThreads, 0, stream>>>(a);
    } else {
      ScatterPointsKernel<kOccupancy><<<blocks, kThreads, 0, stream>>>(a);
    }
    if (auto e = LastCudaError("voxelize count/occupancy kernel launch"); e.failure()) return e;
  }
  return ffi::Error::Success();
}

ffi::Error VoxelizeImpl(cudaStream_t stream, ffi::AnyBuffer points, ffi::AnyBuffer features,
                        ffi::Buffer<ffi::S32> lengths, ffi::Result<ffi::AnyBuffer> out,
                        int32_t mode, ffi::Span<const float> lo, ffi::Span<const float> hi,
                        ffi::Span<const float> size) {
  VoxelArgs a;
  if (auto e = ParseArgs(points, features, lengths, *out, mode, lo, hi, size, &a);
      e.failure()) {
    return e;
  }
  if (mode == kSum || mode == kMean) {
    return ffi::Error::InvalidArgument("voxelize: sum/mean go to robocache_voxelize_binned");
  }
  if (out->size_bytes() == 0) return ffi::Error::Success();
  if (mode == kCount || mode == kOccupancy) return ScatterSlices(stream, a, mode, 4);
  if (auto e = ZeroGrid(stream, *out); e.failure()) return e;
  if (a.B * a.N == 0) return ffi::Error::Success();
  return features.element_type() == ffi::DataType::F32 ? LaunchMax<float>(stream, a)
                                                        : LaunchMax<__nv_bfloat16>(stream, a);
}

ffi::Error VoxelizeBinnedImpl(cudaStream_t stream, ffi::AnyBuffer points,
                              ffi::AnyBuffer features, ffi::Buffer<ffi::S32> lengths,
                              ffi::Result<ffi::AnyBuffer> out,
                              ffi::Result<ffi::AnyBuffer> workspace, int32_t mode,
                              ffi::Span<const float> lo, ffi::Span<const float> hi,
                              ffi::Span<const float> size) {
  VoxelArgs a;
  if (auto e = ParseArgs(points, features, lengths, *out, mode, lo, hi, size, &a);
      e.failure()) {
    return e;
  }
  if (mode != kSum && mode != kMean) {
    return ffi::Error::InvalidArgument("voxelize: only sum/mean use the binned handler");
  }
  if (out->size_bytes() == 0) return ffi::Error::Success();
  return VoxelizeBinnedSum(stream, *workspace, a, features.element_type() == ffi::DataType::BF16,
                           mode == kMean);
}
}  // namespace
}  // namespace voxelize
}  // namespace robocache

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocacheVoxelize, robocache::voxelize::VoxelizeImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::AnyBuffer>()                // points
        .Arg<xla::ffi::AnyBuffer>()                // features
        .Arg<xla::ffi::Buffer<xla::ffi::S32>>()    // lengths
        .Ret<xla::ffi::AnyBuffer>()                // out
        .Attr<int32_t>("mode")
        .Attr<xla::ffi::Span<const float>>("lo")
        .Attr<xla::ffi::Span<const float>>("hi")
        .Attr<xla::ffi::Span<const float>>("size"),
    {xla::ffi::Traits::kCmdBufferCompatible});

// Its scratch is an ordinary XLA buffer (the workspace result), so it can be
// captured into command buffers like the other handlers.
XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocacheVoxelizeBinned, robocache::voxelize::VoxelizeBinnedImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::AnyBuffer>()                // points
        .Arg<xla::ffi::AnyBuffer>()                // features
        .Arg<xla::ffi::Buffer<xla::ffi::S32>>()    // lengths
        .Ret<xla::ffi::AnyBuffer>()                // out
        .Ret<xla::ffi::AnyBuffer>()                // workspace uint8[B, bytes per cloud]
        .Attr<int32_t>("mode")
        .Attr<xla::ffi::Span<const float>>("lo")
        .Attr<xla::ffi::Span<const float>>("hi")
        .Attr<xla::ffi::Span<const float>>("size"),
    {xla::ffi::Traits::kCmdBufferCompatible});
