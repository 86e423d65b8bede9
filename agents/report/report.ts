/**
 * report.html of an experiment (`colloquy compare`): one self-contained HTML file — figures as
 * inline SVG rendered by Vega-Lite in Node, tables, transcripts — readable offline, no scripts.
 *
 * Sections: setup (models, data, timing), the reward–KL frontier (KL to the imitator and to D on
 * separate axes), the ECDF of empty teacher turns, what Cohen et al. draw (per-token KL histogram,
 * KL on empty turns against the rest, per-episode KL against return), the learning curves, the
 * RL settings over their seeds (per-seed results, intervals over seeds), the table of every metric
 * with 95% bootstrap intervals over dialogs, and sample transcripts side by side (teacher text
 * written by the demonstrator on a help request is marked). Every turn share names its measure:
 * `empty` (no word before the marker) or `short` (≤ N content tokens).
 */
import type { ExperimentResults, AgentEntry } from '../eval/experiment.ts';
import type { Interval } from '../eval/stats.ts';
import { curvesSpec, emptyEcdfSpec, emptyKlSpec, frontierSpec, klHistogramSpec, klReturnSpec, renderSvg } from './figures.ts';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function iv(i: Interval | undefined | null, digits = 3): string {
  if (!i || i.mean === null || !Number.isFinite(i.mean)) return '<span class="na">–</span>';
  const f = (x: number | null) => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(digits));
  return `${f(i.mean)} <span class="ci">[${f(i.lo)}, ${f(i.hi)}]</span>`;
}

function metricsTable(agents: AgentEntry[]): string {
  const n = agents[0]?.summary.shortTurnTokens ?? 4;
  const cols: [string, (a: AgentEntry) => string][] = [
    ['reward', a => iv(a.summary.reward)],
    ['KL/episode to imitator', a => iv(a.summary.klPerEpisode.imitator, 2)],
    ['KL/token to imitator', a => iv(a.summary.klPerToken.imitator)],
    ['KL/episode to D', a => iv(a.summary.klPerEpisode.demonstrator, 2)],
    ['KL/token to D', a => iv(a.summary.klPerToken.demonstrator)],
    ['KL/token to conservative ref.', a => iv(a.summary.klPerToken.conservative)],
    ['perplexity under D', a => iv(a.summary.perplexity.demonstrator, 1)],
    ['empty-turn share (no word; per dialog)', a => iv(a.summary.emptyTurnShare, 2)],
    ['empty-turn share (no word; pooled)', a => iv(a.summary.emptyTurnSharePooled, 2)],
    [`short-turn share (≤ ${n} tokens; per dialog)`, a => iv(a.summary.shortTurnShare, 2)],
    [`short-turn share (≤ ${n} tokens; pooled)`, a => iv(a.summary.shortTurnSharePooled, 2)],
    ['KL to imitator per empty turn', a => iv(a.summary.klPerEmptyTurn?.imitator, 2)],
    ['KL to imitator per other turn', a => iv(a.summary.klPerOtherTurn?.imitator, 2)],
    ['share of KL to imitator on empty turns', a => iv(a.summary.klShareOnEmptyTurns?.imitator, 2)],
    ['repeated 1-gram rate', a => iv(a.summary.repeatedNgramRate?.['1'], 2)],
    ['repeated 2-gram rate', a => iv(a.summary.repeatedNgramRate?.['2'], 2)],
    ['repeated 3-gram rate', a => iv(a.summary.repeatedNgramRate?.['3'], 2)],
    ['help rate (per decision)', a => iv(a.summary.helpRate, 3)],
    ['help requests / dialog', a => iv(a.summary.helpRequestsPerDialog, 2)],
    ['tokens by D (share)', a => iv(a.summary.helpedTokenShare, 2)],
    ['teacher tokens / turn', a => iv(a.summary.teacherTurnTokens, 1)],
    ['student tokens / turn', a => iv(a.summary.studentTurnTokens, 1)],
    ['teacher turns / dialog', a => iv(a.summary.teacherTurnsPerDialog, 1)],
    ['distinct-1', a => a.summary.distinct1.toFixed(3)],
    ['distinct-2', a => a.summary.distinct2.toFixed(3)],
    ['student sentiment', a => iv(a.summary.studentSentiment, 2)],
    ['dialogs', a => String(a.summary.episodes)],
  ];
  const head = `<tr><th>agent</th>${cols.map(c => `<th>${escapeHtml(c[0])}</th>`).join('')}</tr>`;
  const body = agents.map(a => `<tr><td class="agent">${escapeHtml(a.name)}</td>${cols.map(c => `<td>${c[1](a)}</td>`).join('')}</tr>`).join('\n');
  return `<div class="scroll"><table class="metrics">${head}\n${body}</table></div>`;
}

