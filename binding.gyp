{
  # qalc's CPU backend: build/Release/qalc_cpu.node, loaded by src/runtime/cpu/addon.ts.
  # `npm ci` builds it (the package's install script); by hand: npx node-gyp rebuild.
  # -ffp-contract=off: no fused multiply-adds, so sums round as the TypeScript reference's do.
  # x86-64-v3 (AVX2, 2015+): every machine qalc targets has it, the H200 host included.
  # The cuda backend's driver binding: build/Release/qalc_cuda.node, loaded by
  # src/runtime/cuda/cuda.ts; it dlopens libcuda.so.1 at run time, so it builds without a CUDA
  # toolkit and loads on machines without a GPU.
  "targets": [
    {
      "target_name": "qalc_cpu",
      "sources": [
        "src/runtime/cpu/native/addon.cc",
        "src/runtime/cpu/native/attention.cc",
        "src/runtime/cpu/native/cross-entropy.cc",
        "src/runtime/cpu/native/llama-decoder.cc",
        "src/runtime/cpu/native/matmul.cc",
        "src/runtime/cpu/native/qalora-linear.cc",
        "src/runtime/cpu/native/rmsnorm.cc",
        "src/runtime/cpu/native/rope.cc",
        "src/runtime/cpu/native/swiglu.cc",
        "src/runtime/cpu/native/thread-pool.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["target_arch == 'x64'", { "cflags_cc": ["-march=x86-64-v3"] }]
      ],
      "ldflags": ["-pthread"]
    },
    {
      "target_name": "qalc_cuda",
      "sources": ["src/runtime/cuda/native/cuda-driver.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-ldl"]
    }
  ]
}
