/**
 * People as judges (the human version of Cohen et al.'s pairwise GPT-3.5 judging): pairs of
 * transcripts of the same prompt from two agents, and the judgements people give on `/judge`.
 *
 * - A judge sees the two transcripts of a pair side by side without the agents' names; which
 *   agent is on the left is decided per judge and pair (`leftAgent`: a hash of both, so a judge
 *   sees the same sides again after a reload, and half the judges see each side), and each judge
 *   meets the pairs in an order of their own (fewest judges first, then the same hash).
 * - A judgement is written (one row per question, in one transaction) before it is acknowledged,
 *   and stored in terms of the agents (a, b, tie), with the side that was shown on the left kept
 *   beside it so that side bias can be measured.
 * - A second judgement of the same pair by the same judge changes nothing (it is reported as such).
 *
 * Errors: an unknown pair is NOT_FOUND; anything malformed is BAD_REQUEST (ColloquyError).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Database as Db, Statement } from 'better-sqlite3';
import { ColloquyError } from '../../core/errors.ts';

export interface JudgeQuestion { id: string; text: string }
export interface TranscriptTurn { role: 'teacher' | 'student'; text: string }
export type Side = 'a' | 'b';
export type Choice = Side | 'tie';

/** What Cohen et al. asked of their judge, as questions a person answers. */
export const DEFAULT_QUESTIONS: readonly JudgeQuestion[] = [
  { id: 'better', text: 'Which teacher is better?' },
  { id: 'complex', text: 'Which teacher is more complex or unpredictable?' },
];

export const LIMITS = {
  studyChars: 100, agentChars: 200, promptKeyChars: 200, promptChars: 20_000, turns: 200, turnChars: 20_000,
  questions: 8, questionIdChars: 32, questionChars: 300, reasonChars: 2000,
} as const;
/** A judge id: what the page makes (a random id kept in the browser). */
export const JUDGE_ID = /^[A-Za-z0-9_-]{8,64}$/;
const STUDY_ID = /^[A-Za-z0-9._-]{1,100}$/;
const QUESTION_ID = /^[a-z][a-z0-9_-]{0,31}$/;

export interface NewPair {
  study: string;
  promptKey: string;
  agentA: string;
  agentB: string;
  prompt?: string | null;
  transcriptA: TranscriptTurn[];
  transcriptB: TranscriptTurn[];
  questions?: readonly JudgeQuestion[];
  source?: Record<string, unknown>;
}

export interface PairRecord {
  id: string; study: string; promptKey: string; agentA: string; agentB: string; prompt: string | null;
  transcriptA: TranscriptTurn[]; transcriptB: TranscriptTurn[]; questions: JudgeQuestion[]; source: Record<string, unknown>; createdAt: string;
}

/** A pair as a judge sees it: no agent names, sides as this judge gets them. */
export interface BlindPair {
  pair: string; study: string; prompt: string | null; questions: JudgeQuestion[];
  left: TranscriptTurn[]; right: TranscriptTurn[];
  progress: { judged: number; total: number };
}

export interface JudgementRecord {
  id: number; pairId: string; study: string; promptKey: string; agentA: string; agentB: string;
  judge: string; question: string; choice: Choice; shownLeft: Side; reason: string | null; createdAt: string;
}

export interface StudyListing { study: string; pairs: number; judgements: number; judges: number }

function bad(message: string): ColloquyError { return new ColloquyError('BAD_REQUEST', message); }

function str(v: unknown, what: string, max: number, pattern?: RegExp): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw bad(`${what} must be a non-empty string of at most ${max} characters`);
  if (pattern && !pattern.test(v)) throw bad(`${what} has characters outside ${pattern.source}`);
  return v;
}

function transcript(t: unknown, what: string): TranscriptTurn[] {
  if (!Array.isArray(t) || t.length === 0 || t.length > LIMITS.turns) throw bad(`${what} must be a list of 1 to ${LIMITS.turns} turns`);
  return t.map((x, i) => {
    const o = x as Partial<TranscriptTurn> | null;
    if (!o || (o.role !== 'teacher' && o.role !== 'student') || typeof o.text !== 'string' || o.text.length > LIMITS.turnChars) {
      throw bad(`${what}[${i}] must be {role: 'teacher'|'student', text} with at most ${LIMITS.turnChars} characters`);
    }
    return { role: o.role, text: o.text };
  });
}

function questionsOf(q: readonly JudgeQuestion[]): JudgeQuestion[] {
  if (q.length === 0 || q.length > LIMITS.questions) throw bad(`a pair has 1 to ${LIMITS.questions} questions`);
  const ids = new Set<string>();
  return q.map(x => {
    const id = str(x.id, 'question id', LIMITS.questionIdChars, QUESTION_ID);
    if (ids.has(id)) throw bad(`question '${id}' appears twice`);
    ids.add(id);
    return { id, text: str(x.text, `question '${id}'`, LIMITS.questionChars) };
  });
}

