#!/usr/bin/env python3
"""PyTorch's inference-alone throughput, the peer of `featureonnx bench --precision fp32,fp16 --input-path device`.

For each model (torchvision, seeded random weights: speed does not depend on the values), on CUDA, input already on
the GPU, batch B, torch.inference_mode():
  fp32               NCHW, float32 (cuDNN's defaults: TF32 convolutions where the GPU has them, as PyTorch ships)
  fp32 channels_last
  AMP channels_last  torch.autocast("cuda", dtype=torch.float16): the issue's target for `--precision fp16`
Prints one line per configuration (img/s over ITERS timed runs after WARMUP, cuda.synchronize around the clock) and a
markdown table; with --json FILE also writes the figures. Without CUDA it says so and exits 0 (the runbook runs on CPUs too).

  python3 export-scripts/bench_torch_amp.py --batch 256 --models resnet18,efficientnet_b0 [--warmup 5] [--iters 20]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torchvision


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet18,efficientnet_b0")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(f"bench_torch_amp: CUDA is not available to torch {torch.__version__}: nothing measured")
        return 0
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.cuda.get_device_name(0)}, batch {args.batch}")
    rows = []
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None).eval().to(device)
        x = torch.randn(args.batch, 3, 224, 224, device=device)
        for label, channels_last, amp in [("fp32", False, False), ("fp32 channels_last", True, False), ("AMP channels_last", True, True)]:
            m = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            xi = x.to(memory_format=torch.channels_last) if channels_last else x.contiguous()
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                for _ in range(args.warmup):
                    m(xi)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    m(xi)
                torch.cuda.synchronize()
                seconds = time.perf_counter() - t0
            ips = args.batch * args.iters / seconds
            rows.append({"model": name, "config": label, "batch": args.batch, "imagesPerSecond": ips})
            print(f"{name:16s} {label:20s} {ips:10.0f} img/s")
    print()
    print("| model | PyTorch fp32 | fp32 channels_last | AMP fp16 channels_last |")
    print("|---|--:|--:|--:|")
    for name in args.models.split(","):
        r = {row["config"]: row["imagesPerSecond"] for row in rows if row["model"] == name}
        print(f"| {name} | {r['fp32']:.0f} | {r['fp32 channels_last']:.0f} | {r['AMP channels_last']:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
