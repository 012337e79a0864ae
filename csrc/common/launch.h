// What every launcher takes and returns, free of FFI types (the handlers turn
// a Status into an ffi::Error, common/ffi_common.h): the element types of the
// buffers, a Status, and small host helpers. Host code only.
#ifndef JAX_ROBOCACHE_COMMON_LAUNCH_H_
#define JAX_ROBOCACHE_COMMON_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <utility>

#include "common/constants.h"

namespace robocache {

// ElemType, the element types of the buffers a launcher reads and writes:
// common/constants.h.

inline int ItemBytes(ElemType type) { return type == kF64 ? 8 : (type == kF32 ? 4 : 2); }

// The outcome of a launcher: success, a failed CUDA call (`what` names it) or
// an argument only the launcher can check (it depends on the device, on cub's
// temporary storage or on the launch shape).
class Status {
 public:
  Status() = default;  // success

  static Status Invalid(std::string message) { return Status(kInvalid, std::move(message)); }

  // Success for cudaSuccess, else the CUDA error named after `what`.
  static Status Cuda(cudaError_t status, const char* what) {
    if (status == cudaSuccess) return Status();
    return Status(kCuda, std::string(what) + ": CUDA error " + cudaGetErrorName(status) + ": " +
                             cudaGetErrorString(status));
  }

  // The last CUDA error (launch configuration or asynchronous fault), or
  // success: call it after every kernel launch.
  static Status LastCuda(const char* where) { return Cuda(cudaGetLastError(), where); }

  bool ok() const { return kind_ == kOk; }
  bool invalid_argument() const { return kind_ == kInvalid; }
  const std::string& message() const { return message_; }

 private:
  enum Kind { kOk, kCuda, kInvalid };
  Status(Kind kind, std::string message) : kind_(kind), message_(std::move(message)) {}
  Kind kind_ = kOk;
  std::string message_;
};

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The largest power of two <= 16 that divides the byte offset `x` (16 for 0).
inline int32_t Alignment16(std::uintptr_t x) {
  int32_t a = 16;
  while (a > 1 && (x & static_cast<std::uintptr_t>(a - 1)) != 0) a >>= 1;
  return a;
}

// Whether p allows 16-byte vector accesses.
inline bool Aligned16(const void* p) {
  return Alignment16(reinterpret_cast<std::uintptr_t>(p)) == 16;
}

}  // namespace robocache

#endif  // JAX_ROBOCACHE_COMMON_LAUNCH_H_
