/**
 * The `colloquy` command dispatcher. Each subcommand lives in its own file in cli/ and exports
 * `run(argv: string[]): Promise<number>` (the exit code); it is imported only when used, so
 * `colloquy serve` does not load TensorFlow.js unless the server needs it.
 *
 * Every failure ends as one line on stderr, `error CODE: message` (a ColloquyError's code; anything
 * else is INTERNAL), and no stack trace: exit code 2 for coded errors (bad flags and configs
 * included), 1 for INTERNAL. `--debug` (anywhere on the line) or COLLOQUY_DEBUG=1 adds the stack.
 */
import { reportError, takeErrorFd } from './args.ts';

export { reportError };

interface Command { describe: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }

const COMMANDS: Record<string, Command> = {
  serve: { describe: 'run the environment server (WebSocket /v1/env, REST, chat page)', load: () => import('./serve.ts') },
  sentiment: { describe: 'sentiment scorers: train the classifier, eval on SST-2, validate on DailyDialog', load: () => import('./sentiment.ts') },
  export: { describe: 'write stored dialogs as chat-format JSONL (filter by date, env, agent)', load: () => import('./export.ts') },
  pretrain: { describe: 'train the tokenizer and the base language model; writes a checkpoint (data/models/base)', load: () => import('./pretrain.ts') },
  eval: { describe: 'evaluate agents on N dialogs with fixed seeds: reward, exact KL to base / D, empty turns, help requests (bootstrap CIs)', load: () => import('./eval.ts') },
  study: { describe: 'a paper\'s study from one config (silence under a KL budget): trains, evaluates, tests its claims; writes report.html + results.json', load: () => import('./study.ts') },
  compare: { describe: 'train and evaluate the "mightn\'t do" imitation baseline vs KL-controlled RL; writes report.html + results.json', load: () => import('./compare.ts') },
  train: { describe: 'train a token-level RL agent with KL control (ppo-kl | kl-budget), over WebSocket (--server) or in process', load: () => import('./train.ts') },
  'export-model': { describe: 'write a model checkpoint in the Hugging Face format (GPT-2: config.json, model.safetensors, tokenizer)', load: () => import('./export-model.ts') },
  'import-model': { describe: 'read a GPT-2-family Hugging Face model folder into a Colloquy checkpoint', load: () => import('./import-model.ts') },
  'judge-add': { describe: 'add pairs of two agents\' transcripts (same env seed) for people to judge on /judge', load: async () => ({ run: (await import('./judge.ts')).runAdd }) },
  'judge-export': { describe: 'write people\'s judgements as JSONL with the agents named; print win rates with 95% intervals', load: async () => ({ run: (await import('./judge.ts')).runExport }) },
};

/** Register a subcommand (used by cli files added by later features). */
export function commandNames(): string[] { return Object.keys(COMMANDS); }

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.describe}`);
  return `usage: colloquy <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'colloquy <command> --help' for a command's options. Any command takes --debug\n(or COLLOQUY_DEBUG=1): a failure prints its stack trace too.`;
}

export async function main(argv: string[]): Promise<number> {
  takeErrorFd();
  const debug = argv.includes('--debug') || process.env.COLLOQUY_DEBUG === '1';
  const [name, ...rest] = argv.filter(a => a !== '--debug');
  if (!name || name === '--help' || name === '-h' || name === 'help') { console.log(usage()); return name ? 0 : 2; }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) { console.error(`error BAD_CONFIG: unknown command '${name}' (one of ${Object.keys(COMMANDS).join(', ')}; see colloquy --help)`); return 2; }
  try {
    const mod = await cmd.load();
    return await mod.run(rest);
  } catch (err) {
    return reportError(err, debug);
  }
}
