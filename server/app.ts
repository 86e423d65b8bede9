/**
 * The Colloquy server: a fastify app made of plugins, one concern each. Decorators are declared by
 * the plugin that owns them and registered before the plugins that use them (fastify-plugin checks
 * this at boot). A new feature is one more `app.register(...)` line below.
 *
 *   config      app.config                 the validated ServerConfig
 *   metrics     app.metrics, GET /metrics   Prometheus registry (other plugins add metrics)
 *   auth        onRequest hook              optional bearer token (routes with config.public skip it)
 *   sessions    app.sessions                env sessions: capacity, resume window, idle reaping
 *   websocket   @fastify/websocket          transport, frame size cap, graceful drain hooks
 *   envProtocol GET /v1/env (WebSocket)     protocol v1
 *   rest        /v1/envs, /health
 *   models      /v1/models[/:name[/files/:file]]  the base checkpoint (and others) for remote KL
 *   storage     app.store                  SQLite dialog store; records dialog sessions (before any ack)
 *   chatLobby   app.lobby                  pairs people with student:"human" dialogs (before websocket: ends seats first on close)
 *   chat        /chat, /chat/ws            the chat page; hosted agents
 *   dashboard   /dashboard                 live sessions, recent dialogs, training curves
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ServerConfig } from '../configs/server.ts';
import '../env/index.ts';
import { createLogger } from './log.ts';
import metricsPlugin from './plugins/metrics.ts';
import authPlugin from './plugins/auth.ts';
import sessionsPlugin from './plugins/sessions.ts';
import websocketPlugin from './plugins/websocket.ts';
import envProtocolPlugin from './plugins/env-protocol.ts';
import restPlugin from './plugins/rest.ts';
import modelsPlugin from './plugins/models.ts';
import storagePlugin from './plugins/storage.ts';
import chatLobbyPlugin from './plugins/chat-lobby.ts';
import chatPlugin from './plugins/chat.ts';
import dashboardPlugin from './plugins/dashboard.ts';

declare module 'fastify' {
  interface FastifyInstance { config: ServerConfig }
}

export interface BuildAppOptions {
  /** A pino logger (default: one made from `config.logLevel` / `config.logPretty`). */
  logger?: Logger;
}

export function buildApp(config: ServerConfig, opts: BuildAppOptions = {}): FastifyInstance {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, pretty: config.logPretty });
  const app = Fastify({
    loggerInstance: logger,
    // Requests are logged below without their query string (it may carry the token).
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  app.decorate('config', config);

  app.addHook('onResponse', async (req, reply) => {
    const url = req.url.split('?')[0]!;
    const quiet = url === '/health' || url === '/metrics';
    const rec = { method: req.method, url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (quiet) req.log.debug(rec, 'request'); else req.log.info(rec, 'request');
  });

  app.register(metricsPlugin);
  app.register(authPlugin);
  app.register(sessionsPlugin);
  app.register(storagePlugin);
  app.register(chatLobbyPlugin);
  app.register(websocketPlugin);
  app.register(envProtocolPlugin);
  app.register(restPlugin);
  app.register(modelsPlugin, { models: config.models });
  app.register(chatPlugin);
  app.register(dashboardPlugin);
  return app;
}
