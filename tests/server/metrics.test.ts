import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register as globalRegistry } from 'prom-client';
import { MetricsRegistry, LATENCY_BUCKETS } from '../../server/metrics.ts';
import { rawClient, startTestServer, type TestServer } from './helpers.ts';

let a: TestServer;
let b: TestServer;
beforeAll(async () => { [a, b] = await Promise.all([startTestServer(), startTestServer()]); });
afterAll(async () => { await Promise.all([a.close(), b.close()]); });

const scrape = async (s: TestServer) => {
  const res = await s.app.inject({ url: '/metrics' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return res.body;
};

describe('/metrics', () => {
  it('two servers in one process keep separate metrics, and neither uses the global registry', async () => {
    const c = await rawClient(a.wsUrl);
    const { result } = await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 3 });
    await c.call({ op: 'reset', session: result.session, seed: 1 });
    for (let i = 0; i < 4; i++) await c.call({ op: 'step', session: result.session, actions: [0, 0, 0] });
    await c.call({ op: 'step', session: 'nope', actions: [0] });
    const ta = await scrape(a);
    const tb = await scrape(b);
    c.close();
    expect(ta).toMatch(/^colloquy_env_steps_total 12$/m);
    expect(ta).toMatch(/^colloquy_requests_total\{op="step"\} 5$/m);
    expect(ta).toMatch(/^colloquy_errors_total\{code="UNKNOWN_SESSION"\} 1$/m);
    expect(ta).toMatch(/^colloquy_step_duration_seconds_count 4$/m);
    expect(ta).toMatch(/^colloquy_sessions 1$/m);
    // B saw none of it; its per-op counters exist from the first scrape on, at 0.
    expect(tb).toMatch(/^colloquy_env_steps_total 0$/m);
    expect(tb).toMatch(/^colloquy_requests_total\{op="step"\} 0$/m);
    expect(tb).toMatch(/^colloquy_requests_total\{op="make"\} 0$/m);
    expect(tb).not.toMatch(/^colloquy_errors_total\{/m);
    expect(tb).toMatch(/^colloquy_step_duration_seconds_count 0$/m);
    expect(tb).toMatch(/^colloquy_sessions 0$/m);
    expect(await globalRegistry.metrics()).not.toContain('colloquy_');
  });

  it('exposes every metric with HELP and TYPE, the step histogram with its buckets', async () => {
    const text = await scrape(a);
    for (const [name, type] of [
      ['colloquy_uptime_seconds', 'gauge'], ['process_resident_memory_bytes', 'gauge'], ['colloquy_sessions', 'gauge'],
      ['colloquy_connections', 'gauge'], ['colloquy_requests_total', 'counter'], ['colloquy_errors_total', 'counter'],
      ['colloquy_env_steps_total', 'counter'], ['colloquy_step_duration_seconds', 'histogram'],
    ]) {
      expect(text).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
      expect(text).toMatch(new RegExp(`^# TYPE ${name} ${type}$`, 'm'));
    }
    const buckets = [...text.matchAll(/^colloquy_step_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)];
    expect(buckets.map(m => m[1])).toEqual([...LATENCY_BUCKETS.map(String), '+Inf']);
    const counts = buckets.map(m => Number(m[2]));
    expect(counts).toEqual([...counts].sort((x, y) => x - y)); // cumulative
    expect(counts[counts.length - 1]).toBe(4);
    expect(Number(/^process_resident_memory_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(1e6);
  });
});

describe('MetricsRegistry', () => {
  it('refuses a second metric of the same name, escapes label values, reads gauges at scrape time', async () => {
    const r = new MetricsRegistry();
    r.counter('x_total', 'X.', ['k']).labels('a "quoted"\nvalue\\').inc(2);
    expect(() => r.counter('x_total', 'again')).toThrow(/already been registered/);
    let v = 1;
    r.gauge('g', 'G.', () => v);
    v = 7;
    const text = await r.render();
    expect(text).toContain('x_total{k="a \\"quoted\\"\\nvalue\\\\"} 2');
    expect(text).toMatch(/^g 7$/m);
  });
});
