// Codes and limits shared with the Python package, defined here only. The
// module exports them (csrc/module.cc: constants()); the package keeps a copy
// for installs without the CUDA module (jax_robocache/_core/codes.py) and
// asserts it equal to these when the module loads.
// Host code only: included by handlers, launchers and the module.
#ifndef JAX_ROBOCACHE_COMMON_CONSTANTS_H_
#define JAX_ROBOCACHE_COMMON_CONSTANTS_H_

#include <cstdint>

namespace robocache {

// resample / align `method` (docs/ops/resample.md, docs/ops/align.md).
enum Method : int32_t { kLinear = 0, kNearest = 1, kPrevious = 2, kSlerp = 3 };
// align's extra method: the mean of a stream's samples in (q - window, q].
constexpr int32_t kWindowMean = 4;
// resample / align `out_of_range`.
enum OutOfRange : int32_t { kClamp = 0, kNan = 1, kExtrapolate = 2 };
// Streams per align call: one descriptor each travels in the kernel's
// parameter struct, which stays far below the 4 KiB parameter limit.
constexpr int kMaxStreams = 16;

// resample / align: the resolution rule's constants (docs/ops/resample.md,
// "Epoch timestamps"): an episode of n >= 2 samples is unresolved in its time
// dtype when kResolutionFactor * eps * max(|t_0|, |t_{n-1}|) * (n - 1) >
// max(|t_{n-1} - t_0|, (n - 1) * kMinSampleSpacingS); the kernels
// (interp_plan.cuh: Unresolved) and the twins treat each of its queries as NaN.
constexpr int32_t kResolutionFactor = 4;
constexpr double kMinSampleSpacingS = 1e-6;

// sample_windows (docs/ops/sample_windows.md): window kinds, the extra
// out_of_range "zero" (clamp, then every invalid entry is 0), windows per
// call (one descriptor each in the kernel's parameter struct) and deltas per
// call (all windows' deltas travel in the parameter struct too).
enum WindowKind : int32_t { kTimeWindow = 0, kIndexWindow = 1 };
constexpr int32_t kZeroOor = 3;
constexpr int kMaxWindows = 16;
constexpr int kMaxWindowEntries = 2048;

namespace voxelize {
// voxelize `mode` (docs/ops/voxelize.md).
enum Mode : int32_t { kCount = 0, kOccupancy = 1, kSum = 2, kMean = 3, kMax = 4 };
}  // namespace voxelize

// Floating-point element types of the buffers the kernels read and write.
enum ElemType : int32_t { kF32 = 0, kF64 = 1, kBF16 = 2, kF16 = 3 };

// align's out_dtype: kAlignKernelWrites[value][out] says whether the kernel
// writes a stream of element type `value` in type `out` itself, with one
// rounding of its result (the same type, any of float32 / bfloat16 / float16
// from one of those, float32 from float64); XLA converts any other pair after
// the kernel (docs/ops/align.md). Rows and columns in ElemType order.
constexpr bool kAlignKernelWrites[4][4] = {
    // out: float32 float64 bfloat16 float16
    {true, false, true, true},    // float32
    {true, true, false, false},   // float64
    {true, false, true, true},    // bfloat16
    {true, false, true, true}};   // float16

// The Python names of the codes, as exported by the module.
struct NamedCode {
  const char* name;
  int32_t code;
};
constexpr NamedCode kMethodNames[] = {
    {"linear", kLinear}, {"nearest", kNearest}, {"previous", kPrevious}, {"slerp", kSlerp}};
constexpr NamedCode kOutOfRangeNames[] = {
    {"clamp", kClamp}, {"nan", kNan}, {"extrapolate", kExtrapolate}};
constexpr NamedCode kWindowOutOfRangeNames[] = {
    {"clamp", kClamp}, {"nan", kNan}, {"extrapolate", kExtrapolate}, {"zero", kZeroOor}};
constexpr NamedCode kWindowKindNames[] = {{"time", kTimeWindow}, {"index", kIndexWindow}};
constexpr NamedCode kElemTypeNames[] = {
    {"float32", kF32}, {"float64", kF64}, {"bfloat16", kBF16}, {"float16", kF16}};
constexpr NamedCode kVoxelizeModeNames[] = {
    {"count", voxelize::kCount}, {"occupancy", voxelize::kOccupancy}, {"sum", voxelize::kSum},
    {"mean", voxelize::kMean},   {"max", voxelize::kMax}};

}  // namespace robocache

#endif  // JAX_ROBOCACHE_COMMON_CONSTANTS_H_
