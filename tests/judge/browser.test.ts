/**
 * The /judge page in a real browser (Debian chromium): a person judges a pair with the keyboard
 * only, the judgement survives a server restart (the page goes on with the next pair), hostile
 * transcript text is shown as text, a reason too long is told to the person and nothing is sent,
 * and the token is needed when the server has one.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_DIR } from '../../server/chat/static.ts';
import { openStore } from '../../server/storage/db.ts';
import { JudgeStore } from '../../server/storage/judging.ts';
import { launchBrowser } from '../chat/browser.ts';
import { startTestServer, type TestServer } from '../server/helpers.ts';
import { resolveServerConfig } from '../../configs/server.ts';
import { buildApp } from '../../server/app.ts';
import { createLogger } from '../../server/log.ts';

const HOSTILE = [' <img src=x onerror="window.__xss=1">', '</li><script>window.__xss=2</script>', ' <a href="javascript:alert(3)">x</a>'];

let browser: Browser;
let tmp: string;
beforeAll(async () => { browser = await launchBrowser(); tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-judge-browser-')); });
afterAll(async () => { await browser?.close(); rmSync(tmp, { recursive: true, force: true }); });

async function serverOn(db: string, extra: Record<string, unknown> = {}): Promise<TestServer> {
  return startTestServer({ storage: { db }, ...extra });
}

/** A server on a given port (a restart keeps the page's origin, hence the judge's id in localStorage). */
async function serverOnPort(db: string, port: number): Promise<TestServer> {
  const config = resolveServerConfig({ logLevel: 'silent', storage: { db }, port });
  const app = buildApp(config, { logger: createLogger({ level: 'silent' }) });
  await app.listen({ host: '127.0.0.1', port });
  return { app, config, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/v1/env`, close: () => app.close() };
}

function addPairs(srv: TestServer, study: string): void {
  srv.app.judging.addPairs([0, 1].map(i => ({
    study, promptKey: `seed:${i}`, agentA: 'alpha', agentB: 'beta', prompt: `Prompt ${i}: the student asks about fractions.`,
    transcriptA: [{ role: 'teacher', text: ` alpha ${i}${HOSTILE[i]}` }, { role: 'student', text: ' ok thanks' }, { role: 'teacher', text: '' }],
    transcriptB: [{ role: 'teacher', text: ` beta ${i}${HOSTILE[2]}` }, { role: 'student', text: ' hmm' }],
  })));
}

async function open(url: string): Promise<{ page: Page; dialogs: string[] }> {
  const page = await browser.newPage();
  const dialogs: string[] = [];
  page.on('dialog', d => { dialogs.push(d.message()); void d.dismiss(); });
  await page.goto(url);
  return { page, dialogs };
}

describe('the judge page', () => {
  it('a person judges with the keyboard; the judgement survives a restart and the page goes on', async () => {
    const db = path.join(tmp, 'judge.db');
    let srv = await serverOn(db);
    addPairs(srv, 'study1');
    const { page, dialogs } = await open(`${srv.url}/judge?study=study1`);
    await page.waitForSelector('#judging:not([hidden])');
    expect(await page.textContent('#progress')).toBe('0 of 2 pairs judged');
    // Hostile text is text: shown as written, nothing ran, no element made of it.
    const shown = (await page.textContent('#left'))! + (await page.textContent('#right'))!;
    expect(shown).toMatch(/<img src=x onerror="window.__xss=1">|<\/li><script>window.__xss=2<\/script>/);
    expect(shown).toContain('<a href="javascript:alert(3)">x</a>');
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.$$('#judging img, #judging script, #judging a')).toHaveLength(0);
    expect(shown).toContain('(said nothing)');
    const firstPrompt = await page.textContent('#prompt');
    const alphaLeft = (await page.textContent('#left'))!.includes('alpha');

    // Keyboard only: a new pair puts the focus on its heading; Tab goes to each question's radio group, arrows choose.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('pair-h');
    await page.keyboard.press('Tab'); // first question's group: its first radio ("Teacher 1")
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement).name)).toBe('better');
    await page.keyboard.press('Space');   // Teacher 1
    await page.keyboard.press('Tab');     // second question's group
    await page.keyboard.press('ArrowRight'); // Teacher 2
    await page.keyboard.press('ArrowRight'); // Can't tell
    await page.keyboard.press('Tab');
    await page.keyboard.type('Teacher 1 answered the question.');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('submit');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('progress')?.textContent === '1 of 2 pairs judged');
    expect(await page.textContent('#prompt')).not.toBe(firstPrompt);

    const rows = srv.app.judging.judgements('study1');
    expect(rows.map(r => [r.question, r.choice, r.reason])).toEqual([
      ['better', alphaLeft ? 'a' : 'b', 'Teacher 1 answered the question.'], ['complex', 'tie', 'Teacher 1 answered the question.'],
    ]);

    // Restart on the same database: the judgement is there, and the page goes on where it was.
    const port = new URL(srv.url).port;
    await srv.close();
    srv = await serverOnPort(db, Number(port));
    const ro = openStore(db, { readonly: true });
    expect(new JudgeStore(ro.db).judgements('study1')).toHaveLength(2);
    ro.close();
    await page.goto(`${srv.url}/judge?study=study1`);
    await page.waitForSelector('#judging:not([hidden])');
    expect(await page.textContent('#progress')).toBe('1 of 2 pairs judged');
    expect(await page.textContent('#prompt')).not.toBe(firstPrompt);

    // A reason too long is told, and nothing is sent.
    await page.check('input[name="better"][value="tie"]');
    await page.check('input[name="complex"][value="left"]');
    await page.fill('#reason', 'y'.repeat(2500));
    expect(await page.textContent('#reason-hint')).toMatch(/2,500 characters long/);
    await page.click('#submit');
    expect(await page.textContent('#form-error')).toMatch(/too long/);
    expect(srv.app.judging.judgements('study1')).toHaveLength(2);
    // Unanswered questions are named, and nothing is sent either.
    await page.fill('#reason', '');
    await page.evaluate(() => { document.querySelectorAll<HTMLInputElement>('input[name="complex"]').forEach(i => { i.checked = false; }); });
    await page.click('#submit');
    expect(await page.textContent('#form-error')).toMatch(/Please answer: Which teacher is more complex/);
    await page.check('input[name="complex"][value="right"]');
    await page.click('#submit');
    await page.waitForSelector('#message:not([hidden])');
    expect(await page.textContent('#message-h')).toBe('Thank you!');
    expect(srv.app.judging.judgements('study1')).toHaveLength(4);
    expect(dialogs).toEqual([]);
    await page.close();
    await srv.close();
  });

  it('with a server token: the page says the token is needed, and works with ?token=', async () => {
    const srv = await serverOn(path.join(tmp, 'tok.db'), { token: 'sekrit' });
    addPairs(srv, 'tokstudy');
    const { page } = await open(`${srv.url}/judge`);
    await page.waitForSelector('#message:not([hidden])');
    expect(await page.textContent('#message-h')).toBe('A token is needed');
    await page.goto(`${srv.url}/judge?token=sekrit`);
    await page.waitForSelector('#judging:not([hidden])'); // one study: straight to it
    expect(await page.textContent('#progress')).toBe('0 of 2 pairs judged');
    await page.close();
    await srv.close();
  });

  it('the page code never builds markup from data', () => {
    const src = readFileSync(path.join(PUBLIC_DIR, 'judge.js'), 'utf8');
    expect(src).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  });
});
