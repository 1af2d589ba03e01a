// qalc_cuda.node: the CUDA driver API, reached through dlopen("libcuda.so.1") at run time and
// never linked, so the addon builds without a CUDA toolkit and loads on a machine without a GPU
// (probe() then says why). Only what the cuda backend needs: one device's primary context,
// modules from fatbins built at compile time (cuModuleLoadData), device buffers, synchronous
// copies and kernel launches. The typed wrappers live in ../cuda.ts.
//
// The driver's types are declared here rather than taken from cuda.h: handles are opaque
// pointers, CUdeviceptr is 64-bit, results are ints (0 = CUDA_SUCCESS). The _v2 entry points are
// the ones cuda.h maps the plain names to since CUDA 4.0.
#include <dlfcn.h>
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qalc_cuda {
namespace {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st*;
using CUmodule = struct CUmod_st*;
using CUfunction = struct CUfunc_st*;
using CUstream = struct CUstream_st*;

constexpr int kAttributeComputeCapabilityMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kAttributeComputeCapabilityMinor = 76;
constexpr int kAttributeMultiprocessorCount = 16;
constexpr int kAttributeMaxDynamicSharedBytes = 8;  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
constexpr uint32_t kDefaultSharedLimit = 48 * 1024;

struct Driver {
  CUresult (*cuInit)(unsigned int);
  CUresult (*cuDriverGetVersion)(int*);
  CUresult (*cuDeviceGetCount)(int*);
  CUresult (*cuDeviceGet)(CUdevice*, int);
  CUresult (*cuDeviceGetName)(char*, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice);
  CUresult (*cuDeviceTotalMem)(size_t*, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuModuleLoadData)(CUmodule*, const void*);
  CUresult (*cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
  CUresult (*cuMemAlloc)(CUdeviceptr*, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void*, size_t);
  CUresult (*cuMemcpyDtoH)(void*, CUdeviceptr, size_t);
  CUresult (*cuMemcpyDtoD)(CUdeviceptr, CUdeviceptr, size_t);
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void**, void**);
  CUresult (*cuFuncSetAttribute)(CUfunction, int, int);
  CUresult (*cuGetErrorName)(CUresult, const char**);
  CUresult (*cuGetErrorString)(CUresult, const char**);
};

struct State {
  bool probed = false;
  std::string unavailable;  // empty once the driver and a device are usable
  Driver driver{};
  CUdevice device = 0;
  CUcontext context = nullptr;
  std::string deviceName;
  int major = 0, minor = 0, multiprocessors = 0, driverVersion = 0;
  size_t totalMemory = 0;
  std::vector<CUmodule> modules;
  std::vector<CUfunction> functions;
};

State state;

std::string errorText(CUresult result) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (state.driver.cuGetErrorName) state.driver.cuGetErrorName(result, &name);
  if (state.driver.cuGetErrorString) state.driver.cuGetErrorString(result, &text);
  return std::string(name ? name : "CUDA error") + " (" + std::to_string(result) + ")" + (text ? std::string(": ") + text : "");
}

template <typename F>
bool resolve(void* library, const char* symbol, F& slot) {
  slot = reinterpret_cast<F>(dlsym(library, symbol));
  if (slot == nullptr) state.unavailable = std::string("libcuda.so.1 lacks ") + symbol + " (driver too old?)";
  return slot != nullptr;
}

/** Opens the driver and the first device once; records why not in state.unavailable. */
void probe() {
  if (state.probed) return;
  state.probed = true;
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    state.unavailable = std::string("no GPU: libcuda.so.1 not found (the NVIDIA driver is not installed") + (why ? std::string("; dlopen: ") + why : "") + ")";
    return;
  }
  Driver& d = state.driver;
  if (!(resolve(library, "cuInit", d.cuInit) && resolve(library, "cuDriverGetVersion", d.cuDriverGetVersion) &&
        resolve(library, "cuDeviceGetCount", d.cuDeviceGetCount) && resolve(library, "cuDeviceGet", d.cuDeviceGet) &&
        resolve(library, "cuDeviceGetName", d.cuDeviceGetName) && resolve(library, "cuDeviceGetAttribute", d.cuDeviceGetAttribute) &&
        resolve(library, "cuDeviceTotalMem_v2", d.cuDeviceTotalMem) &&
        resolve(library, "cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain) && resolve(library, "cuCtxSetCurrent", d.cuCtxSetCurrent) &&
        resolve(library, "cuCtxSynchronize", d.cuCtxSynchronize) && resolve(library, "cuModuleLoadData", d.cuModuleLoadData) &&
        resolve(library, "cuModuleGetFunction", d.cuModuleGetFunction) && resolve(library, "cuMemAlloc_v2", d.cuMemAlloc) &&
        resolve(library, "cuMemFree_v2", d.cuMemFree) && resolve(library, "cuMemcpyHtoD_v2", d.cuMemcpyHtoD) &&
        resolve(library, "cuMemcpyDtoH_v2", d.cuMemcpyDtoH) && resolve(library, "cuMemcpyDtoD_v2", d.cuMemcpyDtoD) && resolve(library, "cuMemsetD8_v2", d.cuMemsetD8) &&
        resolve(library, "cuLaunchKernel", d.cuLaunchKernel) && resolve(library, "cuFuncSetAttribute", d.cuFuncSetAttribute) && resolve(library, "cuGetErrorName", d.cuGetErrorName) &&
        resolve(library, "cuGetErrorString", d.cuGetErrorString))) {
    return;
  }
  CUresult r = d.cuInit(0);
  if (r != 0) {
    state.unavailable = "no GPU: cuInit failed: " + errorText(r);
    return;
  }
  d.cuDriverGetVersion(&state.driverVersion);
  int count = 0;
  r = d.cuDeviceGetCount(&count);
  if (r != 0 || count == 0) {
    state.unavailable = r != 0 ? "no GPU: cuDeviceGetCount failed: " + errorText(r) : std::string("no GPU: the driver sees no CUDA device");
    return;
  }
  if ((r = d.cuDeviceGet(&state.device, 0)) != 0 || (r = d.cuDevicePrimaryCtxRetain(&state.context, state.device)) != 0 ||
      (r = d.cuCtxSetCurrent(state.context)) != 0) {
    state.unavailable = "cannot open CUDA device 0: " + errorText(r);
    return;
  }
  char name[256] = {0};
  d.cuDeviceGetName(name, sizeof name - 1, state.device);
  state.deviceName = name;
  d.cuDeviceGetAttribute(&state.major, kAttributeComputeCapabilityMajor, state.device);
  d.cuDeviceGetAttribute(&state.minor, kAttributeComputeCapabilityMinor, state.device);
  d.cuDeviceGetAttribute(&state.multiprocessors, kAttributeMultiprocessorCount, state.device);
  d.cuDeviceTotalMem(&state.totalMemory, state.device);
}

void requireDevice(Napi::Env env) {
  probe();
  if (!state.unavailable.empty()) throw Napi::Error::New(env, state.unavailable);
  // Node may run JavaScript on another thread than the one that probed (workers): make the
  // context current on this one too; it is cheap.
  CUresult r = state.driver.cuCtxSetCurrent(state.context);
  if (r != 0) throw Napi::Error::New(env, "cuCtxSetCurrent: " + errorText(r));
}

void check(Napi::Env env, CUresult result, const char* what) {
  if (result != 0) throw Napi::Error::New(env, std::string(what) + ": " + errorText(result));
}

uint64_t pointerOf(Napi::Env env, Napi::Value value, const char* name) {
  if (!value.IsBigInt()) throw Napi::TypeError::New(env, std::string(name) + " must be a device pointer (bigint)");
  bool lossless = false;
  uint64_t pointer = value.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(env, std::string(name) + " is not a 64-bit device pointer");
  return pointer;
}

uint32_t indexOf(Napi::Env env, Napi::Value value, const char* name) {
  if (!value.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0 && number <= 4294967295.0) || number != static_cast<double>(static_cast<uint64_t>(number))) {
    throw Napi::RangeError::New(env, std::string(name) + " must be a non-negative 32-bit integer");
  }
  return static_cast<uint32_t>(number);
}

