/**
 * OpenEnv's protocol (huggingface/OpenEnv, `openenv.core`: EnvClient / GenericEnvClient) spoken
 * over Colloquy's protocol v1, so that OpenEnv's own unmodified client can use every Colloquy env.
 * A client that takes `base_url = http://HOST/openenv/ENV_ID` opens the WebSocket
 * `/openenv/ENV_ID/ws` and sends `{type, data}` messages, one at a time:
 *
 *   {"type":"reset","data":{"seed":1,"episode_id":"e1", ...kwargs}}  → {"type":"observation","data":STEP}
 *   {"type":"step","data":{"action":A}}                               → {"type":"observation","data":STEP}
 *   {"type":"state"}                                                  → {"type":"state","data":STATE}
 *   {"type":"close"}                                                  → the socket closes (no reply)
 *   anything wrong                                                    → {"type":"error","data":{"code","message","colloquy_code"}}
 *
 *   STEP  = {"observation": {"obs": O, "terminated": bool, "truncated": bool, "info": {...}}, "reward": r | null, "done": terminated || truncated}
 *   STATE = {"episode_id": id | null, "step_count": n, "env_id", "kwargs", "seed", "terminated", "truncated", "session", "rng"}
 *
 * A reset's fields other than `seed`, `episode_id` and `options` are the env's kwargs (the form
 * OpenEnv gives a client to carry custom reset parameters): each episode runs on an env made with
 * exactly the kwargs of its reset; the session is made again only when they differ from the
 * current one's. Every message becomes v1 requests on one v1 connection of the shared engine
 * (server/env-protocol.ts) through a bridge socket, so the limits, capacity, timeouts, heartbeat,
 * metrics and dialog recording are those of `/v1/env`, with numEnvs 1 and autoreset disabled (an
 * OpenEnv client resets itself after `done`).
 */
import { isUtf8 } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { ErrorCode } from '../core/errors.ts';
import type { SpaceJSON } from '../env/spaces.ts';
import type { EnvProtocol } from './env-protocol.ts';
import type { MakeResult, ResetResultWire, StepResultWire } from '../protocol/v1.ts';
import { RNG_FACTS, unsafeValue } from '../protocol/v1.ts';

export const OPENENV_PREFIX = '/openenv';

/** OpenEnv's WSErrorCode values (openenv/core/env_server/types.py). */
export type OpenEnvErrorCode = 'INVALID_JSON' | 'UNKNOWN_TYPE' | 'VALIDATION_ERROR' | 'EXECUTION_ERROR' | 'CAPACITY_REACHED' | 'FACTORY_ERROR' | 'SESSION_ERROR';

/** How a Colloquy error code reads as OpenEnv's (the Colloquy code travels beside it as `colloquy_code`). */
export function openEnvCode(code: ErrorCode): OpenEnvErrorCode {
  switch (code) {
    case 'BAD_JSON': return 'INVALID_JSON';
    case 'BAD_REQUEST': case 'INVALID_ACTION': case 'PAYLOAD_TOO_LARGE': return 'VALIDATION_ERROR';
    case 'UNKNOWN_ENV': case 'BAD_CONFIG': return 'FACTORY_ERROR';
    case 'CAPACITY': return 'CAPACITY_REACHED';
    case 'UNKNOWN_SESSION': case 'CLOSED': case 'UNAUTHORIZED': return 'SESSION_ERROR';
    default: return 'EXECUTION_ERROR';
  }
}

/** Reset fields that are not env kwargs. */
const RESET_FIELDS = new Set(['seed', 'episode_id', 'options']);
/** OpenEnv's ResetRequest bound on episode_id. */
const MAX_EPISODE_ID = 255;
const OPEN = 1;

interface V1Reply { id: number | null; ok: boolean; result?: unknown; error?: { code: ErrorCode; message: string } }
class V1Failure extends Error { constructor(readonly code: ErrorCode, message: string) { super(message); } }
class Refusal extends Error { constructor(readonly code: OpenEnvErrorCode, message: string, readonly colloquyCode?: ErrorCode) { super(message); } }

/**
 * What the v1 engine sees as its WebSocket: it feeds the engine v1 request frames and takes the
 * engine's replies; heartbeat, buffering, close and terminate go to the real socket.
 */
class BridgeSocket extends EventEmitter {
  constructor(private readonly real: WebSocket, private readonly onReply: (frame: string) => void) { super(); }
  get readyState(): number { return this.real.readyState; }
  get bufferedAmount(): number { return this.real.bufferedAmount; }
  send(frame: string): void { if (this.real.readyState === OPEN) this.onReply(frame); }
  ping(): void { this.real.ping(); }
  terminate(): void { this.real.terminate(); }
  close(code?: number, reason?: string): void { this.real.close(code, reason); }
}

