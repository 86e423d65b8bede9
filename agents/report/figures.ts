/**
 * The report's figures as Vega-Lite specs, rendered to SVG strings in Node (vega's headless
 * `View.toSVG()`; no browser, no network: the SVG is inlined in report.html).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { ExperimentResults } from '../eval/experiment.ts';
import { ecdfOnUnit } from '../eval/stats.ts';

/** Render a Vega-Lite spec (its data inline) to an SVG string. */
export async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const FONT = 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif';
/** The figures' shared look (fonts, axes, legend, title); agents/rl/curves.ts uses it too. */
export const CONFIG = {
  font: FONT,
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  title: { fontSize: 13, anchor: 'start' as const },
  view: { stroke: '#ddd' },
};

/** Display group of an agent for colours: the algorithm and its reference. */
export function agentGroup(a: ExperimentResults['agents'][number]): string {
  if (a.reference) return `${a.group} [${a.reference}]`;
  return a.group;
}

const GROUP_ORDER = ['demonstrator', 'imitator', 'conservative', 'ppo-kl [imitator]', 'ppo-kl [conservative]', 'kl-budget [imitator]', 'kl-budget [conservative]'];
const GROUP_COLORS = ['#222222', '#7f7f7f', '#2ca02c', '#1f77b4', '#17becf', '#d62728', '#ff7f0e'];

/** Reward–KL frontier: mean reward vs mean KL per episode to the imitator and to D (95% CIs). */
export function frontierSpec(r: ExperimentResults): vl.TopLevelSpec {
  const rows = r.agents.map(a => ({
    agent: a.name, group: agentGroup(a), setting: a.coef === null ? a.group : `${a.group} ${a.group === 'ppo-kl' ? 'β' : 'B'}=${a.coef}`,
    reward: a.summary.reward.mean, rewardLo: a.summary.reward.lo, rewardHi: a.summary.reward.hi,
    klI: a.summary.klPerEpisode.imitator?.mean ?? null, klILo: a.summary.klPerEpisode.imitator?.lo ?? null, klIHi: a.summary.klPerEpisode.imitator?.hi ?? null,
    klD: a.summary.klPerEpisode.demonstrator?.mean ?? null, klDLo: a.summary.klPerEpisode.demonstrator?.lo ?? null, klDHi: a.summary.klPerEpisode.demonstrator?.hi ?? null,
  }));
  const color = { field: 'group', type: 'nominal' as const, title: 'agent', scale: { domain: GROUP_ORDER, range: GROUP_COLORS } };
  const panel = (x: string, lo: string, hi: string, title: string): object => ({
    width: 330, height: 260,
    layer: [
      { mark: { type: 'rule', opacity: 0.5 }, encoding: { x: { field: lo, type: 'quantitative' }, x2: { field: hi }, y: { field: 'reward', type: 'quantitative' }, color } },
      { mark: { type: 'rule', opacity: 0.5 }, encoding: { y: { field: 'rewardLo', type: 'quantitative' }, y2: { field: 'rewardHi' }, x: { field: x, type: 'quantitative' }, color } },
      {
        mark: { type: 'point', filled: true, size: 60, opacity: 0.9 },
        encoding: {
          x: { field: x, type: 'quantitative', title, scale: { zero: true, nice: true } },
          y: { field: 'reward', type: 'quantitative', title: 'mean episode reward', scale: { zero: false } },
          color,
          shape: { field: 'setting', type: 'nominal', title: 'setting', legend: { symbolLimit: 30 } },
        },
      },
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    data: { values: rows },
    title: 'Reward–KL frontier (points: agents; bars: 95% bootstrap intervals over dialogs)',
    hconcat: [
      panel('klI', 'klILo', 'klIHi', 'KL to the single imitator per episode (nats)'),
      panel('klD', 'klDLo', 'klDHi', 'KL to the demonstrator D per episode (nats)'),
    ],
    resolve: { scale: { y: 'shared' } },
  } as vl.TopLevelSpec;
}

/** A top-level spec with the shared look and inline data. */
function figure(title: string, values: object[], rest: object): vl.TopLevelSpec {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CONFIG, title, data: { values }, ...rest } as vl.TopLevelSpec;
}

/** Histogram of the per-token KL to the imitator: share of each agent group's tokens per bin (log-spaced bins). */
export function klHistogramSpec(r: ExperimentResults): vl.TopLevelSpec {
  const groupOf = new Map(r.agents.map(a => [a.name, agentGroup(a)]));
  // Pool the agents of a group (seeds, settings) by token counts.
  const by = new Map<string, { group: string; lo: number; hi: number | null; count: number }>();
  for (const h of r.klHistogram ?? []) {
    const group = groupOf.get(h.agent) ?? h.agent;
    const key = `${group}\u0000${h.lo}`;
    const e = by.get(key) ?? { group, lo: h.lo, hi: h.hi, count: 0 };
    e.count += h.count;
    by.set(key, e);
  }
  const totals = new Map<string, number>();
  for (const e of by.values()) totals.set(e.group, (totals.get(e.group) ?? 0) + e.count);
  const values = [...by.values()].map(e => ({
    group: e.group, bin: e.hi === null ? `≥ ${e.lo}` : `[${e.lo}, ${e.hi})`, lo: e.lo, share: e.count / (totals.get(e.group) || 1),
  }));
  return figure('Per-token KL to the imitator (share of each group\'s tokens per bin, nats)', values, {
    width: 560, height: 260,
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'bin', type: 'ordinal', title: 'KL of a token to the imitator (nats)', sort: { field: 'lo', op: 'min' } },
      xOffset: { field: 'group', type: 'nominal', scale: { domain: GROUP_ORDER } },
      y: { field: 'share', type: 'quantitative', title: 'share of tokens' },
      color: { field: 'group', type: 'nominal', title: 'agent', scale: { domain: GROUP_ORDER, range: GROUP_COLORS } },
    },
  });
}

