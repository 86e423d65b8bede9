import { describe, expect, it } from 'vitest';
import { Gate, waitFor } from './wait.ts';

describe('waitFor', () => {
  it('resolves with the first truthy value of the condition', async () => {
    let n = 0;
    expect(await waitFor(() => (++n >= 3 ? `after ${n}` : null), { intervalMs: 1 })).toBe('after 3');
    expect(await waitFor(async () => 42)).toBe(42);
  });
  it('rejects naming what was awaited when the deadline passes', async () => {
    await expect(waitFor(() => false, { timeoutMs: 20, what: 'the moon' })).rejects.toThrow(/the moon did not happen within 20 ms/);
    let state = 'early';
    const p = waitFor(() => false, { timeoutMs: 20, what: () => `state ${state}` });
    state = 'late';
    await expect(p).rejects.toThrow(/state late/);
  });
  it('a throwing condition rejects at once', async () => {
    await expect(waitFor(() => { throw new Error('boom'); })).rejects.toThrow('boom');
  });
});

describe('Gate', () => {
  it('holds its waiters until opened', async () => {
    const g = new Gate();
    let passed = false;
    const w = g.opened.then(() => { passed = true; });
    await new Promise(r => setImmediate(r));
    expect(passed).toBe(false);
    expect(g.isOpen).toBe(false);
    g.open();
    await w;
    expect(passed).toBe(true);
    expect(g.isOpen).toBe(true);
  });
});
