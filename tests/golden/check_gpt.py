"""The PyTorch golden test: builds the same GPT in PyTorch (float64) from the weights gen wrote,
and checks gen's logits, loss, every gradient, and every weight after 3 AdamW steps, and after 3
steps with the blocks' matrices by Muon (gtrain --muon; Muon below, which bench/shakespeare_torch.py
uses too).

A tensor matches when max|gen - torch| <= 1e-4 * max|torch| (relative to the tensor's scale).
Exits 1 on any mismatch. Usage: /usr/bin/python3 check_gpt.py DIR (Debian's python3-torch).
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

TOLERANCE = 1e-4
DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8, "U32": np.uint32}


def read_safetensors(path):
    """safetensors by hand (the safetensors package is not in Debian 12): u64 header length,
    JSON header, data section."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[base + begin : base + end], dtype=DTYPES[info["dtype"]])
        tensors[name] = array.reshape(info["shape"])
    return tensors, metadata


class Block(torch.nn.Module):
    def __init__(self, C, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = torch.nn.LayerNorm(C)
        self.attn = torch.nn.Module()
        self.attn.c_attn = torch.nn.Linear(C, 3 * C)
        self.attn.c_proj = torch.nn.Linear(C, C)
        self.ln_2 = torch.nn.LayerNorm(C)
        self.mlp = torch.nn.Module()
        self.mlp.c_fc = torch.nn.Linear(C, 4 * C)
        self.mlp.c_proj = torch.nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.heads
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, hs).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        att = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.attn.c_proj(y)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(torch.nn.Module):
    def __init__(self, vocab, context, layers, heads, embd):
        super().__init__()
        self.transformer = torch.nn.Module()
        self.transformer.wte = torch.nn.Embedding(vocab, embd)
        self.transformer.wpe = torch.nn.Embedding(context, embd)
        self.transformer.h = torch.nn.ModuleList(Block(embd, heads) for _ in range(layers))
        self.transformer.ln_f = torch.nn.LayerNorm(embd)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.transformer.wte(ids) + self.transformer.wpe(torch.arange(T))
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x) @ self.transformer.wte.weight.T  # tied head


def orthogonalize(u, iterations=5):
    """Newton-Schulz's quintic (Jordan et al. 2024), as gen's orthogonalize(): from u / |u|_F,
    x <- a x + (b x x^T + c (x x^T)^2) x on the wide orientation."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = u / (u.norm() + 1e-7)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(iterations):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon:
    """gen's Muon (tensor/optimizer.h): M = mu M + g; W -= lr (wd W + 0.2 sqrt(max(rows, cols))
    orthogonalize(g + mu M)). Its step follows an optimizer's that leaves these matrices alone."""

    def __init__(self, params, momentum, weight_decay):
        self.params, self.momentum, self.weight_decay = params, momentum, weight_decay
        self.buffers = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, lr):
        for p, m in zip(self.params, self.buffers):
            m.mul_(self.momentum).add_(p.grad)
            update = orthogonalize(p.grad + self.momentum * m)
            p.mul_(1 - lr * self.weight_decay)
            p.add_(update, alpha=-lr * 0.2 * math.sqrt(max(p.shape)))


def block_matrices(model):
    """What gen's Gpt::block_matrices() gives Muon: the blocks' weights of two dimensions."""
    return [p for name, p in model.named_parameters() if name.startswith("transformer.h.") and p.dim() == 2]


def compare(what, ours, reference, failures):
    ours = np.asarray(ours, dtype=np.float64)
    reference = reference.detach().numpy().astype(np.float64)
    scale = max(np.abs(reference).max(), 1e-30)
    error = np.abs(ours - reference).max() / scale
    ok = ours.shape == reference.shape and error <= TOLERANCE
    if not ok:
        failures.append(f"{what}: relative error {error:.3g} (shape {ours.shape} vs {reference.shape})")
    return error


def main():
    folder = sys.argv[1]
    inputs, meta = read_safetensors(f"{folder}/golden_in.st")
    outputs, _ = read_safetensors(f"{folder}/golden_out.st")
    config = json.loads(meta["config"])
    adam = json.loads(meta["adamw"])
    torch.manual_seed(0)
    model = GPT(config["vocab"], config["context"], config["layers"], config["heads"], config["embd"]).double()
    names = [name for name, _ in model.named_parameters()]
    state = {name: torch.from_numpy(inputs[name].astype(np.float64)) for name in names}
    model.load_state_dict(state, strict=True)
    ids = torch.from_numpy(inputs["ids"].copy())
    targets = torch.from_numpy(inputs["targets"].copy())

    failures = []
    worst = {}
    logits = model(ids)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
    loss.backward()
    worst["logits"] = compare("logits", outputs["logits"], logits, failures)
    worst["loss"] = compare("loss", outputs["loss"], loss.reshape(1), failures)
    grad_error = 0.0
    for name, parameter in model.named_parameters():
        grad_error = max(grad_error, compare(f"grad {name}", outputs["grad." + name], parameter.grad, failures))
    worst["gradients"] = grad_error

    for muon in (False, True):
        if muon:
            model.load_state_dict(state, strict=True)
        matrices = block_matrices(model) if muon else []
        by_muon = Muon(matrices, 0.95, adam["weight_decay"])
        by_adam = [p for p in model.parameters() if all(p is not q for q in matrices)]
        decay = [p for p in by_adam if p.dim() >= 2]
        no_decay = [p for p in by_adam if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": adam["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
            lr=adam["lr"], betas=(adam["beta1"], adam["beta2"]), eps=adam["eps"])
        for step in range(adam["steps"]):
            if step > 0 or muon:
                model.zero_grad()
                logits = model(ids)
                F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1)).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), adam["clip"])
            optimizer.step()
            by_muon.step(adam["lr"])
        key, what = ("muon.", "Muon") if muon else ("after.", "AdamW")
        after_error = 0.0
        for name, parameter in model.named_parameters():
            after_error = max(after_error, compare(f"after 3 {what} steps {name}", outputs[key + name], parameter, failures))
        worst[f"weights after 3 {what} steps"] = after_error

    for what, error in worst.items():
        print(f"golden: {what}: worst relative error {error:.2e}")
    if failures:
        for failure in failures:
            print("golden MISMATCH:", failure)
        print(f"0 passed, 1 failed")
        return 1
    print(f"golden: gen matches PyTorch {torch.__version__} within {TOLERANCE} on {len(names)} weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
