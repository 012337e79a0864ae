// Launch configurations of the resample kernel (csrc/resample.cu). Each is a
// type with static constexpr members (C++17 has no class-type template
// parameters); a configuration overrides only what differs from CfgBase.
// resample.cu runs SmallShapeCfg or LargeShapeCfg (its shape heuristic); the
// others are alternatives that benchmarks/kernels/resample_variants.cu times
// on the device, so that picking one is a one-line change there.
#ifndef JAX_ROBOCACHE_RESAMPLE_CONFIGS_CUH_
#define JAX_ROBOCACHE_RESAMPLE_CONFIGS_CUH_

namespace robocache {
namespace resample_cfg {

struct CfgBase {
  static constexpr int kThreads = 256;          // threads per block
  static constexpr int kQueriesPerBlock = 128;  // queries of one episode per tile
  // Output rows whose value loads a thread group issues before its first
  // store (independent 16-byte loads in flight: 2 * kRows per thread).
  static constexpr int kRows = 2;
  // false: the block plans its tile, one barrier, then any warp writes any
  // row. true: warp w plans and writes its own kQueriesPerBlock / warps
  // (<= 32) rows, so nothing but the staging barrier couples the warps.
  static constexpr bool kWarpPlans = false;
  // Rows of at most 32 16-byte vectors (512 bytes): a thread has at most one
  // chunk per row, so no chunk loop keeps row addresses live (fewer
  // registers). The launch refuses longer rows.
  static constexpr bool kOnePass = false;
  static constexpr bool kStage = true;  // stage timestamps in shared memory when they fit
  // Value-row loads: 0 ld.global, 1 ld.global.nc, 2 ld.global.nc.L1::no_allocate.
  static constexpr int kLoad = 0;
  static constexpr bool kStreamStore = false;  // output rows with st.global.cs
  // Reuse a value row already loaded for the previous row of the batch
  // (consecutive sorted queries share rows) instead of loading it again.
  static constexpr bool kDedupe = false;
  static constexpr bool kPrefetch = false;    // prefetch.global.L2 the next batch's rows
  static constexpr bool kPersistent = false;  // grid = resident blocks, each loops over tiles
  static constexpr int kMinBlocks = 1;        // __launch_bounds__ min blocks per SM
};

// Block-planned. Block2 is main's kernel (b47ac3d) with two rows per thread
// group in flight (main's had one) and the staging loads all in flight at
// once (main's loaded one timestamp per thread at a time, after the length).
struct Block2 : CfgBase {};
struct Block4 : CfgBase {
  static constexpr int kRows = 4;
  static constexpr bool kOnePass = true;
};
struct Block4NcCs : Block4 {
  static constexpr int kLoad = 1;
  static constexpr bool kStreamStore = true;
};
struct Block512 : Block4NcCs {  // fewer, larger blocks
  static constexpr int kThreads = 512;
  static constexpr int kQueriesPerBlock = 256;
};
struct Block4Persist : Block4NcCs { static constexpr bool kPersistent = true; };

// Warp-planned: 8 warps x 32 queries per tile.
struct Warp2 : CfgBase {
  static constexpr int kQueriesPerBlock = 256;
  static constexpr bool kWarpPlans = true;
  static constexpr bool kOnePass = true;
};
struct Warp4 : Warp2 { static constexpr int kRows = 4; };
struct Warp4Cs : Warp4 { static constexpr bool kStreamStore = true; };
struct Warp4CsNc : Warp4Cs { static constexpr int kLoad = 1; };
struct Warp4CsNa : Warp4Cs { static constexpr int kLoad = 2; };
struct Warp4CsNcDd : Warp4CsNc { static constexpr bool kDedupe = true; };
struct Warp8CsNcDd : Warp4CsNcDd {
  static constexpr int kRows = 8;
  static constexpr int kMinBlocks = 2;  // <= 128 registers: 2 blocks/SM, not 1
};
struct Warp4Small : Warp4CsNcDd {  // 4 warps x 32 queries per tile
  static constexpr int kThreads = 128;
  static constexpr int kQueriesPerBlock = 128;
};
struct Warp4NoStage : Warp4CsNcDd { static constexpr bool kStage = false; };
struct Warp4Persist : Warp4CsNcDd { static constexpr bool kPersistent = true; };
struct Warp4Prefetch : Warp4CsNcDd { static constexpr bool kPrefetch = true; };
struct Warp4Occ : Warp4CsNcDd { static constexpr int kMinBlocks = 4; };  // <= 64 registers

}  // namespace resample_cfg

// What resample.cu runs: latency-bound shapes (the training batch: short
// rows, few queries per episode) and bandwidth-bound ones (see
// LaunchResample's heuristic). Pick another configuration here. Measured by
// benchmarks/kernels/run_resample_variants.sh (H200, 2026-11-22, large bf16
// case, copy 4.23 TB/s): Warp2 80.6 us (86.7% of copy), Block2 81.2, Warp4
// 82.4, Warp4CsNcDd 84.4, the previous kernel 88.3; training case (f32/bf16):
// Block2 4.90/4.40 us, Warp2 7.12/5.32, previous 6.25/4.72.
using SmallShapeCfg = resample_cfg::Block2;
using LargeShapeCfg = resample_cfg::Warp2;

}  // namespace robocache

#endif  // JAX_ROBOCACHE_RESAMPLE_CONFIGS_CUH_
