/**
 * Issue 14, item 9, in a browser: a paste longer than chat.maxMessageChars is not cut silently.
 * The box keeps all of it, the page says it is too long, and nothing is sent until the person
 * has shortened it; then exactly what they see is sent.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectVectorEnv } from '../../agents/client.ts';
import { launchBrowser } from './browser.ts';
import { startChatServer } from './helpers.ts';

let browser: Browser;
beforeAll(async () => { browser = await launchBrowser(); });
afterAll(async () => { await browser?.close(); });

describe('a long paste (item 9)', () => {
  it('is kept whole, flagged as too long, and not sent', async () => {
    const srv = await startChatServer({ chat: { maxMessageChars: 2000 } });
    const env = await connectVectorEnv(srv.wsUrl, { env: 'TeacherStudent-v0', numEnvs: 1, kwargs: { student: 'human', actionMode: 'utterance', maxTokens: 1500, maxStudentTokens: 200 } });
    const page = await browser.newPage();
    const sent: string[] = [];
    page.on('websocket', ws => ws.on('framesent', f => { if (typeof f.payload === 'string') sent.push(f.payload); }));
    try {
      await page.goto(`${srv.url}/chat`);
      await page.locator('#lobby').waitFor({ state: 'visible' });
      await env.reset({ seed: 1 });
      await page.locator('#chat').waitFor({ state: 'visible' });
      const pending = env.step([' tell me more']);
      await page.locator('#send:not([disabled])').waitFor();

      const paste = 'lorem ipsum '.repeat(8334).slice(0, 100_000);
      await page.locator('#msg').focus();
      await page.keyboard.insertText(paste);
      // Nothing was cut, and the page says why it will not send.
      expect(await page.locator('#msg').inputValue()).toHaveLength(100_000);
      await expect.poll(() => page.locator('#hint').textContent()).toMatch(/too long: 100000 characters, at most 2000/);
      await page.locator('#msg').press('Enter');
      await page.locator('#send').click();
      await new Promise(r => setTimeout(r, 300));
      expect(sent.filter(f => f.includes('"say"'))).toEqual([]);
      expect(await page.locator('#log li.msg.student:not(.context)').count()).toBe(0);

      // Shortened to what fits: exactly that goes.
      await page.locator('#msg').fill(paste.slice(0, 120));
      await expect.poll(() => page.locator('#hint').textContent()).not.toMatch(/too long/);
      await page.locator('#msg').press('Enter');
      const r = await pending;
      expect(r.infos[0]!.studentReply).toBe(paste.slice(0, 120));
    } finally {
      await page.close();
      await env.close();
      await srv.close();
    }
  });
});
