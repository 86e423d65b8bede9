/**
 * report.html of the silence study (agents/eval/silence.ts): the paper's claims with their
 * verdicts, the ECDF of per-dialog empty-turn shares, where in the episode the KL is spent, and
 * every setting over seeds. Figures are Vega-Lite rendered to inline SVG in Node (no network).
 */
import type * as vl from 'vega-lite';
import type { SilenceResults } from '../eval/silence.ts';
import { KL_PROFILE_BINS } from '../eval/silence.ts';
import { CONFIG, renderSvg } from './figures.ts';
import { CSS, escapeHtml, iv } from './report.ts';

function ecdfSpec(r: SilenceResults): vl.TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CONFIG,
    title: 'ECDF of the per-dialog share of empty teacher turns (no word before the marker)',
    data: { values: r.ecdf },
    facet: { column: { field: 'episodeTokens', type: 'ordinal', title: 'episode length (tokens)' } },
    spec: {
      width: 300, height: 240,
      mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.5 },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: 'share of empty teacher turns in a dialog', scale: { domain: [0, 1] } },
        y: { field: 'p', type: 'quantitative', title: 'fraction of dialogs ≤ x', scale: { domain: [0, 1] } },
        color: { field: 'agent', type: 'nominal', title: 'agent' },
      },
    },
  } as vl.TopLevelSpec;
}

function profileSpec(r: SilenceResults): vl.TopLevelSpec {
  const values = [
    ...r.settings.flatMap(s => s.klProfile.map((share, k) => ({ agent: s.name, episodeTokens: s.episodeTokens, bin: (k + 0.5) / KL_PROFILE_BINS, share }))),
  ].filter(v => Number.isFinite(v.share));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CONFIG,
    title: 'Where the KL is spent: share of the KL to the base in each tenth of the agent\'s tokens',
    data: { values },
    facet: { column: { field: 'episodeTokens', type: 'ordinal', title: 'episode length (tokens)' } },
    spec: {
      width: 300, height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'bin', type: 'quantitative', title: 'position among the agent\'s tokens (0 = first, 1 = last)', scale: { domain: [0, 1] } },
        y: { field: 'share', type: 'quantitative', title: 'share of the episode\'s KL' },
        color: { field: 'agent', type: 'nominal', title: 'setting' },
      },
    },
  } as vl.TopLevelSpec;
}

