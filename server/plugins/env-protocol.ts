/**
 * The env protocol v1 over WebSocket at `/v1/env` (see server/env-protocol.ts). A plain HTTP GET
 * on the same path gets 426 with a hint.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { EnvProtocol } from '../env-protocol.ts';
import { PROTOCOL_VERSION, WS_PATH } from '../../protocol/v1.ts';

declare module 'fastify' {
  interface FastifyInstance { envProtocol: EnvProtocol }
}

async function envProtocolPlugin(app: FastifyInstance): Promise<void> {
  const proto = new EnvProtocol({ config: app.config, sessions: app.sessions, metrics: app.metrics, log: app.log.child({ component: 'env-protocol' }) as Logger });
  app.decorate('envProtocol', proto);
  app.addHook('onReady', async () => { proto.start(); });
  app.onWebSocketDrain(() => proto.shutdown());
  app.route({
    method: 'GET',
    url: WS_PATH,
    handler: async (_req, reply) => reply.code(426).header('upgrade', 'websocket')
      .send({ ok: false, error: { code: 'BAD_REQUEST', message: `connect with a WebSocket to speak protocol v${PROTOCOL_VERSION}` } }),
    wsHandler: (socket, req) => { proto.accept(socket, req.ip); },
  });
}

export default fp(envProtocolPlugin, {
  name: 'colloquy-env-protocol', fastify: '5.x',
  decorators: { fastify: ['config', 'sessions', 'metrics', 'onWebSocketDrain'] },
  dependencies: ['colloquy-websocket', 'colloquy-sessions', 'colloquy-metrics'],
});
