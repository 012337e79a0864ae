// The XLA FFI handler of points_to_voxels: decodes and checks the buffers,
// then runs LaunchPointsToVoxels (points_to_voxels_kernels.h states the
// layout; the contract is docs/ops/points_to_voxels.md). Its last result is
// the scratch workspace uint8[B, bytes per cloud], an ordinary XLA buffer, so
// the handler is command-buffer compatible.
#include <cstdint>

#include "common/ffi_common.h"
#include "voxels/points_to_voxels_kernels.h"

namespace robocache {
namespace {

ffi::Error PointsToVoxelsImpl(cudaStream_t stream, ffi::Buffer<ffi::F32> points,
                              ffi::Buffer<ffi::F32> features,
                              ffi::Buffer<ffi::S32> lengths,
                              ffi::Result<ffi::Buffer<ffi::F32>> voxels,
                              ffi::Result<ffi::Buffer<ffi::S32>> coords,
                              ffi::Result<ffi::Buffer<ffi::S32>> num_points,
                              ffi::Result<ffi::Buffer<ffi::S32>> num_voxels,
                              ffi::Result<ffi::Buffer<ffi::S32>> point_to_voxel,
                              ffi::Result<ffi::AnyBuffer> workspace,
                              ffi::Span<const float> lo, ffi::Span<const float> hi,
                              ffi::Span<const float> size, ffi::Span<const int32_t> dims) {
  const auto pd = points.dimensions(), fd = features.dimensions();
  const auto vd = voxels->dimensions();
  if (pd.size() != 3 || fd.size() != 3 || lengths.dimensions().size() != 1 || vd.size() != 4 ||
      lo.size() != 3 || hi.size() != 3 || size.size() != 3 || dims.size() != 3) {
    return ffi::Error::InvalidArgument("points_to_voxels: bad ranks");
  }
  const int64_t B = vd[0], N = pd[1], C = fd[2], M = vd[1], P = vd[2], W = vd[3];
  const int64_t Bp = pd[0], Bf = fd[0], Bl = lengths.dimensions()[0];
  const auto cd = coords->dimensions(), nd = num_points->dimensions();
  const auto ncd = num_voxels->dimensions(), td = point_to_voxel->dimensions();
  if (pd[2] != 3 || fd[1] != N || W != 3 + C || !SharedOrFull(Bp, B) || !SharedOrFull(Bf, B) ||
      !SharedOrFull(Bl, B) || cd.size() != 3 || cd[0] != B || cd[1] != M || cd[2] != 3 ||
      nd.size() != 2 || nd[0] != B || nd[1] != M || ncd.size() != 1 || ncd[0] != B ||
      td.size() != 2 || td[0] != B || td[1] != N) {
    return ffi::Error::InvalidArgument(
        "points_to_voxels: inconsistent shapes points=" + ShapeString(pd) +
        " features=" + ShapeString(fd) + " voxels=" + ShapeString(vd));
  }
  if (B * N > 0x7fffffffLL || M < 1 || P < 1 || M > 0x7fffffffLL || P * W > 0x7fffffffLL ||
      B > 0x7fffffffLL) {
    return ffi::Error::InvalidArgument("points_to_voxels: sizes exceed int32 indexing");
  }
  P2VArgs a{};
  a.points = points.typed_data();
  a.features = features.typed_data();
  a.lengths = lengths.typed_data();
  a.points_stride = Bp == B ? N * 3 : 0;
  a.features_stride = Bf == B ? N * C : 0;
  a.lengths_stride = Bl == B ? 1 : 0;
  a.B = static_cast<int32_t>(B);
  a.N = static_cast<int32_t>(N);
  a.C = static_cast<int32_t>(C);
  a.M = static_cast<int32_t>(M);
  a.P = static_cast<int32_t>(P);
  a.W = static_cast<int32_t>(W);
  a.G = 1;
  for (int k = 0; k < 3; ++k) {
    a.grid.lo[k] = lo[k];
    a.grid.hi[k] = hi[k];
    a.grid.size[k] = size[k];
    a.grid.dims[k] = dims[k];
    if (dims[k] < 1) return ffi::Error::InvalidArgument("points_to_voxels: bad grid dims");
    a.G *= dims[k];
  }
  if (a.G > 0x7fffffffLL) return ffi::Error::InvalidArgument("points_to_voxels: grid too large");
  if (B == 0) return ffi::Error::Success();
  const P2VOutputs outputs{voxels->typed_data(), coords->typed_data(),
                           num_points->typed_data(), num_voxels->typed_data(),
                           point_to_voxel->typed_data()};
  return ToFfiError(LaunchPointsToVoxels(stream, a, outputs, WorkspaceOf(*workspace)));
}



}  // namespace
}  // namespace robocache

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocachePointsToVoxels, robocache::PointsToVoxelsImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::Buffer<xla::ffi::F32>>()   // points
        .Arg<xla::ffi::Buffer<xla::ffi::F32>>()   // features
        .Arg<xla::ffi::Buffer<xla::ffi::S32>>()   // lengths
        .Ret<xla::ffi::Buffer<xla::ffi::F32>>()   // voxels
        .Ret<xla::ffi::Buffer<xla::ffi::S32>>()   // coords
        .Ret<xla::ffi::Buffer<xla::ffi::S32>>()   // num_points
        .Ret<xla::ffi::Buffer<xla::ffi::S32>>()   // num_voxels
        .Ret<xla::ffi::Buffer<xla::ffi::S32>>()   // point_to_voxel
        .Ret<xla::ffi::AnyBuffer>()               // workspace uint8[B, bytes per cloud]
        .Attr<xla::ffi::Span<const float>>("lo")
        .Attr<xla::ffi::Span<const float>>("hi")
        .Attr<xla::ffi::Span<const float>>("size")
        .Attr<xla::ffi::Span<const int32_t>>("dims"),
    {xla::ffi::Traits::kCmdBufferCompatible});
