// Per-row device helper shared by the kernels that write interpolated rows
// (resample, align): the normalised quaternion slerp of a plan (interp_plan.cuh).
#ifndef JAX_ROBOCACHE_STREAMS_ROW_OPS_CUH_
#define JAX_ROBOCACHE_STREAMS_ROW_OPS_CUH_

#include "common/elem.cuh"
#include "streams/interp_plan.cuh"

namespace robocache {

// Normalised slerp of two (x, y, z, w) quaternions along the shorter arc.
template <typename V>
__device__ void SlerpRow(const V* va, const V* vb, double w_d, int32_t kind,
                         V* out) {
  using E = Elem<V>;
  using Acc = typename E::Acc;
  Acc r[4];
  if (kind == kTwo) {
    Acc q0[4], q1[4], dot = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      q0[k] = E::load(va[k]);
      q1[k] = E::load(vb[k]);
      dot += q0[k] * q1[k];
    }
    const Acc sign = dot < Acc(0) ? Acc(-1) : Acc(1);
    dot *= sign;
    const Acc w = static_cast<Acc>(w_d);
    Acc s0 = Acc(1) - w, s1 = w;
    if (dot <= Acc(0.9995)) {  // far enough apart for a stable sin(theta)
      const Acc theta = acos(dot);
      const Acc inv_sin = Acc(1) / sin(theta);
      s0 = sin((Acc(1) - w) * theta) * inv_sin;
      s1 = sin(w * theta) * inv_sin;
    }
#pragma unroll
    for (int k = 0; k < 4; ++k) r[k] = s0 * q0[k] + s1 * sign * q1[k];
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) r[k] = E::load(va[k]);
  }
  const Acc inv_norm =
      Acc(1) / sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2] + r[3] * r[3]);
#pragma unroll
  for (int k = 0; k < 4; ++k) out[k] = E::store(r[k] * inv_norm);
}

}  // namespace robocache

#endif  // JAX_ROBOCACHE_STREAMS_ROW_OPS_CUH_
