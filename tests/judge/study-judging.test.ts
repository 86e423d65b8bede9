/**
 * Issue 13, study 4: a study config's "judge" block names the agent pairs to judge and how many
 * pairs; `colloquy study` adds them for /judge (a rerun adds none twice) and its report shows what
 * people judged so far — win rates with 95% intervals over pairs. A path that leaves the study's
 * folder is refused.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { judgeStudy } from '../../cli/judge.ts';
import { withJudgeSection } from '../../agents/report/judge-section.ts';
import { resolveSilenceStudy } from '../../configs/experiments/silence-schema.ts';
import { openStore } from '../../server/storage/db.ts';
import { JudgeStore } from '../../server/storage/judging.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-study-judging-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function rowsFile(out: string, name: string, agent: string, seeds: number[]): void {
  mkdirSync(path.join(out, 'eval'), { recursive: true });
  writeFileSync(path.join(out, 'eval', name), seeds.map(envSeed => JSON.stringify({
    agent, envSeed, prompt: `Student: problem ${envSeed}\n\nTeacher: Do you`, teacherTexts: [` ${agent} turn`, ' <b>bye</b>'], studentTexts: [' ok'],
  })).join('\n') + '\n');
}

describe('a study config\'s judge block', () => {
  it('is part of the study schema, with the count and both questions by default', () => {
    const c = resolveSilenceStudy({ study: 'silence', judge: { study: 'silence', pairs: [{ a: 'eval/x.jsonl', b: 'eval/y.jsonl' }] } });
    expect(c.judge).toMatchObject({ count: 50, questions: ['better', 'complex'], db: null });
    expect(() => resolveSilenceStudy({ study: 'silence', judge: { study: 'bad name!', pairs: [{ a: 'a', b: 'b' }] } })).toThrow(/judge\/study/);
    expect(() => resolveSilenceStudy({ study: 'silence', judge: { study: 's', pairs: [] } })).toThrow(/judge\/pairs/);
  });

  it('adds at most `count` pairs once, and the report shows the judgements people gave, with intervals', () => {
    const out = path.join(tmp, 'study'), db = path.join(tmp, 'judge.db');
    rowsFile(out, 'agent.jsonl', 'kl-budget B=20', [1, 2, 3, 4, 5]);
    rowsFile(out, 'base.jsonl', 'base', [1, 2, 3, 4, 6]);
    const judge = { study: 'silence-test', pairs: [{ a: 'eval/agent.jsonl', b: 'eval/base.jsonl' }], count: 3, questions: ['better', 'complex'], db };
    const logs: string[] = [];
    const first = judgeStudy(judge, out, l => logs.push(l));
    expect(first).toMatchObject({ study: 'silence-test', pairs: 3, judgements: 0, questions: [] });
    expect(logs.join('\n')).toMatch(/kl-budget B=20 vs base: 3 pairs added to study 'silence-test' \(0 were there already\)/);
    const empty = withJudgeSection('<html><body><h1>r</h1></body></html>', first);
    expect(empty).toMatch(/People as judges[\s\S]*No judgements yet[\s\S]*<\/body>/);

    // Three people judge every pair: the agent wins "better" on all but one judgement.
    const store = openStore(db);
    const js = new JudgeStore(store.db);
    let n = 0;
    for (const person of ['judgeaaa1', 'judgebbb2', 'judgeccc3']) {
      for (let p = js.next('silence-test', person); p; p = js.next('silence-test', person)) {
        const agentLeft = p.left[0]!.text.includes('kl-budget');
        const better = n++ === 0 ? 'tie' : agentLeft ? 'left' : 'right';
        js.judge({ pair: p.pair, judge: person, answers: { better, complex: 'tie' } });
      }
    }
    store.close();
    expect(n).toBe(9);

    const again = judgeStudy(judge, out, l => logs.push(l));
    expect(logs.at(-1)).toMatch(/0 pairs added to study 'silence-test' \(3 were there already\)/);
    expect(again.pairs).toBe(3);
    expect(again.judgements).toBe(18);
    const better = again.questions.find(q => q.question === 'better')!;
    const w = better.pairwise[0]!;
    expect(w).toMatchObject({ agent: 'base', opponent: 'kl-budget B=20', wins: 0, losses: 8, ties: 1, pairs: 3 });
    expect(w.winRate.mean).toBeCloseTo(0.5 / 9, 6);
    expect(w.winRate.lo).toBeLessThanOrEqual(w.winRate.mean);
    expect(w.winRate.hi).toBeGreaterThanOrEqual(w.winRate.mean);
    const html = withJudgeSection('<html><body><h1>r</h1></body></html>', again);
    expect(html).toContain('/judge?study=silence-test');
    expect(html).toMatch(/<td>better<\/td><td class="agent">base<\/td><td class="agent">kl-budget B=20<\/td><td>0\.056 <span class="ci">\[/);
    expect(html).toContain('0 / 8 / 1');
    expect(html.indexOf('People as judges')).toBeLessThan(html.indexOf('</body>'));
  });

  it('refuses rows outside the study\'s folder, and rows of one agent twice', () => {
    const out = path.join(tmp, 'study');
    const db = path.join(tmp, 'other.db');
    expect(() => judgeStudy({ study: 's', pairs: [{ a: '../outside.jsonl', b: 'eval/base.jsonl' }], count: 5, questions: ['better'], db }, out, () => {})).toThrow(/outside the study's folder/);
    expect(() => judgeStudy({ study: 's', pairs: [{ a: 'eval/base.jsonl', b: 'eval/base.jsonl' }], count: 5, questions: ['better'], db }, out, () => {})).toThrow(/both files are of agent 'base'/);
    expect(() => judgeStudy({ study: 's', pairs: [{ a: 'eval/agent.jsonl', b: 'eval/base.jsonl' }], count: 5, questions: ['wiser'], db }, out, () => {})).toThrow(/unknown question 'wiser'/);
  });
});