/** Per RL setting: each seed's result (interval over its dialogs) and the interval over seeds (seeds resampled, then dialogs). */
function seedsTable(r: ExperimentResults): string {
  const settings = r.settings ?? [];
  if (!settings.length) return '<p class="na">No per-setting seed summary in this results.json (written by an older version).</p>';
  const byName = new Map(r.agents.map(a => [a.name, a]));
  const n = r.agents[0]?.summary.shortTurnTokens ?? 4;
  const cols: [string, (a: AgentEntry) => Interval | undefined, (o: ExperimentResults['settings'][number]['overSeeds']) => Interval | undefined, number][] = [
    ['reward', a => a.summary.reward, o => o.reward, 2],
    ['KL/episode to imitator', a => a.summary.klPerEpisode.imitator, o => o.klPerEpisode.imitator, 1],
    ['KL/token to imitator', a => a.summary.klPerToken.imitator, o => o.klPerToken.imitator, 3],
    ['KL/episode to D', a => a.summary.klPerEpisode.demonstrator, o => o.klPerEpisode.demonstrator, 1],
    ['empty-turn share (no word)', a => a.summary.emptyTurnShare, o => o.emptyTurnShare, 2],
    [`short-turn share (≤ ${n} tokens)`, a => a.summary.shortTurnShare, o => o.shortTurnShare, 2],
    ['repeated 2-gram rate', a => a.summary.repeatedNgramRate?.['2'], o => o.repeatedNgramRate['2'], 2],
  ];
  const head = `<tr><th>setting</th><th>seed</th>${cols.map(c => `<th>${escapeHtml(c[0])}</th>`).join('')}</tr>`;
  const body = settings.map(st => {
    const seedRows = st.agents.map((name, i) => {
      const a = byName.get(name);
      return `<tr><td class="agent">${i === 0 ? escapeHtml(st.name) : ''}</td><td>${st.seeds[i]}</td>${cols.map(c => `<td>${a ? iv(c[1](a), c[3]) : '–'}</td>`).join('')}</tr>`;
    }).join('');
    const few = st.overSeeds.seeds < 3 ? ' <span class="na">(fewer than 3 seeds)</span>' : '';
    return seedRows + `<tr class="over"><td></td><td><b>over ${st.overSeeds.seeds} seeds</b>${few}</td>${cols.map(c => `<td><b>${iv(c[2](st.overSeeds), c[3])}</b></td>`).join('')}</tr>`;
  }).join('\n');
  return `<div class="scroll"><table class="metrics">${head}\n${body}</table></div>`;
}

