import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PUBLIC_DIR } from '../../server/chat/static.ts';
import { startTestServer, type TestServer } from './helpers.ts';

// Written out, not imported: a change to the policy must show up here.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const PAGES: [url: string, file: string, type: string][] = [
  ['/chat', 'chat.html', 'text/html; charset=utf-8'],
  ['/chat/chat.js', 'chat.js', 'text/javascript; charset=utf-8'],
  ['/chat/chat.css', 'chat.css', 'text/css; charset=utf-8'],
  ['/dashboard', 'dashboard.html', 'text/html; charset=utf-8'],
  ['/dashboard/dashboard.js', 'dashboard.js', 'text/javascript; charset=utf-8'],
  ['/dashboard/dashboard.css', 'dashboard.css', 'text/css; charset=utf-8'],
];

let srv: TestServer;
beforeAll(async () => { srv = await startTestServer(); });
afterAll(async () => { await srv.close(); });

describe('the pages (server/public)', () => {
  it('serves each file at its route with the security headers', async () => {
    for (const [url, file, type] of PAGES) {
      const res = await fetch(`${srv.url}${url}`);
      expect(res.status, url).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(path.join(PUBLIC_DIR, file))), url).toBe(true);
      expect(res.headers.get('content-type'), url).toBe(type);
      expect(res.headers.get('content-security-policy'), url).toBe(CSP);
      expect(res.headers.get('x-content-type-options'), url).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), url).toBe('no-referrer');
      expect(res.headers.get('cache-control'), url).toBe('no-cache');
      // no-cache revalidates: the validator answers 304, still with the policy.
      const etag = res.headers.get('etag');
      expect(etag, url).toBeTruthy();
      // (inject: fetch adds `cache-control: no-cache` to a conditional request, which forces a 200)
      const again = await srv.app.inject({ url, headers: { 'if-none-match': etag! } });
      expect(again.statusCode, url).toBe(304);
      expect(again.body, url).toBe('');
      expect(again.headers['content-security-policy'], url).toBe(CSP);
    }
    const head = await fetch(`${srv.url}/chat?agent=x`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-security-policy')).toBe(CSP);
  });

  it('serves nothing else: no other file of the folder, no directory listing, no way out of it', async () => {
    const probes = [
      '/chat/', '/chat/chat.html', '/chat/dashboard.js', '/dashboard/', '/dashboard/chat.js', '/dashboard/dashboard.html',
      '/chat.js', '/public/chat.js', '/server/public/chat.js', '/chat/chat.js/', '/chat//chat.js',
      '/chat/..%2fpackage.json', '/chat/%2e%2e/package.json', '/chat/%2e%2e%2f%2e%2e%2fpackage.json', '/dashboard/..%2f..%2fpackage.json',
      '/chat/chat.js%00.html', '/chat/.env', '/dashboard/%2e%2e%5cpackage.json',
    ];
    const pkg = readFileSync(path.join(PUBLIC_DIR, '..', '..', 'package.json'), 'utf8');
    for (const p of probes) {
      // A raw path (fetch would normalise the dots away).
      const res = await srv.app.inject({ method: 'GET', url: p });
      expect(res.statusCode, p).toBe(404);
      expect(res.body, p).not.toContain('<html');
      expect(res.body, p).not.toContain(pkg.slice(0, 40));
    }
  });
});
