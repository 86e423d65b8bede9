/**
 * `colloquy import-model`: a GPT-2-family Hugging Face folder (config.json, model.safetensors,
 * tokenizer.json) as a Colloquy checkpoint, usable as base, student, demonstrator or policy
 * initialisation (models/hf.ts).
 *
 *   colloquy import-model --from ./distilgpt2 --out data/models/distilgpt2
 */
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import { initBackend } from '../models/backend.ts';
import { importHfModel } from '../models/hf.ts';
import { helpText, parseCommandLine, type CommandSpec } from './args.ts';

export const IMPORT_MODEL_COMMAND: CommandSpec = {
  command: 'colloquy import-model',
  usage: '--from DIR --out CHECKPOINT',
  summary: `Reads a GPT-2-family Hugging Face model folder (model_type gpt2: GPT-2, DistilGPT2, or one you
trained; weights in model.safetensors or a sharded index, F32/F16/BF16) with its tokenizer.json and
writes a Colloquy checkpoint. GELU activations are kept (gelu_new / gelu_pytorch_tanh, gelu). A
tokenizer without Colloquy's <|pad|> and turn markers ("\\n\\nStudent:", "\\n\\nTeacher:") gets them
as new tokens, embedded as the mean of their BPE pieces. Other architectures fail with BAD_CONFIG
naming what Colloquy's LM lacks for them.`,
  flags: [
    { name: 'from', type: 'string', metavar: 'DIR', describe: 'the Hugging Face folder (e.g. from save_pretrained or huggingface-cli download; required)' },
    { name: 'out', type: 'string', metavar: 'CHECKPOINT', describe: 'the Colloquy checkpoint folder to write (required)' },
  ],
};

export async function run(argv: string[]): Promise<number> {
  const cl = parseCommandLine(IMPORT_MODEL_COMMAND, argv);
  if (cl.help) { console.log(helpText(IMPORT_MODEL_COMMAND)); return 0; }
  const values = cl.values as { from?: string; out?: string };
  if (!values.from || !values.out) throw new BadConfig('--from DIR and --out CHECKPOINT are required; see colloquy import-model --help');
  await initBackend('auto');
  const r = await importHfModel(path.resolve(values.from), path.resolve(values.out));
  const c = r.config;
  console.error(`imported ${values.from} to ${values.out}: ${r.numParams} parameters, ${c.nLayers} layers × d ${c.dModel}, ${c.nHeads} heads, vocab ${c.vocabSize}, context ${c.contextLength}, ${c.activation ?? 'relu'}`
    + (r.addedTokens.length ? `; added tokens ${r.addedTokens.map(t => JSON.stringify(t)).join(', ')}` : ''));
  return 0;
}
