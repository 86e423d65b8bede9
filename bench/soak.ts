/**
 * Soak: N clients for M minutes of mixed traffic against one server (in a child process), then
 * errors by code, the server's RSS over time and step latency percentiles.
 *
 *   node bin/run.mjs bench/soak.ts [--clients 16] [--minutes 1] [--seed 1] [--sample-s 5]
 *
 * Each client runs a seeded loop over Echo-v0 (numEnvs 1 to 16): mostly steps (timed from send to
 * reply), and resets with seeds, `state`, pings, dropped connections that the client resumes,
 * sessions closed and made again, and hostile frames on a second raw socket (bad JSON, unknown
 * ops, wrong types, reward paths in kwargs, prototype keys, oversized frames), every one of which
 * must get a coded reply. The server runs with its defaults (storage in memory, no chat): RSS
 * that grows without bound over a run, an uncoded reply, or a client that stops are what this
 * bench looks for. It prints one JSON object; README "Security" quotes a run.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { connectVectorEnv, type RemoteVectorEnv } from '../agents/client.ts';
import { ColloquyError, ERROR_CODES } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import { resolveServerConfig } from '../configs/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function child(): Promise<void> {
  const { buildApp } = await import('../server/app.ts');
  const app = buildApp(resolveServerConfig({ port: 0, logLevel: 'warn', storage: { db: ':memory:' }, chat: { enabled: false } }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`${JSON.stringify({ port: (app.server.address() as { port: number }).port })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const HOSTILE = (rng: Rng, session: string): string => {
  const frames = [
    '{"id":1,"op":"step"', 'null', '[]', '{"id":2,"op":"__proto__"}', `{"id":3,"op":"step","session":"${session}","actions":"x"}`,
    '{"id":4,"op":"make","env":"TeacherStudent-v0","kwargs":{"reward":"/etc/passwd"}}', '{"id":5,"op":"make","env":"TeacherStudent-v0","kwargs":{"reward":"/dev/zero"}}',
    '{"id":6,"op":"make","env":"Echo-v0","numEnvs":1024,"kwargs":{"obsSize":65536}}', '{"id":7,"op":"resume","session":"nope","token":"nope"}',
    `{"id":8,"op":"reset","session":"${session}","seed":-1}`, `{"id":9,"op":"step","session":"x","actions":[${'0,'.repeat(600_000)}0]}`,
  ];
  return frames[rng.int(frames.length)]!;
};

interface Tally { errors: Map<string, number>; steps: number[]; ops: number; uncoded: number; hostile: number }

async function client(url: string, seed: number, until: number, t: Tally): Promise<void> {
  const rng = new Rng(seed);
  const count = (code: string) => t.errors.set(code, (t.errors.get(code) ?? 0) + 1);
  const raw = new WebSocket(url, { perMessageDeflate: false });
  raw.on('message', (d: Buffer) => {
    const r = JSON.parse(d.toString()) as { ok: boolean; error?: { code: string } };
    if (r.ok) return;
    if (!r.error || !(ERROR_CODES as readonly string[]).includes(r.error.code)) t.uncoded++;
    else count(`hostile:${r.error.code}`);
  });
  await new Promise<void>((ok, bad) => { raw.once('open', () => ok()); raw.once('error', bad); });
  let env: RemoteVectorEnv<number[], number> | null = null;
  while (Date.now() < until) {
    try {
      if (!env) {
        env = await connectVectorEnv<number[], number>(url, { env: 'Echo-v0', numEnvs: 1 + rng.int(16), kwargs: { obsSize: 4 + rng.int(60) }, reconnect: { attempts: 20, initialDelayMs: 20 } });
        await env.reset({ seed: rng.int(1000) });
      }
      const x = rng.random();
      t.ops++;
      if (x < 0.8) {
        const actions = Array.from({ length: env.numEnvs }, () => rng.int(16));
        const t0 = performance.now();
        await env.step(actions);
        t.steps.push(performance.now() - t0);
      } else if (x < 0.85) await env.reset({ seed: rng.int(1 << 30) });
      else if (x < 0.88) await env.state();
      else if (x < 0.9) await env.client.request({ op: 'ping' });
      else if (x < 0.92) env.client.dropConnection();
      else if (x < 0.93) { await env.close(); env = null; } else if (raw.readyState === WebSocket.OPEN) { raw.send(HOSTILE(rng, env.session)); t.hostile++; }
    } catch (err) {
      count(err instanceof ColloquyError ? err.code : 'UNCODED');
      if (!(err instanceof ColloquyError)) t.uncoded++;
      if (env && (!(err instanceof ColloquyError) || err.code === 'CLOSED')) { await env.close().catch(() => undefined); env = null; }
    }
  }
  await env?.close().catch(() => undefined);
  raw.close();
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { clients: { type: 'string', default: '16' }, minutes: { type: 'string', default: '1' }, seed: { type: 'string', default: '1' }, 'sample-s': { type: 'string', default: '5' } } });
  const clients = Number(values.clients), minutes = Number(values.minutes), seed = Number(values.seed), sampleS = Number(values['sample-s']);
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin/run.mjs'), fileURLToPath(import.meta.url), '--child'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>(resolve => {
    let buf = '';
    proc.stdout.on('data', (b: Buffer) => { buf += b.toString(); const i = buf.indexOf('\n'); if (i >= 0) resolve((JSON.parse(buf.slice(0, i)) as { port: number }).port); });
  });
  const url = `ws://127.0.0.1:${port}/v1/env`;
  const t: Tally = { errors: new Map(), steps: [], ops: 0, uncoded: 0, hostile: 0 };
  const t0 = Date.now();
  const until = t0 + minutes * 60_000;
  const rss: [number, number][] = [[0, rssMiB(proc.pid!)]];
  const sampler = setInterval(() => { rss.push([Math.round((Date.now() - t0) / 1000), rssMiB(proc.pid!)]); }, sampleS * 1000);
  await Promise.all(Array.from({ length: clients }, (_, i) => client(url, seed * 1000 + i, until, t)));
  clearInterval(sampler);
  rss.push([Math.round((Date.now() - t0) / 1000), rssMiB(proc.pid!)]);
  proc.stdin.end();
  const steps = t.steps.sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  console.log(JSON.stringify({
    clients, minutes, seed, loadavg1: r(loadavg()[0]!), ops: t.ops, steps: steps.length, hostileFrames: t.hostile, uncodedReplies: t.uncoded,
    errorsByCode: Object.fromEntries([...t.errors].sort()),
    stepLatencyMs: { p50: r(percentile(steps, 0.5)), p99: r(percentile(steps, 0.99)), max: r(steps[steps.length - 1] ?? NaN) },
    serverRssMiB: rss.map(([s, m]) => `${s}s:${m}`).join(' '),
  }, null, 1));
}

if (process.argv.includes('--child')) await child(); else await main();
