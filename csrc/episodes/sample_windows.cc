// The XLA FFI handler of sample_windows: decodes and checks the per-window
// buffers and attributes, then runs LaunchSampleWindows
// (sample_windows_kernels.h states the layout; the contract is
// docs/ops/sample_windows.md).
//   operands: episode [B] s32, anchor [B] f32|f64, per window values, times,
//     offsets, mask.
//   attributes (one entry per window): kinds, methods, out_of_range s32,
//     masked s32, max_lengths s64 (-1: none), sizes s64 (K), time_offsets /
//     tolerances (+inf: none) / windows f64; deltas f64 [sum of K].
//   results: per window out, valid, age.
#include <cmath>
#include <cstdint>
#include <string>

#include "common/constants.h"
#include "common/ffi_common.h"
#include "episodes/sample_windows_kernels.h"

namespace robocache {
namespace {

ffi::Error Invalid(int k, const std::string& what) {
  return ffi::Error::InvalidArgument("sample_windows: window " + std::to_string(k) + ": " +
                                     what);
}

// Bytes per vector access of a window: the largest power of two <= 16 that
// divides a row and both base addresses (values rows and output entries are
// then aligned to it).
int32_t VecBytes(const void* values, const void* out, int64_t row_bytes, int item) {
  for (int32_t bytes = 16; bytes > item; bytes /= 2) {
    if (row_bytes % bytes == 0 && reinterpret_cast<std::uintptr_t>(values) % bytes == 0 &&
        reinterpret_cast<std::uintptr_t>(out) % bytes == 0) {
      return bytes;
    }
  }
  return item;
}

struct WindowAttrs {
  int32_t kind, method, oor, masked;
  int64_t max_length, K;
  double offset, tolerance, window;
};

// Checks window k's buffers and attributes and fills its descriptor.
ffi::Error DescribeWindow(int k, const ffi::RemainingArgs& args, ffi::RemainingRets& rets,
                          int64_t B, ffi::DataType time_type, const WindowAttrs& at,
                          WindowDesc* d) {
  auto values = args.get<ffi::AnyBuffer>(4 * k);
  auto times = args.get<ffi::AnyBuffer>(4 * k + 1);
  auto offsets = args.get<ffi::Buffer<ffi::S32>>(4 * k + 2);
  auto mask = args.get<ffi::Buffer<ffi::PRED>>(4 * k + 3);
  auto out = rets.get<ffi::AnyBuffer>(3 * k);
  auto valid = rets.get<ffi::Buffer<ffi::PRED>>(3 * k + 1);
  auto age = rets.get<ffi::Buffer<ffi::F32>>(3 * k + 2);
  if (values.has_error()) return values.error();
  if (times.has_error()) return times.error();
  if (offsets.has_error()) return offsets.error();
  if (mask.has_error()) return mask.error();
  if (out.has_error()) return out.error();
  if (valid.has_error()) return valid.error();
  if (age.has_error()) return age.error();
  const auto vd = values->dimensions(), td = times->dimensions(), fd = offsets->dimensions();
  const auto md = mask->dimensions(), od = (*out)->dimensions();
  const auto ad = (*valid)->dimensions(), gd = (*age)->dimensions();
  if (vd.size() != 3 || td.size() != 2 || fd.size() != 2 || md.size() != 2 || od.size() != 3 ||
      ad.size() != 2 || gd.size() != 2) {
    return Invalid(k, "bad ranks: values=" + ShapeString(vd) + " times=" + ShapeString(td) +
                          " offsets=" + ShapeString(fd) + " mask=" + ShapeString(md) +
                          " out=" + ShapeString(od));
  }
  const int64_t N = vd[1], D = vd[2], E = fd[1] - 1, K = at.K;
  if (!SharedOrFull(vd[0], B) || !SharedOrFull(td[0], B) || !SharedOrFull(fd[0], B) ||
      !SharedOrFull(md[0], B) || td[1] != N || E < 0 || md[1] != (at.masked ? N : 0) ||
      od[0] != B || od[1] != K || od[2] != D || ad[0] != B || ad[1] != K || gd[0] != B ||
      gd[1] != K) {
    return Invalid(k, "inconsistent shapes values=" + ShapeString(vd) + " times=" +
                          ShapeString(td) + " offsets=" + ShapeString(fd) + " mask=" +
                          ShapeString(md) + " out=" + ShapeString(od) + " valid=" +
                          ShapeString(ad) + " age=" + ShapeString(gd) + " for " +
                          std::to_string(B) + " rows and " + std::to_string(K) + " entries");
  }
  if (N > 0x7fffffffLL || D >= (int64_t{1} << 23) || E > 0x7fffffffLL) {
    return Invalid(k, "the stream must have fewer than 2^31 samples and episodes and fewer "
                      "than 2^23 features");
  }
  ElemType value_type;
  if (!ElemTypeOf(values->element_type(), &value_type) ||
      (*out)->element_type() != values->element_type()) {
    return Invalid(k, "values must be f32/bf16/f16/f64 and the output of the same dtype");
  }
  if (times->element_type() != time_type) {
    return Invalid(k, "times and anchor dtypes differ");
  }
  const bool time = at.kind == kTimeWindow;
  if ((at.kind != kTimeWindow && at.kind != kIndexWindow) || at.oor < kClamp ||
      at.oor > kZeroOor || (!time && at.oor == kExtrapolate) ||
      (time && (at.method < kLinear || at.method > kWindowMean)) ||
      (time && at.method == kSlerp && D != 4) ||
      (time && at.oor == kExtrapolate && at.method != kLinear) ||
      (time && at.method == kWindowMean && !(at.window > 0)) || !std::isfinite(at.offset) ||
      !(at.tolerance >= 0)) {
    return Invalid(k, "bad kind/method/out_of_range/window/tolerance/offset attributes");
  }
  const int item = ItemBytes(value_type);
  d->values = values->untyped_data();
  d->times = times->untyped_data();
  d->offsets = offsets->typed_data();
  d->mask = at.masked ? mask->typed_data() : nullptr;
  d->out = (*out)->untyped_data();
  d->valid = (*valid)->typed_data();
  d->age = (*age)->typed_data();
  d->N = N;
  d->D = D;
  d->E = E;
  d->values_stride = vd[0] == B && B != 1 ? N * D : 0;
  d->times_stride = td[0] == B && B != 1 ? N : 0;
  d->offsets_stride = fd[0] == B && B != 1 ? E + 1 : 0;
  d->mask_stride = md[0] == B && B != 1 ? md[1] : 0;
  d->max_length = at.max_length;
  d->offset = at.offset;
  d->tolerance = at.tolerance;
  d->window = at.window;
  d->kind = at.kind;
  d->method = time ? at.method : -1;
  d->oor = at.oor;
  d->K = static_cast<int32_t>(K);
  d->value_type = value_type;
  d->vec_bytes = VecBytes(d->values, d->out, D * item, item);
  return ffi::Error::Success();
}

ffi::Error SampleWindowsImpl(cudaStream_t stream, ffi::Buffer<ffi::S32> episode,
                             ffi::AnyBuffer anchor, ffi::RemainingArgs args,
                             ffi::RemainingRets rets, ffi::Span<const int32_t> kinds,
                             ffi::Span<const int32_t> methods,
                             ffi::Span<const int32_t> out_of_range,
                             ffi::Span<const int32_t> masked,
                             ffi::Span<const int64_t> max_lengths,
                             ffi::Span<const int64_t> sizes,
                             ffi::Span<const double> time_offsets,
                             ffi::Span<const double> tolerances,
                             ffi::Span<const double> windows, ffi::Span<const double> deltas) {
  const int64_t W = static_cast<int64_t>(kinds.size());
  if (W < 1 || W > kMaxWindows) {
    return ffi::Error::InvalidArgument("sample_windows: needs 1 to " +
                                       std::to_string(kMaxWindows) + " windows, got " +
                                       std::to_string(W));
  }
  const auto same = [W](size_t n) { return static_cast<int64_t>(n) == W; };
  if (!same(methods.size()) || !same(out_of_range.size()) || !same(masked.size()) ||
      !same(max_lengths.size()) || !same(sizes.size()) || !same(time_offsets.size()) ||
      !same(tolerances.size()) || !same(windows.size()) ||
      static_cast<int64_t>(args.size()) != 4 * W || static_cast<int64_t>(rets.size()) != 3 * W) {
    return ffi::Error::InvalidArgument("sample_windows: expected one attribute entry, 4 "
                                       "operands and 3 results per window");
  }
  int64_t total = 0;
  for (int64_t k = 0; k < W; ++k) {
    if (sizes[k] < 1) return Invalid(static_cast<int>(k), "needs at least one delta");
    total += sizes[k];
  }
  if (total != static_cast<int64_t>(deltas.size()) || total > kMaxWindowEntries) {
    return ffi::Error::InvalidArgument(
        "sample_windows: the deltas must number the windows' sizes summed (" +
        std::to_string(total) + "), at most " + std::to_string(kMaxWindowEntries) + "; got " +
        std::to_string(deltas.size()));
  }
  if (auto e = ExpectRank(episode.dimensions(), 1, "episode"); e.failure()) return e;
  if (auto e = ExpectRank(anchor.dimensions(), 1, "anchor"); e.failure()) return e;
  const int64_t B = episode.dimensions()[0];
  if (anchor.dimensions()[0] != B) {
    return ffi::Error::InvalidArgument("sample_windows: anchor " +
                                       ShapeString(anchor.dimensions()) + " must match episode " +
                                       ShapeString(episode.dimensions()));
  }
  const ffi::DataType time_type = anchor.element_type();
  if (time_type != ffi::DataType::F32 && time_type != ffi::DataType::F64) {
    return ffi::Error::InvalidArgument("sample_windows: anchor must be f32 or f64");
  }
  SampleWindowsCall call{};
  int32_t first = 0;
  for (int k = 0; k < W; ++k) {
    const WindowAttrs at{kinds[k],       methods[k],    out_of_range[k],
                         masked[k],      max_lengths[k], sizes[k],
                         time_offsets[k], tolerances[k], windows[k]};
    if (auto e = DescribeWindow(k, args, rets, B, time_type, at, &call.windows[k]); e.failure()) {
      return e;
    }
    call.windows[k].first_delta = first;
    for (int64_t i = 0; i < sizes[k]; ++i) call.deltas[first + i] = deltas[first + i];
    first += static_cast<int32_t>(sizes[k]);
  }
  if (B == 0) return ffi::Error::Success();
  call.episode = episode.typed_data();
  call.anchor = anchor.untyped_data();
  call.num_windows = static_cast<int32_t>(W);
  return ToFfiError(LaunchSampleWindows(stream, call, B,
                                        time_type == ffi::DataType::F64 ? kF64 : kF32));
}

}  // namespace
}  // namespace robocache

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RobocacheSampleWindows, robocache::SampleWindowsImpl,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::PlatformStream<cudaStream_t>>()
        .Arg<xla::ffi::Buffer<xla::ffi::S32>>()  // episode
        .Arg<xla::ffi::AnyBuffer>()              // anchor
        .RemainingArgs()                         // per window: values, times, offsets, mask
        .RemainingRets()                         // per window: out, valid, age
        .Attr<xla::ffi::Span<const int32_t>>("kinds")
        .Attr<xla::ffi::Span<const int32_t>>("methods")
        .Attr<xla::ffi::Span<const int32_t>>("out_of_range")
        .Attr<xla::ffi::Span<const int32_t>>("masked")
        .Attr<xla::ffi::Span<const int64_t>>("max_lengths")
        .Attr<xla::ffi::Span<const int64_t>>("sizes")
        .Attr<xla::ffi::Span<const double>>("time_offsets")
        .Attr<xla::ffi::Span<const double>>("tolerances")
        .Attr<xla::ffi::Span<const double>>("windows")
        .Attr<xla::ffi::Span<const double>>("deltas"),
    {xla::ffi::Traits::kCmdBufferCompatible});
