#!/usr/bin/env python3
"""PyTorch reference of Colloquy's base LM (models/lm.ts), for bench/lm.ts.

Same architecture: token + learned (or sinusoidal) position embeddings, pre-LN blocks with causal
multi-head attention (explicit q·kᵀ, mask, softmax, ·v) and a ReLU MLP, final LN, tied (or
separate) output projection; Adam. Reads the model/bench settings as JSON (a file argument or
stdin) and prints one JSON line with training tokens/s and KV-cached sampling tokens/s.

  .venv-bench/bin/python bench/reference/lm_reference.py settings.json   (torch 2.13, bench/reference/venv.ts)
settings: {"model": {vocabSize, dModel, nLayers, nHeads, dFF, contextLength, positional, tieEmbeddings,
           layerNormEps}, "batchSize", "seqLength", "trainSteps", "warmupSteps", "threads",
           "sampleBatches": [1, 16], "promptLength", "sampleTokens"}
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, h, ff, eps):
        super().__init__()
        self.h = h
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.fc = nn.Linear(d, ff)
        self.proj = nn.Linear(ff, d)

    def attend(self, q, k, v, mask):
        s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        if mask is not None:
            s = s + mask
        return torch.softmax(s, dim=-1) @ v

    def forward(self, x, mask, cache=None):
        B, T, d = x.shape
        hd = d // self.h
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (t.view(B, T, self.h, hd).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            if cache.get('k') is not None:
                k = torch.cat([cache['k'], k], dim=2)
                v = torch.cat([cache['v'], v], dim=2)
            cache['k'], cache['v'] = k, v
        o = self.attend(q, k, v, mask).transpose(1, 2).reshape(B, T, d)
        x = x + self.out(o)
        return x + self.proj(F.relu(self.fc(self.ln2(x))))


class LM(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, C = c['dModel'], c['contextLength']
        self.c = c
        self.tok = nn.Embedding(c['vocabSize'], d)
        if c.get('positional', 'learned') == 'learned':
            self.pos = nn.Parameter(torch.randn(C, d) * 0.02)
        else:
            p = torch.arange(C).unsqueeze(1) / torch.pow(10000, torch.arange(0, d, 2) / d)
            pe = torch.zeros(C, d)
            pe[:, 0::2], pe[:, 1::2] = torch.sin(p), torch.cos(p)
            self.register_buffer('pos', pe)
        self.blocks = nn.ModuleList(Block(d, c['nHeads'], c['dFF'], c.get('layerNormEps', 1e-5)) for _ in range(c['nLayers']))
        self.lnf = nn.LayerNorm(d, eps=c.get('layerNormEps', 1e-5))
        self.head = None if c.get('tieEmbeddings', True) else nn.Linear(d, c['vocabSize'], bias=False)

    def logits(self, h):
        return h @ self.tok.weight.t() if self.head is None else self.head(h)

    def forward(self, ids, start=0, caches=None):
        B, T = ids.shape
        x = self.tok(ids) + self.pos[start:start + T]
        if caches is None or T > 1:
            mask = torch.full((T, T), float('-inf')).triu(1)
            if start > 0:
                mask = torch.cat([torch.zeros(T, start), mask], dim=1)
        else:
            mask = None
        for i, b in enumerate(self.blocks):
            x = b(x, mask, None if caches is None else caches[i])
        return self.logits(self.lnf(x))


def main():
    settings = json.load(open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin)
    torch.set_num_threads(int(settings.get('threads', 2)))
    torch.manual_seed(0)
    c = settings['model']
    V, B, T = c['vocabSize'], settings['batchSize'], settings['seqLength']
    model = LM(c)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)

    def step():
        toks = torch.randint(0, V, (B, T + 1), generator=g)
        loss = F.cross_entropy(model(toks[:, :-1]).reshape(-1, V), toks[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(settings.get('warmupSteps', 2)):
        step()
    n = settings.get('trainSteps', 5)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    train_tps = n * B * T / (time.perf_counter() - t0)

    sample = {}
    P, N = settings.get('promptLength', 16), settings.get('sampleTokens', 64)
    with torch.inference_mode():
        for sb in settings.get('sampleBatches', [1, 16]):
            def run():
                caches = [dict() for _ in model.blocks]
                ids = torch.randint(0, V, (sb, P), generator=g)
                logits = model(ids, 0, caches)[:, -1]
                pos = P
                t0 = time.perf_counter()
                for _ in range(N):
                    nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=g)
                    logits = model(nxt, pos, caches)[:, -1]
                    pos += 1
                return time.perf_counter() - t0
            run()
            dt = min(run() for _ in range(2))
            sample[str(sb)] = sb * N / dt
    print(json.dumps({
        'torch': torch.__version__, 'threads': torch.get_num_threads(),
        'params': sum(p.numel() for p in model.parameters()),
        'trainTokensPerSec': train_tps, 'sampleTokensPerSec': sample,
    }))


if __name__ == '__main__':
    main()
