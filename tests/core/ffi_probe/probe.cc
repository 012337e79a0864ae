// A tiny CPU FFI target with our ops' operand convention, used by
// tests/test_ffi_partitioning.py to exercise the batch-partitioned FFI lowering
// of jax_robocache/_primitive.py on CPU devices (the CUDA kernels need a GPU).
//
// probe(x [Bx, K], y [By, L]) -> out [B] with out[b] = sum(x[b]) + 1000 sum(y[b]),
// where an operand with axis 0 of size 1 is shared by every b (Bx, By in {B, 1}).
// probe_workspace: the same plus a [B, W] uint8 workspace result filled with b.
#include <cstdint>
#include <cstring>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

static ffi::Error Sums(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> y,
                       ffi::ResultBuffer<ffi::F32> out) {
  const auto xd = x.dimensions(), yd = y.dimensions();
  const int64_t B = out->dimensions()[0];
  if ((xd[0] != B && xd[0] != 1) || (yd[0] != B && yd[0] != 1)) {
    return ffi::Error::InvalidArgument("operand axis 0 must be B or 1");
  }
  for (int64_t b = 0; b < B; ++b) {
    const float* xr = x.typed_data() + (xd[0] == 1 ? 0 : b) * xd[1];
    const float* yr = y.typed_data() + (yd[0] == 1 ? 0 : b) * yd[1];
    float s = 0.0f;
    for (int64_t k = 0; k < xd[1]; ++k) s += xr[k];
    for (int64_t k = 0; k < yd[1]; ++k) s += 1000.0f * yr[k];
    out->typed_data()[b] = s;
  }
  return ffi::Error::Success();
}

static ffi::Error SumsWithWorkspace(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> y,
                                    ffi::ResultBuffer<ffi::F32> out,
                                    ffi::ResultBuffer<ffi::U8> workspace) {
  const auto wd = workspace->dimensions();
  if (wd[0] != out->dimensions()[0]) {
    return ffi::Error::InvalidArgument("workspace axis 0 must be B");
  }
  for (int64_t b = 0; b < wd[0]; ++b) {
    std::memset(workspace->typed_data() + b * wd[1], static_cast<int>(b & 0xff), wd[1]);
  }
  return Sums(x, y, out);
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(RobocacheProbe, Sums,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(RobocacheProbeWorkspace, SumsWithWorkspace,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::U8>>());
