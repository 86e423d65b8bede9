/**
 * The remote env client: a vector env (or a single env) on a Colloquy server, behind the same
 * `VectorEnv` / `Env` interfaces as a local one, so agent code does not care where the env runs.
 *
 *   const envs = await connectVectorEnv('ws://127.0.0.1:8787/v1/env', { env: 'Echo-v0', numEnvs: 8 });
 *   const { observations } = await envs.reset({ seed: 42 });
 *   const r = await envs.step(actions);
 *   await envs.close();
 *
 * Errors come back as the typed classes of core/errors.ts (`ResetNeeded`, `InvalidAction`,
 * `NameNotFound`, else `ColloquyError` with the server's code). When the connection drops, the
 * client reconnects with backoff, `resume`s its sessions with their tokens, gets the replies it
 * lost re-sent by the server, and re-sends requests the server never saw — so a request in flight
 * during a drop completes exactly once, and trajectories stay identical.
 */
import WebSocket from 'ws';
import type { AutoresetMode, Env, EnvSpec, ResetArgs, ResetResult, StepResult, VectorEnv, VectorResetArgs, VectorResetResult, VectorStepResult } from '../env/core.ts';
import { BadConfig, ColloquyError, EnvClosed, ERROR_CODES, InvalidAction, NameNotFound, ResetNeeded, type ErrorBody, type ErrorCode } from '../core/errors.ts';
import { spaceFromJSON, type Space } from '../env/spaces.ts';
import { binaryStepFrame, replyFromBinary } from '../protocol/binary.ts';
import { isPacked, unpackF64, type MakeResult, type ObsEncoding, type Op, type Reply, type Request, type ResultOf, type ResumeResult, type StateResult } from '../protocol/v1.ts';

// ---- errors ----

/** Turn an error body from the wire back into the typed error class. */
export function errorFromBody(body: ErrorBody, context: { env?: string } = {}): ColloquyError {
  const code: ErrorCode = (ERROR_CODES as readonly string[]).includes(body.code) ? body.code : 'INTERNAL';
  switch (code) {
    case 'RESET_NEEDED': return new ResetNeeded(body.message);
    case 'INVALID_ACTION': return new InvalidAction(body.message);
    case 'BAD_CONFIG': return new BadConfig(body.message, body.details);
    case 'CLOSED': return new EnvClosed(body.message);
    case 'UNKNOWN_ENV': {
      const suggestion = typeof body.details?.suggestion === 'string' ? body.details.suggestion : undefined;
      if (context.env !== undefined) return new NameNotFound(context.env, suggestion);
      return new ColloquyError(code, body.message, body.details);
    }
    default: return new ColloquyError(code, body.message, body.details);
  }
}

// ---- the protocol connection ----

export interface ReconnectOptions {
  /** Attempts before giving up (default 10). */
  attempts?: number;
  /** First delay, doubled per attempt (default 100 ms). */
  initialDelayMs?: number;
  /** Longest delay between attempts (default 5000 ms). */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** Bearer token (sent as `Authorization: Bearer T`). */
  token?: string;
  /** Reconnect and resume sessions after a dropped connection (default: on). */
  reconnect?: boolean | ReconnectOptions;
  /** Reject a request with TIMEOUT when no reply came within this (default 300000; 0: never). */
  requestTimeoutMs?: number;
  /** Ping the server this often and drop a connection silent for 3 periods (default 20000; 0: off). */
  heartbeatMs?: number;
  /** Called after a successful reconnect (for logs). */
  onReconnect?: (info: { attempt: number; resumed: string[]; lost: string[] }) => void;
}

type RequestBody<K extends Op> = Omit<Extract<Request, { op: K }>, 'id'>;

interface Pending {
  id: number;
  op: Op;
  session: string | undefined;
  /** The frame as sent (a Buffer: a binary frame). */
  frame: string | Buffer;
  t0: number;
  /** Re-sent after a reconnect (internal resume requests are not). */
  resend: boolean;
  env?: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
}

const OPEN = 1;

