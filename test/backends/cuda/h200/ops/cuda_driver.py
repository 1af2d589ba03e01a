"""ctypes over libcuda.so.1: load a fatbin qalc compiled and launch its kernels on torch tensors.

    module = Module(open("x.sm_90a.fatbin", "rb").read())
    fn = module.function("attention_forward")
    fn.launch(grid, block, shared_bytes, [out, lse, q, k, v, batch, seq_len])

Arguments: torch CUDA tensors (passed as their data_ptr, a c_uint64), Python ints (c_uint32)
or F32(x) (c_float). Launches go to torch's current stream, so torch's events time them and
torch's synchronize waits for them. The module lives in the primary context torch made.
"""
import ctypes

import torch

_cuda = ctypes.CDLL("libcuda.so.1")
CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8
STATIC_SHARED_LIMIT = 48 * 1024


class CudaError(RuntimeError):
    pass


def _check(result, what):
    if result != 0:
        name = ctypes.c_char_p()
        _cuda.cuGetErrorName(result, ctypes.byref(name))
        raise CudaError(f"{what}: {name.value.decode() if name.value else result}")


class F32:
    """A float32 kernel argument."""

    def __init__(self, value):
        self.value = float(value)


def _argument(value):
    if isinstance(value, torch.Tensor):
        if not value.is_cuda:
            raise TypeError("kernel arguments must be CUDA tensors")
        return ctypes.c_uint64(value.data_ptr())
    if isinstance(value, F32):
        return ctypes.c_float(value.value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"unsupported kernel argument {value!r}")
    if not 0 <= value < 2**32:
        raise ValueError(f"u32 argument out of range: {value}")
    return ctypes.c_uint32(value)


class Function:
    def __init__(self, handle, symbol):
        self.handle = handle
        self.symbol = symbol
        self._shared_limit = STATIC_SHARED_LIMIT

    def launch(self, grid, block, shared_bytes, args):
        if shared_bytes > self._shared_limit:
            _check(_cuda.cuFuncSetAttribute(self.handle, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, ctypes.c_int(shared_bytes)),
                   f"cuFuncSetAttribute({self.symbol}, max dynamic shared {shared_bytes})")
            self._shared_limit = shared_bytes
        values = [_argument(a) for a in args]
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
        stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        gx, gy, gz = (int(x) for x in grid)
        bx, by, bz = (int(x) for x in block)
        if gx == 0 or gy == 0 or gz == 0:
            return
        _check(_cuda.cuLaunchKernel(self.handle, gx, gy, gz, bx, by, bz, ctypes.c_uint(shared_bytes), stream, pointers, None),
               f"cuLaunchKernel({self.symbol}, grid {tuple(grid)}, block {tuple(block)}, shared {shared_bytes})")


class Module:
    def __init__(self, fatbin_bytes):
        torch.cuda.init()
        torch.zeros(1, device="cuda")  # makes torch's primary context current on this thread
        _check(_cuda.cuInit(0), "cuInit")
        self._image = ctypes.create_string_buffer(bytes(fatbin_bytes), len(fatbin_bytes))
        self.handle = ctypes.c_void_p()
        _check(_cuda.cuModuleLoadData(ctypes.byref(self.handle), self._image), "cuModuleLoadData")

    def function(self, symbol):
        handle = ctypes.c_void_p()
        _check(_cuda.cuModuleGetFunction(ctypes.byref(handle), self.handle, symbol.encode()), f"cuModuleGetFunction({symbol})")
        return Function(handle, symbol)
