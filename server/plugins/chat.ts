/**
 * The chat page: a person takes the student's seat of a dialog.
 *
 *   GET /chat             the page (server/public/chat.html + chat.js + chat.css); `?agent=NAME`
 *                         starts a conversation with a hosted agent instead of waiting in the lobby
 *   GET /chat/config      title, consent notice, hosted agents, message limit (JSON)
 *   GET /chat/ws          the page's WebSocket (frames: see server/chat/lobby.ts)
 *
 * With a server token, the page and its socket need it too (`?token=T` on the page URL, which the
 * page passes on to its WebSocket) unless `chat.requireToken` is false. Every frame is checked
 * here (size, JSON, shape) before the lobby sees it; a bad frame gets an `error` frame and the
 * connection lives on. People's messages are never logged (only their length).
 *
 * Sockets: at most `chat.maxConnections` open at once (more get a CAPACITY `error` frame and are
 * closed with 1013), pinged every `heartbeat.intervalMs` and dropped when silent (no pong, no
 * frame) for `heartbeat.timeoutMs`, as /v1/env's: a person whose connection went half-open is
 * then detached, and after `chat.resumeWindowMs` no longer holds a place under `chat.maxPeople`.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { ColloquyError } from '../../core/errors.ts';
import { HostedAgents } from '../chat/hosted.ts';
import type { Lobby, Out, Person, PersonLink } from '../chat/lobby.ts';
import { servePublic } from '../chat/static.ts';

declare module 'fastify' {
  interface FastifyInstance { hostedAgents: HostedAgents | null }
}

const OPEN = 1;

type In =
  | { type: 'hello'; resume?: string }
  | { type: 'join'; agent?: string }
  | { type: 'say'; id: string; text: string }
  | { type: 'end' }
  | { type: 'ping' };

/** Check a frame's shape; a string says what is wrong. */
export function parseFrame(data: Buffer, maxChars: number): In | string {
  if (data.length > maxChars * 4 + 4096) return 'frame too large';
  let m: unknown;
  try { m = JSON.parse(data.toString('utf8')); } catch { return 'frame is not JSON'; }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'frame must be a JSON object';
  const o = m as Record<string, unknown>;
  const str = (k: string, max: number, required: boolean): string | null => {
    const v = o[k];
    if (v === undefined && !required) return null;
    if (typeof v !== 'string' || v.length > max) return `'${k}' must be a string of at most ${max} characters`;
    return null;
  };
  switch (o.type) {
    case 'hello': return str('resume', 128, false) ?? (o as In);
    case 'join': return str('agent', 64, false) ?? (o as In);
    case 'say': return str('id', 64, true) ?? str('text', maxChars * 2, true) ?? (o as In);
    case 'end': case 'ping': return o as In;
    default: return "unknown 'type' (hello, join, say, end, ping)";
  }
}

