/**
 * Browser end to end: a scripted person chats through the real chat page (headless chromium) with
 * a real remote agent that plays the teacher over /v1/env (agents/client.ts, a few tokens per
 * turn), for several turns, with a dropped connection in the middle; keyboard only. Then the
 * transcript and the rewards read back from the database file match what was typed and what the
 * agent received.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectVectorEnv } from '../../agents/client.ts';
import { defaultModelDir } from '../../core/paths.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { Writable } from 'node:stream';
import { openStore } from '../../server/storage/db.ts';
import { exportJsonl } from '../../server/storage/export.ts';
import { launchBrowser } from './browser.ts';
import { startChatServer } from './helpers.ts';

let browser: Browser;
let tmp: string;
beforeAll(async () => { browser = await launchBrowser(); tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-e2e-')); });
afterAll(async () => { await browser?.close(); rmSync(tmp, { recursive: true, force: true }); });

describe('chat page end to end', () => {
  it('a person chats with a remote agent for several turns through the page; the DB holds exactly what was typed, with the rewards the agent got', async () => {
    const db = path.join(tmp, 'e2e.db');
    const srv = await startChatServer({ storage: { db } });
    const tok = loadDialogTokenizer(defaultModelDir());
    const env = await connectVectorEnv(srv.wsUrl, { env: 'TeacherStudent-v0', numEnvs: 1, kwargs: { student: 'human', maxTokens: 700, maxStudentTokens: 120 } });
    const page = await browser.newPage();
    const dialogs: string[] = [];
    const got: { reward: number; reply: string }[] = [];
    page.on('dialog', d => { dialogs.push(d.message()); void d.dismiss(); });
    try {
      await env.reset({ seed: 11, options: { agent: 'e2e-agent' } });
      await page.goto(`${srv.url}/chat`);
      // Paired with the waiting dialog: the prompt's turns as context, the teacher's turn begun.
      await page.locator('#chat').waitFor({ state: 'visible' });
      expect(await page.locator('#log li.context').count()).toBe(3);
      expect(await page.locator('#conn').textContent()).toBe('Connected');

      const typed = ['Hello! I think the discussion explains the results.', 'Yes, that makes sense, thanks :)', 'No idea, sorry.', 'Great, I feel much better now!'];
      const teacher = [' like my idea?', ' What else?', ' Really?', ' Good luck!'];
      for (let turn = 0; turn < typed.length; turn++) {
        for (const id of tok.encode(teacher[turn]!)) await env.step([id]);   // streams into the page
        const pending = env.step([tok.special.student]);
        // The teacher's message is complete, the Send button on: the person's turn.
        await page.locator('#send:not([disabled])').waitFor();
        const shown = await page.locator('#log li.msg.teacher').last().locator('.body').textContent();
        expect(shown).toBe((turn === 0 ? `Do you${teacher[0]}` : teacher[turn]!.slice(1)));
        await expect.poll(() => page.locator('#announce').textContent()).toBe(`Teacher: ${shown}`);
        await page.locator('#msg').focus();
        await page.keyboard.type(typed[turn]!);
        await page.keyboard.press('Enter');
        const r = await pending;
        expect(r.infos[0]!.studentReply).toBe(typed[turn]);
        got.push({ reward: r.rewards[0]!, reply: String(r.infos[0]!.studentReply) });
        const mine = page.locator('#log li.msg.student:not(.context)').last();
        await expect.poll(() => mine.locator('.status').textContent()).toBe('Sent');
        expect(await mine.locator('.body').textContent()).toBe(typed[turn]);

        if (turn === 1) {
          // The network drops: the server side of the page's socket goes away; the page reconnects
          // with its resume token and the whole conversation is still there.
          const people = [...(srv.app.lobby as unknown as { people: Map<string, { link: { close(c: number): void } | null }> }).people.values()];
          people[0]!.link!.close(1011);
          await expect.poll(() => page.locator('#conn').textContent()).toMatch(/reconnecting/);
          await expect.poll(() => page.locator('#conn').textContent(), { timeout: 10_000 }).toBe('Connected');
          await expect.poll(() => page.locator('#log li.msg:not(.context) .body').allTextContents()).toEqual(
            [`Do you${teacher[0]}`, typed[0], teacher[1]!.slice(1), typed[1]]);
        }
      }
      // Keyboard only: Tab from the message box to "End conversation" (Send is disabled while the
      // teacher has the turn, so it is skipped) and press Enter.
      await page.locator('#msg').focus();
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('end');
      await page.keyboard.press('Enter');
      await page.locator('#ended').waitFor({ state: 'visible' });
      expect(await page.locator('#ended-text').textContent()).toMatch(/You ended the conversation/);
      for (const id of tok.encode(' Bye')) await env.step([id]);
      const last = await env.step([tok.special.student]);
      expect(last.terminated[0]).toBe(true);
      expect(dialogs).toEqual([]);
    } finally {
      await page.close();
      await env.close();
      await srv.close();
    }

    // Read back from the database file.
    const store = openStore(db, { readonly: true });
    try {
      const [d] = store.recentDialogs(1);
      expect(d).toMatchObject({ env: 'TeacherStudent-v0', student: 'human', agentName: 'e2e-agent', endReason: 'terminated', endDetail: 'student' });
      const students = d!.turns.filter(t => t.role === 'student').map(t => t.text);
      expect(students).toEqual(['Hello! I think the discussion explains the results.', 'Yes, that makes sense, thanks :)', 'No idea, sorry.', 'Great, I feel much better now!', '']);
      expect(d!.turns.filter(t => t.role === 'teacher').map(t => t.text)).toEqual([' Do you like my idea?', ' What else?', ' Really?', ' Good luck!', ' Bye']);
      // Rewards: one per student reply, equal to what the agent received, with their components.
      expect(d!.rewards.map(r => d!.turns[r.turn]!.role)).toEqual(['student', 'student', 'student', 'student', 'student']);
      expect(d!.rewards.slice(0, 4).map(r => r.total)).toEqual(got.map(g => g.reward));
      expect(d!.rewards.every(r => typeof r.components.sentiment === 'number')).toBe(true);
      expect(d!.rewards[3]!.total).toBeGreaterThan(d!.rewards[2]!.total); // "Great, I feel much better" beats "No idea, sorry."
      const ep = store.listEpisodes({});
      expect(ep).toHaveLength(1);
      expect(ep[0]).toMatchObject({ terminated: true, truncated: false, agentName: 'e2e-agent', dialogId: d!.id });
      // And in `colloquy export`'s chat-JSONL: the person is the "user", the agent the "assistant".
      let jsonl = '';
      const sink = new Writable({ write(chunk, _enc, cb) { jsonl += String(chunk); cb(); } });
      await exportJsonl(store, sink, { agent: 'e2e-agent' });
      const rec = JSON.parse(jsonl.trim()) as { messages: { role: string; content: string }[]; rewards: { turn: number; total: number }[]; student: string };
      expect(rec.student).toBe('human');
      expect(rec.messages.filter(m => m.role === 'user').map(m => m.content)).toEqual(students);
      expect(rec.rewards.map(r => rec.messages[r.turn]!.role)).toEqual(['user', 'user', 'user', 'user', 'user']);
    } finally {
      store.close();
    }
  });

  it('with no dialog waiting, the lobby offers the hosted agents; the person picks one and chats with the server\'s own agent', async () => {
    const srv = await startChatServer({ chat: { hostedAgents: [{ name: 'base', description: 'the base model', maxUtteranceTokens: 6 }] } });
    const page = await browser.newPage();
    try {
      await page.goto(`${srv.url}/chat`);
      await page.locator('#lobby').waitFor({ state: 'visible' });
      expect(await page.locator('#lobby-h').textContent()).toBe('Waiting for a teacher…');
      const pick = page.locator('#agent-list button');
      expect(await pick.allTextContents()).toEqual(['base — the base model']);
      await pick.first().focus();
      await page.keyboard.press('Enter');
      for (let turn = 0; turn < 2; turn++) {
        await page.locator('#send:not([disabled])').waitFor();
        await page.locator('#msg').fill(`hosted reply ${turn}`);
        await page.keyboard.press('Enter');
        await page.locator('#log li.msg.student:not(.context) .status', { hasText: 'Sent' }).nth(turn).waitFor();
      }
      const d = srv.app.store.recentDialogs(1)[0]!;
      expect(d).toMatchObject({ agentName: 'base', student: 'human', metadata: { hosted: true } });
      expect(d.turns.filter(t => t.role === 'student').map(t => t.text)).toEqual(['hosted reply 0', 'hosted reply 1']);
    } finally {
      await page.close();
      await srv.close();
    }
  });
});
