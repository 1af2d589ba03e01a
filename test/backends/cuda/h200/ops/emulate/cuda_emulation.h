// A CPU stand-in for the little of CUDA the model-op kernels use, so that their emitted source
// (unchanged) compiles with g++ and runs on a machine without a GPU: every block in turn, its
// threads as real threads (std::thread), __syncthreads as a block barrier, warp shuffles through
// a per-warp exchange and barrier, __shared__ as storage shared by the block's threads. It checks
// indexing, bounds and the arithmetic on ragged shapes; timing, memory coalescing and the real
// hardware are the device check's (check_ops.py on the H200). Not for anything but that test.
#pragma once
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct uint3 { uint32_t x = 0, y = 0, z = 0; };
struct dim3 { uint32_t x = 1, y = 1, z = 1; };
struct float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) uint2 { uint32_t x, y; };
struct alignas(16) uint4 { uint32_t x, y, z, w; };
// A read through the read-only data cache, or around L1 (__ldcg), is a plain read here.
template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T __ldcg(const T* p) { return *p; }
// Blocks run one after another and a block's threads share the host's coherent memory: a fence
// is a sequentially consistent one, an atomic a host atomic.
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline uint32_t atomicAdd(uint32_t* address, uint32_t value) { return std::atomic_ref<uint32_t>(*address).fetch_add(value); }
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

inline thread_local uint3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;

typedef int cudaError_t;
typedef void* cudaStream_t;

inline float __int_as_float(int bits) { float f; std::memcpy(&f, &bits, 4); return f; }
inline uint32_t __float_as_uint(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// IEEE division and conversion, round to nearest even: what the _rn intrinsics are on the device
// (x86-64's SSE arithmetic, no fast math).
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline float __double2float_rn(double x) { return static_cast<float>(x); }

struct __nv_bfloat16 { uint16_t bits; };
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<uint16_t>((u >> 16) | 0x40u)};  // NaN stays NaN
  return {static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 h) { return __int_as_float(static_cast<int>(static_cast<uint32_t>(h.bits) << 16)); }

struct __half { _Float16 value; };
inline __half __float2half_rn(float f) { return {static_cast<_Float16>(f)}; }
inline float __half2float(__half h) { return static_cast<float>(h.value); }

namespace emulation {

// The barriers of the block running now and of each of its warps; threads leave them as they finish.
struct Block {
  std::unique_ptr<std::barrier<>> all;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  std::vector<double> exchange;  // one slot a thread, for the shuffles
};
inline Block* block = nullptr;

inline uint32_t linearThread() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }

template <typename Kernel>
void launch(dim3 grid, dim3 threads, Kernel&& kernel) {
  const uint32_t count = threads.x * threads.y * threads.z;
  for (uint32_t bz = 0; bz < grid.z; ++bz)
    for (uint32_t by = 0; by < grid.y; ++by)
      for (uint32_t bx = 0; bx < grid.x; ++bx) {
        Block b;
        b.all = std::make_unique<std::barrier<>>(count);
        for (uint32_t w = 0; w < (count + 31) / 32; ++w) b.warps.push_back(std::make_unique<std::barrier<>>(std::min(32u, count - 32 * w)));
        b.exchange.resize(count);
        block = &b;
        std::vector<std::thread> pool;
        for (uint32_t t = 0; t < count; ++t) {
          pool.emplace_back([&, t] {
            blockIdx = {bx, by, bz};
            blockDim = threads;
            gridDim = grid;
            threadIdx = {t % threads.x, (t / threads.x) % threads.y, t / (threads.x * threads.y)};
            kernel();
            b.all->arrive_and_drop();
            b.warps[t / 32]->arrive_and_drop();
          });
        }
        for (auto& thread : pool) thread.join();
        block = nullptr;
      }
}

}  // namespace emulation

inline void __syncthreads() { emulation::block->all->arrive_and_wait(); }

template <typename T>
T __shfl_xor_sync(unsigned, T value, unsigned offset) {
  const uint32_t t = emulation::linearThread();
  auto& warp = *emulation::block->warps[t / 32];
  emulation::block->exchange[t] = static_cast<double>(value);
  warp.arrive_and_wait();
  const T other = static_cast<T>(emulation::block->exchange[(t & ~31u) | ((t % 32u) ^ offset)]);
  warp.arrive_and_wait();
  return other;
}
