/**
 * What a remote client may name in env kwargs. A client on `/v1/env` names rewards, models and
 * checkpoints by id, from registries the server owns; never by a path of its choosing:
 *
 *   kwargs.reward               an id: a file of configs/rewards/ (`cohen` → configs/rewards/cohen.json)
 *   kwargs.model                an id: `base` (the app's base model) or a name under `models` in the server config
 *   kwargs.student.checkpoint   the same ids as `model`
 *
 * A path from the wire is refused unless the operator allows a root for it (`remoteFiles.rewardRoots`,
 * `remoteFiles.checkpointRoots`): then an absolute path whose real path (symlinks followed) lies
 * under one of the roots is taken, a reward file only when it is a regular `.json` file of at most
 * `remoteFiles.maxRewardFileBytes` (so nothing a client names is a device, a FIFO or unbounded).
 * A refusal is one BAD_CONFIG message whatever the path (missing, existing, outside): it never
 * quotes a file, and says nothing of what is on the server's disk.
 *
 * In process and on the CLI none of this applies: `make` takes paths as the operator gives them.
 * The server hands `checkpoint` to its sessions' env context (env/context.ts), which maps ids to
 * folders; kwargs keep the ids (a spec or a recorded dialog never shows a server path).
 *
 * `scrubPaths` is the last line: every error message a client gets has absolute paths cut to
 * their last segment (an env's own error may name a folder).
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import type { ErrorBody } from '../core/errors.ts';
import { PROJECT_ROOT, projectPath } from '../core/paths.ts';
import { listRewardConfigs, validateRewardConfig } from '../rewards/composite.ts';
import type { ServerConfig } from '../configs/server.ts';

const ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

export class RemoteResources {
  private readonly checkpoints: Map<string, string>;
  private readonly rewardRoots: string[];
  private readonly checkpointRoots: string[];
  private readonly maxRewardBytes: number;

  /** `baseModelDir`: the app's base model (id `base`). */
  constructor(config: ServerConfig, baseModelDir: string) {
    this.checkpoints = new Map([['base', baseModelDir]]);
    for (const [name, dir] of Object.entries(config.models)) this.checkpoints.set(name, projectPath(dir));
    this.rewardRoots = config.remoteFiles.rewardRoots.map(realRoot).filter((r): r is string => r !== null);
    this.checkpointRoots = config.remoteFiles.checkpointRoots.map(realRoot).filter((r): r is string => r !== null);
    this.maxRewardBytes = config.remoteFiles.maxRewardFileBytes;
  }

  /** Check what a client's kwargs name (BAD_CONFIG, naming nothing on disk, when it is not allowed). */
  check(kwargs: Record<string, unknown> | undefined): void {
    if (!kwargs) return;
    if (typeof kwargs.reward === 'string') this.checkReward(kwargs.reward);
    if (typeof kwargs.goldReward === 'string') this.checkReward(kwargs.goldReward, 'kwargs.goldReward');
    if (typeof kwargs.model === 'string') this.checkpoint(kwargs.model, 'kwargs.model');
    const student = kwargs.student;
    if (typeof student === 'object' && student !== null && !Array.isArray(student)) {
      const c = (student as Record<string, unknown>).checkpoint;
      if (typeof c === 'string') this.checkpoint(c, 'kwargs.student.checkpoint');
    }
  }

  /** The folder of a checkpoint a client names (an id, or an allowed path); BAD_CONFIG otherwise. */
  checkpoint(name: string, what = 'checkpoint'): string {
    const dir = ID.test(name) ? this.checkpoints.get(name) : undefined;
    if (dir !== undefined) return dir;
    const real = this.checkpointRoots.length ? underRoot(name, this.checkpointRoots) : null;
    if (real !== null && isDir(real)) return real;
    throw new BadConfig(`${what}: no checkpoint ${shown(name)} on this server; name one by id (${[...this.checkpoints.keys()].join(', ')})${this.checkpointRoots.length ? ' or by the absolute path of a folder under the roots it allows' : ''}`);
  }

  private checkReward(name: string, what = 'kwargs.reward'): void {
    if (ID.test(name) && !name.endsWith('.json') && listRewardConfigs().includes(name)) return;
    const refuse = (): never => {
      throw new BadConfig(`${what}: no reward ${shown(name)} on this server; name one by id (${listRewardConfigs().join(', ')})${this.rewardRoots.length ? ' or by the absolute path of a .json file under the roots it allows' : ''}`);
    };
    const real = this.rewardRoots.length ? underRoot(name, this.rewardRoots) : null;
    if (real === null || !real.endsWith('.json')) return refuse();
    let st;
    try { st = statSync(real); } catch { return refuse(); }
    if (!st.isFile() || st.size > this.maxRewardBytes) return refuse();
    let value: unknown;
    try { value = JSON.parse(readFileSync(real, 'utf8')); } catch { throw new BadConfig(`${what}: that reward file is not valid JSON`); }
    validateRewardConfig(value, `${what} file`);
  }
}

/** An id as the client sent it, or "(a path)" for anything else (a refusal reads the same for every path). */
function shown(name: string): string { return ID.test(name) ? `'${name}'` : '(a path)'; }

function realRoot(root: string): string | null {
  try { return realpathSync(projectPath(root)); } catch { return null; }
}

/** The real path of an absolute `p` when it exists and lies inside one of `roots` (real paths), else null. */
function underRoot(p: string, roots: readonly string[]): string | null {
  if (!path.isAbsolute(p) || p.length > 4096 || p.includes('\0')) return null;
  let real: string;
  try { real = realpathSync(p); } catch { return null; }
  return roots.some(r => real === r || real.startsWith(r.endsWith(path.sep) ? r : r + path.sep)) ? real : null;
}

function isDir(p: string): boolean {
  try { return statSync(p).isDirectory(); } catch { return false; }
}

const ABSOLUTE_PATH = /(^|[\s'"`(=[])\/(?:[^\s'"`()[\]/]+\/)*([^\s'"`()[\]/]+)\/?/g;

/** A message with the project root dropped from paths and every other absolute path cut to "…/last-segment". */
export function scrubPaths(message: string): string {
  return message.split(PROJECT_ROOT + path.sep).join('').replace(ABSOLUTE_PATH, (_m, pre: string, last: string) => `${pre}…/${last}`);
}

/** An error body as a client may see it: paths scrubbed from the message and details. */
export function scrubBody(body: ErrorBody): ErrorBody {
  const out: ErrorBody = { code: body.code, message: scrubPaths(body.message) };
  if (body.details !== undefined) {
    try { out.details = JSON.parse(scrubPaths(JSON.stringify(body.details))) as Record<string, unknown>; } catch { /* dropped */ }
  }
  return out;
}