function openSocket(url: string, token: string | undefined): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, perMessageDeflate: false });
    const fail = (err: Error) => { ws.removeAllListeners(); ws.on('error', () => {}); ws.terminate(); reject(err); };
    ws.once('open', () => { ws.removeAllListeners('error'); ws.removeAllListeners('unexpected-response'); resolve(ws); });
    ws.once('error', err => fail(new ColloquyError('CLOSED', `cannot connect to ${url}: ${err.message}`)));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (body.length < 4096) body += c; });
      res.on('end', () => {
        let err: ErrorBody | undefined;
        try { err = (JSON.parse(body) as { error?: ErrorBody }).error; } catch { /* not JSON */ }
        const status = res.statusCode ?? 0;
        const code: ErrorCode = status === 401 ? 'UNAUTHORIZED' : status === 503 ? 'CLOSED' : err?.code ?? 'INTERNAL';
        fail(new ColloquyError(code, err?.message ?? `server answered the upgrade with HTTP ${status}`));
      });
    });
  });
}

/** One WebSocket connection speaking protocol v1, with pipelining, reconnect and resume. */
export class ProtocolClient {
  private ws: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Sessions made through this client: id → resume token. */
  private readonly tokens = new Map<string, string>();
  private closing = false;
  /** Set when the connection is gone for good (no reconnect, or reconnecting failed). */
  private dead: ColloquyError | null = null;
  private reconnecting: Promise<void> | null = null;
  /** Requests are held (not sent) from a drop until the sessions are resumed. */
  private holding = false;
  private lastHeard = Date.now();
  private timers: NodeJS.Timeout[] = [];
  private readonly reconnectOpts: Required<ReconnectOptions> | null;

  private constructor(readonly url: string, private readonly opts: ClientOptions) {
    const r = opts.reconnect ?? true;
    this.reconnectOpts = r === false ? null : { attempts: 10, initialDelayMs: 100, maxDelayMs: 5000, ...(r === true ? {} : r) };
  }

  static async connect(url: string, opts: ClientOptions = {}): Promise<ProtocolClient> {
    const c = new ProtocolClient(url, opts);
    c.attach(await openSocket(url, opts.token));
    c.startTimers();
    return c;
  }

  get connected(): boolean { return this.ws?.readyState === OPEN; }
  /** Sessions this client would resume after a drop. */
  get sessions(): string[] { return [...this.tokens.keys()]; }

  private attach(ws: WebSocket): void {
    this.ws = ws;
    this.lastHeard = Date.now();
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('pong', () => { this.lastHeard = Date.now(); });
    ws.on('error', () => { /* 'close' follows */ });
    ws.on('close', () => this.onClose(ws));
  }

  private startTimers(): void {
    const timeout = this.opts.requestTimeoutMs ?? 300_000;
    if (timeout > 0) {
      const t = setInterval(() => {
        const now = performance.now();
        for (const p of this.pending.values()) {
          if (now - p.t0 < timeout) break;
          this.pending.delete(p.id);
          p.reject(new ColloquyError('TIMEOUT', `no reply to '${p.op}' within ${timeout} ms`));
        }
      }, Math.min(1000, Math.max(10, timeout / 4)));
      t.unref();
      this.timers.push(t);
    }
    const hb = this.opts.heartbeatMs ?? 20_000;
    if (hb > 0) {
      const t = setInterval(() => {
        const ws = this.ws;
        if (!ws || ws.readyState !== OPEN) return;
        if (Date.now() - this.lastHeard > 3 * hb) ws.terminate();
        else ws.ping();
      }, hb);
      t.unref();
      this.timers.push(t);
    }
  }

  private onMessage(data: Buffer, isBinary = false): void {
    this.lastHeard = Date.now();
    let msg: Reply;
    try { msg = (isBinary ? replyFromBinary(data) : JSON.parse(data.toString())) as Reply; } catch { return; }
    const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
    if (!p) return; // a reply we gave up on, or an error without an id
    this.pending.delete(p.id);
    if (msg.ok) {
      if (p.op === 'make') { const r = msg.result as MakeResult; this.tokens.set(r.session, r.resumeToken); }
      else if (p.op === 'close' && p.session) this.tokens.delete(p.session);
      p.resolve(msg.result);
    } else {
      if (p.op === 'close' && p.session) this.tokens.delete(p.session);
      p.reject(errorFromBody(msg.error, { env: p.env }));
    }
  }

