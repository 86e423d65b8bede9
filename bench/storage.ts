/**
 * Per-turn write cost of the dialog store: `appendTurn` with synchronous=FULL (fsync per commit:
 * durable against power loss) vs NORMAL (durable against a process kill only), in the same run,
 * interleaved round by round so that both see the same disk and load.
 *
 *   node bin/run.mjs bench/storage.ts [--turns 2000] [--rounds 3] [--dir DIR] [--chars 200]
 *
 * Each turn is its own transaction, as in the server (write, then acknowledge); a new dialog is
 * started every 20 turns, and every student turn gets a reward, like a real conversation.
 * For reference, a third line writes FULL with one transaction per 20-turn dialog (what a bulk
 * writer of simulated dialogs can do with `store.transaction`): one fsync per dialog.
 * The database goes in --dir (default: the project's tmp/, i.e. the disk the project lives on;
 * a tmpfs would make fsync free and the comparison meaningless).
 */
import { mkdirSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { openStore, type Synchronous } from '../server/storage/db.ts';

const { values } = parseArgs({
  options: {
    turns: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' },
    dir: { type: 'string' }, chars: { type: 'string', default: '200' }, help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) { console.log('usage: node bin/run.mjs bench/storage.ts [--turns 2000] [--rounds 3] [--dir DIR] [--chars 200]'); process.exit(0); }
const turns = Number(values.turns), rounds = Number(values.rounds), chars = Number(values.chars);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const base = values.dir ?? path.join(root, 'tmp');
mkdirSync(base, { recursive: true });
const dir = mkdtempSync(path.join(base, 'bench-storage-'));

const TMPFS = 0x01021994;
const fsType = statfsSync(dir).type;
console.log(`storage bench: node ${process.version}, ${os.cpus().length} cpus, dir ${dir}${fsType === TMPFS ? ' (tmpfs: fsync is free here!)' : ''}`);
console.log(`${turns} appendTurn per round (each its own commit), ${rounds} rounds per mode, ${chars}-char texts\n`);

const text = 'Do you think the discussion section should compare your results with the hypothesis? '.repeat(Math.ceil(chars / 80)).slice(0, chars);

type Mode = Synchronous | 'FULL-batched';

function round(mode: Mode, r: number): number[] {
  if (mode === 'FULL-batched') return batched(r);
  const file = path.join(dir, `${mode}-${r}.db`);
  const store = openStore(file, { synchronous: mode });
  const lat: number[] = [];
  let dialog = '';
  try {
    for (let i = 0; i < turns; i++) {
      if (i % 20 === 0) {
        if (dialog) store.endDialog(dialog, 'terminated');
        dialog = store.startDialog({ env: 'TeacherStudent-v0', student: 'simulated', agentName: 'bench', seed: i }).id;
      }
      const role = i % 2 === 0 ? 'teacher' : 'student';
      const t0 = process.hrtime.bigint();
      const t = store.appendTurn(dialog, { role, text, tokenCount: 40 });
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (role === 'student') store.recordReward(dialog, t.index, { total: 0.5, components: { sentiment: 0.5 } });
    }
  } finally {
    store.close();
  }
  return lat;
}

/** FULL, one transaction per dialog of 20 turns; the latency of a dialog is spread over its turns. */
function batched(r: number): number[] {
  const store = openStore(path.join(dir, `batched-${r}.db`), { synchronous: 'FULL' });
  const lat: number[] = [];
  try {
    for (let i = 0; i < turns; i += 20) {
      const n = Math.min(20, turns - i);
      const t0 = process.hrtime.bigint();
      store.transaction(() => {
        const dialog = store.startDialog({ env: 'TeacherStudent-v0', student: 'simulated', agentName: 'bench', seed: i }).id;
        for (let k = 0; k < n; k++) {
          const t = store.appendTurn(dialog, { role: k % 2 === 0 ? 'teacher' : 'student', text, tokenCount: 40 });
          if (t.role === 'student') store.recordReward(dialog, t.index, { total: 0.5, components: { sentiment: 0.5 } });
        }
        store.endDialog(dialog, 'terminated');
      });
      const per = Number(process.hrtime.bigint() - t0) / 1e6 / n;
      for (let k = 0; k < n; k++) lat.push(per);
    }
  } finally {
    store.close();
  }
  return lat;
}

const q = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
const MODES: Mode[] = ['FULL', 'NORMAL', 'FULL-batched'];
const results: Record<Mode, number[]> = { FULL: [], NORMAL: [], 'FULL-batched': [] };
round('NORMAL', -1); // warm-up (module loading, page cache), not counted
for (let r = 0; r < rounds; r++) {
  for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) {
    const lat = round(mode, r);
    const total = lat.reduce((a, b) => a + b, 0);
    console.log(`round ${r} ${mode.padEnd(12)} ${(turns / (total / 1000)).toFixed(0).padStart(7)} appendTurn/s  mean ${(total / turns).toFixed(3)} ms`);
    results[mode].push(...lat);
  }
}

console.log('\nmode           appendTurn/s   mean ms   p50 ms   p99 ms   max ms   (per turn; batched: dialog time / 20)');
for (const mode of MODES) {
  const lat = results[mode];
  const sorted = [...lat].sort((a, b) => a - b);
  const total = lat.reduce((a, b) => a + b, 0);
  console.log(`${mode.padEnd(14)} ${(lat.length / (total / 1000)).toFixed(0).padStart(12)} ${(total / lat.length).toFixed(3).padStart(9)} ${q(sorted, 0.5).toFixed(3).padStart(8)} ${q(sorted, 0.99).toFixed(3).padStart(8)} ${sorted[sorted.length - 1]!.toFixed(3).padStart(8)}`);
}
rmSync(dir, { recursive: true, force: true });
