/**
 * Optional bearer-token auth. When `config.token` is set, every route except those marked
 * `config: { public: true }` (e.g. `/health`) needs `Authorization: Bearer T` or `?token=T` (the
 * query form is for browsers, whose WebSocket cannot set headers). A WebSocket upgrade without the
 * token is refused before the upgrade with HTTP 401 and `{ok:false, error:{code:'UNAUTHORIZED'}}`.
 * HTTP Basic credentials whose password is the token (any user name) count too: clients that take
 * only a URL, as OpenEnv's, send them from `ws://user:TOKEN@host/...`.
 */
import { timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';

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

async function authPlugin(app: FastifyInstance): Promise<void> {
  const token = app.config.token;
  if (token === null) return;
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public) return;
    const given = presentedToken(req);
    if (given !== null && same(given, token)) return;
    req.log.info({ url: req.url.split('?')[0], hadToken: given !== null }, 'unauthorized request');
    // A refused upgrade: nothing else will close the raw socket once the 401 is written.
    if (req.headers.upgrade?.toLowerCase() === 'websocket') {
      reply.header('connection', 'close');
      reply.raw.once('finish', () => req.raw.socket.destroy());
    }
    return reply.code(401).header('www-authenticate', 'Bearer')
      .send({ ok: false, error: { code: 'UNAUTHORIZED', message: given === null ? 'a bearer token is required' : 'wrong token' } });
  });
}

export default fp(authPlugin, { name: 'colloquy-auth', fastify: '5.x', decorators: { fastify: ['config'] } });
