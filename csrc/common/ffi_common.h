// Helpers of the FFI handlers (the <op>.cc files): a launcher's Status as an
// ffi::Error, argument checks that name the buffer, element types, and the
// workspace result as the launchers take it. Host code only.
#ifndef JAX_ROBOCACHE_COMMON_FFI_COMMON_H_
#define JAX_ROBOCACHE_COMMON_FFI_COMMON_H_

#include <cstdint>
#include <string>

#include "common/launch.h"
#include "common/workspace.h"
#include "xla/ffi/api/ffi.h"

namespace robocache {

namespace ffi = xla::ffi;

inline ffi::Error ToFfiError(const Status& status) {
  if (status.ok()) return ffi::Error::Success();
  if (status.invalid_argument()) return ffi::Error::InvalidArgument(status.message());
  return ffi::Error::Internal(status.message());
}

inline std::string ShapeString(ffi::AnyBuffer::Dimensions dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

// Returns an InvalidArgument error unless `dims` has rank `rank`.
inline ffi::Error ExpectRank(ffi::AnyBuffer::Dimensions dims, size_t rank, const char* name) {
  if (dims.size() != rank) {
    return ffi::Error::InvalidArgument(std::string(name) + " must have rank " +
                                       std::to_string(rank) + ", got shape " + ShapeString(dims));
  }
  return ffi::Error::Success();
}

// A leading dimension of n is 1 (shared by every episode or cloud) or the batch's B.
inline bool SharedOrFull(int64_t n, int64_t B) { return n == 1 || n == B; }

// The ElemType of a floating-point FFI element type; false for any other type.
inline bool ElemTypeOf(ffi::DataType dtype, ElemType* type) {
  switch (dtype) {
    case ffi::DataType::F32: *type = kF32; return true;
    case ffi::DataType::F64: *type = kF64; return true;
    case ffi::DataType::BF16: *type = kBF16; return true;
    case ffi::DataType::F16: *type = kF16; return true;
    default: return false;
  }
}

// The workspace result (the handler's last) as a launcher checks and carves it.
inline WorkspaceBuffer WorkspaceOf(ffi::AnyBuffer workspace) {
  const auto dims = workspace.dimensions();
  const bool matrix = workspace.element_type() == ffi::DataType::U8 && dims.size() == 2;
  return WorkspaceBuffer{workspace.untyped_data(), workspace.size_bytes(), matrix,
                         matrix ? dims[0] : -1, matrix ? dims[1] : -1};
}

}  // namespace robocache

#endif  // JAX_ROBOCACHE_COMMON_FFI_COMMON_H_
