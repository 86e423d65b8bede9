/**
 * The chat lobby (server/chat/lobby.ts): decorates `app.lobby` and installs it as the lobby that
 * `student: "human"` dialogs talk to (env/human.ts `setHumanLobby`; one per process). Registered
 * before the WebSocket plugin, so that its `preClose` runs first on shutdown: every seat is ended,
 * and a step that waits for a person returns at once (truncated) instead of holding the drain.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { getHumanLobby, setHumanLobby } from '../../env/human.ts';
import { Lobby } from '../chat/lobby.ts';

declare module 'fastify' {
  interface FastifyInstance { lobby: Lobby | null }
}

/** The reply timeout used: `chat.replyTimeoutMs`, kept below the protocol's request timeout. */
export function effectiveReplyTimeoutMs(replyTimeoutMs: number, requestTimeoutMs: number): number {
  const margin = Math.min(1000, Math.floor(requestTimeoutMs / 10));
  return Math.max(1, Math.min(replyTimeoutMs, requestTimeoutMs - margin));
}

async function chatLobbyPlugin(app: FastifyInstance): Promise<void> {
  const c = app.config.chat;
  if (!c.enabled) { app.decorate('lobby', null); return; }
  const log = app.log.child({ component: 'chat' }) as Logger;
  const replyTimeoutMs = effectiveReplyTimeoutMs(c.replyTimeoutMs, app.config.limits.requestTimeoutMs);
  if (replyTimeoutMs < c.replyTimeoutMs) {
    log.warn({ replyTimeoutMs: c.replyTimeoutMs, requestTimeoutMs: app.config.limits.requestTimeoutMs, used: replyTimeoutMs }, 'chat.replyTimeoutMs lowered below limits.requestTimeoutMs');
  }
  const lobby = new Lobby({
    replyTimeoutMs, resumeWindowMs: c.resumeWindowMs, maxPeople: c.maxPeople, maxMessageChars: c.maxMessageChars,
    recording: app.config.storage.record !== 'none', log,
  });
  app.decorate('lobby', lobby);
  setHumanLobby(lobby);
  app.metrics.gauge('colloquy_chat_people', 'People on the chat page (connected or within their resume window).', () => lobby.size);
  app.addHook('onReady', async () => { lobby.start(); });
  app.addHook('preClose', async () => { lobby.shutdown(); });
  app.addHook('onClose', async () => { if (getHumanLobby() === lobby) setHumanLobby(null); });
}

export default fp(chatLobbyPlugin, { name: 'colloquy-chat-lobby', fastify: '5.x', decorators: { fastify: ['config', 'metrics'] }, dependencies: ['colloquy-metrics'] });