/** The mightn't-do bound per setting: KL to D against KL to the reference it was constrained to. */
function boundTable(r: ExperimentResults): string {
  const settings = (r.settings ?? []).filter(st => st.boundGap);
  if (!settings.length) return '<p class="na">No bound gaps in this results.json (written by an older version).</p>';
  const realizable = r.config.imitators.includeDemonstrator;
  const head = '<tr><th>setting</th><th>constrained to</th><th>KL/episode to that reference</th><th>KL/episode to D</th><th>gap: KL to D − KL to the reference</th><th>bounded?</th></tr>';
  const body = settings.map(st => {
    const g = st.boundGap;
    const verdict = g.hi <= 0 ? 'yes (whole interval ≤ 0)' : g.lo > 0 ? 'no (whole interval > 0)' : 'undecided (interval spans 0)';
    return `<tr><td class="agent">${escapeHtml(st.name)}</td><td>${escapeHtml(st.reference)}</td><td>${iv(st.overSeeds.klPerEpisode[st.reference], 1)}</td><td>${iv(st.overSeeds.klPerEpisode.demonstrator, 1)}</td><td><b>${iv(g, 1)}</b></td><td>${verdict}</td></tr>`;
  }).join('\n');
  return `<p>Cohen, Hutter &amp; Nanda's claim: a KL constraint to the single imitator does not bound the KL to the demonstrator D; a constraint to the conservative reference does (up to the help it asks for). Where ℓ ≤ D at every token — D among the plausible models — KL(π‖D) ≤ KL(π‖ℓ) for every policy π. ${realizable ? 'This run is the <b>realizable</b> case: D itself is a member of the ensemble (<code>imitators.includeDemonstrator</code>).' : 'This run is the <b>learned</b> case: the ensemble holds only imitators trained on D\'s dialogs, so ℓ ≤ D is not guaranteed.'} Intervals over seeds (seeds, then dialogs).</p>
<div class="scroll"><table class="metrics">${head}\n${body}</table></div>`;
}

function transcriptsHtml(r: ExperimentResults): string {
  const dialogs = [...new Set(r.transcripts.map(t => t.dialog))].sort((a, b) => a - b);
  return dialogs.map(d => {
    const cards = r.agents.map(a => {
      const t = r.transcripts.find(x => x.agent === a.name && x.dialog === d);
      if (!t) return '';
      const turns = t.turns.map(u => `<div class="turn ${u.role}${u.helped ? ' helped' : ''}"><b>${u.role === 'teacher' ? 'Teacher' : 'Student'}:</b> ${escapeHtml(u.text) || '<span class="na">(empty)</span>'}</div>`).join('');
      return `<div class="card"><div class="card-head">${escapeHtml(a.name)}<span class="rw">reward ${t.reward.toFixed(2)}</span></div>${turns}</div>`;
    }).join('');
    return `<h3>Dialog ${d} (env seed ${r.config.eval.seed + d})</h3><div class="cards">${cards}</div>`;
  }).join('\n');
}

