#!/usr/bin/env node
// The `colloquy` command: registers the TypeScript loader, then runs the CLI dispatcher.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/index.ts');
process.exitCode = await main(process.argv.slice(2));
