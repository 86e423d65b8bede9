/**
 * The server config: one TypeBox schema that is the JSON Schema of `configs/server.json` (and of a
 * `--config` file) and the TypeScript type the server reads. Every field has a default, so a config
 * file only names what it changes; unknown fields are rejected.
 */
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { BadConfig } from '../core/errors.ts';
import { loadConfig, validateConfig } from '../core/config.ts';
import { CONFIG_DIR } from '../core/paths.ts';

const Limits = Type.Object({
  maxConnections: Type.Integer({ minimum: 1, default: 256, description: 'open WebSocket connections at once; more get CAPACITY and are closed' }),
  maxSessions: Type.Integer({ minimum: 1, default: 256, description: 'env sessions on the whole server (CAPACITY beyond)' }),
  maxSessionsPerConnection: Type.Integer({ minimum: 1, default: 16, description: 'env sessions owned by one connection (CAPACITY beyond)' }),
  maxEnvsPerSession: Type.Integer({ minimum: 1, default: 1024, description: 'largest numEnvs of one session (CAPACITY beyond)' }),
  maxPendingPerConnection: Type.Integer({ minimum: 1, default: 4096, description: 'pipelined requests a connection may have unanswered (CAPACITY beyond)' }),
  maxFrameBytes: Type.Integer({ minimum: 1024, default: 1_048_576, description: 'largest frame processed; larger ones get PAYLOAD_TOO_LARGE and the connection lives on' }),
  maxFrameBytesHard: Type.Integer({ minimum: 1024, default: 16_777_216, description: 'frames above this are not even buffered: the connection is closed with 1009 (must be >= maxFrameBytes)' }),
  requestTimeoutMs: Type.Integer({ minimum: 1, default: 60_000, description: 'a request not answered within this gets TIMEOUT (a timed-out step or reset leaves the session needing a reset)' }),
  maxReplyBytes: Type.Integer({ minimum: 1024, default: 16_777_216, description: 'largest reply the server builds: make refuses (CAPACITY) a session whose reset/step replies would be larger (numEnvs x observation size), and a reply that still comes out larger is answered PAYLOAD_TOO_LARGE (the session then needs a reset)' }),
}, { additionalProperties: false, default: {} });

const RemoteFiles = Type.Object({
  rewardRoots: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'folders (relative to the project root) under which a client may name a reward config file by path in kwargs.reward; empty: clients name rewards only by id (the files of configs/rewards/)' }),
  checkpointRoots: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'folders (relative to the project root) under which a client may name a checkpoint folder by path in kwargs.model or kwargs.student.checkpoint; empty: clients name checkpoints only by id ("base" and the names under `models`)' }),
  maxRewardFileBytes: Type.Integer({ minimum: 1, maximum: 16_777_216, default: 262_144, description: 'largest reward config file read from a path a client names' }),
}, { additionalProperties: false, default: {} });

const Heartbeat = Type.Object({
  intervalMs: Type.Integer({ minimum: 1, default: 20_000, description: 'the server pings every connection this often' }),
  timeoutMs: Type.Integer({ minimum: 1, default: 60_000, description: 'a connection silent (no pong, no frame) for this long is dropped' }),
}, { additionalProperties: false, default: {} });

const Sessions = Type.Object({
  resumeWindowMs: Type.Integer({ minimum: 0, default: 60_000, description: 'a session survives its connection dropping for this long, for the client to `resume` it' }),
  idleTimeoutMs: Type.Integer({ minimum: 1, default: 1_800_000, description: 'a session with no request for this long is closed' }),
  reapIntervalMs: Type.Integer({ minimum: 1, default: 5_000, description: 'how often detached and idle sessions are looked for' }),
  replayBuffer: Type.Integer({ minimum: 1, default: 32, description: 'replies kept per session, re-sent on `resume` when the client lost them' }),
}, { additionalProperties: false, default: {} });

const BaseModel = Type.Object({
  dir: Type.String({ default: 'data/models/base', description: 'the base model checkpoint the dialog envs use (relative to the project root); served at /v1/models/base' }),
  pretrainIfMissing: Type.Boolean({ default: true, description: 'on start, pretrain a base model into dir when none is there (in a child process, with progress)' }),
  corpus: Type.String({ default: 'shipped', description: 'corpora for that first pretraining: shipped, mathdial, dailydialog, chat:FILE (comma-separated)' }),
  minutes: Type.Number({ exclusiveMinimum: 0, default: 5, description: 'time budget of that first pretraining' }),
  configFile: Type.Union([Type.String(), Type.Null()], { default: null, description: 'model config file for it (null: configs/models/base.json)' }),
}, { additionalProperties: false, default: {} });

