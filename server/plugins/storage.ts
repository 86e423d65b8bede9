/**
 * Storage: opens the SQLite dialog store (`app.store`, server/storage/db.ts), marks the dialogs a
 * previous run left open as `abandoned` (it died with them), and stacks the recorder
 * (server/storage/recorder.ts) on every dialog session the protocol makes, per `storage.record`:
 * `all` (every session of an env that declares `spec.dialog`), `human` (those whose student is a
 * person), or `none`.
 * On close, every session is closed (their open dialogs are ended) before the store is closed.
 */
import path from 'node:path';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { openStore, DEFAULT_DB_PATH, type Store } from '../storage/db.ts';
import { isDialogSpec, recordDialogs } from '../storage/recorder.ts';
import type { ServerConfig } from '../../configs/server.ts';
import type { EnvSpec } from '../../env/core.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';

declare module 'fastify' {
  interface FastifyInstance { store: Store }
}

/** The database file of a config: `storage.db`, else $COLLOQUY_DB, else data/colloquy.db. */
export function dbPath(config: ServerConfig): string {
  const f = config.storage.db ?? process.env.COLLOQUY_DB ?? DEFAULT_DB_PATH;
  return f === ':memory:' ? f : path.resolve(PROJECT_ROOT, f);
}

/** Whether a session of an env with this spec is recorded under the config. */
export function shouldRecord(config: ServerConfig, spec: EnvSpec | null): boolean {
  const mode = config.storage.record;
  if (mode === 'none' || !spec || !isDialogSpec(spec)) return false;
  return mode === 'all' || spec.dialog!.student === 'human';
}

async function storagePlugin(app: FastifyInstance): Promise<void> {
  const log = app.log.child({ component: 'storage' }) as Logger;
  const file = dbPath(app.config);
  const store = openStore(file, { synchronous: app.config.storage.synchronous });
  const abandoned = store.abandonOpenDialogs('the server stopped before the dialog ended');
  log.info({ db: file, schemaVersion: store.schemaVersion, synchronous: store.synchronous, record: app.config.storage.record, abandoned }, 'dialog store open');
  app.decorate('store', store);
  app.metrics.gauge('colloquy_store_dialogs', 'Dialogs in the store.', () => (store.db.open ? store.stats().dialogs : 0));

  app.sessions.wrapVec = (vec, ctx) => {
    if (!shouldRecord(app.config, vec.spec)) return vec;
    return recordDialogs(vec, { store, modelDir: app.envContext.modelDir, checkpoint: name => app.sessions.resources.checkpoint(name), sessionId: () => ctx.sessionId, log });
  };

  app.addHook('onClose', async () => {
    // Sessions first: closing them ends their open dialogs in the store.
    await app.sessions.closeAll('server shutting down');
    store.close();
  });
}

export default fp(storagePlugin, {
  name: 'colloquy-storage', fastify: '5.x',
  decorators: { fastify: ['config', 'envContext', 'sessions', 'metrics'] },
  dependencies: ['colloquy-sessions', 'colloquy-metrics'],
});
