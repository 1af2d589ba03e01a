// qalc CUDA correctness harness: runs emitted kernels on inputs read from .bin files and
// writes their outputs, for check_kernels.py to compare with a float64 reference.
//
//   qalc-cuda-harness JOBS_FILE
//   qalc-cuda-harness --time KERNEL ENTRY_POINT TOKENS REPEATS
//
// Each line of JOBS_FILE: KERNEL ENTRY_POINT|all TOKENS ADAPTER_SCALE DIR. For every binding
// of KERNEL the harness reads DIR/NAME.bin when it exists (its size must match the binding at
// this T); a binding without a file starts as 0xFF bytes (NaN, 0xFFFFFFFF), so an element a
// kernel forgets to write shows up as an error. It then runs the entry point (or all of them,
// in order) through the kernel's host launcher and writes every written binding to
// DIR/out_NAME.bin. Prints one line per job; exits non-zero if any job failed.
//
// --time: every binding filled with the byte 0x3C (activations about 1.06 in fp16 and 0.011 in
// bf16, scales and zeros 0.011, codes 12 and 3: no zeros, no NaN), 3 warm-up launches, then
// REPEATS launches each between two CUDA events; prints the median and the minimum in ms.
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "registry.h"

namespace {

bool readFile(const std::string& path, std::vector<char>& data) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  data.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  return true;
}

bool writeFile(const std::string& path, const std::vector<char>& data) {
  std::ofstream file(path, std::ios::binary);
  file.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(file);
}

const KernelInfo* findKernel(const std::string& name) {
  for (int i = 0; i < HARNESS_KERNEL_COUNT; ++i) {
    if (name == HARNESS_KERNELS[i].name) return &HARNESS_KERNELS[i];
  }
  return nullptr;
}

std::string runJob(const KernelInfo& kernel, const std::string& entryPoint, unsigned tokens, float adapterScale, const std::string& dir) {
  std::vector<void*> slots(static_cast<size_t>(kernel.bindingSlots), nullptr);
  std::vector<size_t> sizes(static_cast<size_t>(kernel.bindingCount));
  std::string failure;
  for (int b = 0; b < kernel.bindingCount && failure.empty(); ++b) {
    const BindingInfo& binding = kernel.bindings[b];
    const size_t bytes = static_cast<size_t>(binding.perToken * tokens + binding.constant) * static_cast<size_t>(binding.elementBytes);
    sizes[static_cast<size_t>(b)] = bytes;
    void* device = nullptr;
    if (cudaMalloc(&device, bytes == 0 ? 1 : bytes) != cudaSuccess) {
      failure = std::string("cudaMalloc failed for ") + binding.name;
      break;
    }
    slots[static_cast<size_t>(binding.index)] = device;
    std::vector<char> host;
    if (readFile(dir + "/" + binding.name + ".bin", host)) {
      if (host.size() != bytes) {
        failure = std::string(binding.name) + ".bin has " + std::to_string(host.size()) + " bytes, the binding " + std::to_string(bytes);
        break;
      }
      cudaMemcpy(device, host.data(), bytes, cudaMemcpyHostToDevice);
    } else {
      cudaMemset(device, 0xFF, bytes == 0 ? 1 : bytes);
    }
  }
  if (failure.empty()) {
    bool ran = false;
    for (int l = 0; l < kernel.launcherCount && failure.empty(); ++l) {
      if (entryPoint != "all" && entryPoint != kernel.launchers[l].entryPoint) continue;
      ran = true;
      cudaError_t status = kernel.launchers[l].launch(slots.data(), tokens, adapterScale, nullptr);
      if (status == cudaSuccess) status = cudaDeviceSynchronize();
      if (status != cudaSuccess) failure = std::string(kernel.launchers[l].entryPoint) + ": " + cudaGetErrorString(status);
    }
    if (!ran && failure.empty()) failure = "no entry point " + entryPoint;
  }
  for (int b = 0; b < kernel.bindingCount && failure.empty(); ++b) {
    const BindingInfo& binding = kernel.bindings[b];
    if (!binding.written) continue;
    std::vector<char> host(sizes[static_cast<size_t>(b)]);
    cudaMemcpy(host.data(), slots[static_cast<size_t>(binding.index)], host.size(), cudaMemcpyDeviceToHost);
    if (!writeFile(dir + "/out_" + binding.name + ".bin", host)) failure = std::string("cannot write out_") + binding.name + ".bin";
  }
  for (void* device : slots) {
    if (device) cudaFree(device);
  }
  return failure;
}