const Storage = Type.Object({
  db: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: 'SQLite file of dialogs, turns, rewards and episodes (relative to the project root; ":memory:" keeps nothing); null: $COLLOQUY_DB, else data/colloquy.db' }),
  record: Type.Union([Type.Literal('all'), Type.Literal('human'), Type.Literal('none')], { default: 'all', description: 'which dialog sessions are written (before they are acknowledged): every TeacherStudent session on /v1/env and every chat ("all"), only those with a person in the student\'s seat ("human"), or none' }),
  synchronous: Type.Union([Type.Literal('FULL'), Type.Literal('NORMAL')], { default: 'FULL', description: 'SQLite synchronous mode: FULL survives a power loss, NORMAL only a process kill (see bench/storage.ts)' }),
}, { additionalProperties: false, default: {} });

const HostedAgent = Type.Object({
  name: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'the name people pick (/chat?agent=NAME) and the agent name stored with its dialogs' }),
  description: Type.String({ default: '', maxLength: 500, description: 'one line shown on the chat page' }),
  checkpoint: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: 'LM checkpoint folder the server samples the teacher from (relative to the project root; an RL or batch-kl checkpoint, or a run folder with checkpoint/ inside); null: the base model' }),
  temperature: Type.Number({ exclusiveMinimum: 0, maximum: 10, default: 0.8, description: 'sampling temperature' }),
  topK: Type.Integer({ minimum: 0, default: 40, description: 'sample among the k most likely tokens (0: all)' }),
  maxUtteranceTokens: Type.Integer({ minimum: 1, maximum: 1024, default: 40, description: 'the teacher ends its turn after this many tokens' }),
  allowEnd: Type.Boolean({ default: false, description: 'may the agent end the dialog (<|endoftext|>); by default only the person does' }),
  kwargs: Type.Record(Type.String(), Type.Unknown(), { default: { maxTokens: 1024, maxStudentTokens: 128 }, description: 'TeacherStudent-v0 kwargs of its dialogs (student is always "human", actionMode "token")' }),
}, { additionalProperties: false });

const Chat = Type.Object({
  enabled: Type.Boolean({ default: true, description: 'serve the chat page (/chat) and install the lobby that student: "human" dialogs use' }),
  requireToken: Type.Boolean({ default: true, description: 'when auth is on (token set), the chat page and its socket need the token too (?token=T on the page URL); false opens /chat to anyone on purpose (a public chat on a server whose /v1/env keeps its token)' }),
  title: Type.String({ default: 'Chat with a teacher', maxLength: 200, description: 'heading of the chat page' }),
  consent: Type.Union([Type.String({ maxLength: 20000 }), Type.Null()], { default: null, description: 'notice a person must accept before chatting (plain text; null: none)' }),
  replyTimeoutMs: Type.Integer({ minimum: 1000, default: 50_000, description: 'how long a dialog waits for the person\'s reply (or for a person to join) before it is truncated (a step waiting for a person must answer within limits.requestTimeoutMs: the smaller of the two, minus a second, is used)' }),
  resumeWindowMs: Type.Integer({ minimum: 0, default: 120_000, description: 'a person whose connection drops keeps their conversation this long (the page reconnects by itself)' }),
  maxPeople: Type.Integer({ minimum: 1, default: 200, description: 'people connected or waiting at once' }),
  maxConnections: Type.Integer({ minimum: 1, default: 256, description: 'open /chat/ws sockets at once (said hello or not); more get CAPACITY and are closed. Chat sockets are pinged and dropped on `heartbeat` as /v1/env\'s are' }),
  maxMessageChars: Type.Integer({ minimum: 1, maximum: 100_000, default: 2000, description: 'longest message a person may send' }),
  hostedAgents: Type.Array(HostedAgent, { default: [{ name: 'base', description: 'the base language model', checkpoint: null, temperature: 0.8, topK: 40, maxUtteranceTokens: 40, allowEnd: false, kwargs: { maxTokens: 1024, maxStudentTokens: 128 } }], description: 'agents the server runs itself, so that a person can chat with one without an agent process (/chat?agent=NAME)' }),
}, { additionalProperties: false, default: {} });

