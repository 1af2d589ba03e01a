// qalc_cuda.node: the CUDA driver API, reached through dlopen("libcuda.so.1") at run time and
// never linked, so the addon builds without a CUDA toolkit and loads on a machine without a GPU
// (probe() then says why). Only what the cuda backend needs: one device's primary context,
// modules from fatbins built at compile time (cuModuleLoadData), device buffers, copies and
// kernel launches; cuBLAS's GemmEx, from libcublas dlopened the same way (the dense unquantized
// matmuls: lm_head); and CUDA graphs captured from the stream (generation's decode step). The
// typed wrappers live in ../cuda.ts.
//
// Everything runs in order on one created stream, not the legacy null stream, which cannot be
// captured: launches, cuBLAS (cublasSetStream), fills and device→device copies (the *Async
// forms, so that a capture records them), host→device copies (cuMemcpyHtoDAsync: from pageable
// memory the driver has taken the source by the time it returns, so the caller may reuse it at
// once, as with the synchronous copy) and device→host copies (cuMemcpyDtoHAsync, then a wait for
// the stream: the values are the host's when the call returns). The stream is a blocking one
// (flags 0): anything still issued on the legacy stream stays ordered with it.
//
// The driver's types are declared here rather than taken from cuda.h: handles are opaque
// pointers, CUdeviceptr is 64-bit, results are ints (0 = CUDA_SUCCESS). The _v2 entry points are
// the ones cuda.h maps the plain names to since CUDA 4.0.
#include <dlfcn.h>
#include <napi.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
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
using CUevent = struct CUevent_st*;
using CUgraph = struct CUgraph_st*;
using CUgraphExec = struct CUgraphExec_st*;
using CUgraphNode = struct CUgraphNode_st*;

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
  CUresult (*cuStreamCreate)(CUstream*, unsigned int);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void*, size_t, CUstream);
  CUresult (*cuMemcpyDtoHAsync)(void*, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void**, void**);
  CUresult (*cuFuncSetAttribute)(CUfunction, int, int);
  CUresult (*cuGetErrorName)(CUresult, const char**);
  CUresult (*cuGetErrorString)(CUresult, const char**);
};