  /**
   * Send a request; resolves with its result or rejects with the typed error. `binary`: a step
   * goes as a binary frame (protocol/binary.ts) when its actions are non-integer numbers or flat
   * rows of them (integer actions go as JSON: smaller, and cheaper end to end).
   */
  request<K extends Op>(body: RequestBody<K> & { op: K }, binary = false): Promise<ResultOf[K]> {
    if (this.closing) return Promise.reject(new EnvClosed('client is closed'));
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const step = binary && body.op === 'step' ? body as unknown as RequestBody<'step'> : null;
    const frame = (step && binaryStepFrame(id, step.session, step.actions)) || JSON.stringify({ id, ...body });
    const session = (body as { session?: string }).session;
    return new Promise<ResultOf[K]>((resolve, reject) => {
      const p: Pending = { id, op: body.op, session, frame, t0: performance.now(), resend: body.op !== 'resume', resolve: resolve as (v: unknown) => void, reject };
      if (body.op === 'make') p.env = (body as unknown as { env: string }).env;
      this.pending.set(id, p);
      const ws = this.ws;
      // While reconnecting, requests wait and are sent once the sessions are resumed.
      if (ws && ws.readyState === OPEN && !this.holding) ws.send(frame);
    });
  }

  private onClose(ws: WebSocket): void {
    if (this.ws !== ws) return;
    this.ws = null;
    if (this.closing) { this.rejectAll(new EnvClosed('client is closed')); return; }
    if (!this.reconnectOpts) { this.dead = new ColloquyError('CLOSED', `lost the connection to ${this.url}`); this.rejectAll(this.dead); return; }
    // Internal requests (resume) die with their connection; the reconnect loop retries them.
    for (const p of [...this.pending.values()]) if (!p.resend) { this.pending.delete(p.id); p.reject(new ColloquyError('CLOSED', 'connection lost')); }
    this.holding = true;
    this.reconnecting ??= this.reconnect().finally(() => { this.reconnecting = null; });
  }

  private async reconnect(): Promise<void> {
    const { attempts, initialDelayMs, maxDelayMs } = this.reconnectOpts!;
    let delay = initialDelayMs;
    let lastErr: Error | null = null;
    for (let attempt = 1; attempt <= attempts && !this.closing; attempt++) {
      await new Promise(r => setTimeout(r, delay));
      delay = Math.min(delay * 2, maxDelayMs);
      let ws: WebSocket;
      try { ws = await openSocket(this.url, this.opts.token); } catch (err) {
        lastErr = err as Error;
        if (err instanceof ColloquyError && err.code === 'UNAUTHORIZED') break;
        continue;
      }
      if (this.closing) { ws.terminate(); break; }
      this.attach(ws);
      try {
        const resumed: string[] = [], lost: string[] = [];
        const skip = new Set<number>();
        for (const [session, token] of [...this.tokens]) {
          const ids = [...this.pending.values()].filter(p => p.session === session).map(p => p.id);
          let r: ResumeResult;
          try {
            r = await this.sendInternal({ op: 'resume', session, token, pending: ids });
          } catch (err) {
            if (!(err instanceof ColloquyError) || err.code !== 'UNKNOWN_SESSION') throw err;
            // The server closed it (resume window elapsed): its requests cannot succeed.
            this.tokens.delete(session);
            lost.push(session);
            for (const id of ids) { const p = this.pending.get(id)!; this.pending.delete(id); p.reject(err); }
            continue;
          }
          // A token works once: the reply carries the next one.
          this.tokens.set(session, r.resumeToken);
          resumed.push(session);
          for (const id of [...r.replayed, ...r.inFlight]) if (typeof id === 'number') skip.add(id);
          for (const id of r.lost ?? []) {
            const p = typeof id === 'number' ? this.pending.get(id) : undefined;
            if (!p) continue;
            this.pending.delete(p.id);
            p.reject(new ColloquyError('TIMEOUT', `the reply to '${p.op}' was lost with the connection and is no longer stored on the server; the session's state is unknown: reset it`));
          }
        }
        // Everything the server never saw goes again, in the original order.
        for (const p of this.pending.values()) if (p.resend && !skip.has(p.id) && ws.readyState === OPEN) ws.send(p.frame);
        if (ws.readyState !== OPEN) throw new ColloquyError('CLOSED', 'connection lost while resuming');
        this.holding = false;
        this.opts.onReconnect?.({ attempt, resumed, lost });
        return;
      } catch (err) {
        lastErr = err as Error;
        if (ws.readyState === OPEN) ws.terminate();
        if (this.ws === ws) this.ws = null;
      }
    }
    this.holding = false;
    this.dead = new ColloquyError('CLOSED', `lost the connection to ${this.url} and could not reconnect${lastErr ? `: ${lastErr.message}` : ''}`);
    this.rejectAll(this.dead);
  }

