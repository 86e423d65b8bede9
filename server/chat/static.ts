/**
 * The web pages' files (server/public), sent by @fastify/static with strict headers. The pages are
 * plain HTML/CSS/JS with no inline script or style, so the Content-Security-Policy can forbid
 * everything else: even if markup got into the page, no script of it would run.
 *
 * Only the routes a plugin names are served (`servePublic`): no wildcard route, no directory
 * listing, no path from the request ever reaches the file system.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyContextConfig, FastifyInstance } from 'fastify';

export const PUBLIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'public');

export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The headers every page file of the server carries. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  // Revalidated on every load (@fastify/static's ETag / Last-Modified make that a 304).
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': CSP,
};

/**
 * Serve files of server/public at fixed routes (`{ '/chat': 'chat.html', ... }`), in a scope of
 * their own (each plugin that calls this gets its own @fastify/static instance). A missing file
 * fails the boot, not the first request.
 */
export async function servePublic(app: FastifyInstance, routes: Readonly<Record<string, string>>, config: FastifyContextConfig = {}): Promise<void> {
  for (const file of Object.values(routes)) statSync(path.join(PUBLIC_DIR, file));
  await app.register(async scope => {
    await scope.register(fastifyStatic, {
      root: PUBLIC_DIR, serve: false, index: false, list: false, dotfiles: 'deny',
      cacheControl: false,
      setHeaders(reply, file) {
        reply.headers(PAGE_HEADERS);
        // RFC 9239's type, as the pages have always been sent; @fastify/send's mime table still says application/javascript.
        if (file.endsWith('.js') && reply.statusCode !== 304) reply.header('content-type', 'text/javascript; charset=utf-8');
      },
    });
    for (const [url, file] of Object.entries(routes)) scope.get(url, { config }, async (_req, reply) => reply.sendFile(file));
  });
}
