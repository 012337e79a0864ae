// The XLA FFI handler of align: decodes and checks the per-stream buffers and
// attributes, then runs LaunchAlign (align_kernels.h states the layout; the
// contract is docs/ops/align.md).
//   attributes: methods[K] s32, offsets[K] / tolerances[K] / windows[K] f64,
//   columns[K] s64 (each stream's first column of the shared output),
//   out_of_range s32, concatenated s32.
//   results: per stream out_k, valid_k, age_k; with concatenated = 1 the
//   shared out first, then per stream valid_k, age_k.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "common/constants.h"
#include "common/ffi_common.h"
#include "streams/align_kernels.h"

namespace robocache {
namespace {

ffi::Error Invalid(int k, const std::string& what) {
  return ffi::Error::InvalidArgument("align: stream " + std::to_string(k) + ": " + what);
}

// Where stream k writes: its own out buffer, or its columns of the shared one.
struct OutputSlot {
  void* base;          // first element of the buffer
  ffi::DataType type;  // element type of the buffer
  int64_t width;       // elements per row of the buffer
  int64_t column;      // first column of this stream
};

// Checks stream k's buffers and fills its descriptor.
ffi::Error DescribeStream(int k, const ffi::RemainingArgs& args, ffi::AnyBuffer::Dimensions od,
                          OutputSlot slot, ffi::Result<ffi::Buffer<ffi::PRED>> valid,
                          ffi::Result<ffi::Buffer<ffi::F32>> age, int64_t B, int64_t T,
                          ffi::DataType time_type, int32_t method, double offset,
                          double tolerance, double window, int32_t oor, AlignStream* d) {
  auto values = args.get<ffi::AnyBuffer>(3 * k);
  auto times = args.get<ffi::AnyBuffer>(3 * k + 1);
  auto lengths = args.get<ffi::Buffer<ffi::S32>>(3 * k + 2);
  if (values.has_error()) return values.error();
  if (times.has_error()) return times.error();
  if (lengths.has_error()) return lengths.error();
  const auto vd = values->dimensions();
  const auto td = times->dimensions();
  const auto ld = lengths->dimensions();
  const auto md = valid->dimensions();
  const auto ad = age->dimensions();
  if (vd.size() != 3 || td.size() != 2 || ld.size() != 1 || od.size() != 3 ||
      md.size() != 2 || ad.size() != 2) {
    return Invalid(k, "bad ranks: values=" + ShapeString(vd) + " times=" + ShapeString(td) +
                          " lengths=" + ShapeString(ld) + " out=" + ShapeString(od));
  }
  const int64_t S = vd[1], D = vd[2];
  if (vd[0] != B || td[1] != S || !SharedOrFull(td[0], B) || !SharedOrFull(ld[0], B) ||
      od[0] != B || od[1] != T || od[2] != slot.width || slot.column < 0 ||
      slot.column + D > slot.width || md[0] != B || md[1] != T || ad[0] != B || ad[1] != T) {
    return Invalid(k, "inconsistent shapes values=" + ShapeString(vd) + " times=" +
                          ShapeString(td) + " lengths=" + ShapeString(ld) +
                          " out=" + ShapeString(od) + " column " + std::to_string(slot.column));
  }
  ElemType value_type, out_type;
  if (!ElemTypeOf(values->element_type(), &value_type) || !ElemTypeOf(slot.type, &out_type) ||
      !kAlignKernelWrites[value_type][out_type]) {
    return Invalid(k, "values must be f32/bf16/f16/f64 and the output of the same dtype, any "
                      "of f32/bf16/f16 for f32/bf16/f16 values, or f32 for f64 values");
  }
  if (times->element_type() != time_type) {
    return Invalid(k, "times and query_times dtypes differ");
  }
  if (method < kLinear || method > kWindowMean || (method == kSlerp && D != 4) ||
      (oor == kExtrapolate && method != kLinear) || (method == kWindowMean && !(window > 0)) ||
      S > 0x7fffffffLL || D > 0x7fffffffLL) {
    return Invalid(k, "bad method/out_of_range/window/shape");
  }
  const int item = ItemBytes(value_type), out_item = ItemBytes(out_type);
  char* out = static_cast<char*>(slot.base) + slot.column * out_item;
  d->values = values->untyped_data();
  d->times = times->untyped_data();
  d->lengths = lengths->typed_data();
  d->out = out;
  d->valid = valid->typed_data();
  d->age = age->typed_data();
  d->S = S;
  d->D = D;
  d->out_stride = slot.width;
  d->times_stride = td[0] == B ? S : 0;
  d->lengths_stride = ld[0] == B ? 1 : 0;
  d->offset = offset;
  d->tolerance = tolerance;
  d->window = window;
  d->method = method;
  d->value_type = value_type;
  d->out_type = out_type;
  d->item = item;
  d->out_item = out_item;
  // Vector accesses need aligned rows of values and output chunks (the launcher also needs D
  // to be a multiple of the vector width): a bfloat16 concatenation of 532 columns has rows
  // of 1064 bytes, 8-byte aligned, and takes 8-byte vectors.
  d->values_align = Alignment16(reinterpret_cast<std::uintptr_t>(values->untyped_data()));
  d->out_align = std::min({Alignment16(reinterpret_cast<std::uintptr_t>(slot.base)),
                           Alignment16(static_cast<std::uintptr_t>(slot.column * out_item)),
                           Alignment16(static_cast<std::uintptr_t>(slot.width * out_item))});
  return ffi::Error::Success();
}

ffi::Error AlignImpl(cudaStream_t stream, ffi::AnyBuffer queries, ffi::RemainingArgs args,
                     ffi::RemainingRets rets, ffi::Span<const int32_t> methods,
                     ffi::Span<const double> offsets, ffi::Span<const double> tolerances,
                     ffi::Span<const double> windows, ffi::Span<const int64_t> columns,
                     int32_t out_of_range, int32_t concatenated) {
  const int64_t K = static_cast<int64_t>(methods.size());
  if (K < 1 || K > kMaxStreams) {
    return ffi::Error::InvalidArgument("align: needs 1 to " + std::to_string(kMaxStreams) +
                                       " streams, got " + std::to_string(K));
  }
  const int64_t per_stream_rets = concatenated ? 2 : 3;
  const int64_t shared_rets = concatenated ? 1 : 0;
  if (static_cast<int64_t>(offsets.size()) != K ||
      static_cast<int64_t>(tolerances.size()) != K ||
      static_cast<int64_t>(windows.size()) != K || static_cast<int64_t>(columns.size()) != K ||
      static_cast<int64_t>(args.size()) != 3 * K ||
      static_cast<int64_t>(rets.size()) != shared_rets + per_stream_rets * K) {
    return ffi::Error::InvalidArgument("align: expected 3 operands per stream and 3 results "
                                       "per stream (2 and one shared when concatenated)");
  }
  if (auto e = ExpectRank(queries.dimensions(), 2, "query_times"); e.failure()) return e;
  const ffi::DataType time_type = queries.element_type();
  if (time_type != ffi::DataType::F32 && time_type != ffi::DataType::F64) {
    return ffi::Error::InvalidArgument("align: query_times must be f32 or f64");
  }
  if (out_of_range < kClamp || out_of_range > kExtrapolate) {
    return ffi::Error::InvalidArgument("align: bad out_of_range");
  }
  auto first_values = args.get<ffi::AnyBuffer>(0);
  if (first_values.has_error()) return first_values.error();
  if (first_values->dimensions().size() != 3) {
    return Invalid(0, "values must have rank 3");
  }
  const int64_t B = first_values->dimensions()[0];
  const int64_t Bq = queries.dimensions()[0], T = queries.dimensions()[1];
  if (Bq != 1 && Bq != B) {
    return ffi::Error::InvalidArgument("align: query_times " +
                                       ShapeString(queries.dimensions()) +
                                       " must have 1 or B rows");
  }
  std::optional<ffi::Result<ffi::AnyBuffer>> shared_out;
  if (concatenated) {
    auto out = rets.get<ffi::AnyBuffer>(0);
    if (out.has_error()) return out.error();
    shared_out = *out;
  }
  AlignCall a{};
  int64_t width_used = 0;
  for (int k = 0; k < K; ++k) {
    const int64_t first = shared_rets + per_stream_rets * k;
    std::optional<ffi::Result<ffi::AnyBuffer>> own_out;
    if (!concatenated) {
      auto out = rets.get<ffi::AnyBuffer>(first);
      if (out.has_error()) return out.error();
      own_out = *out;
    }
    ffi::Result<ffi::AnyBuffer>& out = concatenated ? *shared_out : *own_out;
    auto valid = rets.get<ffi::Buffer<ffi::PRED>>(first + per_stream_rets - 2);
    auto age = rets.get<ffi::Buffer<ffi::F32>>(first + per_stream_rets - 1);
    if (valid.has_error()) return valid.error();
    if (age.has_error()) return age.error();
    const auto od = out->dimensions();
    const OutputSlot slot{out->untyped_data(), out->element_type(),
                          od.size() == 3 ? od[2] : -1, concatenated ? columns[k] : 0};
    if (auto e = DescribeStream(k, args, od, slot, *valid, *age, B, T, time_type, methods[k],
                                offsets[k], tolerances[k], windows[k], out_of_range,
                                &a.streams[k]);
        e.failure()) {
      return e;
    }
    width_used += a.streams[k].D;
  }
  if (concatenated && width_used != (*shared_out)->dimensions()[2]) {
    return ffi::Error::InvalidArgument("align: the streams' widths must add up to the "
                                       "concatenated output's " +
                                       ShapeString((*shared_out)->dimensions()));
  }
  if (B == 0 || T == 0) return ffi::Error::Success();
  a.queries = queries.untyped_data();
  a.T = T;
  a.queries_stride = Bq == B ? T : 0;
  a.K = static_cast<int32_t>(K);
  a.oor = out_of_range;
  return ToFfiError(LaunchAlign(stream, a, B, time_type == ffi::DataType::F64 ? kF64 : kF32));
}

}  // namespace
}  // namespace robocache

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocacheAlign, robocache::AlignImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::AnyBuffer>()  // query_times
        .RemainingArgs()             // per stream: values, times, lengths
        .RemainingRets()             // [out], per stream: [out], valid, age
        .Attr<xla::ffi::Span<const int32_t>>("methods")
        .Attr<xla::ffi::Span<const double>>("offsets")
        .Attr<xla::ffi::Span<const double>>("tolerances")
        .Attr<xla::ffi::Span<const double>>("windows")
        .Attr<xla::ffi::Span<const int64_t>>("columns")
        .Attr<int32_t>("out_of_range")
        .Attr<int32_t>("concatenated"),
    {xla::ffi::Traits::kCmdBufferCompatible});
