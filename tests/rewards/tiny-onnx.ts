/**
 * Builds a tiny text-classification model in the transformers.js folder layout, for tests: a
 * BERT-style WordPiece tokenizer.json and an ONNX graph (written with `onnx-proto`) that sums a
 * 2-d "embedding" of each token: logits = Σ_t mask_t · E[input_ids_t]. Words like "good" push
 * POSITIVE, words like "bad" push NEGATIVE, everything else is neutral.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';

// onnx-proto is CommonJS: load it through require so that plain Node ESM (bench scripts) and vitest agree.
const { onnx } = createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto');

export const TINY_VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'good', 'great', 'love', 'bad', 'awful', 'hate', 'the', 'movie', 'was', 'is', '##s'];
const POSITIVE = new Set(['good', 'great', 'love']);
const NEGATIVE = new Set(['bad', 'awful', 'hate']);

export async function writeTinyClassifier(dir: string, opts: { labels?: [string, string] } = {}): Promise<void> {
  const [neg, pos] = opts.labels ?? ['NEGATIVE', 'POSITIVE'];
  await mkdir(path.join(dir, 'onnx'), { recursive: true });

  // Embedding [V, 2]: column 0 = negative logit, column 1 = positive logit.
  const E = new Float32Array(TINY_VOCAB.length * 2);
  TINY_VOCAB.forEach((w, i) => {
    if (POSITIVE.has(w)) { E[2 * i] = -1; E[2 * i + 1] = 1; }
    if (NEGATIVE.has(w)) { E[2 * i] = 1; E[2 * i + 1] = -1; }
  });
  const T = onnx.TensorProto.DataType;
  const dim = (p: string | number) => (typeof p === 'number' ? { dimValue: p } : { dimParam: p });
  const valueInfo = (name: string, elemType: number, shape: (string | number)[]) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType, shape: { dim: shape.map(dim) } } } });
  const graph = onnx.GraphProto.create({
    name: 'tiny-sentiment',
    initializer: [onnx.TensorProto.create({ name: 'E', dims: [TINY_VOCAB.length, 2], dataType: T.FLOAT, rawData: new Uint8Array(E.buffer) })],
    input: [valueInfo('input_ids', T.INT64, ['batch', 'seq']), valueInfo('attention_mask', T.INT64, ['batch', 'seq'])],
    output: [valueInfo('logits', T.FLOAT, ['batch', 2])],
    node: [
      onnx.NodeProto.create({ opType: 'Gather', input: ['E', 'input_ids'], output: ['emb'], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] }),
      onnx.NodeProto.create({ opType: 'Cast', input: ['attention_mask'], output: ['maskf'], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T.FLOAT }] }),
      onnx.NodeProto.create({ opType: 'Unsqueeze', input: ['maskf'], output: ['mask3'], attribute: [{ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [2] }] }),
      onnx.NodeProto.create({ opType: 'Mul', input: ['emb', 'mask3'], output: ['masked'] }),
      onnx.NodeProto.create({ opType: 'ReduceSum', input: ['masked'], output: ['logits'], attribute: [
        { name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [1] },
        { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 },
      ] }),
    ],
  });
  const model = onnx.ModelProto.create({ irVersion: 7, producerName: 'colloquy-tests', opsetImport: [{ domain: '', version: 11 }], graph });
  await writeFile(path.join(dir, 'onnx', 'model.onnx'), onnx.ModelProto.encode(model).finish());

  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizer = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '[PAD]'), special(1, '[UNK]'), special(2, '[CLS]'), special(3, '[SEP]')],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: Object.fromEntries(TINY_VOCAB.map((w, i) => [w, i])) },
  };
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({
    tokenizer_class: 'BertTokenizer', do_lower_case: true, model_max_length: 64,
    cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', unk_token: '[UNK]',
  }));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({
    model_type: 'bert', architectures: ['BertForSequenceClassification'],
    id2label: { 0: neg, 1: pos }, label2id: { [neg]: 0, [pos]: 1 }, max_position_embeddings: 64,
  }));
}
