#!/usr/bin/env python3
"""PyTorch reference of Colloquy's ppo-kl loop on TeacherStudent-v0, for bench/train.ts.

The same work per agent step as agents/rl/ppo-kl.ts + rollout.ts + env/teacher-student.ts, written
the way one would in PyTorch: one batched, KV-cached step of the policy and of the base model per
env step across all dialogs (torch.inference_mode), students sampled batched across the dialogs that
hand over in the same step, and the PPO update on the top `trainLayers` blocks with the frozen trunk
computed once per update.

- Model: the Colloquy checkpoint itself (model.json + weights.bin, float32, manifest order), the
  architecture of models/lm.ts (token + learned/sinusoidal positions, pre-LN blocks, causal
  attention, ReLU MLP, final LN, tied output); linear weights are stored [in, out].
- Env (TeacherStudent-v0, token mode): the prompt's token ids (from the TS side's tokenizer); one
  agent token per step; on the student marker the student (the base model at the env's temperature)
  samples up to min(maxStudentTokens, room) tokens until the teacher marker or end of text; a reply
  cut by maxStudentTokens with room left gets the teacher marker; the agent's end of text ends the
  dialog, the student's too; truncation at maxTokens. Same-step autoreset: a finished dialog starts
  again from the prompt at once, dialogs still running carry over to the next update.
- Reward: a stub — the share of the reply's tokens with an even id — of ~zero cost. VADER is NOT
  modelled (bench/train.ts measures the cost of Colloquy's reward beside it).
- Rollout: per step, the policy's and the base model's next-token log-probabilities (a fresh
  policy cache at every update, as LmPolicy.begin does; the base cache lives across updates),
  the action sampled from the policy at temperature 1, its log-probabilities under both and the
  exact KL.
- Update (ppo-kl): k1 (or k3) per-token KL penalty with β, adaptive β (Ziegler et al.); values from
  a linear head on the final hidden state; GAE over tokens with γ at turn ends; whitened advantages;
  `epochs` × `minibatches` (split by episodes) clipped-surrogate + clipped value loss steps; global
  gradient-norm clipping; Adam.

  python bench/reference/rl_reference.py settings.json
prints one JSON line: torch version, threads, per-update figures (agent steps, seconds split into
agent forward / env / update, RSS) and totals.
"""
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F


def rss_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def load_checkpoint(folder):
    with open(os.path.join(folder, 'model.json')) as f:
        mj = json.load(f)
    raw = open(os.path.join(folder, mj.get('weightsFile', 'weights.bin')), 'rb').read()
    w = {}
    for e in mj['weights']:
        t = torch.frombuffer(bytearray(raw[e['offset']:e['offset'] + 4 * e['length']]), dtype=torch.float32)
        w[e['name']] = t.view(*e['shape']).clone()
    return mj['config'], w