struct State {
  bool probed = false;
  std::string unavailable;  // empty once the driver and a device are usable
  void* library = nullptr;  // libcuda.so.1, kept open: the event functions are resolved from it later
  Driver driver{};
  CUdevice device = 0;
  CUcontext context = nullptr;
  /** The stream every launch, copy and GEMM goes to (created with the context). */
  CUstream stream = nullptr;
  /** Between beginCapture and endCapture (or abortCapture): the stream records instead of running. */
  bool capturing = false;
  std::string deviceName;
  int major = 0, minor = 0, multiprocessors = 0, driverVersion = 0;
  size_t totalMemory = 0;
  std::vector<CUmodule> modules;
  std::vector<CUfunction> functions;
  /** Per function, the dynamic shared memory it was opted into past the default 48 KiB (0: none yet). */
  std::vector<uint32_t> sharedOptedIn;
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
  void* library = state.library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
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
        resolve(library, "cuMemFree_v2", d.cuMemFree) && resolve(library, "cuStreamCreate", d.cuStreamCreate) &&
        resolve(library, "cuStreamSynchronize", d.cuStreamSynchronize) && resolve(library, "cuMemcpyHtoDAsync_v2", d.cuMemcpyHtoDAsync) &&
        resolve(library, "cuMemcpyDtoHAsync_v2", d.cuMemcpyDtoHAsync) && resolve(library, "cuMemcpyDtoDAsync_v2", d.cuMemcpyDtoDAsync) &&
        resolve(library, "cuMemsetD8Async", d.cuMemsetD8Async) &&
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
  if ((r = d.cuStreamCreate(&state.stream, 0)) != 0) {
    state.unavailable = "cannot create a CUDA stream on device 0: " + errorText(r);
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
  // context current on each thread once (nothing here makes another one current). Every launch
  // and copy comes through here, ~850 a training step.
  thread_local CUcontext current = nullptr;
  if (current == state.context) return;
  CUresult r = state.driver.cuCtxSetCurrent(state.context);
  if (r != 0) throw Napi::Error::New(env, "cuCtxSetCurrent: " + errorText(r));
  current = state.context;
}

void check(Napi::Env env, CUresult result, const char* what) {
  if (result != 0) throw Napi::Error::New(env, std::string(what) + ": " + errorText(result));
}

/**
 * What a capture cannot hold: a copy from or to host memory (recorded, it would read or write
 * that memory at every replay, and a device→host copy's wait cannot be recorded), an allocation,
 * a free, a wait. Refused here before the driver sees it (which would invalidate the capture).
 */
void refuseWhileCapturing(Napi::Env env, const char* what) {
  if (state.capturing) throw Napi::Error::New(env, std::string(what) + " while a CUDA graph is being captured (only launches, device copies, fills and GEMMs can be recorded)");
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


// cuBLAS, dlopened like the driver (no cuBLAS headers are needed to build). Its types as
// cublas_api.h declares them: the handle is an opaque pointer, statuses and enums are ints.
// Values: cudaDataType_t from CUDA 13.0's library_types.h (CUDA_R_32F 0, CUDA_R_16F 2,
// CUDA_R_16BF 14); cublasOperation_t (CUBLAS_OP_N 0, CUBLAS_OP_T 1), cublasComputeType_t
// (CUBLAS_COMPUTE_32F 68) and cublasGemmAlgo_t (CUBLAS_GEMM_DEFAULT -1) from cublas_api.h, as
// CuPy mirrors it (cupy_backends/cuda/libs/cublas.pxd); libraryPropertyType_t (MAJOR_VERSION 0,
// MINOR_VERSION 1, PATCH_LEVEL 2) from library_types.h.
using cublasStatus = int;
using cublasHandle = struct cublasContext*;
constexpr int kOpN = 0, kOpT = 1;
constexpr int kDataF32 = 0, kDataF16 = 2, kDataBF16 = 14;
constexpr int kCompute32F = 68;
constexpr int kGemmDefault = -1;

struct Blas {
  cublasStatus (*cublasCreate)(cublasHandle*);
  cublasStatus (*cublasSetStream)(cublasHandle, CUstream);
  cublasStatus (*cublasGetProperty)(int, int*);
  cublasStatus (*cublasGemmEx)(cublasHandle, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                               const void*, void*, int, int, int, int);
  const char* (*cublasGetStatusName)(cublasStatus);    // optional (cuBLAS 11.4+)
  const char* (*cublasGetStatusString)(cublasStatus);  // optional
  cublasStatus (*cublasSetWorkspace)(cublasHandle, void*, size_t);  // optional (cuBLAS 11.0+)
};

struct BlasState {
  bool probed = false;
  std::string unavailable;  // empty once libcublas and its entry points are there
  std::string library;      // the path or name it was opened by
  int version[3] = {0, 0, 0};
  Blas blas{};
  cublasHandle handle = nullptr;  // created on the first gemm, in the primary context
  size_t workspaceBytes = 0;      // the workspace given to the handle (0: cuBLAS's own)
};

BlasState blasState;

std::string blasStatusText(cublasStatus status) {
  const Blas& b = blasState.blas;
  const char* name = b.cublasGetStatusName ? b.cublasGetStatusName(status) : nullptr;
  const char* text = b.cublasGetStatusString ? b.cublasGetStatusString(status) : nullptr;
  return std::string(name ? name : "cuBLAS status") + " (" + std::to_string(status) + ")" + (text ? std::string(": ") + text : "");
}

/**
 * Opens libcublas once: by soname (LD_LIBRARY_PATH, the ld.so cache), then from the toolkit's
 * lib64 folders ($CUDA_HOME, $CUDA_PATH, /usr/local/cuda), which the loader's path often lacks.
 * libcublas needs libcublasLt of the same version beside it: opened first from the same
 * folder, the loader then finds it loaded when libcublas asks for it by soname.
 */
void probeBlas() {
  if (blasState.probed) return;
  blasState.probed = true;
  std::vector<std::string> candidates = {"libcublas.so.13", "libcublas.so"};
  std::vector<std::string> folders;
  for (const char* variable : {"CUDA_HOME", "CUDA_PATH"}) {
    const char* value = std::getenv(variable);
    if (value != nullptr && *value != 0) folders.push_back(std::string(value) + "/lib64");
  }
  folders.push_back("/usr/local/cuda/lib64");
  for (const std::string& folder : folders) {
    candidates.push_back(folder + "/libcublas.so.13");
    candidates.push_back(folder + "/libcublas.so");
  }
  void* library = nullptr;
  std::string firstError;
  for (const std::string& candidate : candidates) {
    size_t slash = candidate.rfind('/');
    if (slash != std::string::npos) {
      // folder/libcublas.so.13 → folder/libcublasLt.so.13 (and .so → .so)
      std::string lt = candidate.substr(0, slash) + "/libcublasLt" + candidate.substr(slash + 1 + std::strlen("libcublas"));
      dlopen(lt.c_str(), RTLD_NOW | RTLD_LOCAL);  // may fail: libcublas then says what it lacks
    }
    library = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library != nullptr) {
      blasState.library = candidate;
      break;
    }
    const char* why = dlerror();
    if (firstError.empty() && why != nullptr) firstError = why;
  }
  if (library == nullptr) {
    blasState.unavailable = "no cuBLAS: libcublas.so.13 not found (tried the loader's path and /usr/local/cuda/lib64" +
                            (firstError.empty() ? std::string(")") : "; dlopen: " + firstError + ")");
    return;
  }
  Blas& b = blasState.blas;
  const auto need = [&](const char* symbol, auto& slot) {
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(dlsym(library, symbol));
    if (slot == nullptr && blasState.unavailable.empty()) blasState.unavailable = "no cuBLAS: " + blasState.library + " lacks " + symbol;
    return slot != nullptr;
  };
  if (!(need("cublasCreate_v2", b.cublasCreate) && need("cublasSetStream_v2", b.cublasSetStream) &&
        need("cublasGetProperty", b.cublasGetProperty) && need("cublasGemmEx", b.cublasGemmEx))) {
    return;
  }
  b.cublasGetStatusName = reinterpret_cast<decltype(b.cublasGetStatusName)>(dlsym(library, "cublasGetStatusName"));
  b.cublasGetStatusString = reinterpret_cast<decltype(b.cublasGetStatusString)>(dlsym(library, "cublasGetStatusString"));
  b.cublasSetWorkspace = reinterpret_cast<decltype(b.cublasSetWorkspace)>(dlsym(library, "cublasSetWorkspace_v2"));
  for (int property = 0; property < 3; property++) b.cublasGetProperty(property, &blasState.version[property]);
}

void checkBlas(Napi::Env env, cublasStatus status, const char* what) {
  if (status != 0) throw Napi::Error::New(env, std::string("cuBLAS ") + what + ": " + blasStatusText(status));
}

/** The handle, made on first use in the primary context (current: requireDevice), on the stream our launches use. */
cublasHandle blasHandle(Napi::Env env) {
  probeBlas();
  if (!blasState.unavailable.empty()) throw Napi::Error::New(env, blasState.unavailable);
  if (blasState.handle == nullptr) {
    cublasHandle handle = nullptr;
    checkBlas(env, blasState.blas.cublasCreate(&handle), "cublasCreate");
    checkBlas(env, blasState.blas.cublasSetStream(handle, state.stream), "cublasSetStream");
    // A workspace of its own, as cuBLAS's guide recommends for Hopper (32 MiB; 4 MiB before):
    // without one, GemmEx may pick kernels that need none (split-K and stream-K ones need it).
    // Set explicitly, it is also what lets a GEMM be captured in a CUDA graph (cuBLAS then
    // allocates nothing during the capture).
    // QALC_CUBLAS_WORKSPACE_MIB sets the size; 0 leaves cuBLAS's default. Allocated once, kept
    // for the handle's life (the process's).
    size_t mib = 32;
    if (const char* value = std::getenv("QALC_CUBLAS_WORKSPACE_MIB")) mib = static_cast<size_t>(std::strtoul(value, nullptr, 10));
    if (mib > 0 && blasState.blas.cublasSetWorkspace != nullptr) {
      CUdeviceptr workspace = 0;
      check(env, state.driver.cuMemAlloc(&workspace, mib << 20), "cuMemAlloc (the cuBLAS workspace)");
      checkBlas(env, blasState.blas.cublasSetWorkspace(handle, reinterpret_cast<void*>(workspace), mib << 20), "cublasSetWorkspace");
      blasState.workspaceBytes = mib << 20;
    }
    blasState.handle = handle;
  }
  return blasState.handle;
}

int blasType(Napi::Env env, Napi::Value value, const char* name) {
  if (!value.IsString()) throw Napi::TypeError::New(env, std::string(name) + " must be 'bf16', 'f16' or 'f32'");
  std::string type = value.As<Napi::String>().Utf8Value();
  if (type == "bf16") return kDataBF16;
  if (type == "f16") return kDataF16;
  if (type == "f32") return kDataF32;
  throw Napi::TypeError::New(env, std::string(name) + " must be 'bf16', 'f16' or 'f32', not '" + type + "'");
}

int blasInt(Napi::Env env, Napi::Value value, const char* name) {
  uint32_t number = indexOf(env, value, name);
  if (number > 2147483647u) throw Napi::RangeError::New(env, std::string(name) + " is past cuBLAS's 32-bit int");
  return static_cast<int>(number);
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
  state.sharedOptedIn.push_back(0);
  return Napi::Number::New(env, static_cast<double>(state.functions.size() - 1));
}

// alloc(bytes: number): bigint
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "bytes must be a number");
  double bytes = info[0].As<Napi::Number>().DoubleValue();
  if (!(bytes >= 1 && bytes <= 9.0e15)) throw Napi::RangeError::New(env, "bytes must be at least 1");
  refuseWhileCapturing(env, "cuMemAlloc");
  CUdeviceptr pointer = 0;
  check(env, state.driver.cuMemAlloc(&pointer, static_cast<size_t>(bytes)), "cuMemAlloc");
  return Napi::BigInt::New(env, static_cast<uint64_t>(pointer));
}