interface Current { session: string; kwargsKey: string; kwargs: Record<string, unknown> }

/** One OpenEnv connection: its messages run one after the other, each as v1 requests on the bridge. */
export class OpenEnvConnection {
  private readonly bridge: BridgeSocket;
  private readonly waiting = new Map<number, (r: V1Reply) => void>();
  private nextId = 1;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private current: Current | null = null;
  private episodeId: string | null = null;
  private seed: number | null = null;
  private stepCount = 0;
  private ended = { terminated: false, truncated: false };
  private closed = false;

  constructor(private readonly ws: WebSocket, private readonly envId: string, proto: EnvProtocol, remote: string,
    private readonly limits: { maxFrameBytes: number; maxPending: number }) {
    this.bridge = new BridgeSocket(ws, f => this.onReply(f));
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('pong', () => this.bridge.emit('pong'));
    ws.on('close', (code, reason) => { void this.onClose(code, reason); });
    // The engine's own capacity refusal (id null) arrives through onReply during accept.
    proto.accept(this.bridge as unknown as WebSocket, remote);
  }

  private onReply(frame: string): void {
    let r: V1Reply;
    try { r = JSON.parse(frame) as V1Reply; } catch { return; }
    const wait = typeof r.id === 'number' ? this.waiting.get(r.id) : undefined;
    if (wait) { this.waiting.delete(r.id!); wait(r); return; }
    // Not an answer to a request of ours: the engine speaking for the connection (capacity, shutdown).
    if (!r.ok && r.error) this.sendError(openEnvCode(r.error.code), r.error.message, r.error.code);
  }