/** The bytes of an ArrayBufferView (any typed array or DataView). */
std::pair<uint8_t*, size_t> bytesOf(Napi::Env env, Napi::Value value, const char* name) {
  if (value.IsTypedArray()) {
    auto array = value.As<Napi::TypedArray>();
    return {static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset(), array.ByteLength()};
  }
  if (value.IsDataView()) {
    auto view = value.As<Napi::DataView>();
    return {static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset(), view.ByteLength()};
  }
  throw Napi::TypeError::New(env, std::string(name) + " must be a typed array");
}

// probe(): { available: true, name, computeCapability: [major, minor], … } | { available: false, reason }
Napi::Value Probe(const Napi::CallbackInfo& info) {
  probe();
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("available", state.unavailable.empty());
  if (!state.unavailable.empty()) {
    result.Set("reason", state.unavailable);
    return result;
  }
  result.Set("name", state.deviceName);
  Napi::Array capability = Napi::Array::New(env, 2);
  capability.Set(0u, state.major);
  capability.Set(1u, state.minor);
  result.Set("computeCapability", capability);
  result.Set("multiprocessors", state.multiprocessors);
  result.Set("totalMemory", static_cast<double>(state.totalMemory));
  result.Set("driverVersion", state.driverVersion);
  return result;
}

