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
import { parseArgs } from 'node:util';
import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import { BadConfig } from '../core/errors.ts';
import { DEFAULT_DB_PATH, openStore, toIso } from '../server/storage/db.ts';
import { exportJsonl, type ExportFilter, type ExportSummary } from '../server/storage/export.ts';

const HELP = `usage: colloquy export --out FILE.jsonl [options]

Write stored dialogs as JSONL, one dialog per line, in the chat-messages format:
{"messages":[{"role":"assistant"|"user"|"system","speaker":"teacher"|"student"|"system","content":…}],
 "dialogId","env","agent","student","createdAt","endedAt","endReason","rewards":[{"turn","total","components"}],"metadata",…}
The teacher (the agent) is "assistant", the student (person or simulator) is "user".

options:
  --db FILE        the database (default: ${path.relative(process.cwd(), DEFAULT_DB_PATH) || DEFAULT_DB_PATH})
  --out FILE       output file, or - for stdout (required)
  --since ISO      only dialogs created at or after this time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)
  --until ISO      only dialogs created before this time
  --env ID         only dialogs of this env (e.g. TeacherStudent-v0)
  --agent NAME     only dialogs of this agent (its name or its id)
  --ended-only     skip dialogs still in progress
  -h, --help       show this help`;

export async function run(argv: string[]): Promise<number> {
  const values = parseFlags(argv);
  if (values.help) { console.log(HELP); return 0; }
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

const OPTIONS = {
  db: { type: 'string' }, out: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' },
  env: { type: 'string' }, agent: { type: 'string' }, 'ended-only': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;

function parseFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new BadConfig(`${(err as Error).message}; see colloquy export --help`);
  }
}

function isoFlag(value: string, flag: string): string {
  try { return toIso(value, flag); } catch { throw new BadConfig(`${flag} must be an ISO 8601 date or time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z), not '${value}'`); }
}
