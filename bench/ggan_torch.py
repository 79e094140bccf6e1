"""One DCGAN training step in PyTorch (the networks that ggan builds), for the ggan benchmark.
Run with Debian's PyTorch: /usr/bin/python3 (torch 1.13), not the pyenv python3 on PATH.

  G: z (64, N(0, 1)) -> Linear(64, 256*7*7, no bias) -> [256, 7, 7] -> BatchNorm -> ReLU
     -> ConvTranspose(256, 128, 4, s2, p1, no bias) -> BatchNorm -> ReLU
     -> ConvTranspose(128, 1, 4, s2, p1) -> tanh                          1,329,921 parameters
  D: Conv(1, 64, 4, s2, p1) -> LeakyReLU(0.2) -> Conv(64, 128, 4, s2, p1) -> LeakyReLU(0.2)
     -> flatten -> Linear(6272, 1) (a logit)                               138,561 parameters

A step, as PyTorch's DCGAN example: one G forward (fake = G(z)); the D step: errD =
BCEWithLogits(D(real), 1) + BCEWithLogits(D(fake.detach()), 0), with two D forwards (real, then
fake; --concat: one forward on the concatenation, the same numbers since D has no BatchNorm),
backward, optD.step(); the G step: errG = BCEWithLogits(D(fake), 1) with the updated D, backward
(through D into G; D's gradients are computed too and cleared at the next D step), optG.step().
Adam lr 2e-4, betas (0.5, 0.999) for both; DCGAN's initialization (weights N(0, 0.02), BatchNorm
scale N(1, 0.02)). Real images: uniform in [-1, 1], 28x28x1, fixed seed (the timing does not
depend on them).

Usage: /usr/bin/python3 ggan_torch.py [--steps 30] [--warmup 5] [--threads T] [--batch 64]
                                      [--concat] [--json] [--profile]
Prints the median and mean ms per timed step and the estimated GFLOP/s; --json: one JSON line
instead. The best thread setting is found by running it at 1 and 2 threads (as gdiffuse.sh does,
with ATEN_CPU_CAPABILITY=avx512, and with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as is and unset).
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn

Z, S = 64, 28
G_PARAMS, D_PARAMS = 1_329_921, 138_561


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(Z, 256 * 7 * 7, bias=False)
        self.bn0 = nn.BatchNorm2d(256)
        self.up1 = nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(128)
        self.up2 = nn.ConvTranspose2d(128, 1, 4, stride=2, padding=1, bias=True)

    def forward(self, z):
        h = torch.relu(self.bn0(self.fc(z).view(-1, 256, 7, 7)))
        h = torch.relu(self.bn1(self.up1(h)))
        return torch.tanh(self.up2(h))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(64, 128, 4, stride=2, padding=1)
        self.fc = nn.Linear(128 * 7 * 7, 1)

    def forward(self, x):
        h = nn.functional.leaky_relu(self.conv1(x), 0.2)
        h = nn.functional.leaky_relu(self.conv2(h), 0.2)
        return self.fc(h.flatten(1)).view(-1)


def dcgan_init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def forward_flops(model, x):
    """FLOPs (2 x multiply-adds) of one forward pass per image, of the linear layers and
    convolutions only (BatchNorm and the activations are elementwise and left out)."""
    macs = []

    def hook(m, inp, out):
        n = out.shape[0]
        if isinstance(m, nn.Linear):
            macs.append(m.in_features * m.out_features)
        elif isinstance(m, nn.Conv2d):  # each output: in_channels x kernel
            macs.append(out[0].numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, nn.ConvTranspose2d):  # each input: out_channels x kernel
            macs.append(inp[0][0].numel() * m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        assert n == x.shape[0]

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return 2 * sum(macs)


def cpu_capability():
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.split(":", 1)[1].strip()
    return "?"


def main():
    ap = argparse.ArgumentParser(description="one DCGAN training step (D step + G step) in PyTorch")
    ap.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: TORCH_THREADS, else 1)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--concat", action="store_true",
                    help="D step: one D forward on cat(real, fake) instead of two")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--profile", action="store_true", help="print the ops that took the time")
    args = ap.parse_args()
    threads = args.threads if args.threads is not None else int(os.environ.get("TORCH_THREADS", "1"))
    torch.set_num_threads(threads)
    B = args.batch

    torch.manual_seed(0)
    G, D = Generator(), Discriminator()
    G.apply(dcgan_init)
    D.apply(dcgan_init)
    g_params = sum(p.numel() for p in G.parameters())
    d_params = sum(p.numel() for p in D.parameters())
    assert g_params == G_PARAMS, g_params
    assert d_params == D_PARAMS, d_params
    g_flops = forward_flops(G.eval(), torch.randn(1, Z))
    d_flops = forward_flops(D.eval(), torch.zeros(1, 1, S, S))
    G.train()
    D.train()
    # Per step: G forward + backward ~ 3 x its forward, once per image; D forward + backward ~
    # 3 x its forward, on real and fake (D step) and on fake again (G step): 9 x per image. The
    # backward counts are upper bounds (no input gradient for D's first layer / the detached fake).
    step_flops = B * (3 * g_flops + 9 * d_flops)

    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(B), torch.zeros(B)
    real_all = torch.rand(8, B, 1, S, S) * 2 - 1  # a few fixed batches, cycled

    def step(i):
        real = real_all[i % real_all.shape[0]]
        fake = G(torch.randn(B, Z))
        # D step
        optD.zero_grad(set_to_none=True)
        if args.concat:
            logits = D(torch.cat([real, fake.detach()]))
            errD = bce(logits[:B], ones) + bce(logits[B:], zeros)
        else:
            errD = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        errD.backward()
        optD.step()
        # G step, with the updated D
        optG.zero_grad(set_to_none=True)
        errG = bce(D(fake), ones)
        errG.backward()
        optG.step()
        return errD, errG

    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        errD, errG = step(i)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    if not (torch.isfinite(errD) and torch.isfinite(errG)):
        raise SystemExit(f"non-finite loss: errD {errD.item()}, errG {errG.item()}")

    ms_median = 1000 * statistics.median(times)
    ms_mean = 1000 * statistics.mean(times)
    gflops = step_flops / (ms_median / 1000) / 1e9
    info = {
        "ms_per_step": round(ms_median, 3),
        "ms_mean": round(ms_mean, 3),
        "steps_per_s": round(1000 / ms_median, 3),
        "gflop_per_step": round(step_flops / 1e9, 4),
        "gflops": round(gflops, 2),
        "threads": threads,
        "batch": B,
        "d_forward": "concat" if args.concat else "separate",
        "steps": args.steps,
        "warmup": args.warmup,
        "torch": torch.__version__,
        "cpu_capability": cpu_capability(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "g_params": g_params,
        "d_params": d_params,
        "g_forward_mflop_per_image": round(g_flops / 1e6, 3),
        "d_forward_mflop_per_image": round(d_flops / 1e6, 3),
        "errD": round(errD.item(), 4),
        "errG": round(errG.item(), 4),
    }
    if args.json:
        print(json.dumps(info))
    else:
        print(f"torch {torch.__version__} (CPU capability {info['cpu_capability']}), {threads} thread(s), "
              f"OPENBLAS_CORETYPE={info['openblas_coretype']}, batch {B}, D forwards: {info['d_forward']}")
        print(f"parameters: G {g_params:,}, D {d_params:,}")
        print(f"forward FLOPs per image: G {g_flops / 1e6:.2f} M, D {d_flops / 1e6:.2f} M; per step "
              f"(G 3x, D 9x, x{B}): {step_flops / 1e9:.2f} GFLOP")
        print(f"ms per step over {args.steps} steps (after {args.warmup} warmup): median {ms_median:.2f}, "
              f"mean {ms_mean:.2f}, min {1000 * min(times):.2f}; {1000 / ms_median:.2f} steps/s, "
              f"{gflops:.1f} GFLOP/s")
        print(f"last losses: errD {errD.item():.4f}, errG {errG.item():.4f}")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(min(args.steps, 5)):
                step(i)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()
