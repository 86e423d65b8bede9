/**
 * Hostile frames: at least 1,000 malformed or hostile frames on one connection, each answered with
 * a coded error, while a well-behaved client on another connection completes its episodes with
 * exactly the trajectories of the env in process. Then a property-based fuzzer (fast-check) over
 * every op's schema: requests whose fields are valid, hostile or of the wrong type, each answered
 * exactly once (a result or a coded error that names no server path), while a neighbour's seeded
 * trajectory beside the attack stays bit for bit that of the env in process.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/paths.ts';
import { connectVectorEnv } from '../../agents/client.ts';
import { ERROR_CODES, Rng, makeVec, type VectorEnv } from '../../env/index.ts';
import { binaryStepFrame } from '../../protocol/binary.ts';
import type { ObsEncoding } from '../../protocol/v1.ts';
import { rawClient, startTestServer, type RawClient, type TReply, type TestServer } from './helpers.ts';

const MAX_FRAME = 64 * 1024;
let srv: TestServer;
beforeAll(async () => { srv = await startTestServer({ limits: { maxFrameBytes: MAX_FRAME, maxFrameBytesHard: 1024 * 1024, maxSessionsPerConnection: 64 } }); });
afterAll(async () => { await srv.close(); });

type Case = { name: string; frame: string | Buffer; binary?: boolean; expect: string[] };

const nest = (depth: number, inner = '0') => '['.repeat(depth) + inner + ']'.repeat(depth);
const nestObj = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/** A seeded stream of hostile frames for a connection holding `fresh` (made, never reset) and `live` (reset, numEnvs 2). */
function* hostile(rng: Rng, fresh: string, live: string): Generator<Case> {
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)]!;
  const junkValues = ['null', 'true', '"x"', '-1', '1e999', '-1e999', '1e308', '0.5', '"NaN"', '"Infinity"', '[]', '{}', '9007199254740993', '-0', '"__proto__"', nest(50), nestObj(50)];
  const ops = ['make', 'reset', 'step', 'close', 'ping', 'resume'];
  for (let i = 0; ; i++) {
    const id = i;
    switch (i % 20) {
      case 0: { // truncated or corrupted JSON
        const good = JSON.stringify({ id, op: 'step', session: live, actions: [0, 1] });
        const cut = good.slice(0, 1 + rng.int(good.length - 2));
        yield { name: 'truncated JSON', frame: cut, expect: ['BAD_JSON'] };
        break;
      }
      case 1: yield { name: 'random bytes', frame: Buffer.from(Array.from({ length: 1 + rng.int(64) }, () => rng.int(256))), expect: ['BAD_JSON', 'BAD_REQUEST'] }; break;
      case 2: yield { name: 'not an object', frame: pick(junkValues), expect: ['BAD_REQUEST', 'BAD_JSON'] }; break;
      case 3: yield { name: 'unknown op', frame: JSON.stringify({ id, op: pick(['frobnicate', 'STEP', 'constructor', '__proto__', 'toString', '', 'x'.repeat(5000)]) }), expect: ['UNKNOWN_OP'] }; break;
      case 4: yield { name: 'op of the wrong type', frame: `{"id":${id},"op":${pick(junkValues)}}`, expect: ['BAD_REQUEST', 'UNKNOWN_OP'] }; break;
      case 5: yield { name: 'bad id', frame: `{"id":${pick(['null', '{}', '[]', 'true', '1e999', JSON.stringify('x'.repeat(300)), nest(40)])},"op":"ping"}`, expect: ['BAD_REQUEST'] }; break;
      case 6: { // fields of the wrong type
        const f = pick([
          `{"id":${id},"op":"step","session":"${live}","actions":${pick(['"0,1"', '{"0":0}', 'null', '1'])}}`,
          // (any non-negative integer is a seed, as a number or a decimal string: tests/server/protocol-gaps.test.ts)
          `{"id":${id},"op":"reset","session":"${live}","seed":${pick(['"1.5"', '-1', '1.5', '1e999', '-1e300', 'null', '[1]', '"-9007199254740993"', '[1,-1]', '{}'])}}`,
          `{"id":${id},"op":"make","env":"Echo-v0","numEnvs":${pick(['0', '-3', '2.5', '"4"', '1e999', 'null'])}}`,
          `{"id":${id},"op":"make","env":${pick(['1', 'null', '""', JSON.stringify('E'.repeat(500))])}}`,
          `{"id":${id},"op":"make","env":"Echo-v0","autoresetMode":"${pick(['sometimes', '', 'NEXT-STEP'])}"}`,
          `{"id":${id},"op":"reset","session":${pick(['1', 'null', '""', '[]'])}}`,
          `{"id":${id},"op":"resume","session":"${live}","token":${pick(['1', '""', 'null'])}}`,
        ]);
        yield { name: 'wrong types', frame: f, expect: ['BAD_REQUEST'] };
        break;
      }
      case 7: yield { name: 'missing fields', frame: JSON.stringify({ id, op: pick(['reset', 'step', 'close', 'make', 'resume']) }), expect: ['BAD_REQUEST'] }; break;
      case 8: yield { name: 'unknown session', frame: JSON.stringify({ id, op: pick(['reset', 'step', 'close']), session: pick(['nope', 'x'.repeat(128), '00000000-0000-0000-0000-000000000000']), actions: [0, 1] }).replace(/,"actions":\[0,1\]}$/, pick([',"actions":[0,1]}', '}'])), expect: ['UNKNOWN_SESSION', 'BAD_REQUEST'] }; break;
      case 9: yield { name: 'unknown env', frame: JSON.stringify({ id, op: 'make', env: pick(['Ech-v0', 'Echo-v9', 'Nope-v0', 'echo', '../../etc/passwd', 'Echo-v0 ', '__proto__']) }), expect: ['UNKNOWN_ENV'] }; break;
      case 10: yield { name: 'step before reset', frame: JSON.stringify({ id, op: 'step', session: fresh, actions: [0] }), expect: ['RESET_NEEDED'] }; break;
      case 11: { // invalid actions
        const a = pick(['[0]', '[0,1,2]', '[0,16]', '[-1,0]', '[0.5,1]', '["0",1]', '[null,1]', '[1e999,0]', `[${nest(3000)},0]`, '[{"__proto__":1},0]', '[]']);
        yield { name: 'invalid actions', frame: `{"id":${id},"op":"step","session":"${live}","actions":${a}}`, expect: ['INVALID_ACTION'] };
        break;
      }
      case 12: yield { name: 'huge numbers', frame: `{"id":${id},"op":"make","env":"Echo-v0","numEnvs":${pick(['1e9', '2147483647', '4294967297', '1e300'])}}`, expect: ['CAPACITY', 'BAD_REQUEST'] }; break;
      case 13: { // deep nesting in free-form fields and at the top
        const f = pick([
          `{"id":${id},"op":"make","env":"Echo-v0","kwargs":{"a":${nest(1000 + rng.int(20000))}}}`,
          `{"id":${id},"op":"make","env":"Echo-v0","kwargs":${nestObj(100)}}`,
          `{"id":${id},"op":"reset","session":"${live}","options":{"x":${nestObj(40)}}}`,
          `{"id":${id},"op":"ping","extra":${nest(20000)}}`,
          nest(5000 + rng.int(20000)),
        ]);
        yield { name: 'deep nesting', frame: f, expect: ['BAD_REQUEST'] };
        break;
      }
      case 14: { // prototype pollution attempts
        const f = pick([
          `{"id":${id},"op":"ping","__proto__":{"polluted":true}}`,
          `{"id":${id},"op":"make","env":"Echo-v0","kwargs":{"__proto__":{"polluted":true}}}`,
          `{"id":${id},"op":"make","env":"Echo-v0","kwargs":{"constructor":{"prototype":{"polluted":true}}}}`,
          `{"id":${id},"op":"reset","session":"${live}","options":{"__proto__":{"polluted":true}}}`,
          `{"id":${id},"op":"make","env":"Echo-v0","kwargs":{"obsSize":4,"x":[{"__proto__":{"polluted":true}}]}}`,
        ]);
        yield { name: 'prototype pollution', frame: f, expect: ['BAD_REQUEST'] };
        break;
      }
      case 15: yield { name: 'oversized frame', frame: `{"id":${id},"op":"step","session":"${live}","actions":[${'0,'.repeat(MAX_FRAME / 2 + rng.int(100_000))}0]}`, expect: ['PAYLOAD_TOO_LARGE'] }; break;
      case 16: yield { name: 'binary frame', ...hostileBinary(rng, id, live), binary: true }; break;
      case 17: yield { name: 'bad kwargs', frame: JSON.stringify({ id, op: 'make', env: 'Echo-v0', kwargs: pick([{ obsSize: 2 }, { nope: 1 }, { obsSize: 'big' }, { episodeLength: 1e12 }]) }), expect: ['BAD_CONFIG'] }; break;
      case 18: yield { name: 'resume with a wrong token', frame: JSON.stringify({ id, op: 'resume', session: pick([live, 'nope']), token: 'not-the-token' }), expect: ['UNKNOWN_SESSION'] }; break;
      case 19: yield { name: 'extra fields', frame: JSON.stringify({ id, op: pick(ops), session: live, [pick(['sesion', 'action', 'x', 'seed2'])]: 1 }), expect: ['BAD_REQUEST'] }; break;
    }
  }
}