  private call<R>(req: Record<string, unknown>): Promise<R> {
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      this.waiting.set(id, r => (r.ok ? resolve(r.result as R) : reject(new V1Failure(r.error?.code ?? 'INTERNAL', r.error?.message ?? 'internal error'))));
      this.bridge.emit('message', Buffer.from(JSON.stringify({ id, ...req })), false);
    });
  }

  private sendFrame(type: 'observation' | 'state' | 'error', data: unknown): void {
    if (this.ws.readyState === OPEN) this.ws.send(JSON.stringify({ type, data }));
  }

  private sendError(code: OpenEnvErrorCode, message: string, colloquyCode?: ErrorCode): void {
    this.sendFrame('error', colloquyCode ? { code, message, colloquy_code: colloquyCode } : { code, message });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    if (this.queued >= this.limits.maxPending) {
      return this.sendError('CAPACITY_REACHED', `more than ${this.limits.maxPending} messages pending on this connection`, 'CAPACITY');
    }
    this.queued++;
    this.queue = this.queue.then(() => this.handle(data, isBinary)).catch((err: unknown) => {
      if (err instanceof Refusal) this.sendError(err.code, err.message, err.colloquyCode);
      else if (err instanceof V1Failure) this.sendError(openEnvCode(err.code), err.message, err.code);
      else this.sendError('EXECUTION_ERROR', 'internal error', 'INTERNAL');
    }).finally(() => { this.queued--; });
  }

  private async handle(data: Buffer, isBinary: boolean): Promise<void> {
    if (isBinary) throw new Refusal('INVALID_JSON', 'binary frames are not supported; send JSON text', 'BAD_REQUEST');
    if (data.length > this.limits.maxFrameBytes) {
      throw new Refusal('VALIDATION_ERROR', `message of ${data.length} bytes is above the limit of ${this.limits.maxFrameBytes} bytes`, 'PAYLOAD_TOO_LARGE');
    }
    if (!isUtf8(data)) throw new Refusal('INVALID_JSON', 'Invalid JSON: not valid UTF-8', 'BAD_JSON');
    let msg: unknown;
    try { msg = JSON.parse(data.toString()); } catch (e) { throw new Refusal('INVALID_JSON', `Invalid JSON: ${(e as Error).message.slice(0, 200)}`, 'BAD_JSON'); }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new Refusal('VALIDATION_ERROR', 'Invalid message: a message is a JSON object {type, data}', 'BAD_REQUEST');
    const m = msg as Record<string, unknown>;
    const type = m.type;
    for (const k of Object.keys(m)) {
      if (k !== 'type' && k !== 'data') throw new Refusal('VALIDATION_ERROR', `Invalid message: unexpected field '${k.slice(0, 64)}'`, 'BAD_REQUEST');
    }
    const body = m.data;
    if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) {
      throw new Refusal('VALIDATION_ERROR', "Invalid message: 'data' must be an object", 'BAD_REQUEST');
    }
    const d = (body ?? {}) as Record<string, unknown>;
    switch (type) {
      case 'reset': return this.reset(d);
      case 'step':
        if (body === undefined) throw new Refusal('VALIDATION_ERROR', "Invalid message: a step needs 'data' (the action)", 'BAD_REQUEST');
        return this.step(d);
      case 'state':
        if (body !== undefined) throw new Refusal('VALIDATION_ERROR', "Invalid message: unexpected field 'data'", 'BAD_REQUEST');
        return this.state();
      case 'close': return this.close();
      default:
        throw new Refusal('UNKNOWN_TYPE', `Unknown message type: ${String(typeof type === 'string' ? type.slice(0, 64) : type)}; types are reset, step, state, close`, 'UNKNOWN_OP');
    }
  }

  private async reset(d: Record<string, unknown>): Promise<void> {
    const { seed, episode_id: episodeId, options } = d;
    if (seed !== undefined && seed !== null && !(typeof seed === 'number' && Number.isSafeInteger(seed) && seed >= 0)) {
      throw new Refusal('VALIDATION_ERROR', 'Invalid message: seed must be a non-negative integer', 'BAD_REQUEST');
    }
    if (episodeId !== undefined && episodeId !== null && !(typeof episodeId === 'string' && episodeId.length <= MAX_EPISODE_ID)) {
      throw new Refusal('VALIDATION_ERROR', `Invalid message: episode_id must be a string of at most ${MAX_EPISODE_ID} characters`, 'BAD_REQUEST');
    }
    if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
      throw new Refusal('VALIDATION_ERROR', 'Invalid message: options must be an object', 'BAD_REQUEST');
    }
    const kwargs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(d)) if (!RESET_FIELDS.has(k)) kwargs[k] = v;
    const why = unsafeValue(kwargs);
    if (why) throw new Refusal('VALIDATION_ERROR', `Invalid message: kwargs ${why}`, 'BAD_REQUEST');
    const kwargsKey = JSON.stringify(kwargs);
    if (this.current === null || this.current.kwargsKey !== kwargsKey) {
      if (this.current) { const old = this.current.session; this.current = null; await this.call({ op: 'close', session: old }); }
      const made = await this.call<MakeResult>({ op: 'make', env: this.envId, kwargs, numEnvs: 1, autoresetMode: 'disabled' });
      this.current = { session: made.session, kwargsKey, kwargs: made.spec?.kwargs ?? kwargs };
    }
    const r = await this.call<ResetResultWire>({ op: 'reset', session: this.current.session, ...(typeof seed === 'number' ? { seed } : {}), ...(options ? { options } : {}) });
    this.episodeId = typeof episodeId === 'string' ? episodeId : randomUUID();
    this.seed = typeof seed === 'number' ? seed : null;
    this.stepCount = 0;
    this.ended = { terminated: false, truncated: false };
    this.sendFrame('observation', { observation: { obs: r.observations[0], terminated: false, truncated: false, info: r.infos[0] ?? {} }, reward: null, done: false });
  }

  private async step(d: Record<string, unknown>): Promise<void> {
    for (const k of Object.keys(d)) {
      if (k !== 'action' && k !== 'metadata') throw new Refusal('VALIDATION_ERROR', `Invalid message: unexpected field '${k.slice(0, 64)}' in the action; an action is {"action": A}`, 'BAD_REQUEST');
    }
    if (!('action' in d)) throw new Refusal('VALIDATION_ERROR', 'Invalid message: the action is missing; send {"type":"step","data":{"action": A}}', 'BAD_REQUEST');
    if (this.current === null) throw new Refusal('EXECUTION_ERROR', 'step before reset: send a reset first', 'RESET_NEEDED');
    const r = await this.call<StepResultWire>({ op: 'step', session: this.current.session, actions: [d.action] });
    const terminated = r.terminated[0] === true, truncated = r.truncated[0] === true;
    this.stepCount++;
    this.ended = { terminated, truncated };
    this.sendFrame('observation', {
      observation: { obs: r.observations[0], terminated, truncated, info: r.infos[0] ?? {} },
      reward: r.rewards[0] ?? null, done: terminated || truncated,
    });
  }

  /** Everything OpenEnv's state holds is this connection's own bookkeeping (the RNG facts are the server's constants). */
  private state(): void {
    this.sendFrame('state', {
      episode_id: this.episodeId, step_count: this.stepCount, env_id: this.envId, kwargs: this.current?.kwargs ?? null, seed: this.seed,
      terminated: this.ended.terminated, truncated: this.ended.truncated, session: this.current?.session ?? null, rng: RNG_FACTS,
    });
  }

  /** As OpenEnv's server: `close` ends the session and the socket (a second one finds nothing to do). */
  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.closeSession();
    this.ws.close(1000, 'closed by the client');
  }

  private async closeSession(): Promise<void> {
    if (!this.current) return;
    const s = this.current.session;
    this.current = null;
    try { await this.call({ op: 'close', session: s }); } catch { /* already gone */ }
  }

  private async onClose(code: number, reason: Buffer): Promise<void> {
    this.closed = true;
    // OpenEnv sessions live as long as their socket: close it before the engine detaches it
    // (a detached v1 session would wait out the resume window).
    const s = this.current?.session;
    this.current = null;
    if (s) this.bridge.emit('message', Buffer.from(JSON.stringify({ id: this.nextId++, op: 'close', session: s })), false);
    this.bridge.emit('close', code, reason);
    for (const wait of this.waiting.values()) wait({ id: null, ok: false, error: { code: 'CLOSED', message: 'connection closed' } });
    this.waiting.clear();
  }
}

