/**
 * Hosted agents: the server plays the teacher itself, so that a person can chat with an agent
 * checkpoint without a separate agent process (`chat.hostedAgents` in configs/server.json; the
 * page's `/chat?agent=NAME`). Each conversation is one TeacherStudent-v0 dialog with student
 * "human", made with the app's env context (its base model and chat lobby) and recorded exactly
 * like a protocol session (the same recorder), driven by an
 * `LmTeacher` (agents/lm-agent.ts) sampling from the checkpoint token by token. The dialog is tied
 * to the person who asked through a reservation (`reset` option `humanSeat`).
 *
 * Only inference runs here (one incremental forward pass per token, yielding to the event loop
 * after each): no training on the server's event loop.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { VectorEnv } from '../../env/core.ts';
import { BadConfig } from '../../core/errors.ts';
import { makeVec } from '../../env/registry.ts';
import { Rng, entropySeed } from '../../core/rng.ts';
import { loadDialogModel, loadDialogTokenizer } from '../../env/dialog-model.ts';
import { dialogSpecOf } from '../../env/dialog.ts';
import type { EnvContext } from '../../env/context.ts';
import { LmTeacher } from '../../agents/lm-agent.ts';
import type { ServerConfig } from '../../configs/server.ts';
import type { Store } from '../storage/db.ts';
import { recordDialogs } from '../storage/recorder.ts';
import { shouldRecord } from '../plugins/storage.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';

export type HostedAgentConfig = ServerConfig['chat']['hostedAgents'][number];

const ENV_ID = 'TeacherStudent-v0';

/** The checkpoint folder of a hosted agent (a run folder with checkpoint/ inside works too); `baseDir`: the app's base model (checkpoint null). */
export function hostedCheckpointDir(a: HostedAgentConfig, baseDir: string): string {
  if (a.checkpoint === null) return baseDir;
  const dir = path.resolve(PROJECT_ROOT, a.checkpoint);
  if (!existsSync(path.join(dir, 'model.json')) && existsSync(path.join(dir, 'checkpoint', 'model.json'))) return path.join(dir, 'checkpoint');
  return dir;
}

export class HostedAgents {
  private readonly running = new Set<Promise<void>>();
  private readonly byName: Map<string, HostedAgentConfig>;

  /** `env`: the app's env context (`app.envContext`). */
  constructor(private readonly deps: { config: ServerConfig; store: Store; log: Logger; env: EnvContext & { readonly modelDir: string } }) {
    this.byName = new Map(deps.config.chat.hostedAgents.map(a => [a.name, a]));
  }

  list(): { name: string; description: string }[] {
    return [...this.byName.values()].map(a => ({ name: a.name, description: a.description }));
  }

  has(name: string): boolean { return this.byName.has(name); }

  get active(): number { return this.running.size; }

  /** Run one conversation of agent `name` with the person holding `reservation`; resolves when it ends. */
  start(name: string, reservation: string): Promise<void> {
    const a = this.byName.get(name);
    if (!a) return Promise.reject(new BadConfig(`no hosted agent '${name}'`));
    const p = this.run(a, reservation).finally(() => { this.running.delete(p); });
    this.running.add(p);
    return p;
  }

  private async run(a: HostedAgentConfig, reservation: string): Promise<void> {
    const log = this.deps.log.child({ agent: a.name });
    const kwargs = { ...a.kwargs, student: 'human', actionMode: 'token' };
    const baseDir = this.deps.env.modelDir;
    let vec: VectorEnv = makeVec(ENV_ID, { numEnvs: 1, kwargs, autoresetMode: 'disabled' }, this.deps.env);
    const spec = vec.spec;
    if (shouldRecord(this.deps.config, spec)) {
      vec = recordDialogs(vec, { store: this.deps.store, modelDir: baseDir, agentName: a.name, metadata: { hosted: true }, log });
    }
    let teacher: LmTeacher | null = null;
    try {
      const tokenizer = loadDialogTokenizer(dialogSpecOf(spec)?.model ?? baseDir);
      const model = await loadDialogModel(hostedCheckpointDir(a, baseDir));
      if (model.tokenizer.vocabSize !== tokenizer.vocabSize) throw new BadConfig(`hosted agent '${a.name}': its checkpoint does not share the env's tokenizer`);
      const seed = entropySeed();
      teacher = new LmTeacher(model.lm, tokenizer, {
        temperature: a.temperature, topK: a.topK, maxUtteranceTokens: a.maxUtteranceTokens, allowEnd: a.allowEnd, seed: new Rng(seed).int(2 ** 31),
      });
      const r = await vec.reset({ seed, options: { humanSeat: reservation, agent: a.name } });
      teacher.begin(r.observations[0]);
      log.info('hosted conversation started');
      for (;;) {
        const s = await vec.step([teacher.act()]);
        if (s.terminated[0] || s.truncated[0]) {
          log.info({ terminated: s.terminated[0], reason: s.infos[0]!.endedBy ?? s.infos[0]!.truncatedBy }, 'hosted conversation ended');
          break;
        }
        teacher.observe(s.observations[0]);
        // One token per turn of the event loop: the person's deltas go out as they are made.
        await new Promise<void>(resolve => setImmediate(resolve));
      }
    } finally {
      teacher?.dispose();
      await vec.close();
    }
  }

  /** Wait for running conversations to finish (their seats are ended by the lobby's shutdown). */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }
}
