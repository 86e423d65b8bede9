/**
 * The one command line of every `colloquy` command (cli/args.ts): the --set grammar, flags typed
 * and described by the config schemas, and what a failing command prints. Process output is read
 * from real child processes (`node bin/colloquy.mjs ...`), as a user sees it.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import { helpText, parseCommandLine, parseSet, subSchema, type CommandSpec } from '../../cli/args.ts';
import { SERVE_COMMAND } from '../../cli/serve.ts';
import { TRAIN_COMMAND } from '../../cli/train.ts';
import { BATCH_KL_COMMAND } from '../../cli/train-batch-kl.ts';
import { PRETRAIN_COMMAND, corpusWithoutDataDir } from '../../cli/pretrain.ts';
import { COMPARE_COMMAND } from '../../cli/compare.ts';
import { EVAL_COMMAND } from '../../cli/eval.ts';
import { ServerConfigSchema } from '../../configs/server.ts';
import { resolveDataDir } from '../../corpora/readers.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';

const Schema = Type.Object({
  name: Type.String({ default: 'x', description: 'a name' }),
  count: Type.Integer({ minimum: 1, default: 2, description: 'how many' }),
  ratio: Type.Number({ default: 0.5, description: 'a ratio' }),
  mode: Type.Union([Type.Literal('fast'), Type.Literal('slow')], { default: 'fast', description: 'the mode' }),
  token: Type.Union([Type.String(), Type.Null()], { default: null, description: 'a token' }),
  on: Type.Boolean({ default: false, description: 'switch it on' }),
  tags: Type.Array(Type.String(), { default: [], description: 'tags' }),
  inner: Type.Object({ a: Type.Integer({ default: 1 }), b: Type.String({ default: 'b' }) }, { additionalProperties: false, default: {} }),
  kwargs: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'free-form' }),
}, { additionalProperties: false });

const SPEC: CommandSpec = {
  command: 'colloquy demo',
  summary: 'A demo command.',
  schema: Schema,
  set: true,
  flags: [
    { name: 'name', field: 'name' },
    { name: 'count', field: 'count' },
    { name: 'mode', field: 'mode' },
    { name: 'token', field: 'token' },
    { name: 'on', field: 'on' },
    { name: 'tag', field: 'tags', multiple: true },
    { name: 'file', field: 'name', path: true },
    { name: 'verbose', type: 'boolean', describe: 'say more' },
    { name: 'level', type: 'integer', describe: 'a level' },
  ],
};

describe('--set PATH=VALUE', () => {
  it('parses VALUE as JSON when it parses, else as a string, into nested fields', () => {
    expect(parseSet(['count=3', 'ratio=1e-3', 'name=plain words', 'mode="slow"', 'token=null', 'tags=["a","b"]', 'inner.a=7', 'kwargs.reward=jaques', 'kwargs.deep.x={"y":[1]}'], Schema)).toEqual({
      count: 3, ratio: 0.001, name: 'plain words', mode: 'slow', token: null, tags: ['a', 'b'], inner: { a: 7 }, kwargs: { reward: 'jaques', deep: { x: { y: [1] } } },
    });
    // A quoted JSON string keeps digits a string; a later item wins; objects merge.
    expect(parseSet(['name="42"', 'count=2', 'count=5', 'inner={"a":1}', 'inner.b=z'], Schema)).toEqual({ name: '42', count: 5, inner: { a: 1, b: 'z' } });
    // '=' inside the value is part of it.
    expect(parseSet(['kwargs.q=a=b'], Schema)).toEqual({ kwargs: { q: 'a=b' } });
  });

  it('names the item when the path or the value is wrong', () => {
    expect(() => parseSet(['count'], Schema)).toThrow(/--set expects PATH=VALUE, got 'count'/);
    expect(() => parseSet(['=3'], Schema)).toThrow(/--set expects PATH=VALUE/);
    expect(() => parseSet(['a..b=1'], Schema)).toThrow(/bad field path 'a\.\.b'/);
    expect(() => parseSet(['cont=3'], Schema)).toThrow(/--set cont: no config field 'cont' \(fields: name, count, ratio, mode, token, on, tags, inner, kwargs\)/);
    expect(() => parseSet(['inner.c=3'], Schema)).toThrow(/--set inner\.c: no config field 'inner\.c' \(fields of inner: a, b\)/);
    expect(() => parseSet(['count.x=3'], Schema)).toThrow(/no config field 'count\.x'/);
    expect(() => parseSet(['count=many'], Schema)).toThrow(/--set count must be an integer, got 'many'/);
    expect(() => parseSet(['count=0'], Schema)).toThrow(/--set count must be >= 1, got '0'/);
    expect(() => parseSet(['mode=medium'], Schema)).toThrow(/--set mode must be one of fast, slow, got 'medium'/);
    expect(() => parseSet(['token=5'], Schema)).toThrow(/--set token must be a string or null, got '5'/);
    for (const bad of ['count=many', 'cont=1', 'x']) {
      try { parseSet([bad], Schema); expect.unreachable(); } catch (err) { expect(err).toMatchObject({ code: 'BAD_CONFIG', name: 'UsageError' }); }
    }
  });

  it('walks the real schemas: records, unions, free-form kwargs', () => {
    expect(subSchema(ServerConfigSchema, ['limits', 'maxSessions'], 'x')).toMatchObject({ type: 'integer' });
    expect(subSchema(ServerConfigSchema, ['models', 'big'], 'x')).toMatchObject({ type: 'string' });
    expect(() => subSchema(ServerConfigSchema, ['models', 'no/slash'], 'x')).toThrow(/no config field 'models\.no\/slash'/);
    expect(subSchema(ServerConfigSchema, ['chat', 'hostedAgents'], 'x')).toMatchObject({ type: 'array' });
    expect(subSchema(TRAIN_COMMAND.schema!, ['env', 'kwargs', 'reward', 'deeper'], 'x')).toBeNull(); // anything goes below kwargs
  });
});

describe('flags from the schema', () => {
  it('converts and checks field flags by their schema; option flags by their type', () => {
    const cl = parseCommandLine(SPEC, ['--name', '1234', '--count=4', '--mode', 'slow', '--on', '--tag', 'a', '--tag', '7', '--verbose', '--level', '-3', '--set', 'inner.a=2', '--token', 'null']);
    expect(cl.help).toBe(false);
    // A string field keeps its text as typed (`--name 1234` is the string "1234"; `--token null` too).
    expect(cl.values).toMatchObject({ name: '1234', count: 4, mode: 'slow', on: true, tag: ['a', '7'], verbose: true, level: -3, token: 'null' });
    expect(cl.sets).toEqual(['inner.a=2']);
    // --set first, flags on top.
    expect(cl.overrides()).toEqual({ inner: { a: 2 }, name: '1234', count: 4, mode: 'slow', on: true, tags: ['a', '7'], token: 'null' });
    expect(parseCommandLine(SPEC, ['--set', 'count=9', '--count', '3']).overrides()).toEqual({ count: 3 });
    expect(parseCommandLine(SPEC, ['--file', 'rel/x']).overrides()).toEqual({ name: path.resolve('rel/x') });
    expect(parseCommandLine(SPEC, ['-h']).help).toBe(true);
  });

  it('rejects unknown and malformed flags with a usage error naming the flag', () => {
    const bad: [string[], RegExp][] = [
      [['--nope'], /^Unknown option '--nope' \(see colloquy demo --help\)$/],
      [['-x'], /^Unknown option '-x'/],
      [['stray'], /^unexpected argument 'stray'/],
      [['--count'], /^option '--count' needs a value \(--count N;/],
      [['--count', '--on'], /^option '--count' needs a value/],
      [['--count', 'abc'], /^--count must be an integer, got 'abc'$/],
      [['--count', '0'], /^--count must be >= 1, got '0'$/],
      [['--mode', 'x'], /^--mode must be one of fast, slow, got 'x'$/],
      [['--on=yes'], /^option '--on' takes no value/],
      [['--level', '1.5'], /^--level must be an integer, got '1\.5'/],
      [['--set', 'bogus=1'], /^--set bogus: no config field 'bogus'/],
    ];
    for (const [argv, re] of bad) {
      let err: unknown;
      try { parseCommandLine(SPEC, argv).overrides(); } catch (e) { err = e; }
      expect(err, argv.join(' ')).toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(re) });
    }
    // A command without --set does not take one.
    expect(() => parseCommandLine({ ...SPEC, set: false }, ['--set', 'count=1'])).toThrow(/Unknown option '--set'/);
  });

  it('help text is the schema descriptions (with the defaults), for every command that has a schema', () => {
    const demo = helpText(SPEC);
    expect(demo).toMatch(/^usage: colloquy demo \[options\]/);
    expect(demo).toMatch(/--count N\s+how many \(default 2\)/);
    expect(demo).toMatch(/--mode fast\|slow\s+the mode \(one of fast, slow; default fast\)/);
    expect(demo).toMatch(/--on\s+switch it on\n/);
    expect(demo).toMatch(/--tag VALUE\s+tags \(repeatable\)/);
    expect(demo).toMatch(/--set PATH=VALUE\s+set any config field/);
    for (const spec of [SERVE_COMMAND, TRAIN_COMMAND, BATCH_KL_COMMAND, PRETRAIN_COMMAND, COMPARE_COMMAND, EVAL_COMMAND]) {
      const text = helpText(spec).replace(/\s+/g, ' ');
      let fieldFlags = 0;
      for (const f of spec.flags) {
        expect(text, `${spec.command} --${f.name}`).toContain(`--${f.name}`);
        if (!('field' in f)) continue;
        fieldFlags++;
        const field = subSchema(spec.schema!, f.field.split('.'), f.name) as { description?: string };
        expect(field.description, `${spec.command}: ${f.field} has a description`).toBeTruthy();
        expect(text, `${spec.command} --${f.name}`).toContain(field.description!.replace(/\s+/g, ' '));
      }
      expect(fieldFlags, spec.command).toBeGreaterThan(0);
      expect(text).toContain('--set PATH=VALUE');
    }
    // Defaults shown are the default config file's (configs/models/base.json: batchSize 8), not the schema's (16).
    expect(helpText(PRETRAIN_COMMAND)).toMatch(/--batch-size N\s+Sequences per optimiser step\. \(default 8\)/);
  });
});

describe('pretrain without a data dir', () => {
  it('leaves out the corpora that need one, and falls back to the shipped corpus', () => {
    expect(corpusWithoutDataDir('mathdial,shipped')).toBe('shipped');
    expect(corpusWithoutDataDir('mathdial')).toBe('shipped');
    expect(corpusWithoutDataDir('dailydialog:train, chat:x.jsonl')).toBe('chat:x.jsonl');
    expect(corpusWithoutDataDir('shipped')).toBeNull();
    expect(corpusWithoutDataDir('shipped,chat:x.jsonl')).toBeNull();
  });

  // Only where there is no data dir at all (no ../shared/data beside the checkout, no $COLLOQUY_DATA_DIR).
  it.runIf(resolveDataDir() === null)('trains on the shipped corpus (the default config asks for mathdial,shipped)', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'colloquy-pretrain-nodata-'));
    try {
      const r = cli(['pretrain', '--out', out, '--no-progress', '--backend', 'wasm', '--minutes', '0.05', '--epochs', '0.01', '--vocab-size', '300', '--threads', '1',
        '--set', 'model={"dModel":16,"nLayers":1,"nHeads":2,"dFF":32,"contextLength":64}', '--seq-length', '64']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/no data dir .*training on 'shipped' instead of 'mathdial,shipped'/);
      expect(readdirSync(out)).toContain('model.json');
    } finally { rmSync(out, { recursive: true, force: true }); }
  }, 120_000);
});

// ------------------------------------------------------------------------------------------------
// As a process

function cli(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'bin/colloquy.mjs'), ...args], {
    cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 90_000, env: { ...process.env, COLLOQUY_DEBUG: undefined, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** stderr is exactly one coded line, without a stack trace. */
