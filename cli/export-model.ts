/**
 * `colloquy export-model`: a Colloquy checkpoint (base, demonstrator, imitator, an RL run's policy)
 * as a Hugging Face GPT-2 folder that `transformers` loads with `from_pretrained` (models/hf.ts).
 *
 *   colloquy export-model --format hf --out hf-base [--model data/models/base]
 */
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import { defaultModelDir } from '../core/paths.ts';
import { isCheckpoint } from '../models/checkpoint.ts';
import { initBackend } from '../models/backend.ts';
import { exportHfModel } from '../models/hf.ts';
import { helpText, parseCommandLine, type CommandSpec } from './args.ts';

export const EXPORT_MODEL_COMMAND: CommandSpec = {
  command: 'colloquy export-model',
  usage: '--format hf --out DIR [--model CHECKPOINT]',
  summary: `Writes a Colloquy language-model checkpoint as a Hugging Face GPT-2 folder: config.json,
model.safetensors (float32), tokenizer.json + tokenizer_config.json (the turn markers are special
tokens) and generation_config.json. In Python: AutoModelForCausalLM.from_pretrained(DIR) and
AutoTokenizer.from_pretrained(DIR) give the same log-probabilities and token ids as Colloquy (up to
n_positions tokens; Colloquy slides its window past that). A running server offers the same export
of its base model at GET /v1/models/base/hf.`,
  flags: [
    { name: 'format', type: 'string', choices: ['hf'], describe: 'output format (hf: Hugging Face transformers, GPT-2 architecture)' },
    { name: 'out', type: 'string', metavar: 'DIR', describe: 'output folder (required)' },
    { name: 'model', type: 'string', metavar: 'CHECKPOINT', describe: 'checkpoint folder (default: the base model, $COLLOQUY_BASE_MODEL or data/models/base)' },
  ],
};

export async function run(argv: string[]): Promise<number> {
  const cl = parseCommandLine(EXPORT_MODEL_COMMAND, argv);
  if (cl.help) { console.log(helpText(EXPORT_MODEL_COMMAND)); return 0; }
  const values = cl.values as { format?: string; out?: string; model?: string };
  if (values.format !== 'hf') throw new BadConfig('--format hf is required (the only format so far); see colloquy export-model --help');
  if (!values.out) throw new BadConfig('--out DIR is required; see colloquy export-model --help');
  const model = path.resolve(values.model ?? defaultModelDir());
  if (!(await isCheckpoint(model))) throw new BadConfig(`${model} is not a Colloquy checkpoint (no model.json + weights.bin); pass --model CHECKPOINT`);
  await initBackend('auto');
  const { files } = await exportHfModel(model, path.resolve(values.out));
  console.error(`exported ${path.relative(process.cwd(), model) || model} as Hugging Face GPT-2 to ${values.out}: ${files.map(f => `${f.name} (${f.bytes} bytes)`).join(', ')}`);
  return 0;
}