int timeKernel(const KernelInfo& kernel, const std::string& entryPoint, unsigned tokens, int repeats) {
  const LauncherInfo* launcher = nullptr;
  for (int l = 0; l < kernel.launcherCount; ++l) {
    if (entryPoint == kernel.launchers[l].entryPoint) launcher = &kernel.launchers[l];
  }
  if (!launcher || repeats < 1) {
    std::printf("FAIL time %s %s: no such entry point, or no repeats\n", kernel.name, entryPoint.c_str());
    return 1;
  }
  std::vector<void*> slots(static_cast<size_t>(kernel.bindingSlots), nullptr);
  for (int b = 0; b < kernel.bindingCount; ++b) {
    const BindingInfo& binding = kernel.bindings[b];
    const size_t bytes = static_cast<size_t>(binding.perToken * tokens + binding.constant) * static_cast<size_t>(binding.elementBytes);
    void* device = nullptr;
    if (cudaMalloc(&device, bytes == 0 ? 1 : bytes) != cudaSuccess || cudaMemset(device, 0x3C, bytes == 0 ? 1 : bytes) != cudaSuccess) {
      std::printf("FAIL time %s: cudaMalloc/cudaMemset %s\n", kernel.name, binding.name);
      return 1;
    }
    slots[static_cast<size_t>(binding.index)] = device;
  }
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaError_t status = cudaSuccess;
  for (int i = 0; i < 3 && status == cudaSuccess; ++i) status = launcher->launch(slots.data(), tokens, 2.0f, nullptr);
  if (status == cudaSuccess) status = cudaDeviceSynchronize();
  std::vector<float> times;
  for (int i = 0; i < repeats && status == cudaSuccess; ++i) {
    cudaEventRecord(start);
    status = launcher->launch(slots.data(), tokens, 2.0f, nullptr);
    cudaEventRecord(stop);
    if (status == cudaSuccess) status = cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(ms);
  }
  for (void* device : slots) {
    if (device) cudaFree(device);
  }
  if (status != cudaSuccess) {
    std::printf("FAIL time %s %s T=%u: %s\n", kernel.name, entryPoint.c_str(), tokens, cudaGetErrorString(status));
    return 1;
  }
  std::sort(times.begin(), times.end());
  std::printf("time %s %s T=%u median %.4f ms min %.4f ms (%d runs)\n", kernel.name, entryPoint.c_str(), tokens, times[times.size() / 2], times[0], repeats);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "--time") {
    const KernelInfo* kernel = findKernel(argv[2]);
    if (!kernel) {
      std::printf("FAIL time: unknown kernel %s\n", argv[2]);
      return 1;
    }
    return timeKernel(*kernel, argv[3], static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10)), std::atoi(argv[5]));
  }
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s JOBS_FILE | --time KERNEL ENTRY_POINT TOKENS REPEATS\n", argv[0]);
    return 2;
  }
  std::ifstream jobs(argv[1]);
  if (!jobs) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 2;
  }
  int failures = 0;
  std::string line;
  while (std::getline(jobs, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, entryPoint, dir;
    unsigned tokens = 0;
    float adapterScale = 0.0f;
    if (!(fields >> name >> entryPoint >> tokens >> adapterScale >> dir)) {
      std::printf("FAIL malformed job: %s\n", line.c_str());
      ++failures;
      continue;
    }
    const KernelInfo* kernel = findKernel(name);
    const std::string failure = kernel ? runJob(*kernel, entryPoint, tokens, adapterScale, dir) : "unknown kernel";
    if (failure.empty()) {
      std::printf("ok %s %s T=%u %s\n", name.c_str(), entryPoint.c_str(), tokens, dir.c_str());
    } else {
      std::printf("FAIL %s %s T=%u %s: %s\n", name.c_str(), entryPoint.c_str(), tokens, dir.c_str(), failure.c_str());
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}
