"""What the machine computes fast: bfloat16 on this CPU or not. Imports torch only (reading must stay light)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (avx512_bf16 or AMX). There bf16 autocast was 1.7-2.6x faster
    than float32 (the development CPU, AMD Zen 5); elsewhere it is emulated: on an AVX2-only EPYC, one thread, the
    LM head's matmul of a drawing batch took 8.1-8.6 s under bf16 autocast against 0.43-0.45 s in float32, and a
    4 x 128 GPT-2 training step 33-35 s against 4.3-4.5 s (`python -m scripts.bench_precision --steps 2`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
