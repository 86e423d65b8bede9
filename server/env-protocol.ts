/**
 * The env protocol engine (v1) behind `/v1/env`: it reads every frame, validates it against the
 * compiled schema of its op, and answers with a reply carrying the request's id. Requests on one
 * session run in order through the session's queue; requests on different sessions (and `make`,
 * `ping`, `resume`) do not wait for each other. Nothing thrown escapes a handler: every failure is
 * a coded error reply, and the connection and the server live on.
 *
 * Hot path (a `step`): size check → UTF-8 check → JSON.parse → compiled validator → action check →
 * `vec.step` → reply built around one JSON.stringify of the result. No logging above debug, no
 * per-request timer (one sweep finds timed-out requests), metrics are prom-client children resolved once.
 * A binary frame (protocol/binary.ts: a step with packed actions) is read into the request it
 * stands for and then goes the same way; sessions made with obsEncoding 'binary' get their reset
 * and step replies as binary frames.
 */
import { isUtf8 } from 'node:buffer';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { ColloquyError, InvalidAction, ResetNeeded, toErrorBody, type ErrorCode } from '../core/errors.ts';
import type { ServerConfig } from '../configs/server.ts';
import type { Counter, CounterChild, Histogram, MetricsRegistry } from './metrics.ts';
import { LATENCY_BUCKETS } from './metrics.ts';
import {
  OPS, RNG_FACTS, describeSchemaError, errorFrame, idOf, idToJson, infosJson, okFrame, RawJson, sniffId, unsafeValue, validatorFor, vectorResultJson, wireSeed,
  type CloseResult, type MakeRequest, type Op, type PingRequest, type Request, type ResetRequest, type ResumeRequest, type ResumeResult, type SessionRequest, type StateResult,
} from '../protocol/v1.ts';
import type { Job, Session, SessionManager, SessionOwner } from './sessions.ts';
import { EpisodeTracker } from './episodes.ts';
import { scrubBody } from './resources.ts';
import type { VectorSeed } from '../env/core.ts';
import { binaryResultFrame, requestFromBinary } from '../protocol/binary.ts';

/** A reset/step result of a binary session (pump builds its binary frame). */
class BinaryResult { constructor(readonly r: Record<string, unknown>) {} }

/** A slow reader's send buffer above this gets its connection dropped. */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
const OPEN = 1;

export class Connection implements SessionOwner {
  readonly sessions = new Set<Session>();
  /** Requests accepted and not yet answered. */
  pending = 0;
  lastSeen = Date.now();
  private pingedAt: number | null = null;
  constructor(readonly id: number, readonly ws: WebSocket, readonly log: Logger) {}
  get probedAt(): number | null { return this.pingedAt !== null && this.lastSeen < this.pingedAt ? this.pingedAt : null; }
  probe(now: number): void {
    if (this.probedAt !== null || this.ws.readyState !== OPEN) return;
    this.pingedAt = now;
    this.ws.ping();
  }
  send(frame: string | Buffer): void {
    const ws = this.ws;
    if (ws.readyState !== OPEN) return;
    ws.send(frame);
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.log.warn({ bufferedAmount: ws.bufferedAmount }, 'client does not read its replies; dropping the connection');
      ws.terminate();
    }
  }
}

export interface EnvProtocolDeps { config: ServerConfig; sessions: SessionManager; metrics: MetricsRegistry; log: Logger }

export class EnvProtocol {
  readonly connections = new Set<Connection>();
  /** Session requests accepted and not finished, in arrival order. */
  private readonly inflight = new Set<Job>();
  private readonly trackers = new WeakMap<Session, EpisodeTracker>();
  private draining = false;
  private nextConnId = 1;
  private heartbeat: NodeJS.Timeout | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly config: ServerConfig;
  private readonly sessions: SessionManager;
  private readonly log: Logger;
  private readonly mRequests: Record<Op, CounterChild>;
  private readonly mErrors: Counter;
  private readonly mErrorsByCode = new Map<ErrorCode, CounterChild>();
  private readonly mEnvSteps: CounterChild;
  private readonly mStepLatency: Histogram;