// loadModule(image: Uint8Array): number — a fatbin, cubin or PTX image, as cuModuleLoadData takes.
Napi::Value LoadModule(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  auto [bytes, length] = bytesOf(env, info[0], "image");
  // cuModuleLoadData reads a NUL-terminated string for PTX: give it a terminated copy.
  std::vector<uint8_t> image(bytes, bytes + length);
  image.push_back(0);
  CUmodule module = nullptr;
  check(env, state.driver.cuModuleLoadData(&module, image.data()), "cuModuleLoadData");
  state.modules.push_back(module);
  return Napi::Number::New(env, static_cast<double>(state.modules.size() - 1));
}

// getFunction(module: number, symbol: string): number
Napi::Value GetFunction(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  uint32_t module = indexOf(env, info[0], "module");
  if (module >= state.modules.size()) throw Napi::RangeError::New(env, "no such module");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "symbol must be a string");
  std::string symbol = info[1].As<Napi::String>().Utf8Value();
  CUfunction function = nullptr;
  CUresult r = state.driver.cuModuleGetFunction(&function, state.modules[module], symbol.c_str());
  if (r != 0) throw Napi::Error::New(env, "cuModuleGetFunction " + symbol + ": " + errorText(r));
  state.functions.push_back(function);
  return Napi::Number::New(env, static_cast<double>(state.functions.size() - 1));
}

// alloc(bytes: number): bigint
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "bytes must be a number");
  double bytes = info[0].As<Napi::Number>().DoubleValue();
  if (!(bytes >= 1 && bytes <= 9.0e15)) throw Napi::RangeError::New(env, "bytes must be at least 1");
  CUdeviceptr pointer = 0;
  check(env, state.driver.cuMemAlloc(&pointer, static_cast<size_t>(bytes)), "cuMemAlloc");
  return Napi::BigInt::New(env, static_cast<uint64_t>(pointer));
}

// free(pointer: bigint)
Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  check(env, state.driver.cuMemFree(pointerOf(env, info[0], "pointer")), "cuMemFree");
  return env.Undefined();
}

// copyToDevice(pointer: bigint, source: ArrayBufferView)
Napi::Value CopyToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  uint64_t pointer = pointerOf(env, info[0], "pointer");
  auto [bytes, length] = bytesOf(env, info[1], "source");
  if (length > 0) check(env, state.driver.cuMemcpyHtoD(pointer, bytes, length), "cuMemcpyHtoD");
  return env.Undefined();
}

// copyFromDevice(destination: ArrayBufferView, pointer: bigint) — waits for the copy.
// copyOnDevice(destination, source, bytes): ordered on the default stream with the launches.
Napi::Value CopyOnDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  uint64_t destination = pointerOf(env, info[0], "destination");
  uint64_t source = pointerOf(env, info[1], "source");
  uint32_t bytes = indexOf(env, info[2], "bytes");
  if (bytes > 0) check(env, state.driver.cuMemcpyDtoD(destination, source, bytes), "cuMemcpyDtoD");
  return env.Undefined();
}

