/**
 * The implicit human signals of Jaques et al. (2019, "Way Off-Policy Batch Deep Reinforcement
 * Learning of Implicit Human Preferences in Dialog"), as pure functions of one exchange: the
 * agent's (teacher's) utterance, the user's (student's) reply and the dialog before them.
 *
 * Ranges are fixed so that terms can be mixed without z-scoring:
 * - laughter            [0, 1]  "ha"/"lol"-like laughs in the reply, clipped at 4, divided by 4
 * - wordsElicited       [0, 1]  words in the reply, clipped at 30, divided by 30
 * - question            {0, .5, 1}  0.5 if the agent's utterance has "?", 0.5 more for a wh-word
 * - conversationLength  {0, 1}  1 for every exchange where the user stayed (a non-empty reply):
 *                               its (discounted) sum over an episode is the conversation length
 * - repetition          [-1, 0] minus the fraction of the agent's content words that repeat its
 *                               earlier turns, the user's last message, or itself
 * - sentimentTransition [-1, 1] score(reply) − score(user's previous message); 0 without one
 * The sentiment terms themselves come from a `SentimentScorer` (rewards/sentiment.ts). With the
 * classifier's emotion mode (`{name: 'classifier', mode: 'emotion'}`) the score is Jaques et al.'s
 * emotion-based sentiment and sentimentTransition their emotion transition (rewards/emotions.ts).
 */
import { sanitizeText, wordTokens, countWords } from './text.ts';
import type { Turn } from './types.ts';

/** Laughter is clipped at this many laughs (Jaques et al. clip the "ha" count at 4). */
export const LAUGHTER_CLIP = 4;
/** Words elicited are clipped at this many words (Jaques et al.: 30, against spammers). */
export const WORDS_CLIP = 30;
/** Question words of Jaques et al. (plus which/whose/whom). */
export const WH_WORDS: ReadonlySet<string> = new Set(['who', 'what', 'why', 'where', 'how', 'when', 'which', 'whose', 'whom']);

const LAUGH_EMOJI = /[\u{1F602}\u{1F923}\u{1F606}\u{1F639}\u{1F605}\u{1F601}]/gu;
// A laughing token: ha, haha, hahaha, ahah, hehe, hihi, hah, bwahaha, lol, lolol, lmao, lmfao, rofl, xd.
const HA_TOKEN = /^(?:bw|mw)?a?(?:h+[aeiou]+)+h*!*$/;
const LOL_TOKEN = /^(?:l+o+l+(?:o+l+)*z*|lmf?a+o+|rofl(?:mao)?|xd+)$/;

/** Number of laughs in a text: every "ha"/"he"/"hi" syllable of a laughing word, each lol/lmao/rofl, each laughing emoji. Unclipped. */
export function laughterCount(text: string): number {
  const s = sanitizeText(text);
  let n = (s.match(LAUGH_EMOJI) ?? []).length;
  for (const tok of s.toLowerCase().split(/[^\p{L}]+/u)) {
    if (tok.length < 2) continue;
    if (LOL_TOKEN.test(tok)) n++;
    else if (HA_TOKEN.test(tok)) {
      const syll = tok.match(/h+[aeiou]+/g) ?? [];
      // A lone "ha"/"he"/"hi"/"ho" word is not laughter ("he said", "hi"); two syllables or "hah"/"heh" are.
      if (syll.length >= 2 || /^(?:hah|heh|ha!*)$/.test(tok)) n += Math.max(1, syll.length);
    }
  }
  return n;
}

/** Laughter in [0, 1]: min(laughs, 4) / 4. */
export function laughter(reply: string): number {
  return Math.min(laughterCount(reply), LAUGHTER_CLIP) / LAUGHTER_CLIP;
}

/** Words elicited in [0, 1]: min(words in the reply, 30) / 30. */
export function wordsElicited(reply: string): number {
  return Math.min(countWords(reply), WORDS_CLIP) / WORDS_CLIP;
}

/** Question asked by the agent: 0.5 for a "?", 0.5 for a wh-word. */
export function questionAsked(agentUtterance: string): number {
  const s = sanitizeText(agentUtterance);
  let r = s.includes('?') ? 0.5 : 0;
  if (wordTokens(s).some(w => WH_WORDS.has(w))) r += 0.5;
  return r;
}

/** 1 when the user stayed in the conversation (a reply with any non-space character), else 0. */
export function conversationLength(reply: string): number {
  return sanitizeText(reply).trim().length > 0 ? 1 : 0;
}

const STOPWORDS: ReadonlySet<string> = new Set((
  'a an the and or but if then so of to in on at by for with from as is am are was were be been being ' +
  'i me my mine we us our you your yours he him his she her it its they them their this that these those ' +
  "do does did done have has had having will would shall should can could may might must n't not no yes " +
  "'s 're 've 'll 'd 'm there here just very too also about up down out over into than ok okay oh well " +
  'what who why where how when which whose whom'
).split(/\s+/));

function contentWords(text: string): string[] {
  return wordTokens(text).filter(w => /\p{L}/u.test(w) && !STOPWORDS.has(w));
}

/**
 * Repetition penalty in [-1, 0]: minus the fraction of content words (stopwords and punctuation
 * left out) in the agent's utterance that it already said in an earlier turn, that parrot the
 * user's last message, or that occur earlier in the same utterance. 0 for an utterance without
 * content words.
 */
export function repetitionPenalty(agentUtterance: string, history: readonly Turn[], agentRole: Turn['role'] = 'teacher'): number {
  const words = contentWords(agentUtterance);
  if (words.length === 0) return 0;
  const seen = new Set<string>();
  for (const t of history) if (t.role === agentRole) for (const w of contentWords(t.text)) seen.add(w);
  for (let i = history.length - 1; i >= 0; i--) {
    const t = history[i]!;
    if (t.role !== agentRole) { for (const w of contentWords(t.text)) seen.add(w); break; }
  }
  let repeated = 0;
  for (const w of words) {
    if (seen.has(w)) repeated++;
    else seen.add(w);
  }
  return repeated === 0 ? 0 : -repeated / words.length;
}

/** The user's last message before this exchange, if any. */
export function previousUserMessage(history: readonly Turn[], userRole: Turn['role'] = 'student'): string | undefined {
  for (let i = history.length - 1; i >= 0; i--) if (history[i]!.role === userRole) return history[i]!.text;
  return undefined;
}

/** Change of the user's sentiment score (in [0, 1] units): reply − previous, in [-1, 1]. */
export function sentimentTransition(replyScore: number, previousScore: number | undefined): number {
  if (previousScore === undefined || !Number.isFinite(previousScore) || !Number.isFinite(replyScore)) return 0;
  return Math.max(-1, Math.min(1, replyScore - previousScore));
}