export const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1400px; padding: 0 16px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 15px; }
table { border-collapse: collapse; font-size: 12.5px; } th, td { border: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f6f6f6; } td.agent { white-space: nowrap; font-weight: 600; } .ci { color: #777; font-size: 11px; white-space: nowrap; } .na { color: #aaa; }
.scroll { overflow-x: auto; } figure { margin: 16px 0; } figcaption { color: #555; font-size: 12.5px; max-width: 1000px; }
.cards { display: flex; gap: 10px; overflow-x: auto; padding-bottom: 8px; } .card { flex: 0 0 300px; border: 1px solid #ddd; border-radius: 6px; padding: 8px; font-size: 12.5px; background: #fcfcfc; }
.card-head { font-weight: 600; margin-bottom: 6px; display: flex; justify-content: space-between; } .rw { font-weight: 400; color: #666; }
.turn { margin: 3px 0; white-space: pre-wrap; word-break: break-word; } .turn.student { color: #555; } .turn.helped { background: #fff3cd; }
.warn { background: #fff3cd; border: 1px solid #f0d98c; padding: 8px 12px; border-radius: 6px; } code { background: #f3f3f3; padding: 0 3px; }
`;

export async function renderReport(r: ExperimentResults): Promise<string> {
  const [frontier, ecdfSvg, curves, histSvg, emptyKlSvg, klReturnSvg] = await Promise.all([
    renderSvg(frontierSpec(r)), renderSvg(emptyEcdfSpec(r)), r.curves.length ? renderSvg(curvesSpec(r)) : Promise.resolve(''),
    (r.klHistogram ?? []).length ? renderSvg(klHistogramSpec(r)) : Promise.resolve(''),
    renderSvg(emptyKlSpec(r)), renderSvg(klReturnSpec(r)),
  ]);
  const shortN = r.agents[0]?.summary.shortTurnTokens ?? 4;
  const fewSeeds = (r.settings ?? []).some(s => s.overSeeds.seeds < 3);
  const im = r.models.imitators;
  const ignored = r.rl.filter(x => x.reference === 'conservative' && !x.referenceHonoured);
  const stageRows = Object.entries(r.stages).map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${v.reused ? 'reused' : `${v.seconds.toFixed(0)} s`}</td><td>${v.reused ? '' : `${(v.cpuSeconds ?? NaN).toFixed(0)} s`}</td></tr>`).join('');
  const total = Object.values(r.stages).reduce((a, v) => ({ s: a.s + v.seconds, c: a.c + (v.cpuSeconds ?? 0) }), { s: 0, c: 0 });
  const rlRows = r.rl.map(x => `<tr><td>${escapeHtml(x.name)}</td><td>${x.updates}</td><td>${x.envSteps ?? '–'}${x.stoppedBy ? ` (${escapeHtml(x.stoppedBy)})` : ''}</td><td>${x.seconds.toFixed(0)} s</td><td>${x.referenceHonoured ? 'yes' : '<b>no</b> (trained against the imitator)'}</td></tr>`).join('');
  const c = r.config;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title><style>${CSS}</style></head><body>
<h1>${escapeHtml(r.title)}</h1>
<p>Env <code>${escapeHtml(c.env.id)}</code> with kwargs <code>${escapeHtml(JSON.stringify(c.env.kwargs))}</code>; ${c.eval.episodes} evaluation dialogs per agent (env seeds ${c.eval.seed}…${c.eval.seed + c.eval.episodes - 1}, the same for every agent); RL seeds ${c.rl.seeds.join(', ')}; backend ${escapeHtml(r.backend ?? '?')}; created ${escapeHtml(r.created)}.</p>
${ignored.length ? `<p class="warn">${ignored.length} run(s) asked for the conservative reference, but the RL trainer did not record using it (<code>meta.referenceName</code>): they were trained, and are evaluated, against the single imitator. Their "[conservative]" label is the request, not the fact.</p>` : ''}

<h2>Setup</h2>
<ul>
<li><b>Demonstrator D</b> (known probabilities): ${escapeHtml(r.models.demonstrator.dir)}; validation perplexity on its corpus ${r.models.demonstrator.valPerplexity?.toFixed(2) ?? '–'}.</li>
<li><b>D's transcripts</b>: ${r.samples.train} training + ${r.samples.heldOut} held-out dialogs played by D in the env (mean reward ${r.samples.meanReward.toFixed(3)}).</li>
<li><b>Imitators</b> (K = ${im.heldOutNll.length}, trained only on D's tokens; member 0 is the single imitator): held-out NLL per D-token ${im.heldOutNll.map(x => x.toFixed(3)).join(', ')}${im.demonstratorHeldOutNll !== null ? ` (D itself: ${im.demonstratorHeldOutNll.toFixed(3)})` : ''}; posterior weights w ∝ exp(−${im.posteriorScale}·NLL) = ${im.weights.map(x => x.toFixed(3)).join(', ')}; plausible set (α = ${im.alpha}) {${im.plausible.join(', ')}}.</li>
<li><b>RL against the conservative reference</b>: ppo-kl's KL penalty is measured against ℓ with θ on a HELP action the agent never takes (so each token also pays −log(1−θ) where the plausible imitators disagree); kl-budget's mixture needs a distribution over the vocabulary, so its "[conservative]" runs use ℓ/(1−θ) (renormalised, no HELP).</li>
<li><b>Conservative baseline</b>: acts with ℓ = min over the plausible imitators, asks D for help with θ = 1 − Σℓ (D writes the ${escapeHtml(c.imitators.helpMode === 'turn' ? 'rest of the turn' : 'token')}).</li>
</ul>
<details><summary>Stages and RL runs</summary>
<table><tr><th>stage</th><th>wall clock</th><th>CPU</th></tr>${stageRows}<tr><td><b>total</b></td><td>${(total.s / 60).toFixed(1)} min</td><td>${(total.c / 60).toFixed(1)} min</td></tr></table>
<p>Load average of the machine at the end: ${(r.loadAverage ?? []).map(x => x.toFixed(1)).join(', ')}.</p>
<table><tr><th>RL run</th><th>updates</th><th>env steps (stopped by)</th><th>training time</th><th>reference used</th></tr>${rlRows}</table>
</details>

<h2>Reward–KL frontier</h2>
<figure>${frontier}<figcaption>Mean episode reward against the exact KL per episode (Σ over the agent's tokens of KL(π(·|s) ‖ ref(·|s)) on its own dialogs) to the single imitator (left) and to the demonstrator D (right). The demonstrator sits at KL 0 on the right; the imitator at 0 on the left. Bars: 95% percentile-bootstrap intervals over dialogs.</figcaption></figure>

<h2>The mightn't-do bound</h2>
${boundTable(r)}

<h2>Empty teacher turns</h2>
<figure>${ecdfSvg}<figcaption>Empirical CDF over dialogs of the share of the agent's completed teacher turns that are <b>empty</b>: no word (letter or digit) before the marker that ends the turn — Cohen et al.'s "empty response" (their ≤ 4 tokens include their multi-token <code>\n\nStudent:</code> marker). Dialogs without a completed teacher turn have no share and are left out. A curve that rises late (to the right) has more empty turns. The tables also give the <b>short</b> measure (≤ ${shortN} content tokens, the marker not counted).</figcaption></figure>

<h2>KL as Cohen et al. draw it</h2>
${histSvg ? `<figure>${histSvg}<figcaption>Per-token KL of each agent's own tokens to the single imitator, pooled over the group's agents (settings and seeds) and evaluation dialogs; log-spaced bins.</figcaption></figure>` : ''}
<figure>${emptyKlSvg}<figcaption>KL to the imitator spent per completed teacher turn (its tokens and its closing marker), on empty turns (no word) against the other turns; bars: 95% bootstrap intervals over dialogs. An agent that "pays its KL up front" to stay silent spends little on each empty turn.</figcaption></figure>
<figure>${klReturnSvg}<figcaption>Each evaluation dialog's KL to the imitator (Σ over the agent's tokens) against its return.</figcaption></figure>

${curves ? `<h2>Learning curves</h2><figure>${curves}<figcaption>From each RL run's training rollouts (metrics.jsonl): mean episode reward, exact KL per episode to the reference it was trained against, share of empty teacher turns.</figcaption></figure>` : ''}

<h2>RL settings over seeds</h2>
<p>Each RL setting (algorithm, KL coefficient or budget, reference) with one row per training seed (95% bootstrap intervals over that seed's evaluation dialogs) and, in bold, the mean over seeds with a 95% interval from a two-stage bootstrap: seeds resampled with replacement, then each drawn seed's dialogs.${fewSeeds ? ' <span class="warn">Some settings have fewer than 3 seeds: their interval over seeds says little.</span>' : ''}</p>
${seedsTable(r)}

<h2>All metrics</h2>
<p>Means over the evaluation dialogs with 95% percentile-bootstrap intervals (2000 resamples of dialogs; per-token quantities are ratios of sums). KL is exact, from full next-token distributions; for the conservative baseline the distribution of each token is ℓ + θ·D where it decides and D where D writes the rest of a turn.</p>
${metricsTable(r.agents)}

<h2>Sample transcripts</h2>
<p>The same evaluation dialogs (same env seed, so the same prompt and student sampling seed) for every agent. Highlighted teacher turns contain text that D wrote after a help request.</p>
${transcriptsHtml(r)}
</body></html>
`;
}
