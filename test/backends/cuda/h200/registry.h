// The table harness.cpp dispatches on; registry.gen.cpp (generated) fills it.
#pragma once
#include <cuda_runtime.h>

struct BindingInfo {
  int index;            // binding index: position in the launcher's bindings[] array
  const char* name;     // file stem of its input / output (.bin)
  int elementBytes;
  unsigned long long perToken;  // elements = perToken * T + constant
  unsigned long long constant;
  bool written;
};

typedef cudaError_t (*Launcher)(void* const* bindings, unsigned tokens, float adapterScale, cudaStream_t stream);

struct LauncherInfo {
  const char* entryPoint;
  Launcher launch;
};

struct KernelInfo {
  const char* name;
  const BindingInfo* bindings;
  int bindingCount;
  int bindingSlots;  // size of the bindings[] array (highest index + 1)
  const LauncherInfo* launchers;
  int launcherCount;
};

extern const KernelInfo HARNESS_KERNELS[];
extern const int HARNESS_KERNEL_COUNT;
