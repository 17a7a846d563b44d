"""Test-wide settings.

Tiny models spend their time in thread hand-offs, not arithmetic: one torch thread made the GPT and
VQ-VAE tests 3-10x faster on a 2-core machine (measured when the other core was busy), and it keeps
timings stable whatever else runs.
"""
import os

import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)