  constructor(deps: EnvProtocolDeps) {
    this.config = deps.config;
    this.sessions = deps.sessions;
    this.log = deps.log;
    const m = deps.metrics;
    m.gauge('colloquy_connections', 'Open WebSocket connections on /v1/env.', () => this.connections.size);
    const requests = m.counter('colloquy_requests_total', 'Protocol requests accepted, by op.', ['op']);
    this.mRequests = Object.fromEntries(OPS.map(op => [op, requests.labels(op)])) as Record<Op, CounterChild>;
    this.mErrors = m.counter('colloquy_errors_total', 'Error replies sent, by code.', ['code']);
    this.mEnvSteps = m.counter('colloquy_env_steps_total', 'Sub-env steps taken (a step request on N envs counts N).').labels();
    this.mStepLatency = m.histogram('colloquy_step_duration_seconds', 'Time from a step frame arriving to its reply being sent.', LATENCY_BUCKETS);
  }

  start(): void {
    const hb = this.config.heartbeat;
    this.heartbeat = setInterval(() => this.beat(), hb.intervalMs);
    this.heartbeat.unref();
    const every = Math.max(5, Math.min(1000, Math.floor(this.config.limits.requestTimeoutMs / 4)));
    this.sweeper = setInterval(() => this.sweepTimeouts(), every);
    this.sweeper.unref();
  }

  /** Take a freshly upgraded socket. Handlers are attached synchronously so that no frame is lost. */
  accept(ws: WebSocket, remote: string): Connection {
    const conn = new Connection(this.nextConnId++, ws, this.log.child({ conn: this.nextConnId - 1 }));
    ws.on('message', (data, isBinary) => {
      try { this.onFrame(conn, data as Buffer, isBinary); } catch (err) {
        // onFrame answers every failure itself; this is the net under that net.
        conn.log.error({ err }, 'frame handler failed');
        this.reply(conn, 'null', 'INTERNAL', 'internal error');
      }
    });
    ws.on('pong', () => { conn.lastSeen = Date.now(); });
    ws.on('close', (code, reason) => {
      this.connections.delete(conn);
      this.sessions.detachAll(conn);
      conn.log.info({ code, reason: reason.toString().slice(0, 120) }, 'connection closed');
    });
    if (this.draining || this.connections.size >= this.config.limits.maxConnections) {
      const closing = this.draining;
      this.reply(conn, 'null', closing ? 'CLOSED' : 'CAPACITY', closing ? 'the server is shutting down' : `the server holds its maximum of ${this.config.limits.maxConnections} connections`);
      ws.close(closing ? 1001 : 1013, closing ? 'server shutting down' : 'server at capacity');
      return conn;
    }
    this.connections.add(conn);
    conn.log.info({ remote }, 'connection opened');
    return conn;
  }

  // ---- frames ----

  private onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    const t0 = performance.now();
    conn.lastSeen = Date.now();
    const max = this.config.limits.maxFrameBytes;
    if (data.length > max) {
      // (A binary frame's header, with the id first, starts after its 4-byte length.)
      return this.reply(conn, idToJson(sniffId(data.toString('latin1', isBinary ? 4 : 0, 400))), 'PAYLOAD_TOO_LARGE', `frame of ${data.length} bytes is above the limit of ${max} bytes`);
    }
    let msg: unknown;
    if (isBinary) {
      try { msg = requestFromBinary(data); } catch (err) {
        return conn.send(this.errorFrameFor(idToJson(idOf((err as { header?: unknown }).header)), err, conn.log));
      }
    } else {
      if (!isUtf8(data)) return this.reply(conn, 'null', 'BAD_JSON', 'frame is not valid UTF-8');
      try { msg = JSON.parse(data.toString()); } catch { return this.reply(conn, 'null', 'BAD_JSON', 'frame is not valid JSON'); }
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return this.reply(conn, 'null', 'BAD_REQUEST', 'a request must be a JSON object');
    const idJson = idToJson(idOf(msg));
    const op = (msg as { op?: unknown }).op;
    if (typeof op !== 'string') return this.reply(conn, idJson, 'BAD_REQUEST', "request is missing 'op' (a string)");
    const validate = validatorFor(op);
    if (!validate) return this.reply(conn, idJson, 'UNKNOWN_OP', `unknown op '${op.slice(0, 64)}'; ops are ${OPS.join(', ')}`);
    if (!validate(msg)) return this.reply(conn, idJson, 'BAD_REQUEST', describeSchemaError(validate.errors));
    if (this.draining) return this.reply(conn, idJson, 'CLOSED', 'the server is shutting down');
    if (conn.pending >= this.config.limits.maxPendingPerConnection) {
      return this.reply(conn, idJson, 'CAPACITY', `more than ${this.config.limits.maxPendingPerConnection} requests pending on this connection`);
    }
    const req = msg as Request;
    this.mRequests[req.op].inc();
    try {
      switch (req.op) {
        case 'step': case 'reset': case 'close': case 'state': return this.enqueue(conn, req, idJson, t0);
        case 'make': return this.make(conn, req, idJson);
        case 'ping': return this.ping(conn, req, idJson);
        case 'resume': return this.resume(conn, req, idJson);
      }
    } catch (err) {
      conn.send(this.errorFrameFor(idJson, err, conn.log));
    }
  }