// ---- HTTP: schema and metadata ----

/** A JSON Schema of the values of a space. */
export function spaceSchema(s: SpaceJSON): Record<string, unknown> {
  switch (s.type) {
    case 'Discrete': return { type: 'integer', minimum: s.start, maximum: s.start + s.n - 1 };
    case 'MultiDiscrete': return { type: 'array', minItems: s.nvec.length, maxItems: s.nvec.length, items: { type: 'integer', minimum: 0 }, description: `nvec ${JSON.stringify(s.nvec)}` };
    case 'Text': return { type: 'string', minLength: s.minLength, maxLength: s.maxLength, ...(s.charset ? { description: `characters from ${JSON.stringify(s.charset.slice(0, 200))}` } : {}) };
    case 'Dict': return { type: 'object', properties: Object.fromEntries(Object.entries(s.spaces).map(([k, v]) => [k, spaceSchema(v)])), required: Object.keys(s.spaces), additionalProperties: false };
    case 'Tuple': return { type: 'array', prefixItems: s.spaces.map(spaceSchema), minItems: s.spaces.length, maxItems: s.spaces.length };
    case 'Box': {
      const scalar = s.dtype.startsWith('int') || s.dtype.startsWith('uint') ? 'integer' : 'number';
      const lo = typeof s.low === 'number' && Number.isFinite(s.low) ? { minimum: s.low } : {};
      const hi = typeof s.high === 'number' && Number.isFinite(s.high) ? { maximum: s.high } : {};
      let schema: Record<string, unknown> = { type: scalar, ...lo, ...hi };
      for (let i = s.shape.length - 1; i >= 0; i--) schema = { type: 'array', minItems: s.shape[i], maxItems: s.shape[i], items: schema };
      return { ...schema, description: `Box ${s.dtype} shape ${JSON.stringify(s.shape)}` };
    }
  }
}

/** OpenEnv's SchemaResponse for one env (spaces of its default kwargs). */
export function openEnvSchema(observationSpace: SpaceJSON | null, actionSpace: SpaceJSON | null): Record<string, unknown> {
  const any = {};
  return {
    action: {
      title: 'Action', type: 'object', additionalProperties: false, required: ['action'],
      properties: { action: actionSpace ? spaceSchema(actionSpace) : any, metadata: { type: 'object', description: 'ignored' } },
    },
    observation: {
      title: 'Observation', type: 'object', required: ['obs', 'terminated', 'truncated', 'info'],
      properties: {
        obs: observationSpace ? spaceSchema(observationSpace) : any,
        terminated: { type: 'boolean' }, truncated: { type: 'boolean' }, info: { type: 'object' },
      },
    },
    state: {
      title: 'State', type: 'object',
      properties: {
        episode_id: { type: ['string', 'null'] }, step_count: { type: 'integer', minimum: 0 }, env_id: { type: 'string' },
        kwargs: { type: ['object', 'null'] }, seed: { type: ['integer', 'null'] }, terminated: { type: 'boolean' }, truncated: { type: 'boolean' },
        session: { type: ['string', 'null'] }, rng: { type: 'object' },
      },
    },
  };
}
