/**
 * Every registered env served as an OpenEnv server under `/openenv/<ENV_ID>` (server/openenv.ts
 * has the message mapping): OpenEnv's client takes `base_url=http://HOST:PORT/openenv/<ENV_ID>`.
 *
 *   GET /openenv                    the env ids, each with its base URL path
 *   GET /openenv/:env/ws            WebSocket: OpenEnv's {type, data} messages
 *   GET /openenv/:env/health        {"status": "healthy"} (open without the token, as /health)
 *   GET /openenv/:env/metadata      OpenEnv's EnvironmentMetadata
 *   GET /openenv/:env/schema        OpenEnv's SchemaResponse: JSON Schemas of action, observation, state
 *
 * An unknown env id answers 404 UNKNOWN_ENV (a WebSocket upgrade is refused before it happens).
 * Auth is the app's (a bearer token, `?token=`, or Basic credentials whose password is the token,
 * which OpenEnv's client sends for `ws://user:TOKEN@host/...`).
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NameNotFound } from '../../core/errors.ts';
import { getSpec, isRegistered, registeredIds } from '../../env/registry.ts';
import { OPENENV_PREFIX, OpenEnvConnection, openEnvSchema } from '../openenv.ts';
import { refuse } from './auth.ts';

type EnvRequest = FastifyRequest<{ Params: { env: string } }>;

async function openEnvPlugin(app: FastifyInstance): Promise<void> {
  const limits = { maxFrameBytes: app.config.limits.maxFrameBytes, maxPending: app.config.limits.maxPendingPerConnection };

  /** 404 for an unknown env id; an upgrade is refused before it happens. */
  async function requireEnv(req: EnvRequest, reply: FastifyReply): Promise<void> {
    if (isRegistered(req.params.env)) return;
    const e = new NameNotFound(req.params.env.slice(0, 200));
    await refuse(req, reply, 404, e.code, e.message);
  }

  app.get(OPENENV_PREFIX, async () => ({ envs: registeredIds().map(id => ({ id, base_url: `${OPENENV_PREFIX}/${id}` })) }));

  app.route<{ Params: { env: string } }>({
    method: 'GET',
    url: `${OPENENV_PREFIX}/:env/ws`,
    preValidation: requireEnv,
    handler: async (_req, reply) => reply.code(426).header('upgrade', 'websocket')
      .send({ ok: false, error: { code: 'BAD_REQUEST', message: "connect with a WebSocket to speak OpenEnv's protocol" } }),
    wsHandler: (socket, req) => { new OpenEnvConnection(socket, req.params.env, app.envProtocol, req.ip, limits); },
  });

  app.get<{ Params: { env: string } }>(`${OPENENV_PREFIX}/:env/health`, { config: { public: true }, preValidation: requireEnv },
    async () => ({ status: 'healthy' }));

  app.get<{ Params: { env: string } }>(`${OPENENV_PREFIX}/:env/metadata`, { preValidation: requireEnv }, async req => {
    const spec = getSpec(req.params.env);
    return {
      name: spec.id, description: spec.description, readme_content: null, version: null, author: 'Colloquy',
      documentation_url: null,
    };
  });

  app.get<{ Params: { env: string } }>(`${OPENENV_PREFIX}/:env/schema`, { preValidation: requireEnv }, async req => {
    const l = await app.envListing(req.params.env);
    return openEnvSchema(l.observationSpace, l.actionSpace);
  });
}

export default fp(openEnvPlugin, {
  name: 'colloquy-openenv', fastify: '5.x',
  decorators: { fastify: ['config', 'envProtocol', 'envListing'] },
  dependencies: ['colloquy-env-protocol', 'colloquy-rest'],
});
