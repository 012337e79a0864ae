// Exact, order-free float32 summation ("superaccumulator").
//
// Every finite float32 is an integer multiple of 2^-149 (the smallest
// subnormal) below 2^128, so a sum of up to 2^31 of them is an integer below
// 2^159 * 2^149 = 2^308 in units of 2^-149: it fits a 320-bit two's-complement
// integer (5 x 64-bit words) exactly. Adding float32 values into it is integer
// addition, associative and commutative: the result does not depend on the
// order of the additions nor on how they are split across threads, so a sum
// built with atomics, in any thread order, or by a warp reduction is bitwise
// reproducible. It is rounded to float32 once, at the end (correct rounding:
// round to nearest, ties to even), so it is never less accurate than a float32
// running sum, whatever the order of that sum.
//
// Non-finite inputs are tracked apart, with IEEE's rules for a sum: any NaN,
// or +inf and -inf together, give NaN; otherwise an infinity wins. (Unlike a
// float32 running sum, an intermediate result never overflows: only a final
// sum beyond the float32 range rounds to an infinity.)
#ifndef JAX_ROBOCACHE_COMMON_EXACT_SUM_CUH_
#define JAX_ROBOCACHE_COMMON_EXACT_SUM_CUH_

#include <cstdint>

namespace robocache {

struct ExactSum {
  static constexpr int kWords = 5;
  uint64_t w[kWords];  // two's complement, little-endian words, units of 2^-149
  uint32_t special;    // kNan | kPosInf | kNegInf

  static constexpr uint32_t kNan = 1, kPosInf = 2, kNegInf = 4;

  __device__ __forceinline__ ExactSum() : w{0, 0, 0, 0, 0}, special(0) {}

  // this += other.
  __device__ __forceinline__ void Add(const ExactSum& o) {
    AddWords(o.w, false);
    special |= o.special;
  }

  // this += x.
  __device__ __forceinline__ void Add(float x) {
    const uint32_t bits = __float_as_uint(x);
    const uint32_t exponent = (bits >> 23) & 0xffu;
    uint32_t mantissa = bits & 0x7fffffu;
    const bool negative = (bits >> 31) != 0;
    if (exponent == 0xffu) {
      special |= mantissa != 0 ? kNan : (negative ? kNegInf : kPosInf);
      return;
    }
    // |x| = mantissa * 2^(shift - 149), shift in [0, 253]
    uint32_t shift = 0;
    if (exponent != 0) {
      mantissa |= 0x800000u;
      shift = exponent - 1;
    }
    if (mantissa == 0) return;  // +-0
    const uint32_t word = shift >> 6, offset = shift & 63u;
    const uint64_t lo = static_cast<uint64_t>(mantissa) << offset;
    const uint64_t hi = offset == 0 ? 0 : static_cast<uint64_t>(mantissa) >> (64 - offset);
    uint64_t a[kWords];
#pragma unroll
    for (uint32_t k = 0; k < kWords; ++k) a[k] = k == word ? lo : (k == word + 1 ? hi : 0);
    AddWords(a, negative);  // subtracting: adding ~a + 1
  }

  // The sum of all lanes' accumulators of a full warp, in every lane.
  __device__ __forceinline__ void WarpReduce() {
#pragma unroll
    for (int delta = 16; delta > 0; delta >>= 1) {
      ExactSum other;
#pragma unroll
      for (int k = 0; k < kWords; ++k) other.w[k] = __shfl_xor_sync(0xffffffffu, w[k], delta);
      other.special = __shfl_xor_sync(0xffffffffu, special, delta);
      Add(other);
    }
  }

  // w += (negate ? -a : a) over all words, two's complement: -a is ~a + 1.
  __device__ __forceinline__ void AddWords(const uint64_t (&a)[kWords], bool negate) {
    uint64_t carry = negate ? 1 : 0;
#pragma unroll
    for (int k = 0; k < kWords; ++k) {
      const uint64_t x = negate ? ~a[k] : a[k];
      const uint64_t partial = w[k] + x;
      const uint64_t sum = partial + carry;
      carry = (partial < x) | (sum < partial);
      w[k] = sum;
    }
  }

  // The float32 nearest to the exact sum (ties to even); +0 for a zero sum.
  __device__ __forceinline__ float Round() const {
    if (special != 0) {
      if ((special & kNan) || (special & (kPosInf | kNegInf)) == (kPosInf | kNegInf)) {
        return __int_as_float(0x7fc00000);
      }
      return (special & kPosInf) ? __int_as_float(0x7f800000) : __int_as_float(0xff800000);
    }
    uint64_t m[kWords];
    const bool negative = static_cast<int64_t>(w[kWords - 1]) < 0;
    uint64_t carry = negative ? 1 : 0;  // |sum|: invert and add one when negative
#pragma unroll
    for (int k = 0; k < kWords; ++k) {
      const uint64_t v = negative ? ~w[k] : w[k];
      m[k] = v + carry;
      carry = (carry != 0 && m[k] == 0) ? 1 : 0;
    }
    int top = -1;
#pragma unroll
    for (int k = 0; k < kWords; ++k) top = m[k] != 0 ? k : top;
    if (top < 0) return 0.0f;
    // The leading 64 bits of |sum|, with a sticky bit for any nonzero bit below
    // them (bit 0 lies far below float32's rounding position, so OR-ing the
    // sticky bit into it makes one correctly rounded conversion).
    uint64_t lead = 0, below = 0, upper = 0, lower = 0;
    int scale = -149;  // |sum| ~= lead * 2^scale
#pragma unroll
    for (int k = 0; k < kWords; ++k) {
      if (k == top) upper = m[k];
      if (k == top - 1) lower = m[k];
      if (k < top - 1) below |= m[k];
    }
    if (top == 0) {
      lead = upper;
    } else {
      const int lz = __clzll(static_cast<long long>(upper));
      lead = lz == 0 ? upper : (upper << lz) | (lower >> (64 - lz));
      below |= lz == 0 ? lower : (lower << lz);
      scale += 64 * top - lz;
    }
    const float rounded = __ull2float_rn(lead | (below != 0 ? 1 : 0));
    // Exact: `rounded` holds 24 significant bits, and a result in the
    // subnormal range only arises from top == 0 with lead < 2^24 (exact).
    const float magnitude = ldexpf(rounded, scale);
    return negative ? -magnitude : magnitude;
  }
};

}  // namespace robocache

#endif  // JAX_ROBOCACHE_COMMON_EXACT_SUM_CUH_