// free(pointer: bigint)
Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  refuseWhileCapturing(env, "cuMemFree");
  check(env, state.driver.cuMemFree(pointerOf(env, info[0], "pointer")), "cuMemFree");
  return env.Undefined();
}

// copyToDevice(pointer: bigint, source: ArrayBufferView)
Napi::Value CopyToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  refuseWhileCapturing(env, "a host→device copy");
  uint64_t pointer = pointerOf(env, info[0], "pointer");
  auto [bytes, length] = bytesOf(env, info[1], "source");
  if (length > 0) check(env, state.driver.cuMemcpyHtoDAsync(pointer, bytes, length, state.stream), "cuMemcpyHtoDAsync");
  return env.Undefined();
}

// copyFromDevice(destination: ArrayBufferView, pointer: bigint) — waits for the copy.
// copyOnDevice(destination, source, bytes): ordered on the stream with the launches.
Napi::Value CopyOnDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  uint64_t destination = pointerOf(env, info[0], "destination");
  uint64_t source = pointerOf(env, info[1], "source");
  uint32_t bytes = indexOf(env, info[2], "bytes");
  if (bytes > 0) check(env, state.driver.cuMemcpyDtoDAsync(destination, source, bytes, state.stream), "cuMemcpyDtoDAsync");
  return env.Undefined();
}

