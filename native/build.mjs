#!/usr/bin/env node
// Builds the native kernels (native/README.md) during `npm ci` / `npm install`, with the node-gyp
// that npm bundles. A failed build is not fatal: Colloquy then runs TF.js's own wasm kernels, and
// says so when a command starts (`colloquy` logs "native kernels: off (...)").
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
if (process.env.COLLOQUY_NO_NATIVE === '1') {
  console.log('colloquy: COLLOQUY_NO_NATIVE=1, native kernels not built');
  process.exit(0);
}
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  // Outside an npm script: npm's own copy, next to the npm that runs this node.
  const npmDir = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  try { gyp = createRequire(path.join(npmDir, 'package.json')).resolve('node-gyp/bin/node-gyp.js'); } catch { gyp = undefined; }
}
if (!gyp) {
  console.warn('colloquy: node-gyp not found; native kernels not built (TF.js wasm kernels will be used)');
  process.exit(0);
}
// Node's own headers when they are installed beside it (no download needed), as npm is set up here.
const args = [gyp, 'rebuild', '--directory', dir];
const prefix = path.join(path.dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir ?? (existsSync(path.join(prefix, 'include', 'node', 'common.gypi')) ? prefix : undefined);
if (nodedir) args.push(`--nodedir=${nodedir}`);
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('colloquy: building the native kernels failed (see above); TF.js wasm kernels will be used');
}
process.exit(0);