/** Malformed or hostile binary frames (protocol/binary.ts), each with the codes it deserves. */
function hostileBinary(rng: Rng, id: number, live: string): { frame: Buffer; expect: string[] } {
  const good = binaryStepFrame(id, live, [0, 1], { ints: true })!;
  const withHeader = (header: string | Buffer, tail: Buffer = Buffer.alloc(0)) => {
    const h = Buffer.from(header);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(h.length);
    return Buffer.concat([len, h, tail]);
  };
  const i32 = (xs: number[], pad: number) => Buffer.concat([Buffer.alloc(pad), Buffer.from(new Int32Array(xs).buffer)]);
  const f64 = (xs: number[], pad: number) => Buffer.concat([Buffer.alloc(pad), Buffer.from(new Float64Array(xs).buffer)]);
  // A header of 4 + h bytes is followed by (8 - (4 + h) % 8) % 8 padding bytes.
  const stepHeader = (arrays: string, extra = '') => `{"id":${id},"op":"step","session":"${live}"${extra},"arrays":${arrays}}`;
  const padFor = (header: string) => (8 - ((4 + Buffer.byteLength(header)) % 8)) % 8;
  const framed = (header: string, body: (pad: number) => Buffer) => withHeader(header, body(padFor(header)));
  const cases: [() => Buffer, string[]][] = [
    [() => Buffer.from([1, 2, 3].slice(0, rng.int(4))), ['BAD_REQUEST']],
    [() => Buffer.from(JSON.stringify({ id, op: 'ping' })), ['BAD_REQUEST']], // no length prefix: the length is beyond the frame
    [() => withHeader('{"id":1,"op":'), ['BAD_JSON']],
    [() => withHeader(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), ['BAD_JSON']], // not UTF-8
    [() => withHeader('[1,2]'), ['BAD_REQUEST']],
    [() => withHeader(`{"id":${id},"op":"ping","arrays":[]}`), ['BAD_REQUEST']],
    [() => withHeader(stepHeader('"actions"')), ['BAD_REQUEST']],
    [() => framed(stepHeader('[["actions","int64",[2]]]'), pad => i32([0, 1, 0, 0], pad)), ['BAD_REQUEST']],
    [() => framed(stepHeader('[["actions","bool",[2]]]'), pad => Buffer.alloc(pad + 2)), ['BAD_REQUEST']],
    [() => framed(stepHeader('[["actions","int32",[2,3,4]]]'), pad => i32([0, 1], pad)), ['BAD_REQUEST']],
    [() => framed(stepHeader('[["actions","int32",[2147483647,2147483647]]]'), pad => i32([0, 1], pad)), ['BAD_REQUEST']],
    [() => framed(stepHeader('[["actions","int32",[-2]]]'), pad => i32([0, 1], pad)), ['BAD_REQUEST']],
    [() => good.subarray(0, good.length - 1 - rng.int(4)), ['BAD_REQUEST']],
    [() => Buffer.concat([good, Buffer.alloc(1 + rng.int(8))]), ['BAD_REQUEST']],
    [() => framed(stepHeader('[["actions","int32",[2]]]'), pad => { const b = i32([0, 1], pad); if (pad) b[0] = 7; else b.writeInt32LE(99, 0); return b; }), ['BAD_REQUEST', 'INVALID_ACTION']],
    [() => framed(stepHeader('[["actions","float64",[2]]]'), pad => f64([pick([NaN, Infinity, -Infinity]), 0], pad)), ['BAD_REQUEST']],
    [() => framed(stepHeader('[["actions","float64",[2]]]'), pad => f64([0.5, 1], pad)), ['INVALID_ACTION']],
    [() => framed(stepHeader('[["actions","int32",[2]]]'), pad => i32([0, 16], pad)), ['INVALID_ACTION']],
    [() => framed(stepHeader('[["actions","int32",[3]]]'), pad => i32([0, 1, 2], pad)), ['INVALID_ACTION']],
    [() => framed(stepHeader('[["actions","int32",[2]]]', ',"actions":[0,1]'), pad => i32([0, 1], pad)), ['BAD_REQUEST']],
    [() => framed(stepHeader('[["actions","int32",[2]],["actions","int32",[2]]]'), pad => Buffer.concat([i32([0, 1], pad), i32([0, 1], 0)])), ['BAD_REQUEST']],
    [() => framed(stepHeader('[["actions","int32",[2]]]', ',"extra":1'), pad => i32([0, 1], pad)), ['BAD_REQUEST']],
    [() => framed(stepHeader('[["actions","int32",[2]]]').replace(live, 'nope'), pad => i32([0, 1], pad)), ['UNKNOWN_SESSION']],
    [() => Buffer.concat([good, Buffer.alloc(MAX_FRAME)]), ['PAYLOAD_TOO_LARGE']],
  ];
  function pick<T>(xs: T[]): T { return xs[rng.int(xs.length)]!; }
  // In turn (the stream holds one binary frame in 20: every kind comes at least twice in 1,200).
  const [make, expect] = cases[Math.floor(id / 20) % cases.length]!;
  return { frame: make(), expect };
}