Napi::Value CopyFromDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  refuseWhileCapturing(env, "a device→host copy");
  auto [bytes, length] = bytesOf(env, info[0], "destination");
  uint64_t pointer = pointerOf(env, info[1], "pointer");
  if (length > 0) {
    check(env, state.driver.cuMemcpyDtoHAsync(bytes, pointer, length, state.stream), "cuMemcpyDtoHAsync");
    check(env, state.driver.cuStreamSynchronize(state.stream), "cuStreamSynchronize (after a device→host copy)");
  }
  return env.Undefined();
}

// memset(pointer: bigint, byte: number, bytes: number)
Napi::Value Memset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  uint64_t pointer = pointerOf(env, info[0], "pointer");
  uint32_t value = indexOf(env, info[1], "byte");
  uint32_t bytes = indexOf(env, info[2], "bytes");
  check(env, state.driver.cuMemsetD8Async(pointer, static_cast<unsigned char>(value), bytes, state.stream), "cuMemsetD8Async");
  return env.Undefined();
}

// launch(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, parameters: Uint8Array, offsets: Uint32Array)
// The caller packs the kernel's parameters in order (each at its natural alignment) into
// `parameters`; offsets[i] is where parameter i starts. cuLaunchKernel takes one pointer per
// parameter and copies the values, so the buffer may be reused as soon as this returns. The
// grid and block are plain numbers, not arrays: a training step launches ~850 kernels, and each
// array element read is a call into the engine.
constexpr size_t kMaxParameters = 64;

