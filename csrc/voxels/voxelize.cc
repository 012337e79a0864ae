// The XLA FFI handlers of voxelize: decode and check the buffers, then run
// the launchers of voxelize_kernels.h (which states the layout; the contract
// is docs/ops/voxelize.md).
//   robocache_voxelize         count, occupancy, max
//   robocache_voxelize_binned  sum, mean; its last result is the scratch
//                              workspace uint8[B, bytes per cloud], sized at
//                              lowering time by VoxelizeBinnedWorkspacePerCloud
// Both are command-buffer compatible (the workspace is an ordinary XLA buffer).
#include <algorithm>
#include <cstdint>
#include <utility>

#include "common/constants.h"
#include "common/ffi_common.h"
#include "voxels/voxelize_kernels.h"

namespace robocache {
namespace voxelize {
namespace {

// Checks the buffers against each other and the mode; fills `a`.
ffi::Error ParseArgs(ffi::AnyBuffer points, ffi::AnyBuffer features,
                     ffi::Buffer<ffi::S32> lengths, ffi::AnyBuffer out, int32_t mode,
                     ffi::Span<const float> lo, ffi::Span<const float> hi,
                     ffi::Span<const float> size, VoxelizeCall* a) {
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
  const size_t out_rank = with_features ? 5 : 4;
  bool ok = pd[2] == 3 && points.element_type() == ffi::DataType::F32 &&
            SharedOrFull(Bp, B) && SharedOrFull(Bf, B) && SharedOrFull(Bl, B) &&
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
  *a = VoxelizeCall{static_cast<const float*>(points.untyped_data()), features.untyped_data(),
                    lengths.typed_data(), out.untyped_data(), B, N, C, V,
                    Bp == B ? N * 3 : 0, Bf == B ? N * C : 0, Bl == B ? 1 : 0, GridParams{}};
  for (int d = 0; d < 3; ++d) {
    a->grid.lo[d] = lo[d];
    a->grid.hi[d] = hi[d];
    a->grid.size[d] = size[d];
    a->grid.dims[d] = static_cast<int32_t>(od[d + 1]);
  }
  return ffi::Error::Success();
}

ffi::Error VoxelizeImpl(cudaStream_t stream, ffi::AnyBuffer points, ffi::AnyBuffer features,
                        ffi::Buffer<ffi::S32> lengths, ffi::Result<ffi::AnyBuffer> out,
                        int32_t mode, ffi::Span<const float> lo, ffi::Span<const float> hi,
                        ffi::Span<const float> size) {
  VoxelizeCall call;
  if (auto e = ParseArgs(points, features, lengths, *out, mode, lo, hi, size, &call);
      e.failure()) {
    return e;
  }
  if (mode == kSum || mode == kMean) {
    return ffi::Error::InvalidArgument("voxelize: sum/mean go to robocache_voxelize_binned");
  }
  if (out->size_bytes() == 0) return ffi::Error::Success();
  const ElemType type = features.element_type() == ffi::DataType::F32 ? kF32 : kBF16;
  return ToFfiError(LaunchVoxelize(stream, call, mode, type, out->size_bytes()));
}

ffi::Error VoxelizeBinnedImpl(cudaStream_t stream, ffi::AnyBuffer points,
                              ffi::AnyBuffer features, ffi::Buffer<ffi::S32> lengths,
                              ffi::Result<ffi::AnyBuffer> out,
                              ffi::Result<ffi::AnyBuffer> workspace, int32_t mode,
                              ffi::Span<const float> lo, ffi::Span<const float> hi,
                              ffi::Span<const float> size) {
  VoxelizeCall call;
  if (auto e = ParseArgs(points, features, lengths, *out, mode, lo, hi, size, &call);
      e.failure()) {
    return e;
  }
  if (mode != kSum && mode != kMean) {
    return ffi::Error::InvalidArgument("voxelize: only sum/mean use the binned handler");
  }
  if (out->size_bytes() == 0) return ffi::Error::Success();
  const ElemType type = features.element_type() == ffi::DataType::BF16 ? kBF16 : kF32;
  return ToFfiError(
      LaunchVoxelizeBinned(stream, call, type, mode == kMean, WorkspaceOf(*workspace)));
}

// The binding both handlers share: the operands and `out`, then (after the
// binned handler's workspace) the attributes.
auto Operands() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::PlatformStream<cudaStream_t>>()
      .Arg<ffi::AnyBuffer>()              // points
      .Arg<ffi::AnyBuffer>()              // features
      .Arg<ffi::Buffer<ffi::S32>>()       // lengths
      .Ret<ffi::AnyBuffer>();             // out
}

template <typename Binding>
auto WithAttributes(Binding binding) {
  return std::move(binding)
      .template Attr<int32_t>("mode")
      .template Attr<ffi::Span<const float>>("lo")
      .template Attr<ffi::Span<const float>>("hi")
      .template Attr<ffi::Span<const float>>("size");
}

}  // namespace
}  // namespace voxelize
}  // namespace robocache

XLA_FFI_DEFINE_HANDLER_SYMBOL(RobocacheVoxelize, robocache::voxelize::VoxelizeImpl,
                              robocache::voxelize::WithAttributes(
                                  robocache::voxelize::Operands()),
                              {xla::ffi::Traits::kCmdBufferCompatible});

XLA_FFI_DEFINE_HANDLER_SYMBOL(RobocacheVoxelizeBinned, robocache::voxelize::VoxelizeBinnedImpl,
                              robocache::voxelize::WithAttributes(
                                  robocache::voxelize::Operands()
                                      .Ret<xla::ffi::AnyBuffer>()),  // workspace
                              {xla::ffi::Traits::kCmdBufferCompatible});
