#!/usr/bin/env node
// The Python client's tests, as `npm test` runs them after vitest: makes (or reuses) the venv at
// .venv in the project root, installs this package with its gymnasium, test and hf extras from its own
// pyproject.toml when that changed (PIP_RETRIES=0: offline it fails fast, with a message saying
// why; hf is torch, transformers, safetensors, tokenizers and trl, for the Hugging Face tests), then runs pytest on clients/python/tests. Extra arguments go to pytest.
//
//   node clients/python/run-tests.mjs [-k check_env] [-x]
//
// PYTHON names the interpreter for a new venv (default python3); COLLOQUY_VENV another venv folder.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const venv = path.resolve(root, process.env.COLLOQUY_VENV ?? '.venv');
const py = path.join(venv, 'bin', 'python');
const stamp = path.join(venv, '.colloquy-client-install');

function fail(msg) {
  console.error(`\nclients/python: ${msg}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { cwd: root, encoding: 'utf8', ...opts });
}

if (!existsSync(py)) {
  const base = process.env.PYTHON ?? 'python3';
  console.log(`clients/python: creating the venv ${path.relative(root, venv) || venv} with ${base}`);
  const r = run(base, ['-m', 'venv', venv], { stdio: ['ignore', 'inherit', 'pipe'] });
  if (r.error) fail(`cannot run ${base} (${r.error.message}): the Python client's tests need Python 3.10 or newer`);
  if (r.status !== 0) {
    fail(`\`${base} -m venv\` failed:\n${r.stderr}\nOn Debian/Ubuntu: apt-get install python3-venv (.ci/run does this).`);
  }
}

// Reinstall when the package's requirements (pyproject.toml) change.
const pyproject = readFileSync(path.join(here, 'pyproject.toml'));
const want = createHash('sha256').update(pyproject).digest('hex');
const have = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
if (have !== want) {
  console.log('clients/python: installing the package with its gymnasium, test and hf extras (pip, PIP_RETRIES=0)');
  const r = run(py, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-e', `${here}[gymnasium,test,hf]`], {
    env: { ...process.env, PIP_RETRIES: '0' }, stdio: ['ignore', 'inherit', 'pipe'],
  });
  if (r.status !== 0) {
    const err = (r.stderr ?? '').split('\n').filter(l => !/is ignored: it is neither a file nor a directory/.test(l)).join('\n');
    const offline = /No matching distribution|Could not find a version|Failed to establish|NewConnectionError|Temporary failure in name resolution|Network is unreachable|ProxyError|ConnectTimeout|Max retries exceeded/i.test(err);
    fail(offline
      ? `pip could not reach a package index to install websockets, numpy, gymnasium, pytest, hypothesis, torch, transformers and trl (see \`pip config list\`; offline, point PIP_INDEX_URL or PIP_FIND_LINKS at a local index or wheels).\n${(err.match(/^.*(ERROR|No matching distribution).*$/gm) ?? err.trim().split('\n').slice(-6)).slice(0, 6).join('\n')}`
      : `pip install failed:\n${err.trim()}`);
  }
  writeFileSync(stamp, `${want}\n`);
}

const r = run(py, ['-m', 'pytest', path.join(here, 'tests'), '-q', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
