// Helpers shared by every jax_robocache kernel: CUDA status checks that turn
// into ffi::Error, element-type traits (load/convert/store in the accumulation
// type), 16-byte vector access and small argument checks for handlers.
#ifndef JAX_ROBOCACHE_FFI_COMMON_H_
#define JAX_ROBOCACHE_FFI_COMMON_H_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "xla/ffi/api/ffi.h"

namespace robocache {

namespace ffi = xla::ffi;

// Returns an ffi::Error describing the last CUDA error (launch configuration
// or asynchronous fault), or success. Call it after every kernel launch.
inline ffi::Error LastCudaError(const char* where) {
  cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) {
    return ffi::Error::Internal(std::string(where) + ": CUDA error " +
                                cudaGetErrorName(status) + ": " +
                                cudaGetErrorString(status));
  }
  return ffi::Error::Success();
}

// Checks the status of one CUDA runtime call.
inline ffi::Error CheckCuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    return ffi::Error::Internal(std::string(what) + ": CUDA error " +
                                cudaGetErrorName(status) + ": " +
                                cudaGetErrorString(status));
  }
  return ffi::Error::Success();
}

inline std::string ShapeString(ffi::AnyBuffer::Dimensions dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

// Returns an InvalidArgument error unless `buffer` has rank `rank`.
inline ffi::Error ExpectRank(ffi::AnyBuffer::Dimensions dims, size_t rank,
                             const char* name) {
  if (dims.size() != rank) {
    return ffi::Error::InvalidArgument(std::string(name) + " must have rank " +
                                       std::to_string(rank) + ", got shape " +
                                       ShapeString(dims));
  }
  return ffi::Error::Success();
}

// Element types a kernel can read and write; arithmetic happens in Acc
// (float32, or float64 for float64 data).
template <typename T>
struct Elem;

template <>
struct Elem<float> {
  using Acc = float;
  __device__ static float load(float v) { return v; }
  __device__ static float store(float v) { return v; }
};
template <>
struct Elem<double> {
  using Acc = double;
  __device__ static double load(double v) { return v; }
  __device__ static double store(double v) { return v; }
};
template <>
struct Elem<__nv_bfloat16> {
  using Acc = float;
  __device__ static float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  __device__ static __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};
template <>
struct Elem<__half> {
  using Acc = float;
  __device__ static float load(__half v) { return __half2float(v); }
  __device__ static __half store(float v) { return __float2half_rn(v); }
};

// N consecutive elements moved as one aligned access (16 bytes when
// N * sizeof(T) == 16).
template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

inline bool Aligned16(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

// Calls fn(T{}) with T the C++ type of a floating-point FFI element type;
// returns false for any other type.
template <typename Fn>
bool DispatchFloat(ffi::DataType dtype, Fn&& fn) {
  switch (dtype) {
    case ffi::DataType::F32: fn(float{}); return true;
    case ffi::DataType::F64: fn(double{}); return true;
    case ffi::DataType::BF16: fn(__nv_bfloat16{}); return true;
    case ffi::DataType::F16: fn(__half{}); return true;
    default: return false;
  }
}

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace robocache

#endif  // JAX_ROBOCACHE_FFI_COMMON_H_
