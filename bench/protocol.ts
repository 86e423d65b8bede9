/**
 * Protocol benchmark: env-steps/s of Echo-v0 over WebSocket (the real server and the real client,
 * one request in flight at a time, as an RL loop runs) with numEnvs 1 and 64, and in the same run
 * raw `ws` round trips/s with the same payload sizes (a bare ws server in the same child process
 * that answers each frame with a canned frame as long as the protocol's reply: no parsing, no env),
 * i.e. the transport's limit. The cost ratio is (time per protocol step) / (time per raw round trip).
 *
 *   node bin/run.mjs bench/protocol.ts [--seconds 1] [--rounds 5] [--cases 1:json,64:json,64:f64,64:bin]
 *
 * Cases `N:json` send observations as JSON arrays (the default); `N:f64` as packed float64
 * (obsEncoding 'f64', opt-in for Box observation spaces); `N:bin` binary frames both ways
 * (obsEncoding 'binary': replies with typed arrays for observations, rewards and flags; Echo's
 * integer actions go as JSON, as the client sends them). The raw round trip of a case sends the same frames (binary ones as binary frames).
 * `node --cpu-prof bin/run.mjs bench/protocol.ts ...` profiles the client and the server child.
 *
 * Server and raw server run in a child process (so that client and server use separate cores, as
 * in a real deployment); rounds alternate protocol and raw runs; rates are medians over rounds and
 * the ratio is the median of each round's (raw rate / protocol rate), so that load drifting
 * between rounds (a shared machine) cancels out.
 * Targets: >= 100,000 env-steps/s at 64 envs per message; ratio <= 1.5.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { timeEchoSteps } from './echo-steps.ts';
import WebSocket, { WebSocketServer } from 'ws';
import { resolveServerConfig } from '../configs/server.ts';
import { makeVec } from '../env/index.ts';
import type { ObsEncoding } from '../protocol/v1.ts';
import { binaryStepFrame } from '../protocol/binary.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function child(): Promise<void> {
  const { buildApp } = await import('../server/app.ts');
  // The protocol alone: no dialog store on disk, no chat page.
  const app = buildApp(resolveServerConfig({ port: 0, logLevel: 'warn', storage: { db: ':memory:' }, chat: { enabled: false } }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  wss.on('connection', ws => {
    let canned: Buffer | null = null, cannedBinary = false;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (canned === null) { canned = Buffer.from(data); cannedBinary = isBinary; return; } // first frame: the reply to send back
      ws.send(canned, { binary: cannedBinary });
    });
  });
  await once(wss, 'listening');
  const port = (app.server.address() as { port: number }).port;
  const rawPort = (wss.address() as { port: number }).port;
  process.stdout.write(`${JSON.stringify({ port, rawPort })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

interface Figures { steps: number; seconds: number }

/** A frame as it travels: text, or (a Buffer) binary. */
type Frame = string | Buffer;
const frameBytes = (f: Frame) => (typeof f === 'string' ? Buffer.byteLength(f) : f.length);

async function protocolRun(url: string, numEnvs: number, obsEncoding: ObsEncoding, seconds: number): Promise<Figures & { reqBytes: number; replyBytes: number; reply: Frame; req: Frame }> {
  const { env, actions, steps, seconds: elapsed } = await timeEchoSteps(url, numEnvs, obsEncoding, seconds);
  // The frames of one step exactly as they travel (a bare client sees the reply before unpacking).
  const req = stepFrame(env.session, actions, obsEncoding);
  const reply = await rawStepReply(url, numEnvs, obsEncoding, actions);
  await env.close();
  return { steps, seconds: elapsed, reqBytes: frameBytes(req), replyBytes: frameBytes(reply), reply, req };
}

function stepFrame(session: string, actions: number[], obsEncoding: ObsEncoding): Frame {
  return (obsEncoding === 'binary' ? binaryStepFrame(123456, session, actions) : null) ?? JSON.stringify({ id: 123456, op: 'step', session, actions });
}

async function rawStepReply(url: string, numEnvs: number, obsEncoding: ObsEncoding, actions: number[]): Promise<Frame> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const frames: Frame[] = [];
  ws.on('message', (d: Buffer, isBinary: boolean) => frames.push(isBinary ? Buffer.from(d) : d.toString()));
  await once(ws, 'open');
  const call = async (msg: Frame | object) => {
    const n = frames.length;
    ws.send(typeof msg === 'string' || Buffer.isBuffer(msg) ? msg : JSON.stringify(msg));
    while (frames.length === n) await new Promise(r => setTimeout(r, 1));
    return frames[n]!;
  };
  const session = (JSON.parse(String(await call({ id: 1, op: 'make', env: 'Echo-v0', numEnvs, obsEncoding }))) as { result: { session: string } }).result.session;
  await call({ id: 2, op: 'reset', session, seed: 1 });
  const req = stepFrame(session, actions, obsEncoding);
  for (let i = 0; i < 5; i++) await call(req);
  const reply = await call(req);
  await call({ id: 3, op: 'close', session });
  ws.close();
  return reply;
}