async function wellBehaved(episodes: number, obsEncoding: ObsEncoding = 'json'): Promise<number> {
  const kwargs = { episodeLength: 10 };
  const remote = await connectVectorEnv<number[], number>(srv.wsUrl, { env: 'Echo-v0', numEnvs: 4, kwargs, obsEncoding });
  const local = makeVec('Echo-v0', { numEnvs: 4, kwargs }) as VectorEnv<number[], number>;
  expect(JSON.stringify(await remote.reset({ seed: 3 }))).toBe(JSON.stringify(await local.reset({ seed: 3 })));
  const rng = new Rng(77);
  let done = 0;
  while (done < episodes) {
    const actions = Array.from({ length: 4 }, () => rng.int(16));
    const r = await remote.step(actions);
    expect(JSON.stringify(r)).toBe(JSON.stringify(await local.step(actions)));
    done += r.terminated.filter(Boolean).length;
    await new Promise(res => setImmediate(res));
  }
  await remote.close();
  return done;
}

describe('fuzz: hostile frames', () => {
  it('answers 1,200 hostile frames with coded errors while a good client runs its episodes', async () => {
    const c: RawClient = await rawClient(srv.wsUrl);
    const fresh = (await c.call({ op: 'make', env: 'Echo-v0' })).result.session as string;
    const live = (await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 2 })).result.session as string;
    await c.call({ op: 'reset', session: live, seed: 1 });

    const gen = hostile(new Rng(2024), fresh, live);
    const seen = new Map<string, number>();
    const fuzz = async () => {
      // One at a time: each frame's reply is checked against what that frame deserves.
      for (let i = 0; i < 1000; i++) {
        const k = gen.next().value as Case;
        c.raw(k.frame, k.binary ?? false);
        const r: TReply = await c.next();
        if (r.ok !== false || !k.expect.includes(r.error!.code)) throw new Error(`${k.name}: ${String(k.frame).slice(0, 160)} -> ${JSON.stringify(r).slice(0, 300)}`);
        expect(r.error!.message.length).toBeLessThan(400);
        seen.set(k.name, (seen.get(k.name) ?? 0) + 1);
      }
      // Then a pipelined burst: every frame still gets exactly one coded reply.
      const burst = Array.from({ length: 200 }, () => gen.next().value as Case);
      const before = c.received.length;
      for (const k of burst) c.raw(k.frame, k.binary ?? false);
      for (let i = 0; i < burst.length; i++) await c.next();
      expect(c.received.length - before).toBe(200);
      for (const r of c.received.slice(before)) expect(ERROR_CODES).toContain(r.error?.code);
    };
    // Beside the attack, a client on JSON frames and one on binary frames (obsEncoding 'binary').
    const [, episodes, binaryEpisodes] = await Promise.all([fuzz(), wellBehaved(60), wellBehaved(40, 'binary')]);
    expect(episodes).toBeGreaterThanOrEqual(60);
    expect(binaryEpisodes).toBeGreaterThanOrEqual(40);
    expect(seen.size).toBe(20);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');

    // The fuzzed connection and its session still work.
    const ok = await c.call({ op: 'step', session: live, actions: [0, 1] });
    expect(ok.ok).toBe(true);
    c.close();
  }, 60_000);

  it('closes a connection whose frame is above the hard cap (1009), and the server lives on', async () => {
    const c = await rawClient(srv.wsUrl);
    c.raw('x'.repeat(1024 * 1024 + 1));
    expect((await c.closed).code).toBe(1009);
    const d = await rawClient(srv.wsUrl);
    expect((await d.call({ op: 'ping' })).ok).toBe(true);
    d.close();
  });
});

