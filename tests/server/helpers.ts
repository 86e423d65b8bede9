/** Test helpers: a real server on an ephemeral port, and a bare protocol client over `ws`. */
import WebSocket from 'ws';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { BadConfig, Discrete, register, registeredIds, type Env, type EnvSpec } from '../../env/index.ts';
import { Gate } from '../helpers/wait.ts';
import { resolveServerConfig, type ServerConfig } from '../../configs/server.ts';
import { buildApp, type BuildAppOptions } from '../../server/app.ts';
import { createLogger } from '../../server/log.ts';

/** A reply as a test reads it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface TReply { id: unknown; ok: boolean; result?: any; error?: { code: string; message: string; details?: Record<string, unknown> } }

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface TestServer { app: FastifyInstance; config: ServerConfig; url: string; wsUrl: string; close(): Promise<void> }

/** `appOptions`: more for `buildApp` (e.g. `modelDir`, the app's base model; default $COLLOQUY_BASE_MODEL, the tests' tiny model). */
export async function startTestServer(overrides: DeepPartial<ServerConfig> = {}, appOptions: Omit<BuildAppOptions, 'logger'> = {}): Promise<TestServer> {
  const config = resolveServerConfig({ logLevel: 'silent', ...overrides, port: 0 });
  const app = buildApp(config, { ...appOptions, logger: createLogger({ level: process.env.TEST_LOG_LEVEL as 'info' | undefined ?? 'silent' }) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return { app, config, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/v1/env`, close: () => app.close() };
}

/** A bare client: raw frames in, parsed replies out (no retries, no typing). */
export interface RawClient {
  ws: WebSocket;
  /** Send a request (an id is added when missing) and wait for the reply with that id. */
  call(msg: Record<string, unknown>, timeoutMs?: number): Promise<TReply>;
  /** Send a text (or binary) frame as is. */
  raw(data: string | Buffer, binary?: boolean): void;
  /** The next reply not awaited by call(). */
  next(timeoutMs?: number): Promise<TReply>;
  /** Every parsed reply received so far. */
  received: TReply[];
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

let nextId = 1_000_000;
export async function rawClient(url: string, opts: WebSocket.ClientOptions = {}): Promise<RawClient> {
  const ws = new WebSocket(url, opts);
  const waiting = new Map<unknown, (m: TReply) => void>();
  const strays: TReply[] = [];
  const strayWaiters: ((m: TReply) => void)[] = [];
  const received: TReply[] = [];
  ws.on('message', (buf: Buffer) => {
    const m = JSON.parse(buf.toString()) as TReply;
    received.push(m);
    const w = waiting.get(m.id);
    if (w) { waiting.delete(m.id); w(m); return; }
    const sw = strayWaiters.shift();
    if (sw) sw(m); else strays.push(m);
  });
  const closed = new Promise<{ code: number; reason: string }>(ok => ws.once('close', (code, reason) => ok({ code, reason: reason.toString() })));
  // Handlers are attached before the socket opens: a frame can arrive with the upgrade response.
  await new Promise<void>((ok, bad) => { ws.once('open', () => ok()); ws.once('error', bad); });
  return {
    ws, received, closed,
    call(msg, timeoutMs = 10_000) {
      const id = msg.id ?? nextId++;
      return new Promise((ok, bad) => {
        waiting.set(id, ok);
        ws.send(JSON.stringify({ id, ...msg }));
        setTimeout(() => { if (waiting.delete(id)) bad(new Error(`no reply to ${JSON.stringify(msg).slice(0, 100)}`)); }, timeoutMs).unref();
      });
    },
    raw(data, binary = false) { ws.send(data, { binary }); },
    next(timeoutMs = 10_000) {
      if (strays.length) return Promise.resolve(strays.shift()!);
      return new Promise((ok, bad) => {
        strayWaiters.push(ok);
        setTimeout(() => { const i = strayWaiters.indexOf(ok); if (i >= 0) { strayWaiters.splice(i, 1); bad(new Error('no stray reply')); } }, timeoutMs).unref();
      });
    },
    close() { ws.close(); },
  };
}


// ---- an env that waits for the test ----

/** What a gated env's sub-envs did (shared by every sub-env made with the same `gate` name). */
export interface GatedCalls {
  /** Opened by the test: until then every gated reset/step waits. */
  readonly gate: Gate;
  /** Gated calls that entered the env, and those that returned. */
  started: number;
  finished: number;
  closed: number;
}

const gatedCalls = new Map<string, GatedCalls>();

/** A fresh record (and closed gate) for `TestGated-v0` made with `kwargs: { gate: name }`. */
export function gated(name: string): GatedCalls {
  const g: GatedCalls = { gate: new Gate(), started: 0, finished: 0, closed: 0 };
  gatedCalls.set(name, g);
  return g;
}

/** Open every gate (afterEach: nothing stays blocked when the server closes). */
export function openAllGates(): void { for (const g of gatedCalls.values()) g.gate.open(); }

/**
 * `TestGated-v0`: reset (unless `resetToo: false`) and step wait until the test opens the gate
 * named by `kwargs.gate`: a request is slow exactly as long as the test says, and the counts tell
 * how far the env got, instead of guessing with delays. Registered on demand (other server tests
 * list the registered envs).
 */
export function registerGatedEnv(): void {
  if (registeredIds().includes('TestGated-v0')) return;
  class GatedEnv implements Env<number, number> {
    readonly observationSpace = new Discrete(2);
    readonly actionSpace = new Discrete(2);
    spec: EnvSpec | null = null;
    constructor(private readonly g: GatedCalls, private readonly resetToo: boolean) {}
    private async pass(): Promise<void> { this.g.started++; await this.g.gate.opened; this.g.finished++; }
    async reset() { if (this.resetToo) await this.pass(); return { observation: 0, info: {} }; }
    async step() { await this.pass(); return { observation: 1, reward: 1, terminated: false, truncated: false, info: {} }; }
    async close() { this.g.closed++; }
  }
  register({
    id: 'TestGated-v0',
    entryPoint: kw => {
      const g = gatedCalls.get(kw.gate as string);
      if (!g) throw new BadConfig(`no gate '${String(kw.gate)}': call gated(name) first`);
      return new GatedEnv(g, kw.resetToo as boolean);
    },
    kwargsSchema: Type.Object({ gate: Type.String({ default: '' }), resetToo: Type.Boolean({ default: true }) }, { additionalProperties: false }),
    description: 'test env whose reset and step wait until the test opens a gate',
  });
}