async function chatPlugin(app: FastifyInstance): Promise<void> {
  const lobby = app.lobby;
  const c = app.config.chat;
  if (!lobby || !c.enabled) { app.decorate('hostedAgents', null); return; }
  const log = app.log.child({ component: 'chat' }) as Logger;
  const hosted = new HostedAgents({ config: app.config, store: app.store, log, env: app.envContext });
  app.decorate('hostedAgents', hosted);
  const routeConfig = { public: !c.requireToken };

  await servePublic(app, { '/chat': 'chat.html', '/chat/chat.js': 'chat.js', '/chat/chat.css': 'chat.css' }, routeConfig);
  app.get('/chat/config', { config: routeConfig }, async () => ({
    title: c.title, consent: c.consent, agents: hosted.list(), maxChars: c.maxMessageChars,
  }));

  app.route({
    method: 'GET',
    url: '/chat/ws',
    config: routeConfig,
    handler: async (_req, reply) => reply.code(426).header('upgrade', 'websocket')
      .send({ ok: false, error: { code: 'BAD_REQUEST', message: 'connect with a WebSocket' } }),
    wsHandler: (socket: WebSocket) => { accept(socket); },
  });

  /** Open chat sockets and when each last sent a frame or a pong. */
  const sockets = new Map<WebSocket, number>();
  let beat: NodeJS.Timeout | null = null;
  app.addHook('onReady', async () => {
    const hb = app.config.heartbeat;
    beat = setInterval(() => {
      const now = Date.now();
      for (const [ws, seen] of sockets) {
        if (now - seen > hb.timeoutMs) { log.info({ silentMs: now - seen }, 'chat heartbeat timeout; dropping the connection'); ws.terminate(); } else if (ws.readyState === OPEN) ws.ping();
      }
    }, hb.intervalMs);
    beat.unref();
  });
  app.addHook('preClose', async () => { if (beat) clearInterval(beat); });

  function accept(ws: WebSocket): void {
    if (sockets.size >= c.maxConnections) {
      ws.send(JSON.stringify({ type: 'error', code: 'CAPACITY', message: 'the chat is full right now; please try again later' }));
      ws.close(1013, 'capacity');
      return;
    }
    sockets.set(ws, Date.now());
    const seen = () => { if (sockets.has(ws)) sockets.set(ws, Date.now()); };
    ws.on('pong', seen);
    let person: Person | null = null;
    const link: PersonLink = {
      send: (msg: Out) => { if (ws.readyState === OPEN) ws.send(JSON.stringify(msg)); },
      close: (code, reason) => { try { ws.close(code, reason); } catch { ws.terminate(); } },
    };
    const fail = (code: string, message: string) => link.send({ type: 'error', code, message });
    // Attached before any await, so that no early frame is lost.
    ws.on('message', (data, isBinary) => {
      seen();
      try {
        if (isBinary) return fail('BAD_REQUEST', 'send JSON text frames');
        const msg = parseFrame(data as Buffer, c.maxMessageChars);
        if (typeof msg === 'string') return fail('BAD_REQUEST', msg);
        if (msg.type === 'ping') return link.send({ type: 'pong' });
        if (msg.type === 'hello') {
          if (person) return fail('BAD_REQUEST', 'hello was already said on this connection');
          person = lobby!.hello(link, msg.resume ?? null);
          return;
        }
        if (!person) return fail('BAD_REQUEST', "say 'hello' first");
        switch (msg.type) {
          case 'join': return join(person, msg.agent ?? null);
          case 'say':
            log.debug({ person: person.id, chars: msg.text.length }, 'person said something');
            return lobby!.say(person, msg.id, msg.text);
          case 'end': return lobby!.leave(person);
        }
      } catch (err) {
        if (err instanceof ColloquyError) fail(err.code, err.message);
        else { log.error({ err }, 'chat frame failed'); fail('INTERNAL', 'internal error'); }
        if (err instanceof ColloquyError && (err.code === 'CAPACITY' || err.code === 'CLOSED') && !person) link.close(1013, err.code.toLowerCase());
      }
    });
    ws.on('close', () => { sockets.delete(ws); if (person) lobby!.detach(person, link); });
    ws.on('error', () => { /* the close handler runs next */ });
  }

  function join(person: Person, agent: string | null): void {
    if (agent === null) return lobby!.join(person);
    if (!hosted.has(agent)) throw new ColloquyError('NOT_FOUND', `no hosted agent '${agent}'`);
    const reservation = lobby!.reserve(person);
    person.send({ type: 'lobby', waitingPeople: 0 });
    hosted.start(agent, reservation).catch(err => {
      log.error({ err, agent }, 'hosted conversation failed');
      lobby!.unreserve(person, reservation);
      const seat = person.seat;
      if (seat && !seat.ended) seat.end({ reason: 'error', terminated: false, truncated: true });
      else if (!seat) person.send({ type: 'ended', by: 'error', message: 'The agent could not start.' });
    });
  }

  app.addHook('onClose', async () => { await hosted.stop(); });
}

export default fp(chatPlugin, {
  name: 'colloquy-chat', fastify: '5.x',
  decorators: { fastify: ['config', 'lobby', 'store'] },
  dependencies: ['colloquy-chat-lobby', 'colloquy-storage', 'colloquy-websocket'],
});
