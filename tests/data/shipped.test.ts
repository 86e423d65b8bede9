import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDailyDialog, loadMathDial, loadShippedCorpus, SHIPPED_CORPUS_FILE } from '../../corpora/readers.ts';
import { generateShippedCorpus, toJsonl } from '../../corpora/shipped/generate.ts';
import { classifyMove, TEACHER_MOVES } from '../../corpora/world.ts';
import { dataPath, itWithData } from '../helpers/data.ts';

describe('shipped corpus', () => {
  const dialogs = loadShippedCorpus();

  it('has several hundred varied teacher–student dialogs and stays under 1 MB', () => {
    expect(dialogs.length).toBeGreaterThanOrEqual(300);
    expect(statSync(SHIPPED_CORPUS_FILE).size).toBeLessThan(1_000_000);
    for (const d of dialogs) {
      expect(d.source).toBe('shipped');
      expect(d.turns.length).toBeGreaterThanOrEqual(4);
      expect(new Set(d.turns.map(t => t.role))).toEqual(new Set(['teacher', 'student']));
      d.turns.forEach((t, k) => { if (k > 0) expect(t.role).not.toBe(d.turns[k - 1]!.role); expect(t.text.length).toBeGreaterThan(0); });
    }
    const subjects = new Set(dialogs.map(d => d.meta!.subject));
    expect(subjects).toEqual(new Set(['science', 'math', 'writing', 'general']));
    const moods = new Set(dialogs.map(d => d.meta!.mood));
    expect(moods.size).toBeGreaterThanOrEqual(5);
    const uniqueTurns = new Set(dialogs.flatMap(d => d.turns.map(t => t.text)));
    expect(uniqueTurns.size).toBeGreaterThan(2000);
    // The setting of Cohen et al.'s prompt is covered.
    expect(dialogs.some(d => /science reports?/.test(d.turns[0]!.text) && d.turns.some(t => /discussion/.test(t.text)))).toBe(true);
  });

  it('holds trajectories of the tutoring world: every teacher move, and the world student\'s ways of leaving', () => {
    const world = dialogs.filter(d => String(d.meta!.topic).startsWith('world:'));
    expect(world.length).toBeGreaterThanOrEqual(300);
    // Exchanges after the three opening turns: teacher turn + the world student's reply.
    const teacher = world.flatMap(d => d.turns.slice(3).filter(t => t.role === 'teacher').map(t => classifyMove(t.text)));
    expect(new Set(teacher)).toEqual(new Set(TEACHER_MOVES));
    const ends = world.map(d => d.turns[d.turns.length - 1]!);
    expect(ends.every(t => t.role === 'student')).toBe(true);
    expect(ends.filter(t => /get it now|understand it now|finally understand|total sense now/i.test(t.text)).length).toBeGreaterThan(world.length / 4);
    // Each dialog opens like Cohen et al.'s prompt and its first teacher move starts with "Do you".
    expect(world.every(d => d.turns[3]!.text.startsWith('Do you'))).toBe(true);
  });

  it('is exactly what the committed generator produces', () => {
    expect(toJsonl(generateShippedCorpus())).toBe(readFileSync(SHIPPED_CORPUS_FILE, 'utf8'));
  });

  itWithData('copies no text from the shared data sets', ['mathdial/test.jsonl', 'dailydialog/test'], () => {
    const data = dataPath();
    const shingles = new Set<string>();
    const words = (s: string) => s.toLowerCase().replace(/[^a-z0-9' ]+/g, ' ').split(/\s+/).filter(Boolean);
    const add = (s: string) => { const w = words(s); for (let i = 0; i + 8 <= w.length; i++) shingles.add(w.slice(i, i + 8).join(' ')); };
    for (const d of loadMathDial(path.join(data, 'mathdial', 'test.jsonl'))) { d.turns.forEach(t => add(t.text)); add(String(d.meta!.problem)); }
    for (const d of loadDailyDialog(path.join(data, 'dailydialog'), 'test')) d.turns.forEach(t => add(t.text));
    let hits = 0;
    const examples: string[] = [];
    for (const d of dialogs) for (const t of d.turns) {
      const w = words(t.text);
      for (let i = 0; i + 8 <= w.length; i++) if (shingles.has(w.slice(i, i + 8).join(' '))) { hits++; if (examples.length < 3) examples.push(w.slice(i, i + 8).join(' ')); }
    }
    expect(examples).toEqual([]);
    expect(hits).toBe(0);
  });
});
