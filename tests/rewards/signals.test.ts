import { describe, it, expect } from 'vitest';
import {
  laughterCount, laughter, wordsElicited, questionAsked, conversationLength, repetitionPenalty,
  previousUserMessage, sentimentTransition,
} from '../../rewards/signals.ts';
import { wordTokens, sanitizeText, countWords } from '../../rewards/text.ts';
import type { Turn } from '../../rewards/types.ts';

describe('laughter', () => {
  it('counts ha-syllables, lol-like tokens and laughing emoji', () => {
    expect(laughterCount('haha that is funny')).toBe(2);
    expect(laughterCount('HAHAHA')).toBe(3);
    expect(laughterCount('lol ok')).toBe(1);
    expect(laughterCount('lmao, rofl!')).toBe(2);
    expect(laughterCount('hehe 😂')).toBe(3);
    expect(laughterCount('ha! hah')).toBe(2);
  });
  it('ignores ordinary words that contain "ha"', () => {
    expect(laughterCount('that is what he had, hi there, have a hat')).toBe(0);
    expect(laughterCount('he said hi')).toBe(0);
  });
  it('is clipped at 4 and scaled to [0, 1]', () => {
    expect(laughter('hahahahahahaha lol lol')).toBe(1);
    expect(laughter('haha')).toBe(0.5);
    expect(laughter('')).toBe(0);
  });
});

describe('words elicited', () => {
  it('counts words, clips at 30, scales to [0, 1]', () => {
    expect(wordsElicited('')).toBe(0);
    expect(wordsElicited('I do not know.')).toBeCloseTo(4 / 30);
    expect(wordsElicited('word '.repeat(100))).toBe(1);
    expect(countWords("don't stop, it's fine")).toBe(4);
  });
});

describe('question asked by the agent', () => {
  it('0.5 for "?", 0.5 for a wh-word', () => {
    expect(questionAsked('Do you see it?')).toBe(0.5);
    expect(questionAsked('Tell me why.')).toBe(0.5);
    expect(questionAsked('What do you think?')).toBe(1);
    expect(questionAsked('Good.')).toBe(0);
    expect(questionAsked('whatever works')).toBe(0);
  });
});

describe('conversation length', () => {
  it('is 1 while the user stays, 0 for an empty reply', () => {
    expect(conversationLength('ok')).toBe(1);
    expect(conversationLength('   ')).toBe(0);
    expect(conversationLength('')).toBe(0);
  });
});

describe('repetition penalty', () => {
  const history: Turn[] = [
    { role: 'teacher', text: 'Photosynthesis makes sugar from light.' },
    { role: 'student', text: 'I like plants and chlorophyll.' },
  ];
  it('is 0 for fresh content and for empty utterances', () => {
    expect(repetitionPenalty('Mitochondria produce energy.', history)).toBe(0);
    expect(repetitionPenalty('', history)).toBe(0);
    expect(repetitionPenalty('Yes, it is.', history)).toBe(0);
  });
  it('penalises repeating itself, the user, and within the utterance', () => {
    expect(repetitionPenalty('Photosynthesis sugar light', history)).toBe(-1);
    expect(repetitionPenalty('Plants need water', history)).toBeCloseTo(-1 / 3);
    expect(repetitionPenalty('cells cells cells divide', [])).toBeCloseTo(-2 / 4);
  });
  it('only parrots the user\'s last message, not older ones', () => {
    const h: Turn[] = [...history, { role: 'teacher', text: 'Right.' }, { role: 'student', text: 'Tell me more.' }];
    expect(repetitionPenalty('chlorophyll', h)).toBe(0);
  });
});

describe('sentiment transition', () => {
  it('is the change of the user\'s score, 0 without a previous message', () => {
    expect(sentimentTransition(0.9, 0.4)).toBeCloseTo(0.5);
    expect(sentimentTransition(0.2, 0.7)).toBeCloseTo(-0.5);
    expect(sentimentTransition(0.9, undefined)).toBe(0);
    expect(sentimentTransition(NaN, 0.3)).toBe(0);
  });
  it('finds the previous user message', () => {
    expect(previousUserMessage([{ role: 'student', text: 'a' }, { role: 'teacher', text: 'b' }])).toBe('a');
    expect(previousUserMessage([{ role: 'teacher', text: 'b' }])).toBeUndefined();
  });
});

describe('text helpers', () => {
  it('tokenizes like the treebank', () => {
    expect(wordTokens("I don't think it's GREAT!!!")).toEqual(['i', 'do', "n't", 'think', 'it', "'s", 'great', '!!!']);
    expect(wordTokens("it 's a does n't film")).toEqual(['it', "'s", 'a', 'does', "n't", 'film']);
  });
  it('replaces lone surrogates and cuts long texts', () => {
    expect(sanitizeText('a\ud800b')).toBe('a\ufffdb');
    expect(sanitizeText('\udc00')).toBe('\ufffd');
    expect(sanitizeText('😀')).toBe('😀');
    expect(sanitizeText('x'.repeat(50), 10)).toHaveLength(10);
    // A cut inside a surrogate pair drops the half.
    expect(sanitizeText('ab😀', 3)).toBe('ab');
    expect(sanitizeText(undefined)).toBe('');
  });
});
