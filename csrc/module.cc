// The Python module jax_robocache._robocache_cuda: hands the FFI handlers to
// Python as PyCapsules (registered with jax.ffi.register_ffi_target), exports
// the host-side workspace sizes and the codes and limits of
// common/constants.h, and says how it was built. It links cudart statically
// and touches no GPU on import.
#include <cuda_runtime_api.h>
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <string>
#include <type_traits>

#include "common/constants.h"
#include "voxels/points_to_voxels_kernels.h"
#include "voxels/voxelize_kernels.h"
#include "xla/ffi/api/ffi.h"

// The handlers, defined by the <op>.cc files.
XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheResample);
XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheAlign);
XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheVoxelize);
XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheVoxelizeBinned);
XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocachePointsToVoxels);
XLA_FFI_DECLARE_HANDLER_SYMBOL(RobocacheSampleWindows);

namespace nb = nanobind;

namespace {

template <typename Fn>
nb::capsule Capsule(Fn* fn) {
  static_assert(std::is_invocable_r_v<XLA_FFI_Error*, Fn, XLA_FFI_CallFrame*>,
                "Fn must be an XLA FFI handler");
  return nb::capsule(reinterpret_cast<void*>(fn));
}

template <size_t N>
nb::dict Codes(const robocache::NamedCode (&codes)[N]) {
  nb::dict d;
  for (const auto& c : codes) d[c.name] = c.code;
  return d;
}

}  // namespace

NB_MODULE(_robocache_cuda, m) {
  m.def("registrations", []() {
    nb::dict targets;
    targets["robocache_resample"] = Capsule(RobocacheResample);
    targets["robocache_points_to_voxels"] = Capsule(RobocachePointsToVoxels);
    targets["robocache_voxelize"] = Capsule(RobocacheVoxelize);
    targets["robocache_voxelize_binned"] = Capsule(RobocacheVoxelizeBinned);
    targets["robocache_align"] = Capsule(RobocacheAlign);
    targets["robocache_sample_windows"] = Capsule(RobocacheSampleWindows);
    return targets;
  });
  // The codes and limits the ops pass to and check against the kernels.
  m.def("constants", []() {
    nb::dict c;
    c["methods"] = Codes(robocache::kMethodNames);
    c["out_of_range"] = Codes(robocache::kOutOfRangeNames);
    c["window_mean"] = robocache::kWindowMean;
    c["max_streams"] = robocache::kMaxStreams;
    c["resolution_factor"] = robocache::kResolutionFactor;
    c["min_sample_spacing_s"] = robocache::kMinSampleSpacingS;
    c["voxelize_modes"] = Codes(robocache::kVoxelizeModeNames);
    c["window_out_of_range"] = Codes(robocache::kWindowOutOfRangeNames);
    c["window_kinds"] = Codes(robocache::kWindowKindNames);
    c["max_windows"] = robocache::kMaxWindows;
    c["max_window_entries"] = robocache::kMaxWindowEntries;
    nb::dict writes;  // value dtype -> the out_dtypes align's kernel writes it in
    for (const auto& value : robocache::kElemTypeNames) {
      nb::list outs;
      for (const auto& out : robocache::kElemTypeNames) {
        if (robocache::kAlignKernelWrites[value.code][out.code]) outs.append(out.name);
      }
      writes[value.name] = outs;
    }
    c["align_kernel_writes"] = writes;
    return c;
  });
  // Host-side workspace sizes (no GPU needed) of the handlers whose scratch is
  // their last result: the Python lowerings size it per cloud with these.
  m.def("voxelize_binned_workspace_bytes", &robocache::VoxelizeBinnedWorkspaceBytes,
        nb::arg("num_clouds"), nb::arg("num_points"), nb::arg("num_voxels"),
        nb::arg("feature_bytes"));
  m.def("voxelize_binned_workspace_per_cloud", &robocache::VoxelizeBinnedWorkspacePerCloud,
        nb::arg("num_clouds"), nb::arg("num_points"), nb::arg("num_voxels"),
        nb::arg("feature_bytes"));
  m.def("points_to_voxels_workspace_bytes", &robocache::PointsToVoxelsWorkspaceBytes,
        nb::arg("num_clouds"), nb::arg("num_points"), nb::arg("max_voxels"),
        nb::arg("grid_voxels"));
  m.def("points_to_voxels_workspace_per_cloud", &robocache::PointsToVoxelsWorkspacePerCloud,
        nb::arg("num_clouds"), nb::arg("num_points"), nb::arg("max_voxels"),
        nb::arg("grid_voxels"));
  m.def("cuda_architectures", []() { return ROBOCACHE_CUDA_ARCHS; });
  m.def("built_against_jaxlib", []() { return ROBOCACHE_BUILT_JAXLIB; });
  // What is compiled into this module, for the wheel's SBOM (scripts/sbom.py):
  // the versions come from the headers and compilers this translation unit saw.
  m.def("build_info", []() {
    nb::dict facts;
    facts["cuda_runtime_version"] = std::to_string(CUDART_VERSION / 1000) + "." +
                                    std::to_string((CUDART_VERSION % 1000) / 10);
    facts["cuda_runtime_linkage"] = "static";
    facts["nvcc_version"] = ROBOCACHE_NVCC_VERSION;
    facts["host_compiler"] = ROBOCACHE_HOST_COMPILER;
    facts["nanobind_version"] = std::to_string(NB_VERSION_MAJOR) + "." +
                                std::to_string(NB_VERSION_MINOR) + "." +
                                std::to_string(NB_VERSION_PATCH);
    facts["xla_ffi_jaxlib_version"] = ROBOCACHE_BUILT_JAXLIB;
    facts["cuda_architectures"] = ROBOCACHE_CUDA_ARCHS;
    return facts;
  });
}
