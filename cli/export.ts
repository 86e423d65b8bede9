/**
 * `colloquy export`: stored dialogs → JSONL in the chat-messages format (see server/storage/export.ts).
 *
 *   colloquy export --out chats.jsonl --since 2024-05-01 --env TeacherStudent-v0 --agent ppo-kl20
 *
 * The database is opened read-only (a running server may keep writing). A file output is written
 * beside the target and renamed into place when complete, so a failed export never leaves a
 * truncated file under the requested name.
 */
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import { BadConfig } from '../core/errors.ts';
import { DEFAULT_DB_PATH, openStore, toIso } from '../server/storage/db.ts';
import { exportJsonl, type ExportFilter, type ExportSummary } from '../server/storage/export.ts';
import { helpText, parseCommandLine, type CommandSpec } from './args.ts';

export const EXPORT_COMMAND: CommandSpec = {
  command: 'colloquy export',
  usage: '--out FILE.jsonl [options]',
  summary: `Write stored dialogs as JSONL, one dialog per line, in the chat-messages format:
{"messages":[{"role":"assistant"|"user"|"system","speaker":"teacher"|"student"|"system","content":…}],
 "dialogId","env","agent","student","createdAt","endedAt","endReason","rewards":[{"turn","total","components"}],"metadata",…}
The teacher (the agent) is "assistant", the student (person or simulator) is "user".`,
  flags: [
    { name: 'db', type: 'string', metavar: 'FILE', describe: `the database (default: ${path.relative(process.cwd(), DEFAULT_DB_PATH) || DEFAULT_DB_PATH})` },
    { name: 'out', type: 'string', metavar: 'FILE', describe: 'output file, or - for stdout (required)' },
    { name: 'since', type: 'string', metavar: 'ISO', describe: 'only dialogs created at or after this time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)' },
    { name: 'until', type: 'string', metavar: 'ISO', describe: 'only dialogs created before this time' },
    { name: 'env', type: 'string', metavar: 'ID', describe: 'only dialogs of this env (e.g. TeacherStudent-v0)' },
    { name: 'agent', type: 'string', metavar: 'NAME', describe: 'only dialogs of this agent (its name or its id)' },
    { name: 'ended-only', type: 'boolean', describe: 'skip dialogs still in progress' },
  ],
};

export async function run(argv: string[]): Promise<number> {
  const cl = parseCommandLine(EXPORT_COMMAND, argv);
  if (cl.help) { console.log(helpText(EXPORT_COMMAND)); return 0; }
  const values = cl.values as { db?: string; out?: string; since?: string; until?: string; env?: string; agent?: string; 'ended-only'?: boolean };
  if (!values.out) throw new BadConfig('--out FILE (or --out - for stdout) is required; see colloquy export --help');

  const filter: ExportFilter = {};
  if (values.since !== undefined) filter.since = isoFlag(values.since, '--since');
  if (values.until !== undefined) filter.until = isoFlag(values.until, '--until');
  if (values.env !== undefined) filter.env = values.env;
  if (values.agent !== undefined) filter.agent = values.agent;
  if (values['ended-only']) filter.endedOnly = true;

  const dbFile = values.db ?? DEFAULT_DB_PATH;
  const store = openStore(dbFile, { readonly: true });
  try {
    const toStdout = values.out === '-';
    const target = toStdout ? '-' : path.resolve(values.out);
    const tmp = toStdout ? '' : path.join(path.dirname(target), `.${path.basename(target)}.partial-${process.pid}`);
    const out: Writable = toStdout ? process.stdout : createWriteStream(tmp, { flags: 'wx' });

    let bar: cliProgress.SingleBar | null = null;
    if (process.stderr.isTTY) {
      bar = new cliProgress.SingleBar({ stream: process.stderr, format: 'export [{bar}] {value}/{total} dialogs | {eta_formatted}' }, cliProgress.Presets.shades_classic);
      bar.start(store.countDialogs(filter), 0);
    }
    let summary: ExportSummary;
    try {
      summary = await exportJsonl(store, out, filter, { onDialog: s => bar?.update(s.dialogs) });
      if (!toStdout) {
        await new Promise<void>((resolve, reject) => { out.once('error', reject); out.end(resolve); });
        renameSync(tmp, target);
      }
    } catch (err) {
      if (!toStdout) { (out as ReturnType<typeof createWriteStream>).destroy(); rmSync(tmp, { force: true }); }
      if (toStdout && (err as NodeJS.ErrnoException).code === 'EPIPE') return 0; // e.g. `| head`
      throw err;
    } finally {
      bar?.stop();
    }
    const where = toStdout ? 'stdout' : path.relative(process.cwd(), target);
    console.error(`exported ${summary.dialogs} dialogs (${summary.turns} turns, ${summary.rewards} rewards, ${summary.bytes} bytes) from ${dbFile} to ${where}`);
    return 0;
  } finally {
    store.close();
  }
}

function isoFlag(value: string, flag: string): string {
  try { return toIso(value, flag); } catch { throw new BadConfig(`${flag} must be an ISO 8601 date or time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z), not '${value}'`); }
}