def sinusoids(C, d):
    p = torch.arange(C).unsqueeze(1) / torch.pow(10000, torch.arange(0, d, 2) / d)
    pe = torch.zeros(C, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(p), torch.cos(p)
    return pe


class LM:
    """models/lm.ts's transformer on plain tensors. Linear weights kept [out, in] for F.linear."""

    def __init__(self, c, w):
        self.c = c
        self.d, self.H, self.L, self.C = c['dModel'], c['nHeads'], c['nLayers'], c['contextLength']
        self.hd = self.d // self.H
        self.eps = c.get('layerNormEps', 1e-5)
        self.tok = w['tok_emb']
        self.pos = w['pos_emb'] if c.get('positional', 'learned') == 'learned' else sinusoids(self.C, self.d)
        self.blocks = []
        for l in range(self.L):
            g = lambda k: w[f'h{l}.{k}']
            self.blocks.append({
                'ln1.g': g('ln1.g'), 'ln1.b': g('ln1.b'), 'qkv.w': g('attn.qkv.w').t().contiguous(), 'qkv.b': g('attn.qkv.b'),
                'out.w': g('attn.out.w').t().contiguous(), 'out.b': g('attn.out.b'), 'ln2.g': g('ln2.g'), 'ln2.b': g('ln2.b'),
                'fc.w': g('mlp.fc.w').t().contiguous(), 'fc.b': g('mlp.fc.b'), 'proj.w': g('mlp.proj.w').t().contiguous(), 'proj.b': g('mlp.proj.b'),
            })
        self.lnf = (w['ln_f.g'], w['ln_f.b'])
        self.out = w['tok_emb'] if c.get('tieEmbeddings', True) else w['out_emb']

    def clone(self):
        other = LM.__new__(LM)
        other.__dict__.update(self.__dict__)
        other.tok, other.pos = self.tok.clone(), self.pos.clone()
        other.out = other.tok if self.out is self.tok else self.out.clone()
        other.blocks = [{k: v.clone() for k, v in b.items()} for b in self.blocks]
        other.lnf = tuple(t.clone() for t in self.lnf)
        return other

    def qkv(self, b, x):
        n, T, d = x.shape
        h = F.layer_norm(x, (d,), b['ln1.g'], b['ln1.b'], self.eps)
        q, k, v = F.linear(h, b['qkv.w'], b['qkv.b']).view(n, T, 3, self.H, self.hd).permute(2, 0, 3, 1, 4)
        return q, k, v

    def rest(self, b, x, o):
        n, T, d = x.shape
        x = x + F.linear(o.transpose(1, 2).reshape(n, T, d), b['out.w'], b['out.b'])
        h = F.layer_norm(x, (d,), b['ln2.g'], b['ln2.b'], self.eps)
        return x + F.linear(F.relu(F.linear(h, b['fc.w'], b['fc.b'])), b['proj.w'], b['proj.b'])

    def final(self, x):
        return F.layer_norm(x, (self.d,), self.lnf[0], self.lnf[1], self.eps)

    # ---- full forward (training), right-padded rows from position 0
    def embed(self, ids):
        return self.tok[ids] + self.pos[:ids.shape[1]]

    def blocks_range(self, x, start, stop):
        for l in range(start, stop):
            b = self.blocks[l]
            q, k, v = self.qkv(b, x)
            x = self.rest(b, x, F.scaled_dot_product_attention(q, k, v, is_causal=True))
        return x

    # ---- KV-cached forward
    def new_cache(self, n, S):
        return [(torch.zeros(n, self.H, S, self.hd), torch.zeros(n, self.H, S, self.hd)) for _ in range(self.L)]

    def step(self, cache, tokens, pos):
        """One token for every row of the cache: tokens [N], pos [N] → final hidden [N, d]."""
        N = tokens.shape[0]
        ar = torch.arange(N)
        x = (self.tok[tokens] + self.pos[pos]).unsqueeze(1)
        S = int(pos.max()) + 1
        mask = (torch.arange(S).unsqueeze(0) <= pos.unsqueeze(1)).view(N, 1, 1, S)
        for l, b in enumerate(self.blocks):
            q, k, v = self.qkv(b, x)
            K, V = cache[l]
            K[ar, :, pos] = k[:, :, 0]
            V[ar, :, pos] = v[:, :, 0]
            x = self.rest(b, x, F.scaled_dot_product_attention(q, K[:, :, :S], V[:, :, :S], attn_mask=mask))
        return self.final(x[:, 0])

    def chunk(self, cache, rows, tokens, pos):
        """Right-padded tokens [n, T] for cache rows `rows` from positions pos [n] (no output)."""
        n, T = tokens.shape
        P = pos.unsqueeze(1) + torch.arange(T).unsqueeze(0)
        x = self.tok[tokens] + self.pos[P.clamp(max=self.C - 1)]
        S = int(P.max()) + 1
        mask = (torch.arange(S).view(1, 1, S) <= P.unsqueeze(2)).unsqueeze(1)
        r = rows.unsqueeze(1)
        for l, b in enumerate(self.blocks):
            q, k, v = self.qkv(b, x)
            K, V = cache[l]
            K[r, :, P] = k.permute(0, 2, 1, 3)
            V[r, :, P] = v.permute(0, 2, 1, 3)
            x = self.rest(b, x, F.scaled_dot_product_attention(q, K[rows, :, :S], V[rows, :, :S], attn_mask=mask))


def pad_rows(seqs, pad):
    T = max(len(s) for s in seqs)
    out = torch.full((len(seqs), T), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return out


class Feeder:
    """Tokens not yet in a model's cache, per row; brings every row up to date and returns the next-token log-probs."""

    def __init__(self, model, n, S, pad):
        self.m, self.n, self.S, self.pad = model, n, S, pad
        self.cache = model.new_cache(n, S)
        self.pend = [[] for _ in range(n)]
        self.fed = [0] * n

    def reset_row(self, r, tokens):
        self.pend[r] = list(tokens)
        self.fed[r] = 0

    def next_logp(self):
        long = [r for r in range(self.n) if len(self.pend[r]) > 1]
        if long:
            self.m.chunk(self.cache, torch.tensor(long), pad_rows([self.pend[r][:-1] for r in long], self.pad), torch.tensor([self.fed[r] for r in long]))
        last = torch.tensor([p[-1] for p in self.pend])
        pos = torch.tensor([self.fed[r] + len(self.pend[r]) - 1 for r in range(self.n)])
        h = self.m.step(self.cache, last, pos)
        for r in range(self.n):
            self.fed[r] += len(self.pend[r])
            self.pend[r] = []
        return torch.log_softmax(h @ self.m.out.t(), -1)


def sample_students(model, contexts, limits, temperature, stops, slack, gen):
    """Batched, KV-cached student replies (rows stop at a stop token or their limit)."""
    n = len(contexts)
    lens = torch.tensor([len(c) for c in contexts])
    cache = model.new_cache(n, int(lens.max()) + max(limits) + slack)
    if int(lens.min()) > 1:
        model.chunk(cache, torch.arange(n), pad_rows([c[:-1] for c in contexts], 0), torch.zeros(n, dtype=torch.long))
    tok = torch.tensor([c[-1] for c in contexts])
    pos = lens - 1
    out = [[] for _ in range(n)]
    active = [True] * n
    stop = torch.tensor(stops)
    while any(active):
        h = model.step(cache, tok, pos)
        probs = torch.softmax((h @ model.out.t()) / temperature, -1)
        tok = torch.multinomial(probs, 1, generator=gen)[:, 0]
        pos = (pos + 1).clamp(max=model.C - 1)  # rows already finished stay in the batch; their positions stop at the context
        t = tok.tolist()
        ended = torch.isin(tok, stop).tolist()
        for i in range(n):
            if active[i]:
                out[i].append(t[i])
                if ended[i] or len(out[i]) >= limits[i]:
                    active[i] = False
    return out


def new_episode(prompt):
    return {'tokens': list(prompt), 'pos': [], 'actions': [], 'logp': [], 'blogp': [], 'kl': [], 'rewards': [], 'turnEnds': [], 'truncated': False}


def gae(rewards, values, turn_ends, gamma, lam):
    n = len(rewards)
    adv, ret = [0.0] * n, [0.0] * n
    next_v, next_a = 0.0, 0.0
    for t in range(n - 1, -1, -1):
        g = gamma if turn_ends[t] else 1.0
        delta = rewards[t] + g * next_v - values[t]
        next_a = delta + g * lam * next_a
        adv[t] = next_a
        ret[t] = next_a + values[t]
        next_v = values[t]
    return adv, ret


def main():
    s = json.load(open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin)
    torch.set_num_threads(int(s.get('threads', 1)))
    torch.manual_seed(s.get('seed', 1))
    random.seed(s.get('seed', 1))
    gen = torch.Generator().manual_seed(s.get('seed', 1))
    e, p = s['env'], s['ppo']
    sp = e['special']
    N, prompt, maxT = s['numEnvs'], e['promptIds'], e['maxTokens']
    slack = e['maxStudentTokens'] + 8

    cfg, w = load_checkpoint(s['modelDir'])
    base = LM(cfg, w)  # the base policy, the KL reference and the student
    policy = base.clone()
    L, d = policy.L, policy.d
    train_from = 0 if p['trainLayers'] == 'all' else max(0, L - int(p['trainLayers']))
    params = [t for b in policy.blocks[train_from:] for t in b.values()] + list(policy.lnf)
    if p['trainLayers'] == 'all':
        params += [policy.tok, policy.pos] if cfg.get('positional', 'learned') == 'learned' else [policy.tok]
    value_w, value_b = torch.zeros(d, 1), torch.zeros(1)
    params += [value_w, value_b]
    for t in params:
        t.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=p['learningRate'], betas=(0.9, 0.999), eps=p['adamEps'])
    beta = p['kl']['beta']

    t_start, c_start = time.perf_counter(), time.process_time()
    turns = finished = ep_tokens = agent_tokens = reply_tokens = replies_n = 0
    base_feed = Feeder(base, N, maxT + slack, sp['pad'])
    open_eps = [new_episode(prompt) for _ in range(N)]
    for r in range(N):
        base_feed.reset_row(r, prompt)
    updates = []
    total_steps = 0
    for update in range(s['updates']):
        t0 = time.perf_counter()
        fwd = env_s = 0.0
        steps = 0
        done = []
        with torch.inference_mode():
            pol_feed = Feeder(policy, N, maxT + slack, sp['pad'])
            for r in range(N):
                pol_feed.reset_row(r, open_eps[r]['tokens'])
            while len(done) < s['episodesPerUpdate']:
                ta = time.perf_counter()
                lp = pol_feed.next_logp()
                bp = base_feed.next_logp()
                a = torch.multinomial(lp.exp(), 1, generator=gen)
                lpa, bpa = lp.gather(1, a)[:, 0].tolist(), bp.gather(1, a)[:, 0].tolist()
                kl = (lp.exp() * (lp - bp)).sum(-1).tolist()
                acts = a[:, 0].tolist()
                steps += N
                tb = time.perf_counter()
                fwd += tb - ta
                # ---- env step
                reply_rows = []
                for r in range(N):
                    ep, act = open_eps[r], acts[r]
                    ep['pos'].append(len(ep['tokens']))
                    ep['tokens'].append(act)
                    ep['actions'].append(act); ep['logp'].append(lpa[r]); ep['blogp'].append(bpa[r]); ep['kl'].append(kl[r])
                    ep['rewards'].append(0.0)
                    ep['turnEnds'].append(act in (sp['student'], sp['endOfText']))
                    if act == sp['student'] and len(ep['tokens']) < maxT:
                        reply_rows.append(r)
                replies = {}
                if reply_rows:
                    ctxs = [open_eps[r]['tokens'] for r in reply_rows]
                    limits = [min(maxT - len(c), e['maxStudentTokens']) for c in ctxs]
                    for r, rep in zip(reply_rows, sample_students(base, ctxs, limits, e['studentTemperature'], [sp['teacher'], sp['endOfText']], slack, gen)):
                        replies[r] = rep
                        replies_n += 1
                        reply_tokens += len([t for t in rep if t not in (sp['teacher'], sp['endOfText'])])
                for r in range(N):
                    ep, act = open_eps[r], acts[r]
                    added = [act]
                    over = False
                    if act == sp['endOfText']:
                        over = True
                    elif r in replies:
                        rep = replies[r]
                        last = rep[-1]
                        ep['tokens'].extend(rep)
                        added += rep
                        if last not in (sp['teacher'], sp['endOfText']):
                            if len(ep['tokens']) >= maxT:
                                ep['truncated'] = over = True
                            else:
                                ep['tokens'].append(sp['teacher'])
                                added.append(sp['teacher'])
                        if not over:
                            body = [t for t in rep if t not in (sp['teacher'], sp['endOfText'])]
                            ep['rewards'][-1] = sum(1 for t in body if t % 2 == 0) / max(1, len(body))  # stub reward
                            over = last == sp['endOfText'] or len(ep['tokens']) >= maxT
                            ep['truncated'] = last != sp['endOfText'] and len(ep['tokens']) >= maxT
                    elif len(ep['tokens']) >= maxT:
                        ep['truncated'] = over = True
                    if over:
                        turns += sum(1 for t in ep['turnEnds'] if t)
                        finished += 1
                        ep_tokens += len(ep['tokens'])
                        agent_tokens += len(ep['actions'])
                        done.append(ep)
                        open_eps[r] = new_episode(prompt)
                        base_feed.reset_row(r, prompt)
                        pol_feed.reset_row(r, prompt)
                    else:
                        base_feed.pend[r].extend(added)
                        pol_feed.pend[r].extend(added)
                env_s += time.perf_counter() - tb
        t_update = time.perf_counter()

        # ---- KL-penalised rewards, old values, GAE
        est = p['kl']['estimator']
        def penalty(lp, bp, exact):
            if est == 'k1':
                return lp - bp
            if est == 'k3':
                r = math.exp(bp - lp)
                return (r - 1) - math.log(r)
            return exact
        pens = [[penalty(a, b, x) for a, b, x in zip(ep['logp'], ep['blogp'], ep['kl'])] for ep in done]
        ep_kl = [sum(pp) for pp in pens]
        B = len(done)
        ids = pad_rows([ep['tokens'] for ep in done], sp['pad'])
        T = ids.shape[1]
        act_rows = torch.tensor([b * T + q - 1 for b, ep in enumerate(done) for q in ep['pos']])
        actions = torch.tensor([a for ep in done for a in ep['actions']])
        with torch.no_grad():
            trunk = policy.blocks_range(policy.embed(ids), 0, train_from)
            hfull = policy.final(policy.blocks_range(trunk, train_from, L)).reshape(B * T, d)
            values = (hfull[act_rows] @ value_w + value_b)[:, 0].tolist()
        adv, ret, old_v = [], [], []
        k = 0
        for b, ep in enumerate(done):
            n = len(ep['actions'])
            v = values[k:k + n]
            rw = [r - beta * q for r, q in zip(ep['rewards'], pens[b])]
            a_, r_ = gae(rw, v, ep['turnEnds'], p['gamma'], p['lambda'])
            adv += a_; ret += r_; old_v += v
            k += n
        A_all = torch.tensor(adv)
        if p.get('whitenAdvantages', True):
            sd = A_all.std(unbiased=False)
            A_all = (A_all - A_all.mean()) / sd if sd > 1e-8 else torch.zeros_like(A_all)
        R_all, V0_all = torch.tensor(ret), torch.tensor(old_v)
        old_lp_all = torch.tensor([x for ep in done for x in ep['logp']])
        offsets = [0]
        for ep in done:
            offsets.append(offsets[-1] + len(ep['actions']))

        # ---- PPO epochs over minibatches of episodes
        clip, vclip = p['clip'], p['valueClip']
        for _ in range(p['epochs']):
            order = list(range(B))
            random.shuffle(order)
            for m in range(p['minibatches']):
                idx = [order[i] for i in range(B) if i % p['minibatches'] == m]
                if not idx:
                    continue
                Tm = max(len(done[i]['tokens']) for i in idx)
                x0 = trunk[idx, :Tm]
                flat = torch.cat([torch.arange(offsets[i], offsets[i + 1]) for i in idx])
                rows = torch.tensor([j * Tm + q - 1 for j, i in enumerate(idx) for q in done[i]['pos']])
                if p['trainLayers'] == 'all':
                    x0 = policy.embed(ids[idx, :Tm])
                hs = policy.final(policy.blocks_range(x0, train_from, L)).reshape(len(idx) * Tm, d)[rows]
                logits_lp = torch.log_softmax(hs @ policy.out.t(), -1)
                logp = logits_lp.gather(1, actions[flat].unsqueeze(1))[:, 0]
                ent = -(logits_lp.exp() * logits_lp).sum(-1)
                vals = (hs @ value_w + value_b)[:, 0]
                A, R, V0, old = A_all[flat], R_all[flat], V0_all[flat], old_lp_all[flat]
                ratio = (logp - old).exp()
                pg = torch.max(-A * ratio, -A * ratio.clamp(1 - clip, 1 + clip)).mean()
                vu = (vals - R) ** 2
                vc = (V0 + (vals - V0).clamp(-vclip, vclip) - R) ** 2 if vclip > 0 else vu
                vf = 0.5 * torch.max(vu, vc).mean()
                loss = pg + p['vfCoef'] * vf - p['entCoef'] * ent.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if p['maxGradNorm'] > 0:
                    torch.nn.utils.clip_grad_norm_(params, p['maxGradNorm'])
                opt.step()

        # ---- adaptive β
        mean_kl = sum(ep_kl) / max(1, len(ep_kl))
        if p['kl'].get('target') is not None and math.isfinite(mean_kl):
            err = max(-0.2, min(0.2, mean_kl / p['kl']['target'] - 1))
            beta *= 1 + err * len(done) / p['kl']['horizon']
        t_end = time.perf_counter()
        total_steps += steps
        updates.append({
            'agentSteps': steps, 'episodes': len(done), 'rolloutSeconds': t_update - t0, 'agentForwardSeconds': fwd, 'envSeconds': env_s,
            'updateSeconds': t_end - t_update, 'seconds': t_end - t0, 'rss': rss_bytes(), 'meanKl': mean_kl, 'beta': beta,
        })
    wall, cpu = time.perf_counter() - t_start, time.process_time() - c_start
    print(json.dumps({
        'torch': torch.__version__, 'threads': torch.get_num_threads(), 'params': sum(t.numel() for t in w.values()),
        'numEnvs': N, 'updates': updates, 'agentSteps': total_steps, 'seconds': wall, 'cpuSeconds': cpu, 'stepsPerSec': total_steps / wall,
        'turnsPerDialog': turns / max(1, finished), 'tokensPerDialog': ep_tokens / max(1, finished),
        'agentTokensPerDialog': agent_tokens / max(1, finished), 'tokensPerReply': reply_tokens / max(1, replies_n),
        'reward': 'stub (share of even token ids in the reply; VADER not modelled)',
    }))


if __name__ == '__main__':
    main()