function expectOneCodedLine(stderr: string, code: string, re: RegExp): void {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^error ${code}: `));
  expect(lines[0]).toMatch(re);
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe('colloquy <command> as a process', () => {
  it('an unknown flag: exit 2, one line naming the flag, no stack trace (every command)', () => {
    for (const cmd of [['serve'], ['train'], ['train', '--algo', 'batch-kl'], ['eval'], ['compare'], ['pretrain'], ['export'], ['sentiment', 'eval']]) {
      const r = cli([...cmd, '--frobnicate', '3']);
      expect(r.status, `${cmd.join(' ')}: ${r.stderr}`).toBe(2);
      expectOneCodedLine(r.stderr, 'BAD_CONFIG', /Unknown option '--frobnicate'/);
      expect(r.stderr).toContain(`colloquy ${cmd.join(' ')} --help`);
    }
  }, 120_000);

  it('serve --port abc: a usage error naming --port, not the config file', () => {
    const r = cli(['serve', '--port', 'abc']);
    expect(r.status).toBe(2);
    expectOneCodedLine(r.stderr, 'BAD_CONFIG', /--port must be an integer, got 'abc'/);
    expect(r.stderr).not.toMatch(/server\.json/);
    const s = cli(['serve', '--set', 'limits.maxSessions=lots']);
    expect(s.status).toBe(2);
    expectOneCodedLine(s.stderr, 'BAD_CONFIG', /--set limits\.maxSessions must be an integer, got 'lots'/);
  });

  it('--help is the schema descriptions, on stdout, exit 0', () => {
    const r = cli(['serve', '--help']);
    expect(r.status).toBe(0);
    const text = r.stdout.replace(/\s+/g, ' ');
    for (const key of ['host', 'port', 'token', 'logLevel', 'logPretty'] as const) {
      expect(text).toContain(ServerConfigSchema.properties[key].description!);
    }
  });

  it('a failing command prints one coded line: coded errors exit 2, others INTERNAL exit 1; --debug adds the stack', () => {
    const missing = cli(['serve', '--config', '/nonexistent/server.json']);
    expect(missing.status).toBe(2);
    expectOneCodedLine(missing.stderr, 'BAD_CONFIG', /cannot read config \/nonexistent\/server\.json/);

    const internal = cli(['train', '--curves', '/nonexistent/run']);
    expect(internal.status).toBe(1);
    expectOneCodedLine(internal.stderr, 'INTERNAL', /ENOENT.*\/nonexistent\/run\/metrics\.jsonl/);
    const debug = cli(['train', '--curves', '/nonexistent/run', '--debug']);
    expect(debug.status).toBe(1);
    expect(debug.stderr.split('\n')[0]).toMatch(/^error INTERNAL: ENOENT/);
    expect(debug.stderr).toMatch(/^\s+at /m);
    expect(cli(['train', '--curves', '/nonexistent/run'], { COLLOQUY_DEBUG: '1' }).stderr).toMatch(/^\s+at /m);

    const unknown = cli(['frobnicate']);
    expect(unknown.status).toBe(2);
    expectOneCodedLine(unknown.stderr, 'BAD_CONFIG', /unknown command 'frobnicate'/);
  }, 60_000);

  it('the server\'s first-start pretraining failing: one coded line, not the wasm module as a stack trace', () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-first-start-'));
    try {
      // A fresh base-model folder (so nothing is created in data/models/base).
      const config = path.join(tmp, 'server.json');
      writeFileSync(config, JSON.stringify({ port: 0, logLevel: 'warn', baseModel: { dir: path.join(tmp, 'base') } }));
      // A data dir that is not there: refused before any pretraining starts.
      const noData = cli(['serve', '--config', config], { COLLOQUY_DATA_DIR: '/nonexistent' });
      expect(noData.status).toBe(2);
      expectOneCodedLine(noData.stderr, 'BAD_CONFIG', /data dir \/nonexistent does not exist \(from COLLOQUY_DATA_DIR\)/);
      expect(readdirSync(tmp)).toEqual(['server.json']);

      // The pretraining child itself fails (its model config is missing): its error is the server's one line.
      writeFileSync(config, JSON.stringify({ port: 0, logLevel: 'warn', baseModel: { dir: path.join(tmp, 'base'), configFile: path.join(tmp, 'none.json') } }));
      const failed = cli(['serve', '--config', config]);
      expect(failed.status).toBe(2);
      expectOneCodedLine(failed.stderr, 'BAD_CONFIG', /pretraining the base model into .*base failed: cannot read config .*none\.json/);
      expect(failed.stdout).not.toMatch(/Module\[|WasmBackendModule/);
    } finally { rmSync(tmp, { recursive: true, force: true }); }
  }, 90_000);
});
