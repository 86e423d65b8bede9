/**
 * Env sessions: a vector env made for a client, owned by one connection at a time. A session
 * outlives its connection for `resumeWindowMs` (the client may `resume` it with its token from a
 * new connection), is closed when idle for `idleTimeoutMs`, and keeps its last replies so that a
 * resumed client can get the ones it lost. Requests on a session run in order through its queue.
 *
 * A resume token is single-use: every resume answers a fresh one (the old one is dead), and a
 * resume is refused (CAPACITY) while the session's owner is attached and alive. A refused resume
 * pings the owner at once; the owner has stopped answering heartbeats when that ping got no answer
 * (no pong, no frame) within `min(2 s, heartbeat.intervalMs)`, or when it has been silent for two
 * heartbeat intervals: then the next resume takes the session. A client whose old connection went
 * half-open retries (the shipped clients do, with backoff) and gets its session a second or two later.
 *
 * What a client names in `make` kwargs goes through server/resources.ts (ids, not paths), and a
 * session whose replies would be larger than `limits.maxReplyBytes` is refused at make.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { endianness } from 'node:os';
import type { Logger } from 'pino';
import type { AutoresetMode, VectorEnv } from '../env/core.ts';
import { ColloquyError } from '../core/errors.ts';
import { make, makeVec } from '../env/registry.ts';
import type { EnvContext } from '../env/context.ts';
import { Box, type Space } from '../env/spaces.ts';
import type { ServerConfig } from '../configs/server.ts';
import { RemoteResources } from './resources.ts';
import { replyBytesEstimate } from './reply-size.ts';
import { PROTOCOL_VERSION, type MakeResult, type ObsEncoding, type RequestId, type SessionRequest } from '../protocol/v1.ts';

/** The connection side of a session (implemented by the protocol's Connection). */
export interface SessionOwner {
  readonly sessions: Set<Session>;
  /** Send a frame (text, or binary for a Buffer) if the connection is still open. */
  send(frame: string | Buffer): void;
  /** When the connection last sent a frame or answered a heartbeat ping (ms since epoch). */
  readonly lastSeen: number;
  /** When `probe` last pinged it (null: never, or it has answered since). */
  readonly probedAt: number | null;
  /** Ping now, unless a ping of this kind is already waiting for its answer. */
  probe(now: number): void;
}

/** A queued or running request on a session. */
export interface Job {
  readonly req: SessionRequest;
  readonly idJson: string;
  /** performance.now() when the frame arrived. */
  readonly t0: number;
  /** The connection that sent it (its pending count is decremented when the job settles). */
  readonly conn: { pending: number };
  readonly session: Session;
  /** Set when the request got a TIMEOUT reply: its eventual result is dropped. */
  timedOut: boolean;
}

export class Session {
  /** The resume token (replaced on every resume: a token works once). */
  token = randomBytes(24).toString('base64url');
  owner: SessionOwner | null = null;
  /** When the owner disconnected (ms since epoch), or null while attached. */
  detachedAt: number | null = null;
  lastActive = Date.now();
  /** Set after a step or reset timed out and then finished: the client does not know the state. */
  needsReset = false;
  closed = false;
  readonly queue: Job[] = [];
  current: Job | null = null;
  /** The largest numeric request id queued on this session (to tell lost replies from unseen requests on resume). */
  maxNumericId = -Infinity;
  private readonly ringIds: (RequestId | undefined)[];
  private readonly ringFrames: (string | Buffer | undefined)[];
  private ringPos = 0;

  readonly log: Logger;
  /** With obsEncoding 'f64' or 'binary' and a Box observation space: the length of one (flat) observation, else null. */
  readonly packSize: number | null;
  /** obsEncoding 'binary': reset and step replies are binary frames (protocol/binary.ts). */
  readonly binary: boolean;

  constructor(readonly id: string, readonly envId: string, readonly vec: VectorEnv, parentLog: Logger, replayBuffer: number, readonly obsEncoding: ObsEncoding = 'json') {
    this.log = parentLog.child({ session: this.id, env: envId });
    const space = vec.singleObservationSpace;
    this.packSize = obsEncoding !== 'json' && space instanceof Box ? space.size : null;
    this.binary = obsEncoding === 'binary';
    this.ringIds = new Array(replayBuffer);
    this.ringFrames = new Array(replayBuffer);
  }

  get numEnvs(): number { return this.vec.numEnvs; }
  get busy(): boolean { return this.current !== null || this.queue.length > 0; }

  /** Keep a reply for replay on resume (the last `replayBuffer` ones). */
  remember(id: RequestId, frame: string | Buffer): void {
    this.ringIds[this.ringPos] = id;
    this.ringFrames[this.ringPos] = frame;
    this.ringPos = (this.ringPos + 1) % this.ringIds.length;
  }
  storedReply(id: RequestId): string | Buffer | undefined {
    const i = this.ringIds.indexOf(id);
    return i < 0 ? undefined : this.ringFrames[i];
  }
  hasJob(id: RequestId): boolean {
    return this.current?.req.id === id || this.queue.some(j => j.req.id === id);
  }
  tokenMatches(token: string): boolean {
    const a = Buffer.from(this.token), b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }
  /** Issue a new resume token (the old one stops working). */
  rotateToken(): void { this.token = randomBytes(24).toString('base64url'); }