/** Which agent a judge sees on the left for a pair. */
export function leftAgent(pairId: string, judge: string): Side {
  return (createHash('sha256').update(`${pairId}\u0000${judge}`).digest()[0]! & 1) === 0 ? 'a' : 'b';
}

function orderKey(pairId: string, judge: string): string {
  return createHash('sha256').update(`order\u0000${pairId}\u0000${judge}`).digest('hex');
}

interface PairRow {
  id: string; study: string; prompt_key: string; agent_a: string; agent_b: string; prompt: string | null;
  transcript_a: string; transcript_b: string; questions: string; source: string; created_at: string;
}

function pairOf(r: PairRow): PairRecord {
  return {
    id: r.id, study: r.study, promptKey: r.prompt_key, agentA: r.agent_a, agentB: r.agent_b, prompt: r.prompt,
    transcriptA: JSON.parse(r.transcript_a) as TranscriptTurn[], transcriptB: JSON.parse(r.transcript_b) as TranscriptTurn[],
    questions: JSON.parse(r.questions) as JudgeQuestion[], source: JSON.parse(r.source) as Record<string, unknown>, createdAt: r.created_at,
  };
}

export class JudgeStore {
  private readonly s: { insertPair: Statement; insertJudgement: Statement; pair: Statement; candidates: Statement; total: Statement; studies: Statement; judgements: Statement };

  constructor(private readonly db: Db, private readonly now: () => Date = () => new Date()) {
    // Prepared once: every request of the page runs one or two of these.
    const prep = (sql: string): Statement => db.prepare(sql);
    this.s = {
      insertPair: prep(`INSERT INTO judge_pairs (id, study, prompt_key, agent_a, agent_b, prompt, transcript_a, transcript_b, questions, source, created_at)
        VALUES (@id, @study, @prompt_key, @agent_a, @agent_b, @prompt, @transcript_a, @transcript_b, @questions, @source, @created_at)
        ON CONFLICT (study, agent_a, agent_b, prompt_key) DO NOTHING`),
      insertJudgement: prep(`INSERT INTO judgements (pair_id, judge, question, choice, shown_left, reason, created_at)
        VALUES (@pair_id, @judge, @question, @choice, @shown_left, @reason, @created_at) ON CONFLICT (pair_id, judge, question) DO NOTHING`),
      pair: prep('SELECT * FROM judge_pairs WHERE id = ?'),
      candidates: prep(`SELECT p.id AS id, (SELECT COUNT(DISTINCT judge) FROM judgements j WHERE j.pair_id = p.id) AS n
        FROM judge_pairs p WHERE p.study = ? AND NOT EXISTS (SELECT 1 FROM judgements j WHERE j.pair_id = p.id AND j.judge = ?)`),
      total: prep('SELECT COUNT(*) AS n FROM judge_pairs WHERE study = ?'),
      studies: prep(`SELECT p.study AS study, COUNT(DISTINCT p.id) AS pairs, COUNT(j.id) AS judgements, COUNT(DISTINCT j.judge) AS judges
        FROM judge_pairs p LEFT JOIN judgements j ON j.pair_id = p.id GROUP BY p.study ORDER BY p.study`),
      judgements: prep(`SELECT j.id, j.pair_id, p.study, p.prompt_key, p.agent_a, p.agent_b, j.judge, j.question, j.choice, j.shown_left, j.reason, j.created_at
        FROM judgements j JOIN judge_pairs p ON p.id = j.pair_id WHERE (@study IS NULL OR p.study = @study) ORDER BY j.id`),
    };
  }

  /** Add pairs (in one transaction); a pair already there (same study, agents and prompt key) is kept as it was. Returns the ids added. */
  addPairs(pairs: readonly NewPair[]): string[] {
    const ins = this.s.insertPair;
    const rows = pairs.map(p => {
      const agentA = str(p.agentA, 'agentA', LIMITS.agentChars), agentB = str(p.agentB, 'agentB', LIMITS.agentChars);
      if (agentA === agentB) throw bad(`a pair compares two different agents (both are '${agentA}')`);
      if (p.prompt != null && (typeof p.prompt !== 'string' || p.prompt.length > LIMITS.promptChars)) throw bad(`prompt must be at most ${LIMITS.promptChars} characters`);
      return {
        id: randomUUID(), study: str(p.study, 'study', LIMITS.studyChars, STUDY_ID), prompt_key: str(p.promptKey, 'promptKey', LIMITS.promptKeyChars),
        agent_a: agentA, agent_b: agentB, prompt: p.prompt ?? null,
        transcript_a: JSON.stringify(transcript(p.transcriptA, 'transcriptA')), transcript_b: JSON.stringify(transcript(p.transcriptB, 'transcriptB')),
        questions: JSON.stringify(questionsOf(p.questions ?? DEFAULT_QUESTIONS)), source: JSON.stringify(p.source ?? {}), created_at: this.now().toISOString(),
      };
    });
    return this.db.transaction(() => rows.filter(r => ins.run(r).changes === 1).map(r => r.id)).immediate();
  }

