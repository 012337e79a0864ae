// sample_windows' CUDA kernel (sample_windows_kernels.cu) and its launcher:
// every window of one call cut in one launch; the FFI handler is
// sample_windows.cc. The contract: docs/ops/sample_windows.md; the steps per
// (window, row, entry) are those of jax_robocache/episodes/windows_twin.py.
// Layout taken (built by jax_robocache/episodes/windows.py), W <= kMaxWindows
// windows, B rows:
//   episode       [B]            s32 (-1 for an episode outside the store)
//   anchor        [B]            f32 | f64 (the time dtype)
//   per window w (each operand's leading size S is 1, shared, or B):
//     values_w    [S, N_w, D_w]  f32 | bf16 | f16 | f64
//     times_w     [S, N_w]       the anchor's dtype
//     offsets_w   [S, E_w + 1]   s32, episode e is flat samples [offsets[e], offsets[e+1])
//     mask_w      [S, N_w] pred, or [S, 0] when the stream has no mask
//     out_w       [B, K_w, D_w]  values_w's dtype
//     valid_w     [B, K_w]       pred
//     age_w       [B, K_w]       f32
#ifndef JAX_ROBOCACHE_EPISODES_SAMPLE_WINDOWS_KERNELS_H_
#define JAX_ROBOCACHE_EPISODES_SAMPLE_WINDOWS_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/constants.h"
#include "common/launch.h"

namespace robocache {

struct WindowDesc {
  const void* values;
  const void* times;
  const int32_t* offsets;
  const bool* mask;  // null when the stream has no mask
  void* out;
  bool* valid;
  float* age;
  int64_t N, D, E;  // samples, features, episodes (each < 2^31)
  // Elements between consecutive store copies of each operand; 0 when shared.
  int64_t values_stride, times_stride, offsets_stride, mask_stride;
  int64_t max_length;  // episodes are read up to this many samples (the twin's search bound)
  double offset, tolerance, window;  // tolerance +inf: none
  int32_t kind;        // WindowKind
  int32_t method;      // Method or kWindowMean (time windows); -1 for index windows
  int32_t oor;         // OutOfRange or kZeroOor
  int32_t K;           // entries (deltas) of the window
  int32_t first_delta; // index of its first delta in SampleWindowsCall::deltas
  int32_t value_type;  // ElemType of values and out
  int32_t vec_bytes;   // bytes per vector access (item size ... 16): values, out and rows allow it
};

struct SampleWindowsCall {
  WindowDesc windows[kMaxWindows];
  // Every window's deltas, in window order: seconds (time windows) or steps
  // (index windows, integers exactly representable).
  double deltas[kMaxWindowEntries];
  const int32_t* episode;
  const void* anchor;
  int32_t num_windows;  // 1 ... kMaxWindows
};

// Launches sample_windows for B > 0 rows on `stream`; time_type (kF32 or kF64)
// is the dtype of the anchors and of every window's times.
Status LaunchSampleWindows(cudaStream_t stream, const SampleWindowsCall& call, int64_t B,
                           ElemType time_type);

}  // namespace robocache

#endif  // JAX_ROBOCACHE_EPISODES_SAMPLE_WINDOWS_KERNELS_H_
