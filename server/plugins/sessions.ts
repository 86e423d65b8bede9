/**
 * Sessions: decorates `app.sessions` (the SessionManager: capacity, resume window, idle reaping),
 * whose envs are made with the app's env context (`app.envContext`), and closes every session when
 * the app closes.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { SessionManager } from '../sessions.ts';

declare module 'fastify' {
  interface FastifyInstance { sessions: SessionManager }
}

async function sessionsPlugin(app: FastifyInstance): Promise<void> {
  const sessions = new SessionManager(app.config, app.log.child({ component: 'sessions' }) as Logger, app.envContext);
  app.decorate('sessions', sessions);
  app.metrics.gauge('colloquy_sessions', 'Open env sessions (attached or waiting for a resume).', () => sessions.size);
  app.addHook('onReady', async () => { sessions.start(); });
  app.addHook('onClose', async () => { await sessions.closeAll('server shutting down'); });
}

export default fp(sessionsPlugin, { name: 'colloquy-sessions', fastify: '5.x', decorators: { fastify: ['config', 'envContext', 'metrics'] } });
