/**
 * The request guard, before any route runs:
 *
 * - Host (DNS rebinding): when no token is set, a request whose Host header names a host other
 *   than localhost (and `*.localhost`), an IP literal, the configured `host` or one of
 *   `allowedHosts` gets 403. A page on a rebound name cannot then reach a token-less server.
 * - Origin (cross-site WebSocket hijacking): a WebSocket upgrade (every socket route: /v1/env,
 *   /chat/ws, /openenv/ENV/ws) that carries an Origin header is taken only from the server's own
 *   origin (the origin whose host is the request's Host) or one of `allowedOrigins`; others get
 *   403 before the upgrade. Programs send no Origin and are not affected.
 * - Optional bearer token. When `config.token` is set, every route except those marked
 *   `config: { public: true }` (e.g. `/health`) needs `Authorization: Bearer T` or `?token=T` (the
 *   query form is for browsers, whose WebSocket cannot set headers). A WebSocket upgrade without the
 *   token is refused before the upgrade with HTTP 401 and `{ok:false, error:{code:'UNAUTHORIZED'}}`.
 *   HTTP Basic credentials whose password is the token (any user name) count too: clients that take
 *   only a URL, as OpenEnv's, send them from `ws://user:TOKEN@host/...`.
 *
 * And the app's error handler: a coded error answers its code; anything else is 500
 * `{code: 'INTERNAL', message: 'internal error'}`, never Node's own message.
 */
import { timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { isIP } from 'node:net';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ColloquyError, toErrorBody, type ErrorCode } from '../../core/errors.ts';
import { scrubBody } from '../resources.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Reachable without the bearer token. */
    public?: boolean;
  }
}

/** The token a request presents (header first: Bearer, or Basic's password; then the `token` query parameter), or null. */
export function presentedToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (m) return m[1]!;
    const b = /^Basic\s+([A-Za-z0-9+/=]{1,1024})\s*$/i.exec(h);
    if (b) {
      const pair = Buffer.from(b[1]!, 'base64').toString('utf8');
      const colon = pair.indexOf(':');
      if (colon >= 0) return pair.slice(colon + 1);
    }
  }
  const q = (req.query as Record<string, unknown> | undefined)?.token;
  return typeof q === 'string' ? q : null;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The host name of a Host header (no port, lower case, no trailing dot), or null when it is not one. */
export function hostName(host: string): string | null {
  if (host.length > 300) return null;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(1, end).toLowerCase() : null;
  }
  const name = host.replace(/:\d{1,5}$/, '').toLowerCase().replace(/\.$/, '');
  return /^[a-z0-9.-]{1,253}$/.test(name) ? name : null;
}

/** Whether a Host header names this server: an IP literal, localhost, or one of `names`. */
export function hostAllowed(host: string | undefined, names: ReadonlySet<string>): boolean {
  if (host === undefined) return true;
  const name = hostName(host);
  if (name === null) return false;
  return isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost') || names.has(name);
}

/** Whether a WebSocket upgrade's Origin is acceptable: none, the server's own (its host is the request's Host), or a configured one. */
export function originAllowed(origin: string | undefined, host: string | undefined, extra: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  const o = origin.toLowerCase();
  if (extra.has(o)) return true;
  const m = /^https?:\/\/([^/]+)$/.exec(o);
  return m !== null && host !== undefined && m[1] === host.toLowerCase();
}

const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  BAD_JSON: 400, BAD_REQUEST: 400, BAD_CONFIG: 400, INVALID_ACTION: 400, UNKNOWN_ENV: 404, UNKNOWN_SESSION: 404, NOT_FOUND: 404,
  UNAUTHORIZED: 401, PAYLOAD_TOO_LARGE: 413, CAPACITY: 503, CLOSED: 503, TIMEOUT: 504,
};

/** Answer with a coded error; a refused upgrade also closes the raw socket (nothing else would once the reply is written). */
export function refuse(req: FastifyRequest, reply: FastifyReply, status: number, code: ErrorCode, message: string): FastifyReply {
  if (req.headers.upgrade?.toLowerCase() === 'websocket') {
    reply.header('connection', 'close');
    reply.raw.once('finish', () => req.raw.socket.destroy());
  }
  return reply.code(status).send({ ok: false, error: { code, message } });
}

async function authPlugin(app: FastifyInstance): Promise<void> {
  const { token, allowedHosts, allowedOrigins, host } = app.config;
  const names = new Set([...allowedHosts, host].map(h => h.toLowerCase().replace(/\.$/, '')));
  const origins = new Set(allowedOrigins.map(o => o.toLowerCase().replace(/\/$/, '')));

  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof ColloquyError) return reply.code(STATUS_OF[err.code] ?? 500).send({ ok: false, error: scrubBody(toErrorBody(err)) });
    const status = err.statusCode ?? 500;
    if (status < 500) return reply.code(status).send({ statusCode: status, code: err.code, error: STATUS_CODES[status], message: err.message });
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ ok: false, error: { code: 'INTERNAL', message: 'internal error' } });
  });

  app.addHook('onRequest', async (req, reply) => {
    if (token === null && !hostAllowed(req.headers.host, names)) {
      req.log.info({ url: req.url.split('?')[0], host: req.headers.host?.slice(0, 100) }, 'request for a host this server does not serve');
      return refuse(req, reply, 403, 'UNAUTHORIZED', 'this server does not answer to that host name (allowedHosts in the server config)');
    }
    if (req.headers.upgrade?.toLowerCase() === 'websocket' && !originAllowed(req.headers.origin, req.headers.host, origins)) {
      req.log.info({ url: req.url.split('?')[0], origin: req.headers.origin?.slice(0, 100) }, 'WebSocket upgrade from a foreign origin');
      return refuse(req, reply, 403, 'UNAUTHORIZED', 'WebSocket connections from this origin are not accepted (allowedOrigins in the server config)');
    }
    if (token === null || req.routeOptions.config?.public) return;
    const given = presentedToken(req);
    if (given !== null && same(given, token)) return;
    req.log.info({ url: req.url.split('?')[0], hadToken: given !== null }, 'unauthorized request');
    reply.header('www-authenticate', 'Bearer');
    return refuse(req, reply, 401, 'UNAUTHORIZED', given === null ? 'a bearer token is required' : 'wrong token');
  });
}

export default fp(authPlugin, { name: 'colloquy-auth', fastify: '5.x', decorators: { fastify: ['config'] } });