const Dashboard = Type.Object({
  runsDir: Type.String({ default: 'runs', description: 'folder of training runs (relative to the project root); the dashboard plots each RUN/metrics.jsonl' }),
  refreshMs: Type.Integer({ minimum: 200, default: 2000, description: 'how often the dashboard\'s live feed is refreshed' }),
  recentDialogs: Type.Integer({ minimum: 1, maximum: 500, default: 20, description: 'recent dialogs listed' }),
  maxPoints: Type.Integer({ minimum: 10, maximum: 10_000, default: 400, description: 'points per curve (longer runs are thinned)' }),
  maxStreams: Type.Integer({ minimum: 1, maximum: 10_000, default: 16, description: 'open live feeds (/dashboard/api/events) at once; more get 503 CAPACITY. All feeds share one state built once per refresh' }),
}, { additionalProperties: false, default: {} });

export const ServerConfigSchema = Type.Object({
  host: Type.String({ default: '127.0.0.1', description: 'interface to listen on' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8787, description: 'TCP port (0 picks a free one)' }),
  token: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: 'bearer token required on every route but /health (header `Authorization: Bearer T` or `?token=T`; /chat too unless chat.requireToken is false); null: no auth' }),
  allowedHosts: Type.Array(Type.String({ pattern: '^[A-Za-z0-9.-]{1,253}$' }), { default: [], description: 'host names (no port) a request\'s Host header may carry when no token is set, beside localhost and IP literals; others get 403 (DNS rebinding). Name the server\'s public name here when it serves without a token' }),
  allowedOrigins: Type.Array(Type.String({ pattern: '^https?://[^/\\s]{1,260}$' }), { default: [], description: 'web origins (scheme://host[:port]) besides the server\'s own whose pages may open /chat/ws and /v1/env; a WebSocket upgrade with any other Origin header gets 403 (cross-site WebSocket hijacking). Programs send no Origin and are not affected' }),
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info', description: 'pino log level' }),
  logPretty: Type.Boolean({ default: false, description: 'human-readable log lines instead of NDJSON (development)' }),
  limits: Limits,
  heartbeat: Heartbeat,
  sessions: Sessions,
  backend: Type.Union(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].map(b => Type.Literal(b)), { default: 'auto', description: 'TensorFlow.js backend for the models the server runs (auto: GPU, native, wasm, cpu — the first that works)' }),
  dataDir: Type.Union([Type.String(), Type.Null()], { default: null, description: 'data directory (MathDial prompts, corpora); null: COLLOQUY_DATA_DIR or ../shared/data when present' }),
  baseModel: BaseModel,
  models: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), Type.String(), { default: {}, description: 'more checkpoints served at /v1/models/NAME (name → folder)' }),
  shutdownTimeoutMs: Type.Integer({ minimum: 0, default: 10_000, description: 'on SIGTERM/SIGINT, how long in-flight requests may take to finish before sessions are closed anyway' }),
  remoteFiles: RemoteFiles,
  storage: Storage,
  chat: Chat,
  dashboard: Dashboard,
}, { additionalProperties: false });

export type ServerConfig = Static<typeof ServerConfigSchema>;
export type LogLevel = ServerConfig['logLevel'];

/** The default config file (`colloquy serve` reads it unless `--config` names another). */
export const DEFAULT_SERVER_CONFIG_FILE = path.join(CONFIG_DIR, 'server.json');

/**
 * The one place that turns a partial config into a complete, consistent one: schema defaults,
 * then the cross-field rules the schema cannot state.
 */
export function resolveServerConfig(value: unknown = {}): ServerConfig {
  return checkConsistency(validateConfig(ServerConfigSchema, value, 'server config'));
}

/** Read a config file (default `configs/server.json`), deep-merge overrides (CLI flags), validate. */
export function loadServerConfig(file: string | undefined = DEFAULT_SERVER_CONFIG_FILE, overrides: Record<string, unknown> = {}): ServerConfig {
  return checkConsistency(loadConfig(ServerConfigSchema, file, overrides));
}

function checkConsistency(c: ServerConfig): ServerConfig {
  if (c.limits.maxFrameBytesHard < c.limits.maxFrameBytes) {
    throw new BadConfig(`limits.maxFrameBytesHard (${c.limits.maxFrameBytesHard}) must be >= limits.maxFrameBytes (${c.limits.maxFrameBytes})`);
  }
  const names = new Set<string>();
  for (const a of c.chat.hostedAgents) {
    if (names.has(a.name)) throw new BadConfig(`chat.hostedAgents: two agents named '${a.name}'`);
    names.add(a.name);
  }
  if (c.heartbeat.timeoutMs < c.heartbeat.intervalMs) {
    throw new BadConfig(`heartbeat.timeoutMs (${c.heartbeat.timeoutMs}) must be >= heartbeat.intervalMs (${c.heartbeat.intervalMs})`);
  }
  return c;
}
