import { describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.ts';

/** A destination that keeps what it is given. */
function sink() {
  const chunks: string[] = [];
  return { chunks, write(s: string) { chunks.push(s); return true; } };
}

describe('createLogger', () => {
  it('writes NDJSON by default', () => {
    const out = sink();
    const log = createLogger({ destination: out });
    log.info({ conn: 3 }, 'connection opened');
    log.debug('not at info');
    expect(out.chunks).toHaveLength(1);
    const rec = JSON.parse(out.chunks[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: 30, msg: 'connection opened', conn: 3, pid: process.pid });
    expect(typeof rec.time).toBe('number');
  });

  it('with pretty, writes one readable line per record (pino-pretty), without pid or colours', () => {
    const out = sink();
    const log = createLogger({ pretty: true, level: 'debug', destination: out });
    log.info({ conn: 3, remote: '127.0.0.1' }, 'connection opened');
    log.warn('slow reader');
    const text = out.chunks.join('');
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: connection opened \{"conn":3,"remote":"127\.0\.0\.1"\}$/);
    expect(lines[1]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: slow reader$/);
    expect(text).not.toContain('pid');
    expect(text).not.toContain('\u001b[');
  });
});