  /** Send an error reply now. */
  private reply(conn: Connection, idJson: string, code: ErrorCode, message: string): void {
    this.countError(code);
    if (conn.log.isLevelEnabled('debug')) conn.log.debug({ code, message }, 'error reply');
    conn.send(errorFrame(idJson, { code, message }));
  }

  private countError(code: ErrorCode): void {
    let c = this.mErrorsByCode.get(code);
    if (!c) { c = this.mErrors.labels(code); this.mErrorsByCode.set(code, c); }
    c.inc();
  }

  private errorFrameFor(idJson: string, err: unknown, log: Logger): string {
    // An env's own message may name a folder of the server's: absolute paths are cut (server/resources.ts).
    const body = scrubBody(toErrorBody(err));
    if (!(err instanceof ColloquyError)) log.error({ err }, 'internal error');
    else if (log.isLevelEnabled('debug')) log.debug({ code: body.code, message: body.message }, 'error reply');
    this.countError(body.code);
    try { return errorFrame(idJson, body); } catch { return errorFrame(idJson, { code: body.code, message: body.message }); }
  }

  // ---- connection-level ops (synchronous) ----

  private make(conn: Connection, req: MakeRequest, idJson: string): void {
    const why = req.kwargs === undefined ? null : unsafeValue(req.kwargs);
    if (why) return this.reply(conn, idJson, 'BAD_REQUEST', `kwargs: ${why}`);
    const s = this.sessions.create(conn, req);
    conn.send(okFrame(idJson, s.describe()));
  }

  private ping(conn: Connection, _req: PingRequest, idJson: string): void {
    conn.send(okFrame(idJson, { pong: true, time: Date.now() }));
  }

  private resume(conn: Connection, req: ResumeRequest, idJson: string): void {
    const s = this.sessions.resume(req.session, req.token, conn);
    const replayed: ResumeResult['replayed'] = [];
    const inFlight: ResumeResult['inFlight'] = [];
    const lost: ResumeResult['lost'] = [];
    const frames: (string | Buffer)[] = [];
    for (const id of req.pending ?? []) {
      const f = s.storedReply(id);
      if (f !== undefined) { replayed.push(id); frames.push(f); } else if (s.hasJob(id)) inFlight.push(id);
      else if (typeof id === 'number' && id <= s.maxNumericId) lost.push(id);
    }
    const result: ResumeResult = { ...s.describe(), replayed, inFlight, lost };
    conn.send(okFrame(idJson, result));
    for (const f of frames) conn.send(f);
  }

  // ---- session ops (queued per session) ----

  private enqueue(conn: Connection, req: SessionRequest, idJson: string, t0: number): void {
    // A second close of a session is not an error (as a second Env.close()).
    if (req.op === 'close' && this.sessions.wasClosed(req.session)) return conn.send(okFrame(idJson, ALREADY_CLOSED));
    const s = this.sessions.owned(req.session, conn);
    const job: Job = { req, idJson, t0, conn, session: s, timedOut: false };
    if (typeof req.id === 'number' && req.id > s.maxNumericId) s.maxNumericId = req.id;
    conn.pending++;
    this.inflight.add(job);
    s.queue.push(job);
    if (s.current === null) void this.pump(s);
  }

