// The XLA FFI handler of resample: decodes and checks the buffers, then runs
// LaunchResample (resample_kernels.h states the layout; the contract is
// docs/ops/resample.md).
#include <cstdint>

#include "common/constants.h"
#include "common/ffi_common.h"
#include "streams/resample_kernels.h"

namespace robocache {
namespace {

ffi::Error ResampleImpl(cudaStream_t stream, ffi::AnyBuffer values, ffi::AnyBuffer times,
                        ffi::AnyBuffer queries, ffi::Buffer<ffi::S32> lengths,
                        ffi::Result<ffi::AnyBuffer> out,
                        ffi::Result<ffi::Buffer<ffi::PRED>> valid, int32_t method,
                        int32_t out_of_range) {
  if (auto e = ExpectRank(values.dimensions(), 3, "values"); e.failure()) return e;
  if (auto e = ExpectRank(times.dimensions(), 2, "times"); e.failure()) return e;
  if (auto e = ExpectRank(queries.dimensions(), 2, "query_times"); e.failure()) return e;
  const auto vd = values.dimensions();
  const int64_t B = vd[0], S = vd[1], D = vd[2];
  const int64_t T = queries.dimensions()[1];
  const int64_t Bt = times.dimensions()[0], Bq = queries.dimensions()[0];
  const int64_t Bl = lengths.dimensions()[0];
  if (times.dimensions()[1] != S || !SharedOrFull(Bt, B) || !SharedOrFull(Bq, B) ||
      !SharedOrFull(Bl, B) || out->dimensions().size() != 3 || out->dimensions()[0] != B ||
      out->dimensions()[1] != T || out->dimensions()[2] != D) {
    return ffi::Error::InvalidArgument(
        "resample: inconsistent shapes values=" + ShapeString(vd) +
        " times=" + ShapeString(times.dimensions()) +
        " query_times=" + ShapeString(queries.dimensions()) +
        " out=" + ShapeString(out->dimensions()));
  }
  if (times.element_type() != queries.element_type()) {
    return ffi::Error::InvalidArgument("resample: times and query_times dtypes differ");
  }
  if (values.element_type() != out->element_type()) {
    return ffi::Error::InvalidArgument("resample: out dtype must match values");
  }
  if (method < kLinear || method > kSlerp || out_of_range < kClamp ||
      out_of_range > kExtrapolate || (method == kSlerp && D != 4) || S > 0x7fffffffLL ||
      D > 0x7fffffffLL) {
    return ffi::Error::InvalidArgument("resample: bad method/out_of_range/shape");
  }
  if (B == 0 || T == 0) return ffi::Error::Success();
  ElemType value_type, time_type;
  if (!ElemTypeOf(values.element_type(), &value_type) ||
      !ElemTypeOf(times.element_type(), &time_type) || (time_type != kF32 && time_type != kF64)) {
    return ffi::Error::InvalidArgument("resample: unsupported dtypes");
  }
  const ResampleCall call{values.untyped_data(), times.untyped_data(), queries.untyped_data(),
                          lengths.typed_data(), out->untyped_data(), valid->typed_data(),
                          S, D, T, Bt == B ? S : 0, Bq == B ? T : 0, Bl == B ? 1 : 0,
                          method, out_of_range};
  return ToFfiError(LaunchResample(stream, call, B, value_type, time_type));
}

}  // namespace
}  // namespace robocache

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocacheResample, robocache::ResampleImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::AnyBuffer>()                   // values
        .Arg<xla::ffi::AnyBuffer>()                   // times
        .Arg<xla::ffi::AnyBuffer>()                   // query_times
        .Arg<xla::ffi::Buffer<xla::ffi::S32>>()       // lengths
        .Ret<xla::ffi::AnyBuffer>()                   // out
        .Ret<xla::ffi::Buffer<xla::ffi::PRED>>()      // valid
        .Attr<int32_t>("method")
        .Attr<int32_t>("out_of_range"),
    {xla::ffi::Traits::kCmdBufferCompatible});
