/**
 * Issue 14, item 6, over real sockets: a chat socket that goes half-open (answers no ping, sends
 * nothing) is dropped on the heartbeat and, after the resume window, no longer holds a place
 * under chat.maxPeople; chat sockets have a limit of their own (chat.maxConnections).
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { startChatServer, type ChatServer } from './helpers.ts';
import { waitFor } from '../helpers/wait.ts';

let srv: ChatServer | null = null;
const open: WebSocket[] = [];
afterEach(async () => { for (const ws of open.splice(0)) ws.terminate(); await srv?.close(); srv = null; });

interface Sock { ws: WebSocket; frames: { type: string; code?: string }[]; closed: Promise<number> }
async function sock(url: string, opts: WebSocket.ClientOptions = {}): Promise<Sock> {
  const ws = new WebSocket(url, opts);
  open.push(ws);
  const frames: Sock['frames'] = [];
  ws.on('message', d => frames.push(JSON.parse(d.toString()) as Sock['frames'][number]));
  const closed = new Promise<number>(r => ws.once('close', code => r(code)));
  await new Promise<void>((ok, bad) => { ws.once('open', () => ok()); ws.once('error', bad); });
  return { ws, frames, closed };
}

describe('chat sockets (item 6)', () => {
  it('a half-open person is dropped by the heartbeat and their place freed after the resume window', async () => {
    srv = await startChatServer({ heartbeat: { intervalMs: 50, timeoutMs: 250 }, chat: { maxPeople: 2, resumeWindowMs: 200 } });
    const deaf = await Promise.all([0, 1].map(() => sock(srv!.chatWsUrl, { autoPong: false })));
    for (const d of deaf) d.ws.send(JSON.stringify({ type: 'hello' }));
    await waitFor(() => srv!.app.lobby!.size === 2, { what: 'two people in the lobby' });
    // The chat is full now; a live visitor reads so.
    const early = await sock(srv.chatWsUrl);
    early.ws.send(JSON.stringify({ type: 'hello' }));
    await waitFor(() => early.frames.some(f => f.type === 'error' && f.code === 'CAPACITY'), { what: 'the chat is full' });
    // The heartbeat drops the silent sockets (1006: terminated), then the lobby forgets them.
    expect(await deaf[0]!.closed).toBe(1006);
    await waitFor(() => srv!.app.lobby!.size === 0, { what: 'the half-open people reaped' });
    const later = await sock(srv.chatWsUrl);
    later.ws.send(JSON.stringify({ type: 'hello' }));
    await waitFor(() => later.frames.some(f => f.type === 'welcome'), { what: 'a welcome for the next visitor' });
    // A socket that answers the pings stays.
    await new Promise(r => setTimeout(r, 400));
    expect(later.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('chat.maxConnections caps open chat sockets, hello or not', async () => {
    srv = await startChatServer({ chat: { maxConnections: 3 } });
    const first = await Promise.all([0, 1, 2].map(() => sock(srv!.chatWsUrl)));
    const over = await Promise.all([0, 1].map(() => sock(srv!.chatWsUrl)));
    for (const o of over) {
      expect(await o.closed).toBe(1013);
      expect(o.frames[0]).toMatchObject({ type: 'error', code: 'CAPACITY' });
    }
    for (const f of first) expect(f.ws.readyState).toBe(WebSocket.OPEN);
    // A closed socket frees its place.
    first[0]!.ws.close();
    await first[0]!.closed;
    await waitFor(async () => { const s = await sock(srv!.chatWsUrl); await new Promise(r => setTimeout(r, 50)); return s.ws.readyState === WebSocket.OPEN; }, { what: 'a place for a new socket' });
  });
});
