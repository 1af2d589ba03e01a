#!/usr/bin/env bash
# The stories260K fine-tune on the H200's own Vulkan driver with --backend cpu and --backend
# webgpu (the quantized linear layers on the spec's compiled WGSL kernels), compared step by step
# (src/runtime/webgpu/H200-WEBGPU.md records a run). Runs from the repository root with the
# .device/ folder of src/runtime/cuda/H200-TRAIN.md, plus node_modules/webgpu (package.json,
# index.js, dist/linux-x64) and gl/, Debian bookworm's libvulkan1 libegl1 libglvnd0 libopengl0
# libgl1 libglx0 libgles2 (`apt-get download …`): the H200 machine has NVIDIA's Vulkan ICD
# (libGLX_nvidia.so.0) but neither the Vulkan loader nor the GL dispatch libraries that ICD
# needs. They are unpacked into / as the device notes say.
set -euo pipefail
out=${OUT:-/tmp/qalc-h200}
mkdir -p "$out"
xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node
for deb in .device/gl/*.deb; do dpkg -x "$deb" /; done
ldconfig
nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader || true
for backend in cpu webgpu; do
  rm -rf "/tmp/run-$backend"
  /tmp/node .device/qalc/qalc.mjs train .device/stories260k.qal --backend "$backend" --out "/tmp/run-$backend" 2>&1 | tr '\r' '\n' | grep -v '^\[#' || true
  cp "/tmp/run-$backend/train.jsonl" "$out/train-$backend.jsonl"
done
for backend in cpu webgpu; do
  echo "eval --backend $backend (the webgpu run's adapters):"
  /tmp/node .device/qalc/qalc.mjs eval .device/stories260k.qal --backend "$backend" --out /tmp/run-webgpu 2>&1
done
/tmp/node test/runtime/cuda/h200/compare-runs.mjs /tmp/run-cpu /tmp/run-webgpu cpu webgpu | tee "$out/compare.md"
