/**
 * Issue 14, items 4, 5 and 10, over real sockets: prototype keys as model names answer 404;
 * WebSocket upgrades from a foreign Origin are refused on every socket route; a token-less server
 * answers only to its own host names (DNS rebinding); with a token, /chat needs it by default.
 */
import { get as httpGet } from 'node:http';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers.ts';
import { hostAllowed, originAllowed } from '../../server/plugins/auth.ts';

let srv: TestServer | null = null;
afterEach(async () => { await srv?.close(); srv = null; });

/** The HTTP status of a WebSocket upgrade (101 when it opened). */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise(resolve => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => { ws.close(); resolve(101); });
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); });
    ws.once('error', () => resolve(-1));
  });
}

/** The status of a plain GET with these headers (fetch would not send a Host of our choosing). */
function getStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet(url, { headers }, res => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject);
  });
}

describe('prototype keys (item 4)', () => {
  it('GET /v1/models/<prototype key> answers 404 NOT_FOUND, never a 500 with Node\'s message', async () => {
    srv = await startTestServer();
    for (const p of ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf', 'toString/files/model.json', 'constructor/files/weights.bin', '__proto__/files/model.json']) {
      const res = await fetch(`${srv.url}/v1/models/${p}`);
      expect(res.status, p).toBe(404);
      const body = await res.json() as { ok: boolean; error: { code: string; message: string } };
      expect(body.error.code).toBe('NOT_FOUND');
      expect(body.error.message).not.toMatch(/argument|TypeError|Received/);
    }
  });
});

describe('origins and hosts (item 5)', () => {
  it('/v1/env and /chat/ws refuse a foreign Origin before the upgrade; no Origin, their own and configured ones open', async () => {
    srv = await startTestServer({ allowedOrigins: ['https://lab.example.org'] });
    const chat = srv.wsUrl.replace('/v1/env', '/chat/ws');
    const own = srv.url;
    for (const url of [srv.wsUrl, chat, srv.wsUrl.replace('/v1/env', '/openenv/Echo-v0/ws')]) {
      expect(await upgradeStatus(url, { origin: 'https://evil.example' }), url).toBe(403);
      expect(await upgradeStatus(url, { origin: 'null' }), url).toBe(403);
      expect(await upgradeStatus(url, { origin: own.replace('127.0.0.1', 'localhost') }), url).toBe(403);
      expect(await upgradeStatus(url), url).toBe(101);
      expect(await upgradeStatus(url, { origin: own }), url).toBe(101);
      expect(await upgradeStatus(url, { origin: 'https://lab.example.org' }), url).toBe(101);
    }
  });

  it('without a token, a Host that is not this server\'s gets 403 (DNS rebinding); with a token the token decides', async () => {
    srv = await startTestServer({ allowedHosts: ['colloquy.example.org'] });
    const port = new URL(srv.url).port;
    const get = (host: string) => getStatus(`${srv!.url}/v1/envs`, { host });
    expect(await get(`evil.example:${port}`)).toBe(403);
    expect(await get('rebind.attacker.test')).toBe(403);
    expect(await upgradeStatus(srv.wsUrl, { host: `evil.example:${port}`, origin: `http://evil.example:${port}` })).toBe(403);
    expect(await get(`127.0.0.1:${port}`)).toBe(200);
    expect(await get(`localhost:${port}`)).toBe(200);
    expect(await get(`colloquy.example.org:${port}`)).toBe(200);
    expect(await get(`[::1]:${port}`)).toBe(200);
    await srv.close();
    srv = await startTestServer({ token: 't0ken' });
    const p2 = new URL(srv.url).port;
    expect(await getStatus(`${srv.url}/v1/envs`, { host: `any.example:${p2}`, authorization: 'Bearer t0ken' })).toBe(200);
    expect(await getStatus(`${srv.url}/v1/envs`, { host: `any.example:${p2}` })).toBe(401);
  });

  it('hostAllowed / originAllowed', () => {
    const names = new Set(['my.host']);
    expect(hostAllowed('my.host:80', names)).toBe(true);
    expect(hostAllowed('MY.HOST.', names)).toBe(true);
    expect(hostAllowed('a.localhost:1', names)).toBe(true);
    expect(hostAllowed('10.1.2.3:9', names)).toBe(true);
    expect(hostAllowed('my.host.evil', names)).toBe(false);
    expect(hostAllowed('x y', names)).toBe(false);
    expect(originAllowed('http://a:1', 'a:1', new Set())).toBe(true);
    expect(originAllowed('http://a:1/', 'a:1', new Set())).toBe(false);
    expect(originAllowed('http://a:2', 'a:1', new Set())).toBe(false);
  });
});

describe('token coverage (item 10)', () => {
  it('with a token, /chat, /chat/config and /chat/ws need it by default; chat.requireToken false opens them on purpose', async () => {
    srv = await startTestServer({ token: 'sekret' });
    const chatWs = srv.wsUrl.replace('/v1/env', '/chat/ws');
    expect((await fetch(`${srv.url}/chat`)).status).toBe(401);
    expect((await fetch(`${srv.url}/chat/config`)).status).toBe(401);
    expect(await upgradeStatus(chatWs)).toBe(401);
    expect((await fetch(`${srv.url}/chat?token=sekret`)).status).toBe(200);
    expect(await upgradeStatus(`${chatWs}?token=sekret`)).toBe(101);
    expect((await fetch(`${srv.url}/health`)).status).toBe(200);
    await srv.close();
    srv = await startTestServer({ token: 'sekret', chat: { requireToken: false } });
    expect((await fetch(`${srv.url}/chat`)).status).toBe(200);
    expect(await upgradeStatus(srv.wsUrl.replace('/v1/env', '/chat/ws'))).toBe(101);
    expect((await fetch(`${srv.url}/v1/envs`)).status).toBe(401);
  });
});
