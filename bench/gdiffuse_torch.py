"""gdiffuse's U-Net in PyTorch, for bench/gdiffuse.sh: the same layers, topology and parameter
names as lib/models/unet.cpp, loaded from one of gdiffuse's checkpoints (safetensors, read with
numpy; the training weights "raw.NAME" when the checkpoint has them).

  gdiffuse_torch.py check CKPT FORWARD   compare the forward pass with gdiffuse's (FORWARD: the
                                         bench/gdiffuse_forward helper) on random inputs
  gdiffuse_torch.py train CKPT STEPS     ms per training step (batch 64, AdamW, clip, EMA)
  gdiffuse_torch.py sample CKPT          ms for 64 images, DDIM 50 steps, guidance (batch 128)

Threads: TORCH_THREADS (default 1).
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        tensors[name] = np.frombuffer(data[8 + n + a : 8 + n + b], dtype=np.float32).reshape(info["shape"])
    return tensors, meta


class Res(nn.Module):
    def __init__(self, cin, cout, time_dim, groups):
        super().__init__()
        self.groups = groups
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(time_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class Level(nn.Module):
    def __init__(self, res, downsample=None, upsample=None):
        super().__init__()
        self.res = res
        if downsample is not None:
            self.downsample = downsample
        if upsample is not None:
            self.upsample = upsample


class Unet(nn.Module):
    """lib/models/unet.cpp: conv_in, a residual block per level (kept for the skip) and a stride-2
    convolution down, a middle block, per level up: concatenate the skip, a residual block,
    nearest upsampling and a convolution; GroupNorm, SiLU, conv_out."""

    def __init__(self, image_channels=1, channels=(32, 64, 128), groups=8, time_dim=128, classes=10):
        super().__init__()
        L, D = len(channels), time_dim
        self.channels, self.classes, self.groups = list(channels), classes, groups
        self.time_mlp = nn.Sequential(nn.Linear(channels[0], D), nn.SiLU(), nn.Linear(D, D))
        self.class_emb = nn.Embedding(classes + 1, D) if classes > 0 else None
        self.conv_in = nn.Conv2d(image_channels, channels[0], 3, padding=1)
        down, cin = [], channels[0]
        for l in range(L):
            res = Res(cin, channels[l], D, groups)
            cin = channels[l]
            down.append(Level(res, downsample=nn.Conv2d(cin, cin, 3, stride=2, padding=1) if l + 1 < L else None))
        self.down = nn.ModuleList(down)
        self.mid = Res(cin, cin, D, groups)
        up = [None] * L
        for l in reversed(range(L)):
            res = Res(cin + channels[l], channels[l], D, groups)
            cin = channels[l]
            upsample = None
            if l > 0:
                upsample = nn.Conv2d(cin, channels[l - 1], 3, padding=1)
                cin = channels[l - 1]
            up[l] = Level(res, upsample=upsample)
        self.up = nn.ModuleList(up)
        self.norm_out = nn.GroupNorm(groups, channels[0])
        self.conv_out = nn.Conv2d(channels[0], image_channels, 3, padding=1)

    def timestep_embedding(self, t):
        half = self.channels[0] // 2
        f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
        a = t.double()[:, None] * f[None, :]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1).float()

    def forward(self, x, t, labels):
        L = len(self.channels)
        temb = self.time_mlp(self.timestep_embedding(t))
        if self.class_emb is not None:
            temb = temb + self.class_emb(labels)
        temb = F.silu(temb)
        h = self.conv_in(x)
        skips = []
        for l in range(L):
            h = self.down[l].res(h, temb)
            skips.append(h)
            if l + 1 < L:
                h = self.down[l].downsample(h)
        h = self.mid(h, temb)
        for l in reversed(range(L)):
            h = self.up[l].res(torch.cat([h, skips[l]], dim=1), temb)
            if l > 0:
                h = self.up[l].upsample(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def load(path):
    tensors, meta = read_safetensors(path)
    state = {k[4:]: v for k, v in tensors.items() if k.startswith("raw.")}
    if not state:
        state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    classes = state["class_emb.weight"].shape[0] - 1 if "class_emb.weight" in state else 0
    channels, lvl = [], 0
    while f"down.{lvl}.res.conv1.weight" in state:
        channels.append(state[f"down.{lvl}.res.conv1.weight"].shape[0])
        lvl += 1
    image_channels = state["conv_in.weight"].shape[1]
    time_dim = state["time_mlp.0.weight"].shape[0]
    groups = json.loads(meta["config"])["groups"]
    model = Unet(image_channels, channels, groups, time_dim, classes)
    own = model.state_dict()
    missing = set(own) - set(state)
    if missing:
        raise SystemExit(f"{path}: no weights for {sorted(missing)[:5]}")
    model.load_state_dict({k: torch.from_numpy(state[k].copy()) for k in own})
    return model


def alphas_bar(T=1000):
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).float()


def check(ckpt, helper):
    model = load(ckpt)
    torch.manual_seed(0)
    B, S = 8, 28
    x = torch.randn(B, model.conv_in.in_channels, S, S)
    t = torch.randint(0, 1000, (B,)).float()
    labels = torch.randint(0, model.classes + 1, (B,))
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.bin"), os.path.join(tmp, "out.bin")
        with open(inp, "wb") as f:
            f.write(struct.pack("<q", B))
            f.write(x.numpy().astype("<f4").tobytes())
            f.write(t.numpy().astype("<f4").tobytes())
            f.write(labels.numpy().astype("<u4").tobytes())
        subprocess.run([helper, ckpt, inp, out], check=True, stdout=subprocess.DEVNULL)
        ours = torch.from_numpy(np.fromfile(out, dtype="<f4").reshape(x.shape).copy())
    with torch.no_grad():
        theirs = model(x, t, labels)
    rel = ((ours - theirs).norm() / theirs.norm()).item()
    print(f"forward agreement: |gdiffuse - torch| / |torch| = {rel:.2e} (output norm {theirs.norm().item():.3e})")
    if not rel < 1e-4:
        raise SystemExit("the PyTorch mirror does not compute gdiffuse's network")


def train(ckpt, steps, warmup=5):
    model = load(ckpt)
    torch.manual_seed(1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    ema = [p.detach().clone() for p in model.parameters()]
    abar = alphas_bar()
    B, S, C = 64, 28, model.conv_in.in_channels
    start = None
    for step in range(steps + warmup):
        if step == warmup:
            start = time.perf_counter()
        x0 = torch.rand(B, C, S, S) * 2 - 1
        eps = torch.randn_like(x0)
        t = torch.randint(0, 1000, (B,))
        labels = torch.randint(0, model.classes, (B,))
        labels[torch.rand(B) < 0.1] = model.classes
        a = abar[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        loss = F.mse_loss(model(xt, t.float(), labels), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema, model.parameters()):
                e.lerp_(p, 0.001)
    print(f"{1000 * (time.perf_counter() - start) / steps:.2f}")


def sample(ckpt, n=64, steps=50, guidance=3.0):
    model = load(ckpt).eval()
    torch.manual_seed(1)
    abar = alphas_bar()
    C, S = model.conv_in.in_channels, 28
    ts = [int(round(i * 999 / (steps - 1))) for i in range(steps)][::-1]
    labels = torch.cat([torch.full((n,), 3), torch.full((n,), model.classes)])
    start = time.perf_counter()
    with torch.no_grad():
        x = torch.randn(n, C, S, S)
        for i, t in enumerate(ts):
            out = model(torch.cat([x, x]), torch.full((2 * n,), float(t)), labels)
            eps = out[n:] + guidance * (out[:n] - out[n:])
            a = abar[t]
            a_prev = abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
            x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    print(f"{1000 * (time.perf_counter() - start):.0f}")


def main():
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    mode = sys.argv[1]
    if mode == "check":
        check(sys.argv[2], sys.argv[3])
    elif mode == "train":
        train(sys.argv[2], int(sys.argv[3]))
    elif mode == "sample":
        sample(sys.argv[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