  studies(): StudyListing[] {
    return this.s.studies.all() as StudyListing[];
  }

  pair(id: string): PairRecord | undefined {
    const r = this.s.pair.get(id) as PairRow | undefined;
    return r ? pairOf(r) : undefined;
  }

  /** Pairs in a study. */
  pairCount(study: string): number { return (this.s.total.get(study) as { n: number }).n; }

  /** The next pair this judge has not judged in a study (fewest judges first), as the judge sees it; null when none is left. */
  next(study: string, judge: string): BlindPair | null {
    str(study, 'study', LIMITS.studyChars, STUDY_ID);
    str(judge, 'judge', 64, JUDGE_ID);
    const candidates = this.s.candidates.all(study, judge) as { id: string; n: number }[];
    const total = this.pairCount(study);
    if (candidates.length === 0) return null;
    const least = Math.min(...candidates.map(c => c.n));
    const pick = candidates.filter(c => c.n === least).map(c => ({ id: c.id, k: orderKey(c.id, judge) })).sort((x, y) => (x.k < y.k ? -1 : 1))[0]!;
    const p = this.pair(pick.id)!;
    const left = leftAgent(p.id, judge);
    return {
      pair: p.id, study: p.study, prompt: p.prompt, questions: p.questions,
      left: left === 'a' ? p.transcriptA : p.transcriptB, right: left === 'a' ? p.transcriptB : p.transcriptA,
      progress: { judged: total - candidates.length, total },
    };
  }

  /**
   * Record a judge's answers to a pair's questions, given as the judge saw them (left, right,
   * tie), all in one transaction, before the caller acknowledges. Every question of the pair must
   * be answered. Returns how many rows were written (0 when this judge had judged the pair).
   */
  judge(input: { pair: unknown; judge: unknown; answers: unknown; reason?: unknown }): { saved: number; already: boolean } {
    const pairId = str(input.pair, 'pair', 64);
    const judge = str(input.judge, 'judge', 64, JUDGE_ID);
    const p = this.pair(pairId);
    if (!p) throw new ColloquyError('NOT_FOUND', 'no such pair');
    const answers = input.answers;
    if (typeof answers !== 'object' || answers === null || Array.isArray(answers)) throw bad('answers must be an object {questionId: "left" | "right" | "tie"}');
    const given = Object.keys(answers);
    const wanted = p.questions.map(q => q.id);
    for (const k of given) if (!wanted.includes(k)) throw bad(`answers has an unknown question '${k.slice(0, 40)}'`);
    for (const k of wanted) if (!Object.prototype.hasOwnProperty.call(answers, k)) throw bad(`answers is missing question '${k}'`);
    let reason: string | null = null;
    if (input.reason !== undefined && input.reason !== null && input.reason !== '') {
      if (typeof input.reason !== 'string' || input.reason.length > LIMITS.reasonChars) throw bad(`reason must be a string of at most ${LIMITS.reasonChars} characters`);
      reason = input.reason;
    }
    const left = leftAgent(p.id, judge), right: Side = left === 'a' ? 'b' : 'a';
    const rows = wanted.map(q => {
      const a = (answers as Record<string, unknown>)[q];
      if (a !== 'left' && a !== 'right' && a !== 'tie') throw bad(`answers.${q} must be "left", "right" or "tie"`);
      return { pair_id: p.id, judge, question: q, choice: a === 'tie' ? 'tie' : a === 'left' ? left : right, shown_left: left, reason, created_at: this.now().toISOString() };
    });
    const ins = this.s.insertJudgement;
    const saved = this.db.transaction(() => rows.reduce((n, r) => n + ins.run(r).changes, 0)).immediate();
    return { saved, already: saved === 0 };
  }

  /** Every judgement (of one study), oldest first, with the agents named. */
  judgements(study?: string): JudgementRecord[] {
    const rows = this.s.judgements.all({ study: study ?? null }) as {
      id: number; pair_id: string; study: string; prompt_key: string; agent_a: string; agent_b: string; judge: string; question: string;
      choice: Choice; shown_left: Side; reason: string | null; created_at: string;
    }[];
    return rows.map(r => ({
      id: r.id, pairId: r.pair_id, study: r.study, promptKey: r.prompt_key, agentA: r.agent_a, agentB: r.agent_b, judge: r.judge,
      question: r.question, choice: r.choice, shownLeft: r.shown_left, reason: r.reason, createdAt: r.created_at,
    }));
  }
}