  /** A request sent on the current socket right away (used while resuming). */
  private sendInternal<K extends Op>(body: RequestBody<K> & { op: K }): Promise<ResultOf[K]> {
    const id = this.nextId++;
    const frame = JSON.stringify({ id, ...body });
    return new Promise<ResultOf[K]>((resolve, reject) => {
      this.pending.set(id, { id, op: body.op, session: undefined, frame, t0: performance.now(), resend: false, resolve: resolve as (v: unknown) => void, reject });
      this.ws!.send(frame);
    });
  }

  private rejectAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  /** Drop the TCP connection without a close handshake (tests of resume). */
  dropConnection(): void { this.ws?.terminate(); }

  /** Close the connection (sessions left open are closed by the server after its resume window). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    const ws = this.ws;
    if (!ws) { this.rejectAll(new EnvClosed('client is closed')); return; }
    await new Promise<void>(resolve => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      const t = setTimeout(() => { ws.terminate(); resolve(); }, 2000);
      ws.once('close', () => { clearTimeout(t); resolve(); });
      ws.close(1000, 'client closing');
    });
  }
}

// ---- the vector env ----

export interface ConnectVectorEnvOptions extends ClientOptions {
  env: string;
  kwargs?: Record<string, unknown>;
  numEnvs?: number;
  autoresetMode?: AutoresetMode;
  /**
   * `f64` (Box observation spaces): observations travel packed as exact float64 (much cheaper to
   * encode and decode than JSON numbers); `binary`: reset and step replies, and steps, travel as
   * binary frames of typed arrays (cheaper still). The env returns the same arrays either way.
   */
  obsEncoding?: ObsEncoding;
  /** Share an existing connection (several sessions on one socket) instead of opening one. */
  client?: ProtocolClient;
}

/** A vector env living on a server: the `VectorEnv` interface over protocol v1. */
export class RemoteVectorEnv<O = unknown, A = unknown> implements VectorEnv<O, A> {
  readonly numEnvs: number;
  readonly singleObservationSpace: Space<O>;
  readonly singleActionSpace: Space<A>;
  readonly autoresetMode: AutoresetMode;
  spec: EnvSpec | null;
  readonly session: string;
  /** obsEncoding 'binary': steps go as binary frames. */
  private readonly binary: boolean;
  private closed = false;

  constructor(readonly client: ProtocolClient, made: MakeResult, private readonly ownsClient: boolean) {
    this.session = made.session;
    this.binary = made.obsEncoding === 'binary';
    this.numEnvs = made.numEnvs;
    this.autoresetMode = made.autoresetMode;
    this.spec = made.spec;
    this.singleObservationSpace = spaceFromJSON(made.observationSpace) as Space<O>;
    this.singleActionSpace = spaceFromJSON(made.actionSpace) as Space<A>;
  }

  /** `seed`: one (sub-env i gets `seed + i`) or one per sub-env, as Gymnasium's. */
  async reset(args: VectorResetArgs = {}): Promise<VectorResetResult<O>> {
    if (this.closed) throw new EnvClosed();
    const body: RequestBody<'reset'> & { op: 'reset' } = { op: 'reset', session: this.session };
    if (args.seed !== undefined) body.seed = typeof args.seed === 'number' ? args.seed : [...args.seed];
    if (args.options !== undefined) body.options = args.options;
    return unpacked(await this.client.request(body)) as VectorResetResult<O>;
  }