/** KL per empty teacher turn against KL per other turn (to the imitator), per agent, with 95% intervals. */
export function emptyKlSpec(r: ExperimentResults): vl.TopLevelSpec {
  const values = r.agents.flatMap(a => (['empty', 'other'] as const).map(kind => {
    const i = (kind === 'empty' ? a.summary.klPerEmptyTurn : a.summary.klPerOtherTurn)?.imitator;
    return { agent: a.name, group: agentGroup(a), kind: kind === 'empty' ? 'empty turns (no word)' : 'other turns', kl: i?.mean ?? null, lo: i?.lo ?? null, hi: i?.hi ?? null };
  })).filter(v => v.kl !== null && Number.isFinite(v.kl));
  const y = { field: 'agent', type: 'nominal' as const, title: null, sort: r.agents.map(a => a.name) };
  return figure('KL to the imitator per completed teacher turn: empty turns against the rest', values, {
    width: 420, height: { step: 14 },
    layer: [
      { mark: { type: 'rule' }, encoding: { y, yOffset: { field: 'kind' }, x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' }, color: { field: 'kind', type: 'nominal', title: 'turns' } } },
      { mark: { type: 'point', filled: true }, encoding: { y, yOffset: { field: 'kind' }, x: { field: 'kl', type: 'quantitative', title: 'KL per turn (nats; its tokens and its marker)' }, color: { field: 'kind', type: 'nominal', title: 'turns' } } },
    ],
  });
}

/** Per-episode KL to the imitator against the episode's return, one point per evaluation dialog. */
export function klReturnSpec(r: ExperimentResults): vl.TopLevelSpec {
  const groupOf = new Map(r.agents.map(a => [a.name, agentGroup(a)]));
  const values = r.dialogs.filter(d => d.klImitator !== null && Number.isFinite(d.klImitator)).map(d => ({ agent: d.agent, group: groupOf.get(d.agent) ?? d.agent, kl: d.klImitator, reward: d.reward }));
  return figure('Per-episode KL to the imitator against return (one point per evaluation dialog)', values, {
    width: 520, height: 300,
    mark: { type: 'point', opacity: 0.5, size: 20 },
    encoding: {
      x: { field: 'kl', type: 'quantitative', title: 'KL to the imitator in the episode (nats)' },
      y: { field: 'reward', type: 'quantitative', title: 'episode return' },
      color: { field: 'group', type: 'nominal', title: 'agent', scale: { domain: GROUP_ORDER, range: GROUP_COLORS } },
    },
  });
}

/** ECDF of the per-dialog share of empty teacher turns, one line per agent. */
export function emptyEcdfSpec(r: ExperimentResults): vl.TopLevelSpec {
  const groupOf = new Map(r.agents.map(a => [a.name, agentGroup(a)]));
  const values: { agent: string; group: string; x: number; p: number }[] = [];
  for (const a of r.agents) {
    // Dialogs without a completed teacher turn have no share (null in results.json): ecdf drops them.
    const xs = r.dialogs.filter(d => d.agent === a.name).map(d => d.emptyShare ?? NaN);
    for (const p of ecdfOnUnit(xs)) values.push({ agent: a.name, group: groupOf.get(a.name)!, x: p.x, p: p.p });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    title: 'ECDF of the share of empty teacher turns (no word before the marker) per dialog',
    width: 520, height: 280,
    data: { values },
    mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.5, opacity: 0.85 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: 'share of empty teacher turns in a dialog', scale: { domain: [0, 1] } },
      y: { field: 'p', type: 'quantitative', title: 'fraction of dialogs ≤ x', scale: { domain: [0, 1] } },
      color: { field: 'group', type: 'nominal', title: 'agent', scale: { domain: GROUP_ORDER, range: GROUP_COLORS } },
      detail: { field: 'agent', type: 'nominal' },
    },
  } as vl.TopLevelSpec;
}

/** Learning curves of the RL runs: episode reward and exact KL to the training reference per update. */
export function curvesSpec(r: ExperimentResults): vl.TopLevelSpec {
  const values = r.curves.map(c => ({ ...c, group: `${c.algo} [${c.reference}]`, setting: `${c.algo === 'ppo-kl' ? 'β' : 'B'}=${c.coef}` }));
  const base = (field: string, title: string): object => ({
    width: 300, height: 200,
    mark: { type: 'line', point: { size: 18 }, strokeWidth: 1.2, opacity: 0.85 },
    encoding: {
      x: { field: 'update', type: 'quantitative', title: 'update' },
      y: { field, type: 'quantitative', title },
      color: { field: 'group', type: 'nominal', title: 'run', scale: { domain: GROUP_ORDER, range: GROUP_COLORS } },
      strokeDash: { field: 'setting', type: 'nominal', title: 'setting' },
      detail: { field: 'run', type: 'nominal' },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    title: 'Learning curves (training rollouts; one line per run and seed)',
    data: { values },
    hconcat: [base('reward', 'mean episode reward'), base('kl', 'KL to the training reference per episode (nats)'), base('empty', 'share of empty teacher turns')],
  } as vl.TopLevelSpec;
}
