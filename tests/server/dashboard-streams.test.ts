/**
 * Issue 14, item 8, over real sockets: dashboard live feeds share one state build per refresh,
 * are capped (dashboard.maxStreams), and a token-less dashboard shows no session ids.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { rawClient, startTestServer, type TestServer } from './helpers.ts';

let srv: TestServer | null = null;
const aborts: AbortController[] = [];
afterEach(async () => { for (const a of aborts.splice(0)) a.abort(); await srv?.close(); srv = null; });

/** Open a feed and read its first event. */
async function feed(url: string): Promise<{ status: number; first: string | null }> {
  const ctrl = new AbortController();
  aborts.push(ctrl);
  const res = await fetch(url, { signal: ctrl.signal });
  if (res.status !== 200) return { status: res.status, first: await res.text() };
  const reader = res.body!.getReader();
  let buf = '';
  while (!buf.includes('\n\n')) buf += new TextDecoder().decode((await reader.read()).value);
  void (async () => { try { while (!(await reader.read()).done) { /* drain */ } } catch { /* aborted */ } })();
  return { status: 200, first: buf };
}

describe('dashboard feeds (item 8)', () => {
  it('N feeds cost one state build per refresh; beyond maxStreams a feed gets 503 CAPACITY', async () => {
    srv = await startTestServer({ dashboard: { refreshMs: 200, maxStreams: 12 } });
    const builds = vi.spyOn(srv.app.sessions, 'values');
    const feeds = await Promise.all(Array.from({ length: 12 }, () => feed(`${srv!.url}/dashboard/api/events`)));
    expect(feeds.every(f => f.status === 200)).toBe(true);
    const over = await feed(`${srv.url}/dashboard/api/events`);
    expect(over.status).toBe(503);
    expect(JSON.parse(over.first!)).toMatchObject({ ok: false, error: { code: 'CAPACITY' } });
    const before = builds.mock.calls.length;
    const t0 = Date.now();
    await new Promise(r => setTimeout(r, 1000));
    const ticks = (Date.now() - t0) / 200;
    // One build a tick for all twelve feeds (each feed building its own would be 12 a tick).
    expect(builds.mock.calls.length - before).toBeLessThanOrEqual(Math.ceil(ticks) + 1);
    // A closed feed frees its place.
    aborts[0]!.abort();
    await expect.poll(async () => (await feed(`${srv!.url}/dashboard/api/events`)).status, { timeout: 5000 }).toBe(200);
  });

  it('without a token the views carry no session ids', async () => {
    srv = await startTestServer({ dashboard: { refreshMs: 200 } });
    const c = await rawClient(srv.wsUrl);
    const made = (await c.call({ op: 'make', env: 'Echo-v0' })).result;
    const state = await (await fetch(`${srv.url}/dashboard/api/state`)).text();
    expect(JSON.parse(state).sessions).toHaveLength(1);
    expect(state).not.toContain(made.session);
    const ev = await feed(`${srv.url}/dashboard/api/events`);
    expect(ev.first).toContain('Echo-v0');
    expect(ev.first).not.toContain(made.session);
    c.close();
  });
});
