/**
 * report.html of the online-against-offline study (agents/eval/online-offline.ts): one figure —
 * both families' checkpoints on one KL axis, the proxy reward beside the gold reward — the claims
 * with their verdicts, and every point over seeds. Vega-Lite rendered to inline SVG (no network).
 */
import type * as vl from 'vega-lite';
import type { CurvePoint, OnlineOfflineResults } from '../eval/online-offline.ts';
import { CONFIG, renderSvg } from './figures.ts';
import { CSS, escapeHtml, iv } from './report.ts';

const FAMILY_ORDER = ['base', 'ppo-kl', 'kl-budget', 'batch-kl'];
const FAMILY_COLORS = ['#222222', '#1f77b4', '#d62728', '#2ca02c'];

/** The figure: per metric (proxy, gold) a panel of reward against KL per episode, each family a curve from the base point. */
export function curvesOverKlSpec(r: OnlineOfflineResults): vl.TopLevelSpec {
  const values = (['proxy', 'gold'] as const).flatMap(metric => {
    const row = (p: CurvePoint, family: string) => ({
      metric: metric === 'proxy' ? 'proxy reward (trained on)' : 'gold reward (never seen)', family, step: p.step,
      kl: p.kl.mean, klLo: p.kl.lo, klHi: p.kl.hi, y: p[metric].mean, yLo: p[metric].lo, yHi: p[metric].hi,
    });
    // Each family's curve starts at the base policy (step 0, KL 0).
    return ['ppo-kl', 'kl-budget', 'batch-kl'].flatMap(f => {
      const pts = r.points.filter(p => p.family === f);
      return pts.length ? [row(r.base, f), ...pts.map(p => row(p, f))] : [];
    });
  }).filter(v => Number.isFinite(v.y) && Number.isFinite(v.kl));
  const color = { field: 'family', type: 'nominal', title: 'family', scale: { domain: FAMILY_ORDER, range: FAMILY_COLORS } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CONFIG,
    title: 'Reward against KL to the base along training: online (ppo-kl, kl-budget) and offline (batch-kl); bars: 95% intervals over seeds',
    data: { values },
    facet: { column: { field: 'metric', type: 'nominal', title: null, sort: ['proxy reward (trained on)', 'gold reward (never seen)'] } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 330, height: 260,
      layer: [
        { mark: { type: 'line', opacity: 0.7 }, encoding: { x: { field: 'kl', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, color, order: { field: 'step', type: 'quantitative' } } },
        { mark: { type: 'rule', opacity: 0.4 }, encoding: { x: { field: 'klLo', type: 'quantitative' }, x2: { field: 'klHi' }, y: { field: 'y', type: 'quantitative' }, color } },
        { mark: { type: 'rule', opacity: 0.4 }, encoding: { y: { field: 'yLo', type: 'quantitative' }, y2: { field: 'yHi' }, x: { field: 'kl', type: 'quantitative' }, color } },
        {
          mark: { type: 'point', filled: true, size: 50 },
          encoding: {
            x: { field: 'kl', type: 'quantitative', title: 'KL to the base per episode (nats)', scale: { zero: true, nice: true } },
            y: { field: 'y', type: 'quantitative', title: 'return per episode', scale: { zero: false } },
            color, tooltip: [{ field: 'family' }, { field: 'step' }, { field: 'kl', format: '.2f' }, { field: 'y', format: '.3f' }],
          },
        },
      ],
    },
  } as vl.TopLevelSpec;
}

/** What reproduces, in a sentence per claim (counts of the comparisons' verdicts). */
export function claimSummary(r: OnlineOfflineResults): string[] {
  const groups = new Map<string, OnlineOfflineResults['claims']>();
  for (const x of r.claims) {
    const k = x.claim.startsWith('online') ? `${x.claim} — ${x.family} vs batch-kl` : `${x.claim} — ${x.family}`;
    groups.set(k, [...(groups.get(k) ?? []), x]);
  }
  return [...groups].map(([k, xs]) => {
    const n = (v: string) => xs.filter(x => x.verdict === v).length;
    const verdict = n('reproduced') === xs.length ? 'reproduced' : n('contradicted') === xs.length ? 'contradicted' : n('reproduced') > 0 && n('contradicted') === 0 ? 'partly reproduced' : n('contradicted') > 0 && n('reproduced') === 0 ? 'not reproduced' : 'undecided';
    return `${k}: ${verdict} (${n('reproduced')} of ${xs.length} comparisons reproduced, ${n('contradicted')} contradicted, ${n('undecided')} undecided)`;
  });
}

export async function renderOnlineOfflineReport(r: OnlineOfflineResults): Promise<string> {
  const c = r.config;
  const verdictClass = (v: string) => (v === 'reproduced' ? 'ok' : v === 'contradicted' ? 'warn' : 'na');
  const claims = r.claims.map(x => `<tr><td>${escapeHtml(x.claim)}</td><td>${escapeHtml(x.comparison)}</td><td>${iv(x.a, 3)}</td><td>${typeof x.b === 'number' ? x.b : iv(x.b, 3)}</td><td class="${verdictClass(x.verdict)}">${x.verdict}</td></tr>`).join('\n');
  const pointRow = (p: CurvePoint) => `<tr class="over"><td class="agent">${escapeHtml(p.family)}</td><td>${p.step}</td><td>${p.seeds.length ? `<b>over ${p.seeds.length} seeds</b> (${p.seeds.join(', ')})` : 'over dialogs'}</td><td>${iv(p.kl, 2)}</td><td>${iv(p.proxy, 3)}</td><td>${iv(p.gold, 3)}</td></tr>` +
    p.perSeed.filter(() => p.seeds.length > 0).map(s => `<tr><td></td><td></td><td>seed ${s.seed}</td><td>${s.kl.toFixed(2)}</td><td>${s.proxy.toFixed(3)}</td><td>${s.gold.toFixed(3)}</td></tr>`).join('');
  const stageRows = Object.entries(r.stages).map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${v.reused ? 'reused' : `${(v.seconds / 60).toFixed(1)} min`}</td><td>${(v.cpuSeconds / 60).toFixed(1)} min</td></tr>`).join('');
  const total = Object.values(r.stages).reduce((a, v) => a + v.seconds, 0);
  const svg = await renderSvg(curvesOverKlSpec(r));
  const settings = (o: Record<string, unknown>) => `<code>${escapeHtml(JSON.stringify(o))}</code>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title><style>${CSS}</style></head><body>
<h1>${escapeHtml(r.title)}</h1>
<p>On <code>${escapeHtml(c.env.id)}</code> with kwargs <code>${escapeHtml(JSON.stringify(c.env.kwargs))}</code> (the proxy: its reward, <code>${escapeHtml(String(c.env.kwargs.reward ?? 'cohen'))}</code>), episodes of ${c.episodeTokens} tokens, base model <code>${escapeHtml(c.base)}</code>; gold reward <code>${escapeHtml(c.gold)}</code> (scored on every reply, never trained on). Online: ppo-kl ${settings(c.ppoKl)} and kl-budget ${settings(c.klBudget)} over their shipped configs, ${c.numEnvs} dialogs per rollout. Offline: batch-kl ${settings(c.batchKl)} on ${r.logged.dialogs} logged dialogs of the base policy (env seeds ${c.logged.seed}…; their proxy return ${iv(r.logged.proxy, 3)}). Training seeds ${r.seeds.join(', ')}; every kept checkpoint evaluated on the same ${c.eval.episodes} dialogs (env seeds ${c.eval.seed}…${c.eval.seed + c.eval.episodes - 1}); backend ${escapeHtml(r.backend ?? '?')}; created ${escapeHtml(r.created)}; ${(total / 60).toFixed(1)} min of stages run now (load average at the end ${r.loadAverage.map(x => x.toFixed(1)).join(', ')}).</p>

<h2>What reproduces</h2>
<ul>${claimSummary(r).map(s => `<li>${escapeHtml(s)}</li>`).join('')}</ul>

<h2>Reward against KL</h2>
<figure>${svg}<figcaption>Each point is one checkpoint step of a family (its seeds' checkpoints at that step), at its mean KL to the base per episode (exact: Σ over the agent's tokens of KL(π(·|s) ‖ base(·|s))) and mean return per episode; bars are 95% intervals over seeds on both axes. Every curve starts at the base policy (KL 0). Left: the proxy reward the agents optimise; right: the gold reward none of them sees. Over-optimisation (Gao et al. 2023) shows as gold rising and then falling while the proxy keeps rising.</figcaption></figure>

<h2>The claims</h2>
<p>Intervals are 95% over seeds: seeds resampled, then each drawn seed's dialogs (the base policy: over dialogs). A comparison is <b>reproduced</b> when A's interval lies wholly above B's, <b>contradicted</b> when wholly below, <b>undecided</b> otherwise. Online and offline are compared at matched KL: each batch-kl point against the online family's point nearest in KL, matched only when their KL intervals overlap.</p>
<div class="scroll"><table class="metrics"><tr><th>claim</th><th>comparison</th><th>A</th><th>B</th><th>verdict</th></tr>
${claims}</table></div>

<h2>Points over seeds</h2>
<div class="scroll"><table class="metrics"><tr><th>family</th><th>step</th><th>seeds</th><th>KL/episode to base</th><th>proxy return</th><th>gold return</th></tr>
${pointRow(r.base)}
${r.points.map(pointRow).join('\n')}</table></div>

<details><summary>Stages</summary><table><tr><th>stage</th><th>wall clock</th><th>CPU</th></tr>${stageRows}</table></details>
</body></html>
`;
}
