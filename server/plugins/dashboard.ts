/**
 * The researcher's dashboard at `/dashboard`: live env sessions and chats, recent dialogs with
 * their reward components (from the store), and the reward / KL curves of training runs
 * (`dashboard.runsDir`/RUN/metrics.jsonl), refreshed live over Server-Sent Events.
 *
 *   GET /dashboard                 the page (server/public/dashboard.html + .js + .css)
 *   GET /dashboard/api/state       one snapshot (JSON)
 *   GET /dashboard/api/events      the same snapshot every `dashboard.refreshMs` (text/event-stream)
 *
 * Protected by the server token when auth is on (`/dashboard?token=T`; the page passes it on to
 * its API calls). Without a token the dashboard is open to anyone who can reach the server, so
 * its views carry no session ids (a short hash labels each session instead).
 *
 * Live feeds: at most `dashboard.maxStreams` at once (more get 503 CAPACITY); one timer builds
 * the state once per `refreshMs` and writes the same frame to every feed (a new feed gets the last
 * frame), so N feeds cost one build, not N. A feed that does not read its events (more than
 * 1 MiB unsent) is ended. Feeds are ended when the server closes.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { RunsReader, type RunSummary } from '../dashboard/runs.ts';
import type { LobbySnapshot } from '../chat/lobby.ts';
import { servePublic } from '../chat/static.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';

export interface DashboardState {
  time: string;
  uptimeSeconds: number;
  sessions: { id: string; env: string; numEnvs: number; attached: boolean; busy: boolean; idleSeconds: number; student: string | null }[];
  chats: LobbySnapshot | null;
  hostedConversations: number;
  store: { dialogs: number; openDialogs: number; turns: number; rewards: number; episodes: number; file: string } | null;
  dialogs: {
    id: string; env: string; agent: string | null; student: string; createdAt: string; endedAt: string | null; endReason: string | null;
    turns: number; meanReward: number | null; components: Record<string, number>; lastReply: string | null;
  }[];
  runs: RunSummary[];
}

const EXCERPT = 120;
/** A live feed with more than this written and not yet sent is ended (its reader is not reading). */
const MAX_UNSENT = 1024 * 1024;

async function dashboardPlugin(app: FastifyInstance): Promise<void> {
  const cfg = app.config.dashboard;
  const runs = new RunsReader(path.resolve(PROJECT_ROOT, cfg.runsDir), cfg.maxPoints);
  const started = Date.now();

  // Session ids are secrets of their clients' only with the token in front of them.
  const showIds = app.config.token !== null;
  const label = (id: string) => `#${createHash('sha256').update(id).digest('hex').slice(0, 8)}`;

  function state(): DashboardState {
    const now = Date.now();
    const store = app.store;
    const dialogs = store.db.open ? store.recentDialogs(cfg.recentDialogs) : [];
    return {
      time: new Date(now).toISOString(),
      uptimeSeconds: Math.round((now - started) / 1000),
      sessions: [...app.sessions.values()].map(s => ({
        id: showIds ? s.id : label(s.id), env: s.envId, numEnvs: s.numEnvs, attached: s.owner !== null, busy: s.busy,
        idleSeconds: Math.round((now - s.lastActive) / 1000),
        student: typeof s.vec.spec?.kwargs?.student === 'string' ? s.vec.spec.kwargs.student as string : null,
      })),
      chats: app.lobby?.snapshot() ?? null,
      hostedConversations: app.hostedAgents?.active ?? 0,
      store: store.db.open ? { ...store.stats(), file: path.basename(store.file) } : null,
      dialogs: dialogs.map(d => {
        const comps: Record<string, number> = {};
        for (const r of d.rewards) for (const [k, v] of Object.entries(r.components)) comps[k] = (comps[k] ?? 0) + v / d.rewards.length;
        const last = [...d.turns].reverse().find(t => t.role === 'student');
        return {
          id: d.id, env: d.env, agent: d.agentName ?? d.agentId, student: d.student, createdAt: d.createdAt, endedAt: d.endedAt,
          endReason: d.endReason, turns: d.turns.length,
          meanReward: d.rewards.length ? d.rewards.reduce((a, r) => a + r.total, 0) / d.rewards.length : null,
          components: comps,
          lastReply: last ? (last.text.length > EXCERPT ? `${last.text.slice(0, EXCERPT)}…` : last.text) : null,
        };
      }),
      runs: runs.read(now),
    };
  }

  await servePublic(app, { '/dashboard': 'dashboard.html', '/dashboard/dashboard.js': 'dashboard.js', '/dashboard/dashboard.css': 'dashboard.css' });
  app.get('/dashboard/api/state', async (_req, reply) => { reply.header('cache-control', 'no-store'); return state(); });

  const streams = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | null = null;
  let last: { frame: string; at: number } | null = null;
  const frameNow = (): string => {
    const now = Date.now();
    if (!last || now - last.at >= cfg.refreshMs) last = { frame: `retry: ${cfg.refreshMs}\ndata: ${JSON.stringify(state())}\n\n`, at: now };
    return last.frame;
  };
  const push = (res: ServerResponse, frame: string) => {
    if (res.writableLength > MAX_UNSENT) { res.end(); streams.delete(res); return; }
    try { res.write(frame); } catch (err) { app.log.warn({ err }, 'dashboard event failed'); }
  };
  const tick = () => {
    if (!streams.size) { if (timer) clearInterval(timer); timer = null; return; }
    let frame: string;
    try { frame = frameNow(); } catch (err) { app.log.warn({ err }, 'dashboard state failed'); return; }
    for (const res of streams) push(res, frame);
  };
  app.get('/dashboard/api/events', async (req, reply) => {
    if (streams.size >= cfg.maxStreams) {
      return reply.code(503).send({ ok: false, error: { code: 'CAPACITY', message: `the dashboard serves at most ${cfg.maxStreams} live feeds at once` } });
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-content-type-options': 'nosniff' });
    streams.add(res);
    const stop = () => { streams.delete(res); };
    req.raw.on('close', stop);
    res.on('close', stop);
    try { push(res, frameNow()); } catch (err) { req.log.warn({ err }, 'dashboard event failed'); }
    if (!timer) { timer = setInterval(tick, cfg.refreshMs); timer.unref(); }
  });
  app.addHook('preClose', async () => { if (timer) clearInterval(timer); for (const res of streams) res.end(); streams.clear(); });
}

export default fp(dashboardPlugin, {
  name: 'colloquy-dashboard', fastify: '5.x',
  decorators: { fastify: ['config', 'sessions', 'store', 'lobby', 'hostedAgents'] },
  dependencies: ['colloquy-sessions', 'colloquy-storage', 'colloquy-chat-lobby', 'colloquy-chat'],
});
