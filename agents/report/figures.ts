/**
 * The report's figures as Vega-Lite specs, rendered to SVG strings in Node (vega's headless
 * `View.toSVG()`; no browser, no network: the SVG is inlined in report.html).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { ExperimentResults } from '../eval/experiment.ts';
import { ecdf } from '../eval/stats.ts';

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

/** ECDF of the per-dialog share of empty teacher turns, one line per agent. */
export function emptyEcdfSpec(r: ExperimentResults): vl.TopLevelSpec {
  const groupOf = new Map(r.agents.map(a => [a.name, agentGroup(a)]));
  const values: { agent: string; group: string; x: number; p: number }[] = [];
  for (const a of r.agents) {
    const xs = r.dialogs.filter(d => d.agent === a.name).map(d => d.emptyShare);
    const pts = ecdf(xs);
    // Start at (0, P(X ≤ 0)) and end at 1 so that every step function spans [0, 1].
    if (pts.length && pts[0]!.x > 0) values.push({ agent: a.name, group: groupOf.get(a.name)!, x: 0, p: 0 });
    for (const p of pts) values.push({ agent: a.name, group: groupOf.get(a.name)!, x: p.x, p: p.p });
    if (pts.length && pts[pts.length - 1]!.x < 1) values.push({ agent: a.name, group: groupOf.get(a.name)!, x: 1, p: 1 });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    title: 'ECDF of the share of empty teacher turns (≤ 4 tokens) per dialog',
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