Napi::Value CopyFromDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  auto [bytes, length] = bytesOf(env, info[0], "destination");
  uint64_t pointer = pointerOf(env, info[1], "pointer");
  if (length > 0) check(env, state.driver.cuMemcpyDtoH(bytes, pointer, length), "cuMemcpyDtoH");
  return env.Undefined();
}

// memset(pointer: bigint, byte: number, bytes: number)
Napi::Value Memset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  uint64_t pointer = pointerOf(env, info[0], "pointer");
  uint32_t value = indexOf(env, info[1], "byte");
  uint32_t bytes = indexOf(env, info[2], "bytes");
  check(env, state.driver.cuMemsetD8(pointer, static_cast<unsigned char>(value), bytes), "cuMemsetD8");
  return env.Undefined();
}

// launch(function, grid: [x, y, z], block: [x, y, z], sharedBytes, parameters: Uint8Array, offsets: Uint32Array)
// The caller packs the kernel's parameters in order (each at its natural alignment) into
// `parameters`; offsets[i] is where parameter i starts. cuLaunchKernel takes one pointer per
// parameter and copies the values, so the buffer may be reused as soon as this returns.
Napi::Value Launch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  uint32_t function = indexOf(env, info[0], "function");
  if (function >= state.functions.size()) throw Napi::RangeError::New(env, "no such function");
  uint32_t grid[3], block[3];
  for (int axis = 0; axis < 3; axis++) {
    if (!info[1].IsArray() || !info[2].IsArray()) throw Napi::TypeError::New(env, "grid and block must be arrays of 3 numbers");
    grid[axis] = indexOf(env, info[1].As<Napi::Array>().Get(axis), "grid");
    block[axis] = indexOf(env, info[2].As<Napi::Array>().Get(axis), "block");
  }
  uint32_t sharedBytes = indexOf(env, info[3], "sharedBytes");
  auto [parameters, parameterBytes] = bytesOf(env, info[4], "parameters");
  if (!info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    throw Napi::TypeError::New(env, "offsets must be a Uint32Array");
  }
  auto offsets = info[5].As<Napi::Uint32Array>();
  std::vector<void*> pointers(offsets.ElementLength());
  for (size_t i = 0; i < pointers.size(); i++) {
    if (offsets[i] >= parameterBytes) throw Napi::RangeError::New(env, "parameter offset past the end of the parameters");
    pointers[i] = parameters + offsets[i];
  }
  if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0) return env.Undefined();
  // Past 48 KiB, dynamic shared memory must be opted into per function (the attention kernels' tiles).
  if (sharedBytes > kDefaultSharedLimit) {
    check(env, state.driver.cuFuncSetAttribute(state.functions[function], kAttributeMaxDynamicSharedBytes, static_cast<int>(sharedBytes)),
          "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
  }
  check(env,
        state.driver.cuLaunchKernel(state.functions[function], grid[0], grid[1], grid[2], block[0], block[1], block[2], sharedBytes,
                                    nullptr, pointers.data(), nullptr),
        "cuLaunchKernel");
  return env.Undefined();
}

// synchronize(): waits for every launch and reports the first asynchronous error.
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  check(env, state.driver.cuCtxSynchronize(), "cuCtxSynchronize");
  return env.Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("loadModule", Napi::Function::New(env, LoadModule));
  exports.Set("getFunction", Napi::Function::New(env, GetFunction));
  exports.Set("alloc", Napi::Function::New(env, Alloc));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("copyToDevice", Napi::Function::New(env, CopyToDevice));
  exports.Set("copyFromDevice", Napi::Function::New(env, CopyFromDevice));
  exports.Set("copyOnDevice", Napi::Function::New(env, CopyOnDevice));
  exports.Set("memset", Napi::Function::New(env, Memset));
  exports.Set("launch", Napi::Function::New(env, Launch));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  return exports;
}

}  // namespace qalc_cuda

Napi::Object InitQalcCuda(Napi::Env env, Napi::Object exports) { return qalc_cuda::Init(env, exports); }

NODE_API_MODULE(qalc_cuda, InitQalcCuda)
