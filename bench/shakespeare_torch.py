"""examples/shakespeare-10min's config in PyTorch (Debian's python3-torch), for the same wall-clock
budget, on the same token ids: the validation loss each reaches in the time, for bench/shakespeare10.sh.
The model is the golden test's (tests/golden/check_gpt.py: same layers, biases, tied head, tanh
GELU; no dropout, so the config compared has none), initialized as gtrain initializes. AdamW (BETA1, BETA2),
weight decay WEIGHT_DECAY on matrices, clip GRAD_CLIP (0: off); with MUON_MOMENTUM (gtrain --muon), the
blocks' matrices by Muon as gtrain's (tests/golden/check_gpt.py's, which the golden test checks
against gtrain's); nanoGPT's schedule: linear warmup, cosine to MIN_LR at the last step. The
steps are planned as gtrain --time-limit plans them (train/loop.cpp): the warmup's steps timed
(but the first), a validation pass at its end timed, and the steps that fit in 99% of the time
left (at most STEPS) are the schedule's; the run stops there or when the step expected to reach
MINUTES is done. The validation loss (EVAL_BATCHES batches of BATCH random windows of the last
10%) at the warmup's end, every EVAL_EVERY steps (the environment's, default 500) and at the
end; after the time, over WINDOWS (the environment's, default 12800) random windows, as the
example reports gtrain's. Prints a line per evaluation, then "final STEP MINUTES VAL_LOSS PLANNED",
VAL_LOSS the one over WINDOWS windows.
Usage: /usr/bin/python3 shakespeare_torch.py IDS VOCAB MINUTES STEPS LAYERS HEADS EMBD CONTEXT BATCH LR MIN_LR WARMUP
                        WEIGHT_DECAY GRAD_CLIP BETA1 BETA2 [MUON_MOMENTUM]
"""
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gtrain_torch import GPT, read_ids  # noqa: E402
from check_gpt import Muon, block_matrices  # noqa: E402  (gtrain_torch put tests/golden on the path)

EVAL_EVERY, EVAL_BATCHES = int(os.environ.get("EVAL_EVERY", "500")), 50


def steps_that_fit(done, total, seconds, per_step, occasional, every):
    """gtrain's plan (train/loop.cpp): the most steps whose time fits in seconds."""
    def cost(last):
        measured = last // every - done // every + (last % every != 0)
        return (last - done) * per_step + measured * occasional
    if cost(total) <= seconds:
        return total
    fits, not_fits = done, total
    while not_fits - fits > 1:
        mid = fits + (not_fits - fits) // 2
        if cost(mid) <= seconds:
            fits = mid
        else:
            not_fits = mid
    return fits


def main():
    ids_path, vocab, minutes, steps, layers, heads, embd, T, B = sys.argv[1:10]
    lr_max, lr_min, warmup = float(sys.argv[10]), float(sys.argv[11]), int(sys.argv[12])
    weight_decay, grad_clip, beta1, beta2 = (float(a) for a in sys.argv[13:17])
    muon_momentum = float(sys.argv[17]) if len(sys.argv) > 17 else None
    vocab, minutes, steps = int(vocab), float(minutes), int(steps)
    layers, heads, embd, T, B = int(layers), int(heads), int(embd), int(T), int(B)
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    torch.manual_seed(1337)
    data = torch.from_numpy(read_ids(ids_path))
    n = int(len(data) * 0.9)
    train, val = data[:n], data[n:]
    model = GPT(vocab, T, layers, heads, embd)
    # nanoGPT's initialization, as gtrain's (Gpt::init): N(0, 0.02) for matrices and embeddings,
    # N(0, 0.02 / sqrt(2 L)) for the residual projections, zero biases, unit layer-norm gains.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))
            elif p.dim() >= 2:
                torch.nn.init.normal_(p, 0.0, 0.02)
            elif "ln_" in name and name.endswith(".weight"):
                torch.nn.init.ones_(p)
            else:
                torch.nn.init.zeros_(p)
    matrices = block_matrices(model)
    muon = Muon(matrices, muon_momentum, weight_decay) if muon_momentum is not None else None
    by_adam = [p for p in model.parameters() if muon is None or all(p is not q for q in matrices)]
    decay = [p for p in by_adam if p.dim() >= 2]
    no_decay = [p for p in by_adam if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=lr_max, betas=(beta1, beta2))

    def lr_at(step):
        if step < warmup:
            return lr_max * (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))

    def batch(source, generator=None):
        offsets = torch.randint(len(source) - T - 1, (B,), generator=generator)
        x = torch.stack([source[o : o + T] for o in offsets])
        y = torch.stack([source[o + 1 : o + T + 1] for o in offsets])
        return x, y

    @torch.no_grad()
    def evaluate(batches=EVAL_BATCHES):
        model.eval()
        g = torch.Generator().manual_seed(1)
        total = 0.0
        for _ in range(batches):
            x, y = batch(val, g)
            total += F.cross_entropy(model(x).view(-1, vocab), y.view(-1)).item()
        model.train()
        return total / batches

    start = time.perf_counter()
    loss_val, step, first_done = float("nan"), 0, 0.0
    plans = warmup >= 7 and warmup < steps
    while step < steps:
        elapsed = began = time.perf_counter() - start
        out_of_time = step > 0 and elapsed + elapsed / step >= 60 * minutes
        planning = plans and step + 1 == warmup
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        x, y = batch(train)
        loss = F.cross_entropy(model(x).view(-1, vocab), y.view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if muon is not None:
            muon.step(lr_at(step))
        step += 1
        if step == 1:
            first_done = time.perf_counter() - start
        if step % EVAL_EVERY == 0 or step == steps or out_of_time or planning:
            loss_val = evaluate()
            print(f"step {step} val {loss_val:.4f} train {loss.item():.4f} "
                  f"minutes {(time.perf_counter() - start) / 60:.2f}", flush=True)
        if planning:
            seconds = time.perf_counter() - start
            per_step = (began - first_done) / (step - 2)
            steps = steps_that_fit(step, steps, 0.99 * (60 * minutes - seconds), per_step,
                                   max(0.0, seconds - began - per_step), EVAL_EVERY)
            print(f"planned {steps} steps (a step {1000 * per_step:.0f} ms)", flush=True)
        if out_of_time:
            break
    minutes_done = (time.perf_counter() - start) / 60
    windows = int(os.environ.get("WINDOWS", "12800"))
    loss_val = evaluate(windows // B)
    print(f"{windows // B * B} windows: val {loss_val:.4f}", flush=True)
    print(f"final {step} {minutes_done:.2f} {loss_val:.4f} {steps}")


if __name__ == "__main__":
    main()
