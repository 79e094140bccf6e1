"""Generation speed in PyTorch from the same checkpoint as gsample, for bench/gsample.sh.
The model is the one the golden test builds (tests/golden/check_gpt.py), loaded with the
checkpoint's float32 weights. Two generators, both under torch.no_grad(), temperature 1 and
torch.multinomial:
  cached    a KV cache per layer, one new token per forward; when the context outgrows the window
            the cache is rebuilt from the last half window in one forward (as gsample does, which
            rebuilds it token by token), since absolute position embeddings rule out sliding it;
  uncached  nanoGPT's generate(): the whole window (the last `context` tokens) every token, the
            head on the last position only.
Prints "cached TOKENS_PER_S" and "uncached TOKENS_PER_S", the best of REPEAT runs at each of the
thread counts in TORCH_THREADS (default "1 2"), timing the generation loop alone (not the import
of torch or the loading), with the thread count that gave it.
Usage: /usr/bin/python3 gsample_torch.py CHECKPOINT TOKENS REPEAT
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from check_gpt import GPT, read_safetensors  # noqa: E402


def load(path):
    tensors, meta = read_safetensors(path)
    config = json.loads(meta["config"])
    model = GPT(config["vocab"], config["context"], config["layers"], config["heads"], config["embd"])
    names = [name for name, _ in model.named_parameters()]
    model.load_state_dict({name: torch.from_numpy(tensors[name].copy()) for name in names}, strict=True)
    model.eval()
    return model, config


def block_step(block, x, cache):
    """One block on the new positions x [1,T,C], appending their keys and values to cache
    (a [k, v] pair of [1,NH,t,HS] tensors, or Nones); queries attend to the cache and themselves."""
    B, T, C = x.shape
    NH = block.heads
    HS = C // NH
    q, k, v = block.attn.c_attn(block.ln_1(x)).split(C, dim=2)
    q, k, v = (t.view(B, T, NH, HS).transpose(1, 2) for t in (q, k, v))
    if cache[0] is not None:
        k = torch.cat((cache[0], k), dim=2)
        v = torch.cat((cache[1], v), dim=2)
    cache[0], cache[1] = k, v
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(HS)
    if T > 1:  # a prefill: causal within the new positions (the cache is empty then)
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        scores = scores.masked_fill(~mask, float("-inf"))
    y = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).contiguous().view(B, T, C)
    x = x + block.attn.c_proj(y)
    return x + block.mlp.c_proj(F.gelu(block.mlp.c_fc(block.ln_2(x)), approximate="tanh"))


def last_logits(model, x):
    return model.transformer.ln_f(x[:, -1, :]) @ model.transformer.wte.weight.T


def generate_cached(model, context, ids, n, generator):
    tr = model.transformer
    caches = [[None, None] for _ in tr.h]
    start = 0  # position 0 of the cache is ids[start]
    length = 0  # tokens in the cache
    for _ in range(n):
        if len(ids) - start > context:  # the window is full: restart from its last half
            start = len(ids) - max(1, context // 2)
            caches = [[None, None] for _ in tr.h]
            length = 0
        new = torch.tensor([ids[start + length :]])
        T = new.shape[1]
        x = tr.wte(new) + tr.wpe(torch.arange(length, length + T))
        for block, cache in zip(tr.h, caches):
            x = block_step(block, x, cache)
        length += T
        probs = F.softmax(last_logits(model, x), dim=-1)
        ids.append(int(torch.multinomial(probs, 1, generator=generator)))
    return ids


def generate_uncached(model, context, ids, n, generator):
    tr = model.transformer
    for _ in range(n):
        window = torch.tensor([ids[-context:]])
        T = window.shape[1]
        x = tr.wte(window) + tr.wpe(torch.arange(T))
        for block in tr.h:
            x = block(x)
        probs = F.softmax(last_logits(model, x), dim=-1)
        ids.append(int(torch.multinomial(probs, 1, generator=generator)))
    return ids


def main():
    path, tokens, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    model, config = load(path)
    threads = [int(t) for t in os.environ.get("TORCH_THREADS", "1 2").split()]
    prompt = [0]  # one token, as gsample's default prompt (a newline)
    for name, generate in (("cached", generate_cached), ("uncached", generate_uncached)):
        best = (0.0, 0)
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            with torch.no_grad():
                generate(model, config["context"], list(prompt), 20, torch.Generator().manual_seed(1))  # warm up
                for r in range(repeat):
                    generator = torch.Generator().manual_seed(1 + r)
                    begin = time.perf_counter()
                    out = generate(model, config["context"], list(prompt), tokens, generator)
                    elapsed = time.perf_counter() - begin
                    assert len(out) == len(prompt) + tokens
                    best = max(best, (tokens / elapsed, n_threads))
        print(f"{name} {best[0]:.1f} {best[1]}")


if __name__ == "__main__":
    main()
