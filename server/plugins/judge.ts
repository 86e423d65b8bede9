/**
 * People as judges: the `/judge` page shows a person two transcripts of the same prompt from two
 * agents (names hidden, sides randomised per judge, pairs in an order of each judge's own) and
 * asks the pair's questions ("which teacher is better?" …), each answered left, right or "can't
 * tell", with an optional reason. Judgements are stored (server/storage/judging.ts) before they
 * are acknowledged. Pairs are added with `colloquy judge-add`; `colloquy judge-export` reads the
 * judgements back with the agents named and their win rates.
 *
 *   GET  /judge                      the page (server/public/judge.{html,js,css}); `?study=S`, `?token=T`
 *   GET  /judge/api/studies          studies with pairs: {study, pairs, judgements, judges}
 *   GET  /judge/api/next?study&judge the next pair for this judge, blind: {pair, prompt, questions, left, right, progress} or {done: true}
 *   POST /judge/api/judgements       {pair, judge, answers: {questionId: "left"|"right"|"tie"}, reason?} → {ok, saved, already}
 *
 * The page's files are open; the API needs the server's token when it has one (the page passes
 * `?token=` of its own URL on as a bearer header). Errors are `{ok: false, error: {code, message}}`.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ColloquyError, toErrorBody } from '../../core/errors.ts';
import { servePublic } from '../chat/static.ts';
import { JudgeStore } from '../storage/judging.ts';

declare module 'fastify' {
  interface FastifyInstance { judging: JudgeStore }
}

/** Largest judgement body accepted (the reason is at most 2,000 characters). */
const MAX_BODY = 16 * 1024;

function status(code: string): number {
  return code === 'NOT_FOUND' ? 404 : code === 'UNAUTHORIZED' ? 401 : code === 'PAYLOAD_TOO_LARGE' ? 413 : code === 'INTERNAL' ? 500 : 400;
}

async function fail(reply: FastifyReply, err: unknown): Promise<FastifyReply> {
  const body = toErrorBody(err);
  if (!(err instanceof ColloquyError)) reply.log.error({ err }, 'judge request failed');
  return reply.code(status(body.code)).send({ ok: false, error: body });
}

async function judgePlugin(app: FastifyInstance): Promise<void> {
  const judging = new JudgeStore(app.store.db);
  app.decorate('judging', judging);
  await servePublic(app, { '/judge': 'judge.html', '/judge/judge.js': 'judge.js', '/judge/judge.css': 'judge.css' }, { public: true });

  await app.register(async api => {
    // Fastify's own refusals (a body too large, not JSON) answer in the same coded form.
    api.setErrorHandler(async (err: { statusCode?: number; message: string }, _req, reply) => {
      const code = err.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : err.statusCode === 415 ? 'BAD_REQUEST' : err.statusCode === 400 ? 'BAD_JSON' : 'INTERNAL';
      return fail(reply, code === 'INTERNAL' ? err : new ColloquyError(code, code === 'PAYLOAD_TOO_LARGE' ? `a judgement is at most ${MAX_BODY} bytes` : 'the body must be JSON'));
    });

    api.get('/judge/api/studies', async () => ({ studies: judging.studies() }));

    api.get<{ Querystring: { study?: unknown; judge?: unknown } }>('/judge/api/next', async (req, reply) => {
      try {
        const { study, judge } = req.query;
        if (typeof study !== 'string' || typeof judge !== 'string') throw new ColloquyError('BAD_REQUEST', 'study and judge are required query parameters');
        const total = judging.pairCount(study);
        return judging.next(study, judge) ?? { done: true, study, progress: { judged: total, total } };
      } catch (err) { return fail(reply, err); }
    });

    api.post('/judge/api/judgements', { bodyLimit: MAX_BODY }, async (req, reply) => {
      try {
        const b = req.body;
        if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new ColloquyError('BAD_REQUEST', 'the body must be a JSON object');
        const o = b as Record<string, unknown>;
        // Written (and committed) before the reply acknowledges it.
        const r = judging.judge({ pair: o.pair, judge: o.judge, answers: o.answers, reason: o.reason });
        return { ok: true, ...r };
      } catch (err) { return fail(reply, err); }
    });
  });
}

export default fp(judgePlugin, {
  name: 'colloquy-judge', fastify: '5.x',
  decorators: { fastify: ['store'] },
  dependencies: ['colloquy-storage'],
});
