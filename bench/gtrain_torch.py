"""The nanoGPT CPU recipe in PyTorch, on the same token ids as gtrain, for bench/gtrain.sh.
Prints the mean milliseconds per training step after warmup. The model is the one the golden
test builds (tests/golden/check_gpt.py): same layers, biases, tied head, tanh GELU.
Usage: /usr/bin/python3 gtrain_torch.py IDS VOCAB STEPS
"""
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from check_gpt import GPT  # noqa: E402


def read_ids(path):
    data = open(path, "rb").read()
    if data[:4] != b"GIDS":
        raise SystemExit(f"{path}: expected binary ids (gtok encode --binary)")
    return np.frombuffer(data[8:], dtype=np.uint32).astype(np.int64)


def main():
    ids_path, vocab, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    torch.manual_seed(1)
    data = torch.from_numpy(read_ids(ids_path))
    train = data[: int(len(data) * 0.9)]
    B, T = 12, 64
    model = GPT(vocab, T, 4, 4, 128)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.99))
    warmup = 10
    start = None
    for step in range(steps + warmup):
        if step == warmup:
            start = time.perf_counter()
        offsets = torch.randint(len(train) - T - 1, (B,))
        x = torch.stack([train[o : o + T] for o in offsets])
        y = torch.stack([train[o + 1 : o + T + 1] for o in offsets])
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, vocab), y.view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    elapsed = time.perf_counter() - start
    print(f"{1000 * elapsed / steps:.2f}")


if __name__ == "__main__":
    main()
