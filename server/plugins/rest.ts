/**
 * REST beside the protocol: `GET /v1/envs` (every registered env: id, spec, spaces),
 * `GET /v1/envs/:id`, and `GET /health` (open even when auth is on).
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { EnvSpec } from '../../env/core.ts';
import { toErrorBody, type ErrorBody } from '../../core/errors.ts';
import { getSpec, make, registeredIds } from '../../env/registry.ts';
import type { SpaceJSON } from '../../env/spaces.ts';
import { PROTOCOL_VERSION } from '../../protocol/v1.ts';

export interface EnvListing {
  id: string;
  spec: EnvSpec;
  /** Spaces of the env with its default kwargs (null when building it failed: see `error`). */
  observationSpace: SpaceJSON | null;
  actionSpace: SpaceJSON | null;
  error?: ErrorBody;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** An env's listing (spec, spaces with its default kwargs), built once per env id; UNKNOWN_ENV for an unknown id. */
    envListing(id: string): Promise<EnvListing>;
  }
}

async function restPlugin(app: FastifyInstance): Promise<void> {
  // Spaces need an env instance; build each once, on first request (some envs load models), with
  // this app's env context (its base model decides a dialog env's vocabulary).
  const spaces = new Map<string, { observationSpace: SpaceJSON | null; actionSpace: SpaceJSON | null; error?: ErrorBody }>();
  async function listing(id: string): Promise<EnvListing> {
    const spec = getSpec(id);
    let sp = spaces.get(id);
    if (!sp) {
      try {
        const env = make(id, undefined, app.envContext);
        sp = { observationSpace: env.observationSpace.toJSON(), actionSpace: env.actionSpace.toJSON() };
        await env.close();
      } catch (err) {
        app.log.warn({ env: id, err }, 'could not build env to describe its spaces');
        sp = { observationSpace: null, actionSpace: null, error: toErrorBody(err) };
      }
      spaces.set(id, sp);
    }
    return { id, spec, ...sp };
  }
  app.decorate('envListing', listing);

  app.get('/v1/envs', async () => {
    const envs: EnvListing[] = [];
    for (const id of registeredIds()) envs.push(await listing(id));
    return { protocol: PROTOCOL_VERSION, envs };
  });

  app.get<{ Params: { id: string } }>('/v1/envs/:id', async (req, reply) => {
    try { return await listing(req.params.id); } catch (err) {
      const body = toErrorBody(err);
      return reply.code(body.code === 'UNKNOWN_ENV' ? 404 : 500).send({ ok: false, error: body });
    }
  });

  const started = Date.now();
  app.get('/health', { config: { public: true } }, async () => ({
    status: 'ok',
    protocol: PROTOCOL_VERSION,
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
    sessions: app.sessions.size,
    connections: app.envProtocol.connections.size,
  }));
}

export default fp(restPlugin, {
  name: 'colloquy-rest', fastify: '5.x',
  decorators: { fastify: ['envContext', 'sessions', 'envProtocol'] },
  dependencies: ['colloquy-sessions', 'colloquy-env-protocol'],
});
