/**
 * The chat lobby (server/chat/lobby.ts): decorates `app.lobby` and puts it in this app's env
 * context (`app.envContext.humanLobby`), so that the `student: "human"` dialogs of this app's
 * sessions and hosted agents talk to it (another app in the same process has its own). Registered
 * before the WebSocket plugin, so that its `preClose` runs first on shutdown: every seat is ended,
 * and a step that waits for a person returns at once (truncated) instead of holding the drain.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
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
  app.envContext.humanLobby = lobby;
  app.metrics.gauge('colloquy_chat_people', 'People on the chat page (connected or within their resume window).', () => lobby.size);
  app.addHook('onReady', async () => { lobby.start(); });
  app.addHook('preClose', async () => { lobby.shutdown(); });
  // Envs made after close find no lobby (BAD_CONFIG) rather than a shut one.
  app.addHook('onClose', async () => { if (app.envContext.humanLobby === lobby) app.envContext.humanLobby = null; });
}

export default fp(chatLobbyPlugin, { name: 'colloquy-chat-lobby', fastify: '5.x', decorators: { fastify: ['config', 'envContext', 'metrics'] }, dependencies: ['colloquy-metrics'] });
