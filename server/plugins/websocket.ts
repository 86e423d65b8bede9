/**
 * The WebSocket transport (@fastify/websocket) shared by every WebSocket route. Frames up to
 * `limits.maxFrameBytesHard` are buffered (the protocol answers those above `maxFrameBytes` with
 * PAYLOAD_TOO_LARGE and keeps the connection); larger ones close the connection with 1009. UTF-8
 * is checked by the protocol, so that a bad frame gets a reply instead of a closed connection.
 *
 * Graceful close: `app.onWebSocketDrain(fn)` registers work that runs on app close before the
 * remaining sockets are closed (the env protocol finishes its in-flight replies there).
 */
import fp from 'fastify-plugin';
import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyInstance {
    /** Run `fn` on close, before the WebSocket server closes its remaining clients. */
    onWebSocketDrain(fn: () => Promise<void>): void;
  }
}

async function websocketPlugin(app: FastifyInstance): Promise<void> {
  const drains: (() => Promise<void>)[] = [];
  app.decorate('onWebSocketDrain', (fn: () => Promise<void>) => { drains.push(fn); });
  await app.register(websocket, {
    options: { maxPayload: app.config.limits.maxFrameBytesHard, skipUTF8Validation: true, perMessageDeflate: false },
    errorHandler(error, socket, request) {
      request.log.warn({ err: { message: error.message, code: (error as { code?: string }).code } }, 'websocket error; closing the connection');
      socket.terminate();
    },
    async preClose() {
      for (const fn of drains) {
        try { await fn(); } catch (err) { app.log.error({ err }, 'websocket drain failed'); }
      }
      const wss = app.websocketServer;
      for (const client of wss.clients) client.terminate();
      await new Promise<void>(resolve => wss.close(() => resolve()));
    },
  });
}

export default fp(websocketPlugin, { name: 'colloquy-websocket', fastify: '5.x', decorators: { fastify: ['config'] } });
