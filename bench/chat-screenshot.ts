/**
 * A screenshot of the chat page in the middle of a conversation (headless Debian chromium): a
 * server with the chat page, a scripted remote agent over /v1/env playing the teacher token by
 * token, and a person who has answered twice while the teacher's third reply is streaming in.
 *
 *   node bin/run.mjs bench/chat-screenshot.ts [OUT.png]      (default data/chat-screenshot.png)
 *
 * Uses the base model in data/models/base (or $COLLOQUY_BASE_MODEL) for the tokenizer.
 */
import path from 'node:path';
import { mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { initBackend } from '../models/backend.ts';
import { PROJECT_ROOT, defaultModelDir } from '../core/paths.ts';

await initBackend('auto');
const out = path.resolve(process.argv[2] ?? path.join(PROJECT_ROOT, 'data', 'chat-screenshot.png'));
mkdirSync(path.dirname(out), { recursive: true });
const db = path.join(os.tmpdir(), `colloquy-screenshot-${process.pid}.db`);
const { connectVectorEnv } = await import('../agents/client.ts');
const { loadDialogTokenizer } = await import('../env/dialog-model.ts');
const { startChatServer } = await import('../tests/chat/helpers.ts');
const { launchBrowser } = await import('../tests/chat/browser.ts');

const srv = await startChatServer({ storage: { db }, chat: { title: 'Chat with a teacher' } });
const tok = loadDialogTokenizer(defaultModelDir());
const env = await connectVectorEnv(srv.wsUrl, { env: 'TeacherStudent-v0', numEnvs: 1, kwargs: { student: 'human', maxTokens: 800, maxStudentTokens: 120 } });
const browser = await launchBrowser();
const page = await browser.newPage({ viewport: { width: 760, height: 900 }, deviceScaleFactor: 1 });
try {
  await env.reset({ seed: 1, options: { agent: 'screenshot' } });
  await page.goto(`${srv.url}/chat`);
  await page.locator('#chat').waitFor({ state: 'visible' });
  const teacher = [' mean the part where you explain what your results show?', ' Exactly. What did your experiment find?', ' Good. Now say why that might be, and what you would'];
  const person = ['Yes, that part. I never know what to write there.', 'The plants with more light grew taller, about 3 cm more in two weeks.'];
  for (let turn = 0; turn < teacher.length; turn++) {
    for (const id of tok.encode(teacher[turn]!)) { await env.step([id]); await new Promise(r => setTimeout(r, 15)); }
    if (turn === teacher.length - 1) break; // mid-reply: the teacher is still typing
    const pending = env.step([tok.special.student]);
    await page.locator('#send:not([disabled])').waitFor();
    await page.locator('#msg').fill(person[turn]!);
    await page.locator('#msg').press('Enter');
    await pending;
    await page.locator('#log li.msg.student:not(.context) .status', { hasText: 'Sent' }).nth(turn).waitFor();
  }
  await page.locator('#msg').fill('I think it is because');
  await page.screenshot({ path: out, fullPage: true });
  console.log(`screenshot: ${out}`);
} finally {
  await browser.close();
  await env.close();
  await srv.close();
  for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
}
