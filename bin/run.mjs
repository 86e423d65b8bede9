#!/usr/bin/env node
// Runs a TypeScript file of the project (bench scripts, tools): `node bin/run.mjs bench/protocol.ts [args]`.
import { register } from 'tsx/esm/api';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

register();
const [file, ...rest] = process.argv.slice(2);
if (!file) { console.error('usage: node bin/run.mjs FILE.ts [args]'); process.exit(2); }
process.argv = [process.argv[0], path.resolve(file), ...rest];
await import(pathToFileURL(path.resolve(file)).href);