export async function renderSilenceReport(r: SilenceResults): Promise<string> {
  const c = r.config;
  const claims = r.claims.map(x => `<tr><td>${escapeHtml(x.claim)}</td><td>${escapeHtml(x.comparison)}</td><td>${iv(x.a, 3)}</td><td>${typeof x.b === 'number' ? x.b : iv(x.b, 3)}</td><td class="${x.verdict === 'reproduced' ? 'ok' : x.verdict === 'contradicted' ? 'warn' : 'na'}">${x.verdict}</td></tr>`).join('\n');
  const baseRows = r.base.map(b => `<tr><td class="agent">base T=${b.episodeTokens}</td><td>–</td>${[b.overDialogs.emptyTurnShare, b.overDialogs.shortTurnShare].map(x => `<td>${iv(x, 3)}</td>`).join('')}<td>${iv(b.overDialogs.klPerEpisode.base, 2)}</td><td>–</td><td>–</td><td>${iv(b.overDialogs.repeatedNgramRate['2'], 3)}</td><td>${iv(b.overDialogs.reward, 2)}</td></tr>`).join('\n');
  const settingRows = r.settings.map(s => {
    const seeds = s.perSeed.map(p => `<tr><td></td><td>${p.seed}</td><td>${iv(p.emptyShare, 3)}</td><td></td><td>${iv(p.klPerEpisode, 2)}</td><td></td><td></td><td></td><td></td></tr>`).join('');
    const o = s.overSeeds;
    return `<tr class="over"><td class="agent">${escapeHtml(s.name)}</td><td><b>over ${o.seeds} seeds</b>${o.seeds < 3 ? ' <span class="na">(fewer than 3)</span>' : ''}</td><td><b>${iv(o.emptyTurnShare, 3)}</b></td><td>${iv(o.shortTurnShare, 3)}</td><td>${iv(o.klPerEpisode.base, 2)}</td><td>${iv(s.klPerResponse, 3)}</td><td>${iv(s.earlyKlShare, 3)}</td><td>${iv(o.repeatedNgramRate['2'], 3)}</td><td>${iv(o.reward, 2)}</td></tr>${seeds}`;
  }).join('\n');
  const stageRows = Object.entries(r.stages).map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${v.reused ? 'reused' : `${(v.seconds / 60).toFixed(1)} min`}</td><td>${(v.cpuSeconds / 60).toFixed(1)} min</td></tr>`).join('');
  const total = Object.values(r.stages).reduce((a, v) => a + v.seconds, 0);
  const [ecdfSvg, profileSvg] = await Promise.all([renderSvg(ecdfSpec(r)), renderSvg(profileSpec(r))]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title><style>${CSS}</style></head><body>
<h1>${escapeHtml(r.title)}</h1>
<p>kl-budget (Cohen, Hutter, Bengio &amp; Russell 2024) on <code>${escapeHtml(c.env.id)}</code> with kwargs <code>${escapeHtml(JSON.stringify(c.env.kwargs))}</code>, base model <code>${escapeHtml(c.base)}</code>; budgets ${c.budgets.join(', ')} nats per episode; episodes of ${c.episodeTokens.join(', ')} tokens; training seeds ${c.seeds.join(', ')}; kl-budget settings <code>${escapeHtml(JSON.stringify(c.klBudget))}</code>; ${c.eval.episodes} evaluation dialogs per agent (env seeds ${c.eval.seed}…${c.eval.seed + c.eval.episodes - 1}, the same for every agent); backend ${escapeHtml(r.backend ?? '?')}; created ${escapeHtml(r.created)}; ${(total / 60).toFixed(1)} min of stages run now (load average at the end ${r.loadAverage.map(x => x.toFixed(1)).join(', ')}).</p>

<h2>The paper's claims</h2>
<p>Intervals are 95% over seeds: seeds resampled, then each drawn seed's dialogs (the base policy: over dialogs). A claim is <b>reproduced</b> when A's interval lies wholly above B's (or the threshold), <b>contradicted</b> when wholly below, <b>undecided</b> otherwise. <b>Empty</b> means no word (letter or digit) before the marker that ends the turn; dialogs without a completed teacher turn have no share and are left out.</p>
<div class="scroll"><table class="metrics"><tr><th>claim</th><th>comparison</th><th>A</th><th>B</th><th>verdict</th></tr>
${claims}</table></div>

<h2>Empty teacher turns</h2>
<figure>${ecdfSvg}<figcaption>Per dialog, the share of the agent's completed teacher turns that are empty; each setting pools its seeds' dialogs. A curve that rises later (to the right) has more empty turns.</figcaption></figure>

<h2>Where the KL is spent</h2>
<figure>${profileSvg}<figcaption>The agent's tokens of each evaluation dialog in ten bins by order; the share of the dialog's exact KL to the base (Σ over its tokens of KL(π(·|s) ‖ base(·|s))) in each bin, pooled over seeds and dialogs. "Pays its KL early": more than half in the first five bins.</figcaption></figure>

<h2>Settings over seeds</h2>
<div class="scroll"><table class="metrics"><tr><th>agent</th><th>seed</th><th>empty share (no word)</th><th>short share (≤ 4 tokens)</th><th>KL/episode to base</th><th>KL per response</th><th>early KL share</th><th>repeated 2-gram rate</th><th>return</th></tr>
${baseRows}
${settingRows}</table></div>

<details><summary>Stages</summary><table><tr><th>stage</th><th>wall clock</th><th>CPU</th></tr>${stageRows}</table></details>
</body></html>
`;
}
