/**
 * The web pages' files (server/public): read once, served from memory with strict headers. The
 * pages are plain HTML/CSS/JS with no inline script or style, so the Content-Security-Policy can
 * forbid everything else: even if markup got into the page, no script of it would run.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply } from 'fastify';

export const PUBLIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'public');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface StaticFile { body: Buffer; type: string }

/** Read a file of server/public (at registration, so a missing file fails the boot). */
export function publicFile(name: string): StaticFile {
  const file = path.join(PUBLIC_DIR, name);
  return { body: readFileSync(file), type: TYPES[path.extname(file)] ?? 'application/octet-stream' };
}

/** Send a file with the security headers every page of the server carries. */
export function sendFile(reply: FastifyReply, f: StaticFile): FastifyReply {
  return reply
    .header('content-type', f.type)
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('content-security-policy', CSP)
    .send(f.body);
}