  private settle(job: Job): void {
    this.inflight.delete(job);
    job.conn.pending--;
  }

  /** Run a session's queued requests one after the other. */
  private async pump(s: Session): Promise<void> {
    let job: Job | undefined;
    while ((job = s.queue.shift()) !== undefined) {
      s.current = job;
      const owner = s.owner;
      let frame: string | Buffer;
      try {
        const result = await this.exec(s, job.req);
        frame = result instanceof BinaryResult ? binaryResultFrame(job.idJson, result.r, s.packSize, infosJson) : okFrame(job.idJson, result);
        // Make refused sessions whose replies would be too large; texts can still outgrow the limit.
        if (frame.length > this.config.limits.maxReplyBytes) {
          if (job.req.op === 'step' || job.req.op === 'reset') s.needsReset = true;
          frame = this.errorFrameFor(job.idJson, new ColloquyError('PAYLOAD_TOO_LARGE', `the reply of ${frame.length} bytes is above the limit of ${this.config.limits.maxReplyBytes} bytes (limits.maxReplyBytes); the session needs a reset`), s.log);
        }
      } catch (err) {
        frame = this.errorFrameFor(job.idJson, err, s.log);
      }
      s.current = null;
      s.lastActive = Date.now();
      this.settle(job);
      if (job.timedOut) {
        if (job.req.op !== 'close') s.needsReset = true;
        s.log.warn({ op: job.req.op, ms: Math.round(performance.now() - job.t0) }, 'request finished after its TIMEOUT reply; the session needs a reset');
        continue;
      }
      s.remember(job.req.id, frame);
      if (job.req.op === 'step') this.mStepLatency.observe((performance.now() - job.t0) / 1000);
      // A closed session has no owner any more; its close reply goes to whoever asked.
      (s.owner ?? (s.closed ? owner : null))?.send(frame);
    }
  }

  /** The episode bookkeeping of a session (made on its first request). */
  private tracker(s: Session): EpisodeTracker {
    let t = this.trackers.get(s);
    if (!t) { t = new EpisodeTracker(s.vec.numEnvs, s.vec.autoresetMode); this.trackers.set(s, t); }
    return t;
  }

  private async exec(s: Session, req: SessionRequest): Promise<unknown> {
    if (s.closed) {
      if (req.op === 'close') return ALREADY_CLOSED;
      throw new ColloquyError('UNKNOWN_SESSION', `session ${s.id} was closed`);
    }
    switch (req.op) {
      case 'step': {
        if (s.needsReset) throw new ResetNeeded('a step or reset of this session timed out; reset it');
        const actions = req.actions;
        const n = s.vec.numEnvs;
        if (actions.length !== n) throw new InvalidAction(`expected ${n} actions (one per sub-env), got ${actions.length}`);
        // All actions are checked before any sub-env steps, so that a bad one leaves no trace;
        // except those of sub-envs a next-step autoreset resets in this step: they are ignored.
        const space = s.vec.singleActionSpace;
        const episodes = this.tracker(s);
        for (let i = 0; i < n; i++) {
          if (!episodes.ignoresAction(i) && !space.contains(actions[i])) {
            let why: string | null;
            try { why = space.explain(actions[i]); } catch { why = null; }
            throw new InvalidAction(`actions[${i}]: ${why ?? 'not in the action space'}`);
          }
        }
        const r = await s.vec.step(actions);
        episodes.onStep(r);
        this.mEnvSteps.inc(n);
        return s.binary ? new BinaryResult(r as unknown as Record<string, unknown>) : new RawJson(vectorResultJson(r, s.packSize));
      }
      case 'reset': {
        const why = req.options === undefined ? null : unsafeValue(req.options);
        if (why) throw new ColloquyError('BAD_REQUEST', `options: ${why}`);
        const n = s.vec.numEnvs;
        const seed = vectorSeed(req.seed, n);
        const r = await s.vec.reset({ seed, options: req.options });
        s.needsReset = false;
        const mask = req.options?.resetMask;
        this.tracker(s).onReset(Array.from({ length: n }, (_, i) => seed === undefined ? undefined : typeof seed === 'number' ? seed + i : seed[i] ?? undefined),
          Array.isArray(mask) ? mask as boolean[] : null);
        return s.binary ? new BinaryResult(r as unknown as Record<string, unknown>) : new RawJson(vectorResultJson(r, s.packSize));
      }
      case 'state': {
        const t = this.tracker(s);
        const result: StateResult = {
          session: s.id, env: s.envId, numEnvs: s.vec.numEnvs, autoresetMode: s.vec.autoresetMode, obsEncoding: s.obsEncoding,
          spec: s.vec.spec, hasReset: t.hasReset, needsReset: s.needsReset, resets: t.resets, steps: t.steps,
          episode: [...t.episode], episodeSteps: [...t.episodeSteps], ended: [...t.ended], seeds: [...t.seeds], rng: RNG_FACTS,
        };
        return result;
      }
      case 'close':
        await this.sessions.close(s, 'closed by the client');
        return { closed: true };
    }
  }

