// Bootstrap of a worker thread that runs a TypeScript module of the project (worker threads do
// not inherit the tsx loader that bin/colloquy.mjs registers): `workerData.module` is its URL.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
