/**
 * Text helpers shared by the reward functions: input sanitising (bad UTF-16, huge texts) and a
 * Penn-Treebank-like word tokenizer that splits chat text the way SST-2 is tokenized
 * ("doesn't" → "does n't", "it's" → "it 's", punctuation apart), so that a classifier trained on
 * SST-2 sees the same kind of tokens on chat replies.
 */

/** Longest text (in UTF-16 code units) a scorer looks at; longer texts are cut (head kept). */
export const MAX_TEXT_CHARS = 20_000;

/**
 * Make any JS string safe to score: replaces lone UTF-16 surrogates with U+FFFD, cuts to
 * `maxChars` (never inside a surrogate pair) and turns non-strings into ''.
 */
export function sanitizeText(text: unknown, maxChars = MAX_TEXT_CHARS): string {
  if (typeof text !== 'string') return '';
  let s = text.length > maxChars ? text.slice(0, maxChars) : text;
  // A cut may have split a pair: drop a trailing high surrogate.
  if (s.length > 0) {
    const last = s.charCodeAt(s.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) s = s.slice(0, -1);
  }
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

const CLITICS = /^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$/i;

/**
 * Tokenize into lower-cased PTB-style words. Letters of any script, digits, apostrophes inside
 * words and hyphens inside words stay together; every other non-space character is its own
 * token (so emoji survive as tokens). Runs of the same punctuation (`!!!`, `...`) are kept whole.
 */
export function wordTokens(text: string, lowercase = true): string[] {
  const s = sanitizeText(text).replace(/[\u2018\u2019\u02bc]/g, "'");
  const out: string[] = [];
  const re = /[\p{L}\p{N}]+(?:['\-][\p{L}\p{N}]+)*|'(?:s|re|ve|ll|d|m)(?![\p{L}\p{N}])|(\p{P})\1*|\S/giu;
  for (const m of s.matchAll(re)) {
    let tok = m[0];
    if (lowercase) tok = tok.toLowerCase();
    const c = tok.includes("'") ? CLITICS.exec(tok) : null;
    if (c && c[1] && c[2]) {
      // "can't" → "ca n't" as in the treebank; "won't" → "wo n't".
      out.push(c[1], c[2]);
    } else out.push(tok);
  }
  return out;
}

/** Whitespace-separated words of a text (for counts such as "words elicited"). */
export function countWords(text: string): number {
  const s = sanitizeText(text);
  const m = s.match(/[\p{L}\p{N}]+(?:['\-][\p{L}\p{N}]+)*/gu);
  return m ? m.length : 0;
}
