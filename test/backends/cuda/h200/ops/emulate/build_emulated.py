#!/usr/bin/env python3
"""Builds each model op of a kernels folder (emit-op-kernels.ts's) for the CPU stand-in
(cuda_emulation.h): the emitted .cu unchanged, compiled by g++ with a wrapper per entry point
that takes cuLaunchKernel-style arguments (grid, block, an array of pointers to the arguments)
and runs the launch block by block. check_ops.py --emulate loads them (<kernel>.emu.so beside
the .cu). For machines without a GPU; the device check is the real one.

    python3 build_emulated.py KERNELS_DIR
"""
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))


def wrapper(entry):
    lines = [f'extern "C" void emulate__{entry["symbol"]}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, void** args) {{']
    names = []
    for i, p in enumerate(entry["parameters"]):
        c_type = p.get("cType") or {"pointer": "float*", "u32": "uint32_t", "f32": "float"}[p["type"]]
        name = f"a{i}"
        if p["type"] == "pointer":
            lines.append(f"  {c_type} {name} = *static_cast<{c_type} const*>(args[{i}]);")
        else:
            lines.append(f"  {c_type} {name} = *static_cast<const {c_type}*>(args[{i}]);")
        names.append(name)
    lines.append(f'  emulation::launch(dim3{{gx, gy, gz}}, dim3{{bx, by, bz}}, [&] {{ {entry["symbol"]}({", ".join(names)}); }});')
    lines.append("}")
    return "\n".join(lines)


def build(job):
    source_path, entries = job
    stem = source_path[: -len(".cu")]
    with open(source_path) as f:
        source = f.read()
    text = source + "\n\n// CPU emulation wrappers (build_emulated.py)\n" + "\n\n".join(wrapper(e) for e in entries) + "\n"
    with open(stem + ".emu.cpp", "w") as f:
        f.write(text)
    result = subprocess.run(["g++", "-std=c++20", "-O1", "-w", "-shared", "-fPIC", "-pthread", "-I", HERE, "-x", "c++", stem + ".emu.cpp", "-o", stem + ".emu.so"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{source_path}:\n{result.stderr[-3000:]}")
    return stem + ".emu.so"


def main():
    kernels = sys.argv[1]
    jobs = []
    for spec in sorted(os.listdir(kernels)):
        manifest_path = os.path.join(kernels, spec, "manifest.json")
        if not os.path.isfile(manifest_path):
            continue
        for op in json.load(open(manifest_path))["modelOps"]:
            if op["op"] != "attention":
                jobs.append((os.path.join(kernels, spec, op["file"]), op["entryPoints"]))
    with ThreadPoolExecutor(max_workers=2) as pool:
        for built in pool.map(build, jobs):
            print(built)


if __name__ == "__main__":
    main()