  // ---- timers ----

  /** Reply TIMEOUT to requests older than `requestTimeoutMs` (they arrive in order, so stop at the first young one). */
  private sweepTimeouts(): void {
    const limit = this.config.limits.requestTimeoutMs;
    const now = performance.now();
    for (const job of this.inflight) {
      if (now - job.t0 < limit) break;
      if (job.timedOut) continue;
      job.timedOut = true;
      const s = job.session;
      const frame = errorFrame(job.idJson, { code: 'TIMEOUT', message: `no reply within ${limit} ms` });
      this.countError('TIMEOUT');
      s.log.warn({ op: job.req.op, limitMs: limit }, 'request timed out');
      s.remember(job.req.id, frame);
      s.owner?.send(frame);
      const queued = s.current === job ? -1 : s.queue.indexOf(job);
      if (queued >= 0) { s.queue.splice(queued, 1); this.settle(job); }
    }
  }

  /** Ping every connection; drop those silent for longer than the heartbeat timeout. */
  private beat(): void {
    const now = Date.now();
    const timeout = this.config.heartbeat.timeoutMs;
    for (const conn of this.connections) {
      if (now - conn.lastSeen > timeout) {
        conn.log.warn({ silentMs: now - conn.lastSeen }, 'heartbeat timeout; dropping the connection');
        conn.ws.terminate();
      } else if (conn.ws.readyState === OPEN) {
        conn.ws.ping();
      }
    }
  }

  // ---- shutdown ----

  /**
   * Graceful stop: refuse new requests (CLOSED), let in-flight ones finish and send their replies
   * (up to `shutdownTimeoutMs`), close every session, then close the sockets with 1001.
   */
  async shutdown(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    if (this.inflight.size) this.log.info({ inflight: this.inflight.size }, 'shutdown: finishing in-flight requests');
    while (this.inflight.size && Date.now() < deadline) await sleep(5);
    if (this.inflight.size) this.log.warn({ inflight: this.inflight.size }, 'shutdown: requests still running at the deadline; closing anyway');
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.sweeper) clearInterval(this.sweeper);
    await this.sessions.closeAll('server shutting down');
    const conns = [...this.connections];
    for (const c of conns) c.ws.close(1001, 'server shutting down');
    const closeDeadline = Date.now() + 1000;
    while (conns.some(c => c.ws.readyState !== 3) && Date.now() < closeDeadline) await sleep(5);
    for (const c of conns) if (c.ws.readyState !== 3) c.ws.terminate();
  }
}

function sleep(ms: number): Promise<void> { return new Promise(r => setTimeout(r, ms)); }

const ALREADY_CLOSED: CloseResult = { closed: true, alreadyClosed: true };

/** A reset's seed from the wire as the vector env takes it (BAD_REQUEST for a list of the wrong length). */
function vectorSeed(seed: ResetRequest['seed'], numEnvs: number): VectorSeed | undefined {
  if (seed === undefined) return undefined;
  if (!Array.isArray(seed)) return wireSeed(seed);
  if (seed.length !== numEnvs) throw new ColloquyError('BAD_REQUEST', `seed: a list of seeds needs one per sub-env (${numEnvs}), got ${seed.length}`);
  return seed.map(x => (x === null ? null : wireSeed(x)));
}
