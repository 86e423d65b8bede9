/**
 * Kill-test helper: run a child process that prints one line per acknowledged write, SIGKILL it
 * when a condition on the lines seen so far holds, and return every line it printed — including
 * the ones still in the pipe at the moment of the kill, since each was printed after its write
 * returned and so is an acknowledgment too.
 *
 * Used by tests/storage/kill.test.ts on a writer script; the server's kill test can use it on the
 * server process the same way (`command: process.execPath, args: ['bin/colloquy.mjs', 'serve', …]`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export { PROJECT_ROOT } from '../../core/paths.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';

export interface KillRunOptions {
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called after each stdout line with all lines so far; return true to kill now. */
  killWhen: (lines: readonly string[], child: ChildProcess) => boolean;
  /** Give up (kill and reject) if the condition has not held after this long. Default 30 s. */
  timeoutMs?: number;
  signal?: NodeJS.Signals;
  /** Wait this long after the condition holds before killing (lands the kill at a less regular point). Default 0. */
  delayMs?: number;
}

export interface KillRunResult {
  /** Every stdout line, in order (complete lines only: a line cut by the kill is dropped). */
  lines: string[];
  /** Lines seen when the kill was sent (the rest were read from the pipe afterwards). */
  linesAtKill: number;
  stderr: string;
  signal: NodeJS.Signals | null;
  code: number | null;
}

export function runAndKill(opts: KillRunOptions): Promise<KillRunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(opts.command, opts.args, { cwd: opts.cwd ?? PROJECT_ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let partial = '';
    let stderr = '';
    let linesAtKill = -1;
    let triggered = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child not killed within ${opts.timeoutMs ?? 30_000} ms; ${lines.length} lines; stderr:\n${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => { stderr += s; });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      partial += s;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        lines.push(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
        if (!triggered && opts.killWhen(lines, child)) {
          triggered = true;
          const kill = (): void => { linesAtKill = lines.length; child.kill(opts.signal ?? 'SIGKILL'); };
          if (opts.delayMs) setTimeout(kill, opts.delayMs); else kill();
        }
      }
    });
    child.on('error', err => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (linesAtKill < 0) {
        reject(new Error(`child exited (code ${code}, signal ${signal}) before it was killed; ${lines.length} lines; stderr:\n${stderr}`));
        return;
      }
      resolve({ lines, linesAtKill, stderr, signal, code });
    });
  });
}

/** `node bin/run.mjs SCRIPT ...args`: how the project runs a TypeScript script in a child process. */
export function tsCommand(script: string, args: string[] = []): { command: string; args: string[] } {
  return { command: process.execPath, args: [path.join(PROJECT_ROOT, 'bin/run.mjs'), script, ...args] };
}
