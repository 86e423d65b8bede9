// Issue 12, item 9: the differences from Cohen et al. that have a knob. A student reply cut by the
// episode's token limit earns 0 by default and is scored with `scoreCutReply` (as their code does).
import { describe, expect, it } from 'vitest';
import { make } from '../../env/index.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { defaultModelDir } from '../../core/paths.ts';

const tok = loadDialogTokenizer(defaultModelDir());
const scripted = { default: ' I love this, it is great and wonderful, thank you so much for the help today.' };

async function cutReplyReward(extra: Record<string, unknown>): Promise<{ reward: number; truncated: boolean; info: Record<string, unknown> }> {
  const probe = make('TeacherStudent-v0', { student: 'scripted', scripted });
  const first = await probe.reset({ seed: 1 });
  const promptLength = (first.observation as { length: number[] }).length[0]!;
  await probe.close();
  // Room for the marker and the tokens of " I love": the reply is cut there by the token limit.
  const env = make('TeacherStudent-v0', { student: 'scripted', scripted, maxTokens: promptLength + 1 + tok.encode(' I love').length, ...extra });
  await env.reset({ seed: 1 });
  const r = await env.step(tok.special.student);
  await env.close();
  return { reward: r.reward, truncated: r.truncated, info: r.info };
}

describe('knobs for the differences from the paper', () => {
  it('a reply cut by the token limit earns 0 by default and its sentiment with scoreCutReply', async () => {
    const off = await cutReplyReward({});
    expect(off.truncated).toBe(true);
    expect(off.info.truncatedBy).toBe('token-limit');
    expect(typeof off.info.partialReply).toBe('string');
    expect(off.reward).toBe(0);
    const on = await cutReplyReward({ scoreCutReply: true });
    expect(on.truncated).toBe(true);
    expect(on.info.partialReply).toBe(off.info.partialReply);
    expect(on.info.partialReply).toBe(' I love');
    // " I love this": positive under VADER, so above the neutral 0.5.
    expect(on.reward).toBeGreaterThan(0.5);
    expect(on.info.rewardComponents).toBeDefined();
  });
});