Napi::Value Launch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  uint32_t function = indexOf(env, info[0], "function");
  if (function >= state.functions.size()) throw Napi::RangeError::New(env, "no such function");
  uint32_t grid[3], block[3];
  for (int axis = 0; axis < 3; axis++) {
    grid[axis] = indexOf(env, info[1 + axis], "grid");
    block[axis] = indexOf(env, info[4 + axis], "block");
  }
  uint32_t sharedBytes = indexOf(env, info[7], "sharedBytes");
  auto [parameters, parameterBytes] = bytesOf(env, info[8], "parameters");
  if (!info[9].IsTypedArray() || info[9].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    throw Napi::TypeError::New(env, "offsets must be a Uint32Array");
  }
  auto offsets = info[9].As<Napi::Uint32Array>();
  size_t count = offsets.ElementLength();
  if (count > kMaxParameters) throw Napi::RangeError::New(env, "more than 64 kernel parameters");
  void* pointers[kMaxParameters];
  for (size_t i = 0; i < count; i++) {
    if (offsets[i] >= parameterBytes) throw Napi::RangeError::New(env, "parameter offset past the end of the parameters");
    pointers[i] = parameters + offsets[i];
  }
  if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0) return env.Undefined();
  // Past 48 KiB, dynamic shared memory must be opted into per function (the attention kernels'
  // tiles); once is enough for that much or less.
  if (sharedBytes > kDefaultSharedLimit && sharedBytes > state.sharedOptedIn[function]) {
    check(env, state.driver.cuFuncSetAttribute(state.functions[function], kAttributeMaxDynamicSharedBytes, static_cast<int>(sharedBytes)),
          "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
    state.sharedOptedIn[function] = sharedBytes;
  }
  check(env,
        state.driver.cuLaunchKernel(state.functions[function], grid[0], grid[1], grid[2], block[0], block[1], block[2], sharedBytes,
                                    state.stream, pointers, nullptr),
        "cuLaunchKernel");
  return env.Undefined();
}

// synchronize(): waits for every launch and reports the first asynchronous error.
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  refuseWhileCapturing(env, "a wait for the device");
  check(env, state.driver.cuCtxSynchronize(), "cuCtxSynchronize");
  return env.Undefined();
}


// Events, for profiling (../event-profiled-port.ts): eventRecord() records an event in stream
// order on the stream and returns its handle, eventElapsed(start, end) the milliseconds
// between two recorded events (waiting for the later one), eventsReset() makes every handle
// reusable. Created once and reused: a profiled step records two a launch, thousands a step,
// and cuEventCreate is far costlier than cuEventRecord. Resolved apart from the rest of the
// driver so that a driver without them still runs everything but the profile.
struct Timing {
  bool probed = false;
  std::string unavailable;
  CUresult (*cuEventCreate)(CUevent*, unsigned) = nullptr;
  CUresult (*cuEventRecord)(CUevent, CUstream) = nullptr;
  CUresult (*cuEventElapsedTime)(float*, CUevent, CUevent) = nullptr;
  std::vector<CUevent> events;
  size_t used = 0;
};

Timing timing;

