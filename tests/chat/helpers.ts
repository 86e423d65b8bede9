/** Chat test helpers: a server with the chat page on an ephemeral port, and a scripted person over the page's WebSocket. */
import WebSocket from 'ws';
import { resolveServerConfig, type ServerConfig } from '../../configs/server.ts';
import { buildApp } from '../../server/app.ts';
import { createLogger } from '../../server/log.ts';
import type { Out } from '../../server/chat/lobby.ts';
import type { FastifyInstance } from 'fastify';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends (infer U)[] ? DeepPartial<U>[] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface ChatServer { app: FastifyInstance; config: ServerConfig; url: string; wsUrl: string; chatWsUrl: string; close(): Promise<void> }

export async function startChatServer(overrides: DeepPartial<ServerConfig> = {}): Promise<ChatServer> {
  const config = resolveServerConfig({ logLevel: 'silent', ...overrides, port: 0 });
  const app = buildApp(config, { logger: createLogger({ level: (process.env.TEST_LOG_LEVEL as 'info' | undefined) ?? 'silent' }) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}`;
  return { app, config, url, wsUrl: `ws://127.0.0.1:${port}/v1/env`, chatWsUrl: `ws://127.0.0.1:${port}/chat/ws`, close: () => app.close() };
}

/** A person speaking the chat page's protocol directly (no browser). */
export class PersonClient {
  readonly frames: Out[] = [];
  private waiters: { pred: (m: Out) => boolean; resolve: (m: Out) => void; from: number }[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as Out;
      this.frames.push(m);
      this.waiters = this.waiters.filter(w => { if (w.pred(m)) { w.resolve(m); return false; } return true; });
    });
  }
  static async connect(url: string): Promise<PersonClient> {
    const ws = new WebSocket(url);
    const p = new PersonClient(ws);
    await new Promise<void>((ok, bad) => { ws.once('open', () => ok()); ws.once('error', bad); });
    return p;
  }
  send(m: Record<string, unknown>): void { this.ws.send(JSON.stringify(m)); }
  /** The first frame (from index `from`, default: any seen so far) matching `pred`. */
  waitFor<T extends Out['type']>(type: T, pred: (m: Extract<Out, { type: T }>) => boolean = () => true, timeoutMs = 20_000, from = 0): Promise<Extract<Out, { type: T }>> {
    const match = (m: Out) => m.type === type && pred(m as Extract<Out, { type: T }>);
    const seen = this.frames.slice(from).find(match);
    if (seen) return Promise.resolve(seen as Extract<Out, { type: T }>);
    return new Promise((resolve, reject) => {
      const w = { pred: match, resolve: (m: Out) => { clearTimeout(t); resolve(m as Extract<Out, { type: T }>); }, from };
      const t = setTimeout(() => { this.waiters = this.waiters.filter(x => x !== w); reject(new Error(`no '${type}' frame within ${timeoutMs} ms; got ${this.frames.map(f => f.type).join(',')}`)); }, timeoutMs);
      this.waiters.push(w);
    });
  }
  close(): void { this.ws.close(); }
}