  async step(actions: A[]): Promise<VectorStepResult<O>> {
    if (this.closed) throw new EnvClosed();
    return unpacked(await this.client.request({ op: 'step', session: this.session, actions }, this.binary)) as VectorStepResult<O>;
  }

  /** The session's state on the server: episodes, steps, seeds, how the server's RNG reads seeds. */
  async state(): Promise<StateResult> {
    if (this.closed) throw new EnvClosed();
    return this.client.request({ op: 'state', session: this.session });
  }

  /** Close the session (and the connection, when this env opened it). Calling twice is fine. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try { await this.client.request({ op: 'close', session: this.session }); } catch (err) {
      // Already gone on the server, or the connection is: either way the session is closed.
      if (!(err instanceof ColloquyError) || !['UNKNOWN_SESSION', 'CLOSED'].includes(err.code)) throw err;
    } finally {
      if (this.ownsClient) await this.client.close();
    }
  }
}

/** A result whose observations came packed, with them as arrays again. */
function unpacked<R extends { observations: unknown }>(r: R): R {
  if (isPacked(r.observations)) r.observations = unpackF64(r.observations);
  return r;
}

/** Make a vector env on the server at `url` (ws://host:port/v1/env). */
export async function connectVectorEnv<O = unknown, A = unknown>(url: string, opts: ConnectVectorEnvOptions): Promise<RemoteVectorEnv<O, A>> {
  const client = opts.client ?? await ProtocolClient.connect(url, opts);
  try {
    const body: RequestBody<'make'> & { op: 'make' } = { op: 'make', env: opts.env };
    if (opts.kwargs !== undefined) body.kwargs = opts.kwargs;
    if (opts.numEnvs !== undefined) body.numEnvs = opts.numEnvs;
    if (opts.autoresetMode !== undefined) body.autoresetMode = opts.autoresetMode;
    if (opts.obsEncoding !== undefined) body.obsEncoding = opts.obsEncoding;
    const made = await client.request(body);
    return new RemoteVectorEnv<O, A>(client, made, !opts.client);
  } catch (err) {
    if (!opts.client) await client.close();
    throw err;
  }
}

// ---- the single env ----

/** The `Env` interface over a vector env of one sub-env (local or remote). */
export class SingleEnvAdapter<O = unknown, A = unknown> implements Env<O, A> {
  constructor(readonly vec: VectorEnv<O, A>) {
    if (vec.numEnvs !== 1) throw new BadConfig(`SingleEnvAdapter needs a vector env of 1 sub-env, got ${vec.numEnvs}`);
  }
  get observationSpace(): Space<O> { return this.vec.singleObservationSpace; }
  get actionSpace(): Space<A> { return this.vec.singleActionSpace; }
  get spec(): EnvSpec | null { return this.vec.spec; }
  set spec(s: EnvSpec | null) { this.vec.spec = s; }
  async reset(args: ResetArgs = {}): Promise<ResetResult<O>> {
    const r = await this.vec.reset(args);
    return { observation: r.observations[0]!, info: r.infos[0]! };
  }
  async step(action: A): Promise<StepResult<O>> {
    const r = await this.vec.step([action]);
    return { observation: r.observations[0]!, reward: r.rewards[0]!, terminated: r.terminated[0]!, truncated: r.truncated[0]!, info: r.infos[0]! };
  }
  close(): Promise<void> { return this.vec.close(); }
}

export type ConnectEnvOptions = Omit<ConnectVectorEnvOptions, 'numEnvs' | 'autoresetMode'>;

/**
 * Make a single env on the server: a session of one sub-env without autoreset, so that, like a
 * local `make(id)`, a step after the episode ended is RESET_NEEDED.
 */
export async function connectEnv<O = unknown, A = unknown>(url: string, opts: ConnectEnvOptions): Promise<SingleEnvAdapter<O, A>> {
  const vec = await connectVectorEnv<O, A>(url, { ...opts, numEnvs: 1, autoresetMode: 'disabled' });
  return new SingleEnvAdapter(vec);
}
