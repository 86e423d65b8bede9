/**
 * The server's pino logger: NDJSON on stdout by default; with `pretty`, pino-pretty's readable
 * lines (`[HH:MM:ss.mmm] LEVEL: msg {fields}`, UTC) — for development only.
 */
import { Writable } from 'node:stream';
import { pino, type Logger, type DestinationStream } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from '../configs/server.ts';

export interface LoggerOptions {
  level?: LogLevel;
  pretty?: boolean;
  /** Where the records go (default: stdout); with `pretty`, the formatted lines go there. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const base = { level, base: { pid: process.pid } };
  if (opts.pretty) {
    const dest = opts.destination;
    // pino-pretty pipes into a Node stream; a bare `{ write }` destination gets one around it.
    const destination = dest === undefined ? 1 : 'on' in dest ? dest as Writable
      : new Writable({ write(chunk: Buffer, _enc, done) { dest.write(chunk.toString()); done(); } });
    return pino(base, pretty({
      translateTime: 'HH:MM:ss.l',
      ignore: 'pid,hostname',
      singleLine: true,
      // Synchronous writes: the last lines before a process.exit (a second SIGINT) are not lost.
      sync: true,
      destination,
      // Colours only on the terminal (pino-pretty's own check); never into a caller's stream.
      ...(dest ? { colorize: false } : {}),
    }));
  }
  if (opts.destination) return pino(base, opts.destination);
  return pino(base);
}
