#!/usr/bin/env node
// The `colloquy` command: registers the TypeScript loader, then runs the CLI dispatcher. A failure
// ends as one line, `error CODE: message` (cli/index.ts reportError), never a stack trace: also an
// error thrown after the command started (a server's stray exception). These handlers come first,
// so the ones the wasm backend installs (which rethrow, printing its minified source) never run.
import { register } from 'tsx/esm/api';

let report = err => { console.error(`error INTERNAL: ${err instanceof Error ? err.message : String(err)}`); return 1; };
const fatal = err => { process.exit(report(err)); };
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

register();
const cli = await import('../cli/index.ts');
report = err => cli.reportError(err, process.argv.includes('--debug') || process.env.COLLOQUY_DEBUG === '1');
process.exitCode = await cli.main(process.argv.slice(2));