async function rawRun(rawUrl: string, req: Frame, reply: Frame, seconds: number): Promise<Figures> {
  const ws = new WebSocket(rawUrl, { perMessageDeflate: false });
  await once(ws, 'open');
  ws.send(reply);
  let resolveNext: (() => void) | null = null;
  ws.on('message', () => { const r = resolveNext; resolveNext = null; r?.(); });
  const roundTrip = () => new Promise<void>(res => { resolveNext = res; ws.send(req); });
  const warm = performance.now();
  while (performance.now() - warm < 300) await roundTrip();
  let steps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) { await roundTrip(); steps++; }
  const elapsed = (performance.now() - t0) / 1000;
  ws.close();
  return { steps, seconds: elapsed };
}

async function localRun(numEnvs: number, seconds: number): Promise<Figures> {
  const env = makeVec('Echo-v0', { numEnvs });
  await env.reset({ seed: 1 });
  const actions = Array.from({ length: numEnvs }, (_, i) => i % 16);
  let steps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) { await env.step(actions); steps++; }
  await env.close();
  return { steps, seconds: (performance.now() - t0) / 1000 };
}

function median(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; }
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { child: { type: 'boolean' }, seconds: { type: 'string', default: '1' }, rounds: { type: 'string', default: '5' }, cases: { type: 'string', default: '1:json,64:json,64:f64,64:bin' } } });
  if (values.child) return child();
  const seconds = Number(values.seconds), rounds = Number(values.rounds);
  const cases = values.cases!.split(',').map(c => { const [n, enc] = c.split(':'); return { n: Number(n), enc: (enc === 'bin' ? 'binary' : enc ?? 'json') as ObsEncoding }; });

  // The child gets this process's node flags (`node --cpu-prof bin/run.mjs bench/protocol.ts` profiles both sides).
  const proc = spawn(process.execPath, [...process.execArgv, path.join(ROOT, 'bin/run.mjs'), path.join(ROOT, 'bench/protocol.ts'), '--child'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = await new Promise<string[]>(resolve => {
    let buf = '';
    proc.stdout.on('data', (c: Buffer) => { buf += c.toString(); if (buf.includes('\n')) resolve(buf.split('\n')); });
  });
  const { port, rawPort } = JSON.parse(line!) as { port: number; rawPort: number };
  const url = `ws://127.0.0.1:${port}/v1/env`, rawUrl = `ws://127.0.0.1:${rawPort}`;
  console.log(`protocol bench: Echo-v0 (obsSize 8), one request in flight, ${rounds} rounds x ${seconds} s, median; node ${process.version}`);

  const rows: string[][] = [];
  let pass = true;
  const summary: string[] = [];
  for (const { n, enc } of cases) {
    const proto: number[] = [], raw: number[] = [], ratios: number[] = [];
    let sizes = { reqBytes: 0, replyBytes: 0 };
    for (let r = 0; r < rounds; r++) {
      const p = await protocolRun(url, n, enc, seconds);
      sizes = p;
      proto.push(p.steps / p.seconds);
      const w = await rawRun(rawUrl, p.req, p.reply, seconds);
      raw.push(w.steps / w.seconds);
      ratios.push((w.steps / w.seconds) / (p.steps / p.seconds)); // paired: the same minute's load
    }
    const local = await localRun(n, Math.min(seconds, 1));
    const stepsPerS = median(proto), rawPerS = median(raw);
    const ratio = median(ratios);
    if (n === 64 && enc === 'json' && stepsPerS * n < 100_000) pass = false;
    if (n === 64) summary.push(`${enc} ${ratio.toFixed(2)} ${ratio <= 1.5 ? 'met' : 'NOT met'}`);
    rows.push([String(n), enc, String(sizes.reqBytes), String(sizes.replyBytes), fmt(stepsPerS), fmt(stepsPerS * n), fmt(rawPerS),
      `${(1e6 / stepsPerS).toFixed(0)} / ${(1e6 / rawPerS).toFixed(0)}`, ratio.toFixed(2), fmt(local.steps / local.seconds * n)]);
  }
  const head = ['numEnvs', 'obs', 'req B', 'reply B', 'steps/s', 'env-steps/s', 'raw RT/s', 'µs step / raw', 'ratio (paired median)', 'in-process env-steps/s'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)));
  console.log(head.map((h, i) => h.padStart(widths[i]!)).join('  '));
  for (const r of rows) console.log(r.map((c, i) => c.padStart(widths[i]!)).join('  '));
  console.log(`target >= 100,000 env-steps/s at 64 envs (JSON): ${pass ? 'met' : 'NOT met'}; target ratio <= 1.5 at 64 envs: ${summary.join('; ')}`);
  console.log(`load average during the run: ${loadavg().map(x => x.toFixed(2)).join(' ')} on ${cpus().length} cores`);
  proc.stdin.end(); // the child exits (writing its profile, under --cpu-prof)
  await Promise.race([once(proc, 'exit'), new Promise(r => setTimeout(r, 5000))]);
  proc.kill();
}

await main();