  describe(): MakeResult {
    return {
      session: this.id,
      resumeToken: this.token,
      numEnvs: this.vec.numEnvs,
      autoresetMode: this.vec.autoresetMode,
      obsEncoding: this.obsEncoding,
      spec: this.vec.spec,
      observationSpace: this.vec.singleObservationSpace.toJSON(),
      actionSpace: this.vec.singleActionSpace.toJSON(),
      protocol: PROTOCOL_VERSION,
    };
  }
}

/** What a vector-env wrapper hook knows about the session it wraps. */
export interface SessionContext { readonly env: string; readonly sessionId: string }

export interface CreateArgs { env: string; kwargs?: Record<string, unknown>; numEnvs?: number; autoresetMode?: AutoresetMode; obsEncoding?: ObsEncoding }

export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  /** Why recently closed sessions went away (bounded), for a clearer UNKNOWN_SESSION. */
  private readonly tombstones = new Map<string, string>();
  private reaper: NodeJS.Timeout | null = null;
  /**
   * Wraps the vector env of every new session (plugins set it, e.g. storage's dialog recorder).
   * Requests then go to the wrapped env; spaces and spec are read from it.
   */
  wrapVec: (vec: VectorEnv, ctx: SessionContext) => VectorEnv = vec => vec;

  /** What clients may name in kwargs (ids of rewards and checkpoints; paths only under allowed roots). */
  readonly resources: RemoteResources;

  /** `envContext`: what every session's env gets (the app's: its base model, lobby and cache; checkpoints are mapped from ids by `resources`). */
  constructor(private readonly config: ServerConfig, private readonly log: Logger, private readonly envContext: EnvContext & { readonly modelDir: string }) {
    this.resources = new RemoteResources(config, envContext.modelDir);
  }

  get size(): number { return this.sessions.size; }
  values(): IterableIterator<Session> { return this.sessions.values(); }

  start(): void {
    if (this.reaper) return;
    this.reaper = setInterval(() => { void this.reap(); }, this.config.sessions.reapIntervalMs);
    this.reaper.unref();
  }

  /** Make a vector env session owned by `owner`; CAPACITY when a limit is reached. */
  create(owner: SessionOwner, args: CreateArgs): Session {
    const lim = this.config.limits;
    const numEnvs = args.numEnvs ?? 1;
    if (numEnvs > lim.maxEnvsPerSession) throw new ColloquyError('CAPACITY', `numEnvs ${numEnvs} is above the limit of ${lim.maxEnvsPerSession} per session`);
    if (this.sessions.size >= lim.maxSessions) throw new ColloquyError('CAPACITY', `the server holds its maximum of ${lim.maxSessions} sessions`);
    if (owner.sessions.size >= lim.maxSessionsPerConnection) throw new ColloquyError('CAPACITY', `this connection holds its maximum of ${lim.maxSessionsPerConnection} sessions; close one first`);
    // Before the env exists: nothing a client names is read unless it is the server's to read.
    this.resources.check(args.kwargs);
    const id = randomUUID();
    const ctx: EnvContext = { ...this.envContext, checkpoint: name => this.resources.checkpoint(name) };
    if (numEnvs > 1) {
      // One env tells the observation space: N of them are not built when their replies could not be sent.
      const probe = make(args.env, args.kwargs, ctx);
      this.checkReplySize(probe.observationSpace, numEnvs, args.obsEncoding, () => void probe.close());
      void probe.close();
    }
    const inner = makeVec(args.env, { numEnvs, kwargs: args.kwargs, autoresetMode: args.autoresetMode }, ctx);
    let vec: VectorEnv;
    try { vec = this.wrapVec(inner, { env: args.env, sessionId: id }); } catch (err) { void inner.close(); throw err; }
    if (args.obsEncoding === 'f64' && (!(vec.singleObservationSpace instanceof Box) || endianness() !== 'LE')) {
      void vec.close();
      throw new ColloquyError('BAD_REQUEST', `obsEncoding 'f64' needs a Box observation space (${args.env} has ${vec.singleObservationSpace.type})`);
    }
    if (args.obsEncoding === 'binary' && endianness() !== 'LE') {
      void vec.close();
      throw new ColloquyError('BAD_REQUEST', "obsEncoding 'binary' needs a little-endian server");
    }
    if (numEnvs === 1) this.checkReplySize(vec.singleObservationSpace, 1, args.obsEncoding, () => void vec.close());
    const s = new Session(id, args.env, vec, this.log, this.config.sessions.replayBuffer, args.obsEncoding);
    this.sessions.set(s.id, s);
    this.attach(s, owner);
    s.log.info({ numEnvs, autoresetMode: vec.autoresetMode }, 'session opened');
    return s;
  }

  /** CAPACITY (after `cleanup`) when replies of `numEnvs` observations of `space` would be above `limits.maxReplyBytes`. */
  private checkReplySize(space: Space, numEnvs: number, enc: ObsEncoding | undefined, cleanup: () => void): void {
    const max = this.config.limits.maxReplyBytes;
    // (A binary reply's observations take fewer bytes than the base64 of 'f64': its estimate bounds them.)
    const bytes = replyBytesEstimate(space, numEnvs, (enc === 'f64' || enc === 'binary') && space instanceof Box);
    if (bytes <= max) return;
    cleanup();
    const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
    throw new ColloquyError('CAPACITY', `the replies of this session would be about ${mib(bytes)} (numEnvs ${numEnvs} x its observation), above the limit of ${mib(max)} (limits.maxReplyBytes); use fewer envs or smaller observations`);
  }

  /** Whether a session with this id was closed (recently: the last 1000 are remembered). */
  wasClosed(id: string): boolean { return this.tombstones.has(id); }

  /** The session with this id if `owner` holds it; UNKNOWN_SESSION otherwise. */
  owned(id: string, owner: SessionOwner): Session {
    const s = this.sessions.get(id);
    if (s && s.owner === owner) return s;
    const why = this.tombstones.get(id);
    throw new ColloquyError('UNKNOWN_SESSION', why ? `session ${id} was closed (${why})` : `no session ${id.slice(0, 128)} on this connection`);
  }

  /**
   * Re-attach a session to a new connection, with a new token (the one presented is used up).
   * Refused while another owner is attached and alive (see the top of this file); an owner that
   * stopped answering heartbeats loses the session.
   */
  resume(id: string, token: string, owner: SessionOwner, now = Date.now()): Session {
    const s = this.sessions.get(id);
    if (!s || !s.tokenMatches(token)) {
      const why = s ? undefined : this.tombstones.get(id);
      throw new ColloquyError('UNKNOWN_SESSION', why ? `session ${id} was closed (${why})` : `no session ${id.slice(0, 128)} with that token`);
    }
    if (s.owner !== owner) {
      const o = s.owner;
      if (o !== null && !this.stoppedAnswering(o, now)) {
        o.probe(now);
        throw new ColloquyError('CAPACITY', `session ${id} is attached to a connection that still answers; try again in a few seconds (a connection that stops answering loses its sessions to a resume)`);
      }
      if (owner.sessions.size >= this.config.limits.maxSessionsPerConnection) {
        throw new ColloquyError('CAPACITY', `this connection holds its maximum of ${this.config.limits.maxSessionsPerConnection} sessions`);
      }
      s.owner?.sessions.delete(s);
      this.attach(s, owner);
      s.log.info('session resumed');
    }
    s.rotateToken();
    return s;
  }

  /** Whether an attached owner has stopped answering heartbeats (see the top of this file). */
  private stoppedAnswering(o: SessionOwner, now: number): boolean {
    const hb = this.config.heartbeat;
    if (now - o.lastSeen > 2 * hb.intervalMs) return true;
    return o.probedAt !== null && o.lastSeen < o.probedAt && now - o.probedAt >= Math.min(2000, hb.intervalMs);
  }

  private attach(s: Session, owner: SessionOwner): void {
    s.owner = owner;
    s.detachedAt = null;
    s.lastActive = Date.now();
    owner.sessions.add(s);
  }

  /** The owner's connection dropped: its sessions wait `resumeWindowMs` for a resume. */
  detachAll(owner: SessionOwner): void {
    const now = Date.now();
    for (const s of owner.sessions) {
      if (s.owner !== owner) continue;
      s.owner = null;
      s.detachedAt = now;
      s.log.info({ resumeWindowMs: this.config.sessions.resumeWindowMs }, 'session detached');
    }
    owner.sessions.clear();
    if (this.config.sessions.resumeWindowMs === 0) void this.reap();
  }

  async close(s: Session, reason: string): Promise<void> {
    if (s.closed) return;
    s.closed = true;
    this.sessions.delete(s.id);
    s.owner?.sessions.delete(s);
    s.owner = null;
    this.tombstones.set(s.id, reason);
    if (this.tombstones.size > 1000) this.tombstones.delete(this.tombstones.keys().next().value!);
    try { await s.vec.close(); } catch (err) { s.log.error({ err }, 'env close failed'); }
    s.log.info({ reason }, 'session closed');
  }

  /** Close detached sessions past the resume window and idle ones past the idle timeout. */
  async reap(now = Date.now()): Promise<void> {
    const { resumeWindowMs, idleTimeoutMs } = this.config.sessions;
    const doomed: [Session, string][] = [];
    for (const s of this.sessions.values()) {
      if (s.busy) continue;
      if (s.detachedAt !== null && now - s.detachedAt >= resumeWindowMs) doomed.push([s, 'not resumed within the resume window']);
      else if (now - s.lastActive >= idleTimeoutMs) doomed.push([s, `idle for ${Math.round((now - s.lastActive) / 1000)} s`]);
    }
    for (const [s, why] of doomed) await this.close(s, why);
  }

  async closeAll(reason: string): Promise<void> {
    if (this.reaper) { clearInterval(this.reaper); this.reaper = null; }
    await Promise.all([...this.sessions.values()].map(s => this.close(s, reason)));
  }
}
