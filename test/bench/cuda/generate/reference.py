"""transformers' generate on a bf16 LlamaForCausalLM of LLaMA-2-7B's shape, batch 1: the anchor of
qalc generate --backend cuda (issue 11). Prints one JSON object on its last stdout line.

    python3 reference.py [--layers 32] [--prompt 8] [--new 128] [--runs 3]

The model is the train benchmark's (test/bench/cuda/train/reference.py, shipped beside this file as
train_reference.py): transformers' own random initialisation (normal(0, 0.02)), built on the GPU
under a bf16 default dtype (no float32 copy), sdpa attention; here with its default dynamic KV cache, greedy
(do_sample=False), no EOS (every run generates exactly --new tokens after a random prompt of
--prompt tokens). One untimed generate of 8 tokens warms up (CUDA context, kernels, allocator);
then --runs timed generates, torch.cuda.synchronize around each; the median counts. tokens/s is
the new tokens over the whole call (the prompt's one prefill forward included, as qalc's count
includes its prompt's steps). Peak memory: torch.cuda.max_memory_allocated.
"""

import argparse
import json
import statistics
import sys
import time

import torch


def build(layers):
    """The train benchmark's bf16 LlamaForCausalLM (train_reference.py: built on the GPU, no float32 copy), for inference."""
    from train_reference import build_base

    model = build_base(layers)
    model.config.use_cache = True
    model.eval()
    gc = model.generation_config
    gc.use_cache = True
    gc.eos_token_id = None
    gc.pad_token_id = 0
    gc.bos_token_id = 1
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--prompt", type=int, default=8)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import transformers

    torch.manual_seed(0)
    model = build(args.layers)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    prompt = torch.randint(3, 32000, (1, args.prompt), device="cuda")
    kwargs = dict(do_sample=False, min_new_tokens=args.new, max_new_tokens=args.new)
    with torch.inference_mode():
        model.generate(prompt, do_sample=False, min_new_tokens=8, max_new_tokens=8)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        seconds, lengths = [], []
        for _ in range(args.runs):
            torch.cuda.synchronize()
            started = time.perf_counter()
            out = model.generate(prompt, **kwargs)
            torch.cuda.synchronize()
            seconds.append(time.perf_counter() - started)
            lengths.append(out.shape[1] - args.prompt)
    median = statistics.median(seconds)
    result = {
        "system": "transformers-generate-bf16", "transformers": transformers.__version__, "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0), "layers": args.layers, "prompt_tokens": args.prompt, "new_tokens": args.new,
        "generated": lengths, "seconds": seconds, "tokens_per_second": args.new / median,
        "weight_bytes": weight_bytes, "peak_bytes": torch.cuda.max_memory_allocated(),
    }
    print(json.dumps(result))
    if any(n != args.new for n in lengths):
        print(f"generated {lengths} tokens, asked for {args.new}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
