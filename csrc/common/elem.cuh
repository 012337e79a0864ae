// Device-side element types of the kernels: load / store in the accumulation
// type, 16-byte vectors, a quiet NaN, and the host dispatch from an ElemType
// to its C++ type.
#ifndef JAX_ROBOCACHE_COMMON_ELEM_CUH_
#define JAX_ROBOCACHE_COMMON_ELEM_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/launch.h"

namespace robocache {

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

template <typename Acc>
__device__ __forceinline__ Acc QuietNan() {
  return static_cast<Acc>(__int_as_float(0x7fc00000));
}

// The quiet NaN of T with the bits XLA writes (sign 0, only the quiet bit set
// in the mantissa): a NaN fill equal to the jnp twins' bit for bit. Converting
// QuietNan<float>() with Elem<T>::store gives 0x7fff for bfloat16 instead.
template <typename T>
__device__ __forceinline__ T CanonicalNan();
template <>
__device__ __forceinline__ float CanonicalNan<float>() {
  return __int_as_float(0x7fc00000);
}
template <>
__device__ __forceinline__ double CanonicalNan<double>() {
  return __longlong_as_double(0x7ff8000000000000LL);
}
template <>
__device__ __forceinline__ __nv_bfloat16 CanonicalNan<__nv_bfloat16>() {
  return __ushort_as_bfloat16(0x7fc0);
}
template <>
__device__ __forceinline__ __half CanonicalNan<__half>() {
  return __ushort_as_half(0x7e00);
}

// Calls fn(T{}) with T the C++ type of `type`.
template <typename Fn>
void DispatchElem(ElemType type, Fn&& fn) {
  switch (type) {
    case kF32: fn(float{}); break;
    case kF64: fn(double{}); break;
    case kBF16: fn(__nv_bfloat16{}); break;
    case kF16: fn(__half{}); break;
  }
}

}  // namespace robocache

#endif  // JAX_ROBOCACHE_COMMON_ELEM_CUH_