// ---- property-based: every op's schema, valid and hostile values, a neighbour beside it ----

const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', '/etc/passwd', '/dev/zero', '../../../etc/passwd', 'cohen', 'base', '', 'x'.repeat(300), 'Echo-v0', 'TeacherStudent-v0', '\u0000', '..'),
);
const hostileNumber = fc.oneof(
  fc.integer({ min: -3, max: 8 }),
  fc.constantFrom(0, -1, 1.5, 2 ** 31, 2 ** 53 + 1, 1e300, -0, 1025, 65536, Number.MAX_SAFE_INTEGER),
);
const leaf = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null));
const value = fc.letrec(tie => ({
  v: fc.oneof({ depthSize: 'small', maxDepth: 3 }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(hostileString, tie('v'), { maxKeys: 4 })),
})).v;
/** A field: usually of its own type, sometimes anything. */
const field = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: value });
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

/** Requests of every op, shaped by its schema (protocol/v1.ts), for sessions `sessions` (the attacker's own). */
function requests(sessions: string[]): fc.Arbitrary<Record<string, unknown>> {
  const session = field(fc.oneof(fc.constantFrom(...sessions), hostileString));
  const kwargs = fc.oneof(
    fc.record({ obsSize: maybe(field(fc.integer({ min: 1, max: 600 }))), nActions: maybe(field(fc.integer({ min: 1, max: 20 }))), episodeLength: maybe(field(fc.integer({ min: 1, max: 50 }))) }, { requiredKeys: [] }),
    fc.record({ reward: maybe(hostileString), model: maybe(hostileString), student: maybe(fc.oneof(fc.constantFrom('base', 'scripted', 'human'), fc.record({ checkpoint: hostileString }))) }, { requiredKeys: [] }),
    fc.dictionary(hostileString, value, { maxKeys: 4 }),
  );
  const seed = fc.oneof(fc.nat(), fc.stringMatching(/^[0-9]{1,30}$/), fc.array(fc.oneof(fc.nat(), fc.constant(null)), { maxLength: 3 }), value);
  const strip = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return fc.oneof(
    fc.record({ op: fc.constant('make'), env: field(fc.constantFrom('Echo-v0', 'TeacherStudent-v0', 'Nope-v0')), kwargs: maybe(field(kwargs)), numEnvs: maybe(field(fc.oneof(fc.integer({ min: 1, max: 4 }), hostileNumber))),
      autoresetMode: maybe(field(fc.constantFrom('next-step', 'same-step', 'disabled'))), obsEncoding: maybe(field(fc.constantFrom('json', 'f64'))) }).map(strip),
    fc.record({ op: fc.constant('reset'), session, seed: maybe(seed), options: maybe(field(fc.dictionary(hostileString, value, { maxKeys: 3 }))) }).map(strip),
    fc.record({ op: fc.constant('step'), session, actions: field(fc.array(fc.oneof(fc.integer({ min: -1, max: 20 }), value), { maxLength: 5 })) }),
    fc.record({ op: fc.constantFrom('close', 'state'), session }),
    fc.record({ op: fc.constant('ping') }),
    fc.record({ op: fc.constant('resume'), session, token: field(hostileString), pending: maybe(field(fc.array(fc.oneof(fc.nat(), hostileString), { maxLength: 4 }))) }).map(strip),
    fc.record({ op: fc.constant('step'), session, actions: fc.constant([0]), extra: value }),
  );
}

