// Device scratch ("workspace") of the handlers that sort or bin: an ordinary XLA
// buffer, uint8[B, per_cloud], passed as the handler's last result (see
// FfiOp(workspace_bytes=...) in jax_robocache/_core/primitive.py). XLA's
// ffi::ScratchAllocator is not served on every runtime, and memory that lives
// in an XLA buffer keeps the handlers command-buffer compatible.
//
// Each handler describes its scratch as a list of arrays (WorkspaceBytes adds
// them up, every array 256-byte aligned, whatever the buffer's own alignment;
// WorkspaceCarver hands them out in the same order). The same list, with
// SortTempBound in place of cub's own size query, gives the host-side size
// functions that the Python lowering calls (exported by csrc/module.cc).
//
// Host code only, no FFI types: the launchers check and carve the workspace.
#ifndef JAX_ROBOCACHE_COMMON_WORKSPACE_H_
#define JAX_ROBOCACHE_COMMON_WORKSPACE_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "common/launch.h"

namespace robocache {

constexpr size_t kWorkspaceAlign = 256;

// Per cloud, on top of the computed layout: room for small growth of cub's
// fixed costs in other CCCL versions (the layout itself is sub-additive, see
// WorkspacePerCloud).
constexpr size_t kWorkspaceCloudMargin = 1024;

// A size passed by the Python side, negative ones read as 0.
inline int64_t NonNegative(int64_t x) { return x > 0 ? x : 0; }

inline size_t AlignWorkspace(size_t bytes) {
  return (bytes + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign;
}

// Bytes of a workspace holding `arrays` (sizes in bytes), each 256-byte
// aligned, from a base pointer of any alignment.
inline size_t WorkspaceBytes(std::initializer_list<size_t> arrays) {
  size_t total = kWorkspaceAlign - 1;  // aligning the base
  for (size_t bytes : arrays) total += AlignWorkspace(bytes);
  return total;
}

// Hands out consecutive 256-byte aligned arrays of a workspace already checked
// to hold them (WorkspaceBytes of the same sizes <= its size).
class WorkspaceCarver {
 public:
  explicit WorkspaceCarver(void* base)
      : next_((reinterpret_cast<uintptr_t>(base) + kWorkspaceAlign - 1) / kWorkspaceAlign *
              kWorkspaceAlign) {}
  template <typename T>
  T* Take(size_t bytes) {
    T* p = reinterpret_cast<T*>(next_);
    next_ += AlignWorkspace(bytes);
    return p;
  }

 private:
  uintptr_t next_;
};

// An upper bound of cub::DeviceRadixSort::SortPairs' temporary storage with
// DoubleBuffer keys/values (is_overwrite_okay: no extra key/value copies),
// `items` items and key bits [0, end_bit), valid for every tuning policy of
// CCCL 2.x/3.x on sm_60 and newer (all use the onesweep algorithm for 32- and
// 64-bit keys). cub (dispatch_radix_sort.cuh, InvokeOnesweep) allocates, each
// rounded up to 256 bytes, plus 255 bytes to align the base:
//   bins      portions * passes * 256 digits * sizeof(offset)
//   lookback  blocks * 256 digits * 4
//   counters  portions * passes * 4
// with passes = ceil(end_bit / 8) (8 radix bits in every onesweep policy),
// portions = ceil(items / PORTION), PORTION >= 2^28 - tile >= 2^27, and
// blocks = ceil(min(items, PORTION) / tile). Bounds used here: offsets of 8
// bytes, tiles of at least 2048 items (the smallest onesweep tile of CCCL 3.0
// is 256 threads x 11 items = 2816 items: 64-bit keys, sm_70 policy). A
// single-tile sort asks for 1 byte, below this bound. Checked against cub's
// own size query for every policy of sm_75 ... sm_120 on the host (CUDA 13.0,
// tests/cpp/check_sort_workspace_bound.cu).
// Sub-additive in items: Bound(k * n) <= k * Bound(n). About 0.5 byte per
// item plus a few KiB; the handlers still compare cub's real size query with
// the workspace they get.
inline size_t SortTempBound(int64_t items, int end_bit) {
  constexpr int64_t kPortion = int64_t{1} << 27;
  constexpr int64_t kMinTile = 2048;
  const int64_t passes = CeilDiv(end_bit < 1 ? 1 : end_bit, 8);
  const int64_t portions = CeilDiv(items, kPortion);
  const int64_t capped = items < (int64_t{1} << 28) ? items : (int64_t{1} << 28);
  const int64_t blocks = CeilDiv(capped, kMinTile);
  return WorkspaceBytes({static_cast<size_t>(portions * passes * 256 * 8),
                         static_cast<size_t>(blocks * 256 * 4),
                         static_cast<size_t>(portions * passes * 4)});
}

// Bits of the radix sort of keys in [0, max_key].
inline int SortEndBit(uint64_t max_key) {
  int bits = 1;
  while (bits < 64 && (max_key >> bits) != 0) ++bits;
  return bits;
}

// Workspace bytes per cloud for a layout `bytes_for(clouds)` that is
// sub-additive in the number of clouds (every array is linear in it or a
// ceil of a linear term, and SortTempBound is): for any shard of k clouds,
// k * WorkspacePerCloud >= bytes_for(k).
template <typename BytesFor>
size_t WorkspacePerCloud(BytesFor bytes_for) {
  return bytes_for(1) + kWorkspaceCloudMargin;
}

// The workspace result as the handler received it (common/ffi_common.h,
// WorkspaceOf): uint8[rows, per_cloud] when `uint8_matrix`.
struct WorkspaceBuffer {
  void* data;
  size_t bytes;
  bool uint8_matrix;  // element type uint8 and rank 2
  int64_t rows, per_cloud;
};

// Checks the workspace of a call on `clouds` clouds: uint8[clouds, per_cloud]
// holding at least `need` bytes (what this call needs; `what` describes the
// call, `size_fn` names the size function the lowering used). Without this
// check nothing guards the carved arrays' bounds.
inline Status CheckWorkspace(const WorkspaceBuffer& workspace, int64_t clouds, size_t need,
                             const std::string& op, const std::string& what,
                             const std::string& size_fn) {
  if (!workspace.uint8_matrix || workspace.rows != clouds) {
    return Status::Invalid(
        op + ": the last result must be the uint8[B, bytes per cloud] workspace with B = " +
        std::to_string(clouds));
  }
  if (workspace.bytes < need) {
    return Status::Invalid(
        op + ": workspace of " + std::to_string(workspace.bytes) + " bytes (" +
        std::to_string(workspace.per_cloud) + " per cloud) is too small: " + what + " needs " +
        std::to_string(need) + " bytes (sized at lowering time by jax_robocache._robocache_cuda." +
        size_fn + ")");
  }
  return Status();
}

}  // namespace robocache

#endif  // JAX_ROBOCACHE_COMMON_WORKSPACE_H_
