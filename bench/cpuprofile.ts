/**
 * bench/cpuprofile: where the time goes in a V8 CPU profile (`node --cpu-prof`), by self time:
 * the top functions (name, file:line), and the same grouped by source file.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof bin/run.mjs bench/train.ts --algo ppo-kl --num-envs 16 --no-torch
 *   node bin/run.mjs bench/cpuprofile.ts /tmp/prof/CPU.*.cpuprofile [--top 30]
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../core/paths.ts';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface Profile { nodes: Node[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '30' } }, allowPositionals: true });
if (!positionals.length) { console.error('usage: node bin/run.mjs bench/cpuprofile.ts FILE.cpuprofile [--top 30]'); process.exit(2); }
const top = Number(values.top);

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map(n => [n.id, n]));
  // Self time per node from the samples and their time deltas (µs).
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = (p.endTime - p.startTime) / 1e6;
  const where = (n: Node) => {
    const u = n.callFrame.url.replace(/^file:\/\//, '');
    return u ? `${path.relative(PROJECT_ROOT, u) || u}:${n.callFrame.lineNumber + 1}` : '';
  };
  const fns = new Map<string, number>(), files = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const key = `${n.callFrame.functionName || '(anonymous)'}  ${where(n)}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const f = n.callFrame.url ? where(n).replace(/:\d+$/, '') : `(${n.callFrame.functionName || 'native'})`;
    files.set(f, (files.get(f) ?? 0) + us);
  }
  const show = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k)
    .map(([name, us]) => `  ${(us / 1e6).toFixed(2).padStart(7)} s ${(100 * us / 1e6 / total).toFixed(1).padStart(5)}%  ${name}`).join('\n');
  console.log(`${file}: ${total.toFixed(1)} s profiled, ${p.samples.length} samples\n\ntop functions by self time:\n${show(fns, top)}\n\nby file (self time):\n${show(files, Math.min(top, 20))}`);
}