describe('fuzz: property-based over every op', () => {
  it('each request gets exactly one reply, a result or a coded error naming no server path; the neighbour\'s trajectory is unchanged', async () => {
    const c: RawClient = await rawClient(srv.wsUrl);
    const own: string[] = [];
    for (const numEnvs of [1, 2]) own.push((await c.call({ op: 'make', env: 'Echo-v0', numEnvs })).result.session as string);
    await c.call({ op: 'reset', session: own[1], seed: 1 });
    const codes = new Map<string, number>();
    let stop = false;
    const attack = fc.assert(fc.asyncProperty(requests(own), async req => {
      const before = c.received.length;
      const r = await c.call(req, 20_000);
      expect(c.received.length - before).toBe(1);
      if (r.ok) {
        if (req.op === 'make') own.push(r.result.session as string);
        codes.set('ok', (codes.get('ok') ?? 0) + 1);
        return;
      }
      expect(ERROR_CODES).toContain(r.error!.code);
      expect(r.error!.code).not.toBe('INTERNAL');
      expect(r.error!.message).not.toContain(PROJECT_ROOT);
      expect(r.error!.message).not.toMatch(/root:x:/);
      codes.set(r.error!.code, (codes.get(r.error!.code) ?? 0) + 1);
    }), { numRuns: 400, seed: 14, endOnFailure: true }).finally(() => { stop = true; });
    const neighbour = (async () => {
      let steps = 0;
      const kwargs = { episodeLength: 10 };
      const remote = await connectVectorEnv<number[], number>(srv.wsUrl, { env: 'Echo-v0', numEnvs: 3, kwargs });
      const local = makeVec('Echo-v0', { numEnvs: 3, kwargs }) as VectorEnv<number[], number>;
      expect(JSON.stringify(await remote.reset({ seed: 11 }))).toBe(JSON.stringify(await local.reset({ seed: 11 })));
      const rng = new Rng(5);
      while (!stop || steps < 50) {
        const actions = Array.from({ length: 3 }, () => rng.int(16));
        expect(JSON.stringify(await remote.step(actions))).toBe(JSON.stringify(await local.step(actions)));
        steps++;
      }
      await remote.close();
      return steps;
    })();
    const [, steps] = await Promise.all([attack, neighbour]);
    expect(steps).toBeGreaterThanOrEqual(50);
    // The attack reached the env code (some requests went through) and the error paths.
    expect(codes.get('ok') ?? 0).toBeGreaterThan(0);
    expect(codes.size).toBeGreaterThan(4);
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect((await c.call({ op: 'ping' })).ok).toBe(true);
    c.close();
  }, 120_000);
});
