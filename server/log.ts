/**
 * The server's pino logger: NDJSON on stdout by default; with `pretty`, one readable line per
 * record (time, level, message, then the structured fields) — for development only.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../configs/server.ts';

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** Format one NDJSON record as `HH:MM:SS.mmm LEVEL msg key=value ...`. */
export function prettyLine(line: string): string {
  let rec: Record<string, unknown>;
  try { rec = JSON.parse(line) as Record<string, unknown>; } catch { return line; }
  const t = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 23) : '';
  const level = LEVEL_NAMES[rec.level as number] ?? String(rec.level);
  const fields = Object.entries(rec).filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
  return `${t} ${level.padEnd(5)} ${String(rec.msg ?? '')}${fields ? `  ${fields}` : ''}\n`;
}

export interface LoggerOptions { level?: LogLevel; pretty?: boolean; destination?: DestinationStream }

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const base = { level, base: { pid: process.pid } };
  if (opts.destination) return pino(base, opts.destination);
  if (opts.pretty) {
    const out = process.stdout;
    return pino(base, { write: (s: string) => { out.write(prettyLine(s)); } });
  }
  return pino(base);
}