void requireTiming(Napi::Env env) {
  requireDevice(env);
  if (!timing.probed) {
    timing.probed = true;
    void* library = state.library;  // requireDevice has opened it
    timing.cuEventCreate = reinterpret_cast<decltype(timing.cuEventCreate)>(dlsym(library, "cuEventCreate"));
    timing.cuEventRecord = reinterpret_cast<decltype(timing.cuEventRecord)>(dlsym(library, "cuEventRecord"));
    // CUDA 12.8 added _v2 (the same signature; cuda.h maps the plain name to it from 13.0).
    timing.cuEventElapsedTime = reinterpret_cast<decltype(timing.cuEventElapsedTime)>(dlsym(library, "cuEventElapsedTime_v2"));
    if (timing.cuEventElapsedTime == nullptr) timing.cuEventElapsedTime = reinterpret_cast<decltype(timing.cuEventElapsedTime)>(dlsym(library, "cuEventElapsedTime"));
    if (timing.cuEventCreate == nullptr || timing.cuEventRecord == nullptr || timing.cuEventElapsedTime == nullptr) {
      timing.unavailable = "libcuda.so.1 lacks cuEventCreate, cuEventRecord or cuEventElapsedTime";
    }
  }
  if (!timing.unavailable.empty()) throw Napi::Error::New(env, timing.unavailable);
}

Napi::Value EventRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireTiming(env);
  if (timing.used == timing.events.size()) {
    CUevent event = nullptr;
    check(env, timing.cuEventCreate(&event, 0), "cuEventCreate");
    timing.events.push_back(event);
  }
  refuseWhileCapturing(env, "cuEventRecord");
  check(env, timing.cuEventRecord(timing.events[timing.used], state.stream), "cuEventRecord");
  return Napi::Number::New(env, static_cast<double>(timing.used++));
}

Napi::Value EventElapsed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireTiming(env);
  uint32_t start = indexOf(env, info[0], "start"), end = indexOf(env, info[1], "end");
  if (start >= timing.used || end >= timing.used) throw Napi::RangeError::New(env, "no such recorded event");
  float milliseconds = 0;
  check(env, timing.cuEventElapsedTime(&milliseconds, timing.events[start], timing.events[end]), "cuEventElapsedTime");
  return Napi::Number::New(env, milliseconds);
}

Napi::Value EventsReset(const Napi::CallbackInfo& info) {
  timing.used = 0;
  return info.Env().Undefined();
}

// CUDA graphs (generation's decode step: ../device-decode.ts): beginCapture() starts recording
// the stream (cuStreamBeginCapture, global mode: a call elsewhere that is unsafe during a capture
// fails instead of corrupting it), endCapture() stops it and instantiates what it recorded as a
// graph (its handle; the graph itself is freed, the instance keeps what it needs),
// abortCapture() stops a capture that went wrong and drops it, graphLaunch(handle) queues one
// replay on the stream, graphDestroy(handle) frees an instance. Resolved apart from the rest of
// the driver (cuGraphInstantiateWithFlags is CUDA 11.4's), so that a driver without them still
// runs everything uncaptured.
struct Graphs {
  bool probed = false;
  std::string unavailable;
  CUresult (*cuStreamBeginCapture)(CUstream, int) = nullptr;
  CUresult (*cuStreamEndCapture)(CUstream, CUgraph*) = nullptr;
  CUresult (*cuGraphInstantiateWithFlags)(CUgraphExec*, CUgraph, unsigned long long) = nullptr;
  CUresult (*cuGraphLaunch)(CUgraphExec, CUstream) = nullptr;
  CUresult (*cuGraphExecDestroy)(CUgraphExec) = nullptr;
  CUresult (*cuGraphDestroy)(CUgraph) = nullptr;
  CUresult (*cuGraphGetNodes)(CUgraph, CUgraphNode*, size_t*) = nullptr;
  /** Instances by handle; null once destroyed. */
  std::vector<CUgraphExec> instances;
};

Graphs graphs;

constexpr int kCaptureModeGlobal = 0;  // CU_STREAM_CAPTURE_MODE_GLOBAL

