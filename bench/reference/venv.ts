/**
 * bench/reference/venv: the Python the PyTorch references run on — a venv of its own at
 * `.venv-bench` in the project root (git-ignored; not the test venv `.venv`), made on first use
 * with `python3 -m venv` and `pip install torch==2.13.0+cpu numpy` (PIP_RETRIES=0: the wheel comes
 * from the machine's local package index, no download). Both bench/lm.ts and bench/train.ts call
 * `benchPython()`; a venv that already imports torch 2.13 is reused as it is.
 *
 *   node bin/run.mjs bench/reference/venv.ts      # make (or check) the venv and print its python
 *
 * PYTHON names the interpreter for a new venv (default python3); COLLOQUY_BENCH_VENV another folder.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../core/paths.ts';

export const TORCH_VERSION = '2.13.0+cpu';

/** The venv's python when it imports torch `TORCH_VERSION` (made on first use), or an error string saying why not. */
export function benchPython(log: (s: string) => void = () => {}): { python: string } | { error: string } {
  const venv = path.resolve(PROJECT_ROOT, process.env.COLLOQUY_BENCH_VENV ?? '.venv-bench');
  const py = path.join(venv, 'bin', 'python');
  const version = () => {
    const r = spawnSync(py, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  if (existsSync(py) && version() === TORCH_VERSION) return { python: py };
  if (!existsSync(py)) {
    const base = process.env.PYTHON ?? 'python3';
    log(`bench: creating the venv ${path.relative(PROJECT_ROOT, venv)} with ${base} for the PyTorch reference`);
    const r = spawnSync(base, ['-m', 'venv', venv], { encoding: 'utf8' });
    if (r.status !== 0) return { error: `\`${base} -m venv ${venv}\` failed: ${(r.stderr || '').trim().split('\n').slice(-2).join(' | ')} (Debian: apt-get install python3-venv)` };
  }
  log(`bench: installing torch==${TORCH_VERSION} and numpy into ${path.relative(PROJECT_ROOT, venv)} (local package index, PIP_RETRIES=0)`);
  const r = spawnSync(py, ['-m', 'pip', 'install', '--quiet', `torch==${TORCH_VERSION}`, 'numpy'], {
    encoding: 'utf8', env: { ...process.env, PIP_RETRIES: '0' },
  });
  if (r.status !== 0) return { error: `pip install torch==${TORCH_VERSION} numpy failed: ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}` };
  const v = version();
  return v === TORCH_VERSION ? { python: py } : { error: `${py} imports torch ${v ?? '(none)'}, not ${TORCH_VERSION}` };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = benchPython(console.log);
  if ('error' in r) { console.error(r.error); process.exit(1); }
  console.log(r.python);
}
