// The Python module jax_robocache._robocache_cuda: hands the FFI handlers to
// Python as PyCapsules (registered with jax.ffi.register_ffi_target) and says
// how it was built. It links cudart statically and touches no GPU on import.
#include <nanobind/nanobind.h>

#include <type_traits>

#include "align.h"
#include "points_to_voxels.h"
#include "resample.h"
#include "voxelize.h"

namespace nb = nanobind;

namespace {

template <typename Fn>
nb::capsule Capsule(Fn* fn) {
  static_assert(std::is_invocable_r_v<XLA_FFI_Error*, Fn, XLA_FFI_CallFrame*>,
                "Fn must be an XLA FFI handler");
  return nb::capsule(reinterpret_cast<void*>(fn));
}

}  // namespace

NB_MODULE(_robocache_cuda, m) {
  m.def("registrations", []() {
    nb::dict targets;
    targets["robocache_resample"] = Capsule(RobocacheResample);
    targets["robocache_points_to_voxels"] = Capsule(RobocachePointsToVoxels);
    targets["robocache_voxelize"] = Capsule(RobocacheVoxelize);
    targets["robocache_voxelize_sorted"] = Capsule(RobocacheVoxelizeSorted);
    targets["robocache_align"] = Capsule(RobocacheAlign);
    return targets;
  });
  m.def("cuda_architectures", []() { return ROBOCACHE_CUDA_ARCHS; });
  m.def("built_against_jaxlib", []() { return ROBOCACHE_BUILT_JAXLIB; });
}