void requireGraphs(Napi::Env env) {
  requireDevice(env);
  if (!graphs.probed) {
    graphs.probed = true;
    void* library = state.library;
    const auto find = [&](const char* symbol, auto& slot) {
      slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(dlsym(library, symbol));
      if (slot == nullptr && graphs.unavailable.empty()) graphs.unavailable = std::string("no CUDA graphs: libcuda.so.1 lacks ") + symbol + " (a driver older than CUDA 11.4?)";
    };
    // cuda.h maps cuStreamBeginCapture to its _v2 (the capture mode) since CUDA 10.1.
    find("cuStreamBeginCapture_v2", graphs.cuStreamBeginCapture);
    find("cuStreamEndCapture", graphs.cuStreamEndCapture);
    find("cuGraphInstantiateWithFlags", graphs.cuGraphInstantiateWithFlags);
    find("cuGraphLaunch", graphs.cuGraphLaunch);
    find("cuGraphExecDestroy", graphs.cuGraphExecDestroy);
    find("cuGraphDestroy", graphs.cuGraphDestroy);
    find("cuGraphGetNodes", graphs.cuGraphGetNodes);
  }
  if (!graphs.unavailable.empty()) throw Napi::Error::New(env, graphs.unavailable);
}

CUgraphExec instanceOf(Napi::Env env, Napi::Value value) {
  uint32_t handle = indexOf(env, value, "graph");
  if (handle >= graphs.instances.size() || graphs.instances[handle] == nullptr) throw Napi::RangeError::New(env, "no such CUDA graph (destroyed?)");
  return graphs.instances[handle];
}

// graphProbe(): { available: true } | { available: false, reason } — needs the device.
Napi::Value GraphProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  try {
    requireGraphs(env);
    result.Set("available", true);
  } catch (const Napi::Error& error) {
    result.Set("available", false);
    result.Set("reason", error.Message());
  }
  return result;
}

Napi::Value BeginCapture(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireGraphs(env);
  refuseWhileCapturing(env, "beginCapture");
  check(env, graphs.cuStreamBeginCapture(state.stream, kCaptureModeGlobal), "cuStreamBeginCapture");
  state.capturing = true;
  return env.Undefined();
}

// endCapture(): { graph: number, nodes: number }
Napi::Value EndCapture(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireGraphs(env);
  if (!state.capturing) throw Napi::Error::New(env, "endCapture without beginCapture");
  state.capturing = false;
  CUgraph graph = nullptr;
  check(env, graphs.cuStreamEndCapture(state.stream, &graph), "cuStreamEndCapture (the capture was invalidated)");
  size_t nodes = 0;
  CUresult r = graphs.cuGraphGetNodes(graph, nullptr, &nodes);
  CUgraphExec instance = nullptr;
  if (r == 0) r = graphs.cuGraphInstantiateWithFlags(&instance, graph, 0);
  graphs.cuGraphDestroy(graph);
  check(env, r, "cuGraphInstantiateWithFlags");
  graphs.instances.push_back(instance);
  Napi::Object result = Napi::Object::New(env);
  result.Set("graph", static_cast<double>(graphs.instances.size() - 1));
  result.Set("nodes", static_cast<double>(nodes));
  return result;
}

// abortCapture(): ends a capture that failed half-way, dropping what it recorded; nothing when none is under way.
Napi::Value AbortCapture(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireGraphs(env);
  if (!state.capturing) return env.Undefined();
  state.capturing = false;
  CUgraph graph = nullptr;
  // An invalidated capture ends with an error and no graph: nothing to keep either way.
  graphs.cuStreamEndCapture(state.stream, &graph);
  if (graph != nullptr) graphs.cuGraphDestroy(graph);
  return env.Undefined();
}

Napi::Value GraphLaunch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireGraphs(env);
  refuseWhileCapturing(env, "a graph launch");
  check(env, graphs.cuGraphLaunch(instanceOf(env, info[0]), state.stream), "cuGraphLaunch");
  return env.Undefined();
}

Napi::Value GraphDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireGraphs(env);
  CUgraphExec instance = instanceOf(env, info[0]);
  graphs.instances[indexOf(env, info[0], "graph")] = nullptr;
  check(env, graphs.cuGraphExecDestroy(instance), "cuGraphExecDestroy");
  return env.Undefined();
}

// blasProbe(): { available: true, library, version: [major, minor, patch] } | { available: false, reason }
// Only opens libcublas (no GPU needed); the handle waits for the first gemm.
Napi::Value BlasProbe(const Napi::CallbackInfo& info) {
  probeBlas();
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("available", blasState.unavailable.empty());
  if (!blasState.unavailable.empty()) {
    result.Set("reason", blasState.unavailable);
    return result;
  }
  result.Set("library", blasState.library);
  Napi::Array version = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; i++) version.Set(i, blasState.version[i]);
  result.Set("version", version);
  return result;
}

// gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, out, ldo, abType, outType)
// Row-major, as ../cuda.ts's GemmCall: out[m × n] = alpha · op(a) · op(b) + beta · out, with
// op(a) m × k, op(b) k × n, ld* the elements from one row to the next, f32 accumulation
// (CUBLAS_COMPUTE_32F; alpha and beta floats), queued on the stream after the launches
// before it. cuBLAS is column-major, and a row-major matrix read column-major is its transpose:
// outᵀ = op(b)ᵀ · op(a)ᵀ is one column-major GemmEx with the operands swapped — A' = b
// (transposed iff transposeB), B' = a (iff transposeA), m' = n, n' = m, the leading dimensions
// the row strides. GemmEx takes bf16 → bf16|f32, f16 → f16|f32, f32 → f32.
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 15) throw Napi::TypeError::New(env, "gemm takes 15 arguments");
  requireDevice(env);
  cublasHandle handle = blasHandle(env);
  if (!info[0].IsBoolean() || !info[1].IsBoolean()) throw Napi::TypeError::New(env, "transposeA and transposeB must be booleans");
  bool transposeA = info[0].As<Napi::Boolean>().Value(), transposeB = info[1].As<Napi::Boolean>().Value();
  int m = blasInt(env, info[2], "m"), n = blasInt(env, info[3], "n"), k = blasInt(env, info[4], "k");
  if (!info[5].IsNumber() || !info[10].IsNumber()) throw Napi::TypeError::New(env, "alpha and beta must be numbers");
  float alpha = info[5].As<Napi::Number>().FloatValue(), beta = info[10].As<Napi::Number>().FloatValue();
  uint64_t a = pointerOf(env, info[6], "a"), b = pointerOf(env, info[8], "b"), out = pointerOf(env, info[11], "out");
  int lda = blasInt(env, info[7], "lda"), ldb = blasInt(env, info[9], "ldb"), ldo = blasInt(env, info[12], "ldo");
  int abType = blasType(env, info[13], "abType"), outType = blasType(env, info[14], "outType");
  if (outType != kDataF32 && outType != abType) {
    throw Napi::TypeError::New(env, "cuBLAS GemmEx writes f32 or the operands' type: bf16 → bf16|f32, f16 → f16|f32, f32 → f32");
  }
  if (m == 0 || n == 0) return env.Undefined();
  // cuBLAS wants every leading dimension ≥ 1, even an empty operand's (k = 0: rows of 0).
  lda = lda < 1 ? 1 : lda, ldb = ldb < 1 ? 1 : ldb;
  checkBlas(env,
            blasState.blas.cublasGemmEx(handle, transposeB ? kOpT : kOpN, transposeA ? kOpT : kOpN, n, m, k, &alpha, reinterpret_cast<const void*>(b),
                                        abType, ldb, reinterpret_cast<const void*>(a), abType, lda, &beta, reinterpret_cast<void*>(out), outType,
                                        ldo, kCompute32F, kGemmDefault),
            "cublasGemmEx");
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
  exports.Set("blasProbe", Napi::Function::New(env, BlasProbe));
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("eventRecord", Napi::Function::New(env, EventRecord));
  exports.Set("eventElapsed", Napi::Function::New(env, EventElapsed));
  exports.Set("eventsReset", Napi::Function::New(env, EventsReset));
  exports.Set("graphProbe", Napi::Function::New(env, GraphProbe));
  exports.Set("beginCapture", Napi::Function::New(env, BeginCapture));
  exports.Set("endCapture", Napi::Function::New(env, EndCapture));
  exports.Set("abortCapture", Napi::Function::New(env, AbortCapture));
  exports.Set("graphLaunch", Napi::Function::New(env, GraphLaunch));
  exports.Set("graphDestroy", Napi::Function::New(env, GraphDestroy));
  return exports;
}

}  // namespace qalc_cuda

Napi::Object InitQalcCuda(Napi::Env env, Napi::Object exports) { return qalc_cuda::Init(env, exports); }

NODE_API_MODULE(qalc_cuda, InitQalcCuda)
