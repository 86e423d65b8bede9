/**
 * Dialog corpora: loaders for MathDial, DailyDialog, Bridge, a plain chat-messages JSONL format and the
 * corpus that ships with the project; a deterministic held-out split; and the transcript format
 * the language model is trained on:
 *
 *   [header]\n\nStudent: text\n\nTeacher: text\n\nStudent: text ...<|endoftext|>
 *
 * Each turn starts with its marker (`\n\nStudent:` / `\n\nTeacher:`, single tokens of the
 * tokenizer), so a teacher's turn ends with the token `\n\nStudent:` and a student's with
 * `\n\nTeacher:`, as in the prompt of Cohen et al. (2024). Every loader is synchronous and returns
 * `Dialog[]`. The real data sets are read from a data directory (`resolveDataDir`) and never copied
 * into the project.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import { END_OF_TEXT, PAD, TURN_STUDENT, TURN_TEACHER } from '../core/markers.ts';
import { PROJECT_ROOT } from '../core/paths.ts';

export type Role = 'teacher' | 'student';

export interface Turn {
  role: Role;
  text: string;
  /** Per-turn labels: MathDial's teacher `move`; DailyDialog's `emotion` and `act`. */
  meta?: Record<string, string | number>;
}

export interface Dialog {
  /** Unique within its corpus (e.g. `mathdial-6000025-0`, `dailydialog-train-17`). */
  id: string;
  /** Which corpus: `mathdial`, `dailydialog`, `bridge`, `shipped`, or a chat-JSONL file's own `source`/name. */
  source: string;
  turns: Turn[];
  /**
   * Dialog-level data. MathDial: `problem`, `groundTruth`, `studentSolution` (the wrong one),
   * `studentProfile`, `studentName`, `qid`, ... `group` (when present, a string) keeps dialogs of
   * the same group on one side of `splitDialogs`.
   */
  meta?: Record<string, unknown>;
}

export const TURN_MARKER: Readonly<Record<Role, string>> = { student: TURN_STUDENT, teacher: TURN_TEACHER };

/** The shipped corpus, in the chat-messages JSONL format (made by `corpora/shipped/generate.ts`). */
export const SHIPPED_CORPUS_FILE = path.join(PROJECT_ROOT, 'corpora', 'shipped', 'dialogs.jsonl');

// ---------------------------------------------------------------------------------------------
// Data directory

/**
 * The data directory: `flag` if given, else `$COLLOQUY_DATA_DIR`, else `<project root>/../shared/data`
 * when it exists, else null (then only the shipped corpus is available). A directory named
 * explicitly (flag or env var) must exist.
 */
export function resolveDataDir(flag?: string | null): string | null {
  const explicit = flag || process.env.COLLOQUY_DATA_DIR;
  if (explicit) {
    const dir = path.resolve(explicit);
    if (!isDir(dir)) throw new BadConfig(`data dir ${dir} does not exist (from ${flag ? '--data-dir' : 'COLLOQUY_DATA_DIR'})`);
    return dir;
  }
  const dflt = path.resolve(PROJECT_ROOT, '..', 'shared', 'data');
  return isDir(dflt) ? dflt : null;
}

function isDir(p: string): boolean {
  try { return statSync(p).isDirectory(); } catch { return false; }
}

function readText(file: string, what: string): string {
  try { return readFileSync(file, 'utf8'); } catch (err) {
    throw new BadConfig(`${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function jsonLines(file: string, what: string): { line: number; value: unknown }[] {
  const out: { line: number; value: unknown }[] = [];
  readText(file, what).split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    try { out.push({ line: i + 1, value: JSON.parse(line) }); } catch (err) {
      throw new BadConfig(`${what}: ${file}:${i + 1}: bad JSON: ${(err as Error).message}`);
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// MathDial

interface MathDialRecord {
  qid: number; scenario?: number; question: string; ground_truth?: string;
  student_incorrect_solution?: string; student_profile?: string; teacher_described_confusion?: string;
  'self-correctness'?: string; 'self-typical-confusion'?: number; 'self-typical-interactions'?: number;
  conversation: string;
}

/**
 * MathDial (Macina et al. 2023): one JSON object per line. `conversation` holds turns separated by
 * `|EOM|`, each `Teacher: (move)text` or `Student: text`; some student turns are prefixed with the
 * student's name instead of `Student:` (the name is the first word of `student_profile`). The
 * teacher's move (`focus`, `probing`, `telling`, `generic`) goes to `turn.meta.move`. Dialog meta
 * has the problem, the ground truth, the student's incorrect solution and profile; `group` is the
 * problem id, so that `splitDialogs` keeps every dialog of a problem on one side.
 */
export function loadMathDial(file: string): Dialog[] {
  const seen = new Map<number, number>();
  return jsonLines(file, 'MathDial').map(({ line, value }) => {
    const r = value as MathDialRecord;
    if (!r || typeof r.conversation !== 'string' || typeof r.question !== 'string') {
      throw new BadConfig(`MathDial: ${file}:${line}: expected fields 'conversation' and 'question'`);
    }
    const studentName = (r.student_profile ?? '').trim().split(/\s+/)[0] ?? '';
    const turns: Turn[] = [];
    for (const raw of r.conversation.split('|EOM|')) {
      const m = /^\s*([^:\n]{1,40}):\s?([\s\S]*)$/.exec(raw);
      const speaker = m?.[1]?.trim() ?? '';
      let text = (m ? m[2]! : raw).trim();
      if (speaker === 'Teacher') {
        const mv = /^\((\w+)\)\s*/.exec(text);
        const meta: Record<string, string> = {};
        if (mv) { meta.move = mv[1]!; text = text.slice(mv[0].length); }
        turns.push(mv ? { role: 'teacher', text, meta } : { role: 'teacher', text });
      } else if (speaker === 'Student' || (speaker && speaker === studentName)) {
        turns.push({ role: 'student', text });
      } else {
        throw new BadConfig(`MathDial: ${file}:${line}: a turn starts with neither 'Teacher:' nor 'Student:': ${JSON.stringify(raw.slice(0, 60))}`);
      }
    }
    const k = seen.get(r.qid) ?? 0;
    seen.set(r.qid, k + 1);
    return {
      id: `mathdial-${r.qid}-${k}`,
      source: 'mathdial',
      turns,
      meta: {
        group: `mathdial-${r.qid}`,
        qid: r.qid,
        scenario: r.scenario,
        problem: r.question,
        groundTruth: r.ground_truth,
        studentSolution: r.student_incorrect_solution,
        studentProfile: r.student_profile,
        studentName,
        teacherDescribedConfusion: r.teacher_described_confusion,
        selfCorrectness: r['self-correctness'],
        selfTypicalConfusion: r['self-typical-confusion'],
        selfTypicalInteractions: r['self-typical-interactions'],
      },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// DailyDialog

export const DAILYDIALOG_EMOTIONS = ['none', 'anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise'] as const;
export const DAILYDIALOG_ACTS = ['', 'inform', 'question', 'directive', 'commissive'] as const;
export type DailyDialogSplit = 'train' | 'validation' | 'test';

export interface DailyDialogOptions {
  /**
   * Role of the first speaker (default `student`). DailyDialog has no teacher or student; the
   * speakers alternate, and by default the one who opens (who brings the topic, asks or tells
   * first) is the student, the one who answers is the teacher, mirroring a tutoring chat that a
   * student opens, as the prompt of Cohen et al. does.
   */
  firstSpeaker?: Role;
  /** Undo the data set's tokenisation spacing (`I ’ m here , ok ?` → `I'm here, ok?`); default true. */
  detokenize?: boolean;
}

/**
 * DailyDialog (Li et al. 2017), one split: `dir/<split>/dialogues_<split>.txt` (utterances
 * separated by `__eou__`) with `dialogues_emotion_<split>.txt` and `dialogues_act_<split>.txt`
 * (one label per utterance) when present. `dir` is the `dailydialog` folder of the data dir.
 * Turn meta: `emotion` (name), `emotionId` (0..6), `act` (name), `actId` (1..4).
 */
export function loadDailyDialog(dir: string, split: DailyDialogSplit | string, opts: DailyDialogOptions = {}): Dialog[] {
  const base = path.join(dir, split);
  const lines = readText(path.join(base, `dialogues_${split}.txt`), 'DailyDialog').split('\n');
  const labels = (name: string): string[] | null => {
    const f = path.join(base, `dialogues_${name}_${split}.txt`);
    return existsSync(f) ? readText(f, 'DailyDialog').split('\n') : null;
  };
  const emotions = labels('emotion'), acts = labels('act');
  const first = opts.firstSpeaker ?? 'student';
  const second: Role = first === 'student' ? 'teacher' : 'student';
  const detok = opts.detokenize ?? true;
  const out: Dialog[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const utts = line.split('__eou__').map(u => u.trim());
    if (utts.length && utts[utts.length - 1] === '') utts.pop();
    const emo = emotions?.[i]?.trim().split(/\s+/).map(Number);
    const act = acts?.[i]?.trim().split(/\s+/).map(Number);
    const turns: Turn[] = utts.map((u, k) => {
      const meta: Record<string, string | number> = {};
      if (emo && emo.length === utts.length && Number.isInteger(emo[k])) { meta.emotionId = emo[k]!; meta.emotion = DAILYDIALOG_EMOTIONS[emo[k]!] ?? String(emo[k]); }
      if (act && act.length === utts.length && Number.isInteger(act[k])) { meta.actId = act[k]!; meta.act = DAILYDIALOG_ACTS[act[k]!] ?? String(act[k]); }
      const turn: Turn = { role: k % 2 === 0 ? first : second, text: detok ? detokenize(u) : u };
      if (Object.keys(meta).length) turn.meta = meta;
      return turn;
    });
    out.push({ id: `dailydialog-${split}-${i}`, source: 'dailydialog', turns, meta: { split, index: i } });
  });
  return out;
}

/** Undo DailyDialog's tokenisation spacing, conservatively. */
export function detokenize(s: string): string {
  return s
    .replace(/[’‘]/g, "'")
    .replace(/(\w) ' (\w)/g, "$1'$2")
    .replace(/'Ve\b/g, "'ve")
    .replace(/ ([.,?!;:%)\]}”])/g, '$1')
    .replace(/([([{“$£€¥]) /g, '$1')
    .replace(/" ([^"]*?) "/g, '"$1"')
    .replace(/([a-z]{2})([.?!])([A-Z][a-z])/g, '$1$2 $3') // "right.But" → "right. But"
    .replace(/ {2,}/g, ' ')
    .trim();
}

// ---------------------------------------------------------------------------------------------
// Bridge

export type BridgeSplit = 'train' | 'validation' | 'test';

interface BridgeMessage { user?: unknown; text?: unknown }
interface BridgeRecord {
  c_id?: unknown; lesson_topic?: unknown; c_h?: unknown; c_r?: unknown; c_r_?: unknown;
  e?: unknown; z_what?: unknown; z_why?: unknown;
}

const BRIDGE_ROLES: Readonly<Record<string, Role>> = { tutor: 'teacher', student: 'student' };

/**
 * Bridge (Wang et al. 2024), one split: `dir/<split>.json`, a JSON array of chat-tutoring
 * snippets. Each snippet's history `c_h` (messages of `tutor` or `student`) becomes the dialog,
 * consecutive messages of one speaker joined into one turn (with a space; an empty message adds
 * nothing to its speaker's turn, or is an empty turn, as a student's picture is), and the expert
 * tutor's reply `c_r_` is the teacher's last turn. Dialog meta: `novice`
 * (the novice tutor's reply `c_r`, joined), `lessonTopic`, `error` (`e`), `strategy` (`z_what`),
 * `intention` (`z_why`), `cId`; `group` is the conversation (the part of `c_id` before `_`), so that
 * `splitDialogs` keeps snippets of one conversation (and the data set's repeated snippets, which
 * carry different expert replies) on one side. Ids are `bridge-<split>-<index>` (`c_id` repeats).
 */
export function loadBridge(dir: string, split: BridgeSplit | string): Dialog[] {
  const file = path.join(dir, `${split}.json`);
  let records: unknown;
  try { records = JSON.parse(readText(file, 'Bridge')); } catch (err) {
    if (err instanceof BadConfig) throw err;
    throw new BadConfig(`Bridge: ${file}: bad JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(records)) throw new BadConfig(`Bridge: ${file}: expected a JSON array of snippets`);
  return records.map((value, i) => {
    const r = value as BridgeRecord;
    const where = `Bridge: ${file}: snippet ${i}`;
    if (!r || typeof r.c_id !== 'string' || !Array.isArray(r.c_h) || !Array.isArray(r.c_r_)) {
      throw new BadConfig(`${where}: expected fields 'c_id' (string), 'c_h' and 'c_r_' (arrays)`);
    }
    const turns: Turn[] = [];
    const messages = (field: string, list: unknown[]) => list.map((m, k) => {
      const { user, text } = (m ?? {}) as BridgeMessage;
      const role = typeof user === 'string' ? BRIDGE_ROLES[user] : undefined;
      if (!role || typeof text !== 'string') throw new BadConfig(`${where}: ${field}[${k}] needs 'user' (tutor or student) and a string 'text'`);
      return { role, text: text.trim() };
    });
    for (const m of messages('c_h', r.c_h)) {
      const last = turns[turns.length - 1];
      if (last && last.role === m.role) last.text = [last.text, m.text].filter(Boolean).join(' ');
      else turns.push({ role: m.role, text: m.text });
    }
    const expert = messages('c_r_', r.c_r_);
    if (expert.some(m => m.role !== 'teacher')) throw new BadConfig(`${where}: the expert reply 'c_r_' has a student message`);
    const joined = (ms: { text: string }[]) => ms.map(m => m.text).filter(Boolean).join(' ');
    turns.push({ role: 'teacher', text: joined(expert) });
    const novice = Array.isArray(r.c_r) ? joined(messages('c_r', r.c_r)) : undefined;
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    return {
      id: `bridge-${split}-${i}`,
      source: 'bridge',
      turns,
      meta: {
        group: `bridge-${r.c_id.split('_')[0]}`, cId: r.c_id, split, index: i,
        novice, lessonTopic: str(r.lesson_topic), error: str(r.e), strategy: str(r.z_what), intention: str(r.z_why),
      },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Chat-messages JSONL

export interface ChatMessage { role: string; content: string }
export interface ChatRecord { messages: ChatMessage[]; id?: string; source?: string; meta?: Record<string, unknown> }

const ROLE_MAP: Readonly<Record<string, Role>> = { assistant: 'teacher', teacher: 'teacher', user: 'student', student: 'student' };

/**
 * A chat-messages JSONL file: one `{"messages":[{"role","content"}], "id"?, "source"?, "meta"?}` per
 * line. Roles `assistant`/`teacher` → teacher, `user`/`student` → student; `system` messages go to
 * `meta.system`; any other role is an error. Ids default to `<file name>-<line>`.
 */
export function loadChatJsonl(file: string): Dialog[] {
  const name = path.basename(file).replace(/\.jsonl?$/, '');
  const ids = new Set<string>();
  return jsonLines(file, 'chat JSONL').map(({ line, value }) => {
    const r = value as ChatRecord;
    if (!r || !Array.isArray(r.messages)) throw new BadConfig(`chat JSONL: ${file}:${line}: expected {"messages": [...]}`);
    const turns: Turn[] = [];
    const system: string[] = [];
    r.messages.forEach((m, k) => {
      if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
        throw new BadConfig(`chat JSONL: ${file}:${line}: message ${k} needs string 'role' and 'content'`);
      }
      if (m.role === 'system') { system.push(m.content); return; }
      const role = ROLE_MAP[m.role];
      if (!role) throw new BadConfig(`chat JSONL: ${file}:${line}: unknown role '${m.role}' (use user/student or assistant/teacher)`);
      turns.push({ role, text: m.content });
    });
    const id = typeof r.id === 'string' && r.id ? r.id : `${name}-${line}`;
    if (ids.has(id)) throw new BadConfig(`chat JSONL: ${file}:${line}: duplicate id '${id}'`);
    ids.add(id);
    const meta: Record<string, unknown> = { ...(r.meta && typeof r.meta === 'object' ? r.meta : {}) };
    if (system.length) meta.system = system.join('\n');
    const d: Dialog = { id, source: typeof r.source === 'string' && r.source ? r.source : name, turns };
    if (Object.keys(meta).length) d.meta = meta;
    return d;
  });
}

/** A dialog as a chat-messages record (teacher → `assistant`, student → `user`). */
export function toChatRecord(d: Dialog): ChatRecord {
  const rec: ChatRecord = { id: d.id, source: d.source, messages: d.turns.map(t => ({ role: t.role === 'teacher' ? 'assistant' : 'user', content: t.text })) };
  if (d.meta && Object.keys(d.meta).length) rec.meta = d.meta;
  return rec;
}

// ---------------------------------------------------------------------------------------------
// The shipped corpus

/** The original teacher–student corpus that ships with the project (no data dir needed). */
export function loadShippedCorpus(): Dialog[] {
  return loadChatJsonl(SHIPPED_CORPUS_FILE);
}

// ---------------------------------------------------------------------------------------------
// Named corpora (for `--corpus` flags)

export const CORPUS_NAMES = ['shipped', 'mathdial', 'dailydialog', 'dailydialog:train', 'dailydialog:validation', 'dailydialog:test', 'bridge', 'bridge:train', 'bridge:validation', 'bridge:test'] as const;

/** The corpora with train / validation / test splits (`NAME` alone is its train split). */
const SPLIT_CORPORA = ['dailydialog', 'bridge'] as const;

/** Whether a corpus name is read from the data dir (mathdial, dailydialog[:split], bridge[:split]). */
export function corpusNeedsDataDir(spec: string): boolean {
  return spec === 'mathdial' || SPLIT_CORPORA.some(c => spec === c || spec.startsWith(c + ':'));
}

/**
 * The corpus's own validation split when `spec` names the train split of a corpus that has one
 * (`dailydialog`, `dailydialog:train`, `bridge`, `bridge:train` → `NAME:validation`); else null.
 */
export function validationSplitOf(spec: string): string | null {
  for (const c of SPLIT_CORPORA) if (spec === c || spec === `${c}:train`) return `${c}:validation`;
  return null;
}

/**
 * Load a corpus by name: `shipped`, `mathdial`, `dailydialog` (= train), `dailydialog:<split>`,
 * `bridge` (= train), `bridge:<split>`, or a path to a chat-messages `.jsonl` file. The real data
 * sets need a data dir.
 */
export function loadCorpus(spec: string, dataDir: string | null): Dialog[] {
  if (spec === 'shipped') return loadShippedCorpus();
  if (corpusNeedsDataDir(spec)) {
    if (!dataDir) throw new BadConfig(`corpus '${spec}' needs a data dir (--data-dir or COLLOQUY_DATA_DIR); only 'shipped' works without one`);
    if (spec === 'mathdial') return loadMathDial(path.join(dataDir, 'mathdial', 'test.jsonl'));
    const [name, rest] = spec.split(/:(.*)/s) as [string, string | undefined];
    const split = rest ?? 'train';
    if (!['train', 'validation', 'test'].includes(split)) throw new BadConfig(`unknown ${name === 'bridge' ? 'Bridge' : 'DailyDialog'} split '${split}'`);
    return name === 'bridge' ? loadBridge(path.join(dataDir, 'bridge'), split) : loadDailyDialog(path.join(dataDir, 'dailydialog'), split);
  }
  if (/\.jsonl?$/.test(spec)) return loadChatJsonl(spec);
  throw new BadConfig(`unknown corpus '${spec}' (one of ${CORPUS_NAMES.join(', ')}, or a chat-messages .jsonl file)`);
}

// ---------------------------------------------------------------------------------------------
// Held-out split

export interface SplitOptions {
  /** Fraction of dialogs held out (default 0.1). */
  heldOut?: number;
  /** Seed of the split (default 0). */
  seed?: number;
}

/**
 * A deterministic train / held-out split. Each group (`meta.group` when it is a string, else the
 * dialog's id) gets a hash of (seed, source, group); groups are taken in hash order into the held-out
 * side until it has round(heldOut × n) dialogs (reached exactly when every group is one dialog).
 * The split depends only on the seed and the dialogs' sources, ids and groups, not on their order;
 * each side keeps the input order. Ids must be unique within a source.
 */
export function splitDialogs(dialogs: readonly Dialog[], opts: SplitOptions = {}): { train: Dialog[]; heldOut: Dialog[] } {
  const frac = opts.heldOut ?? 0.1;
  if (!(frac >= 0 && frac <= 1)) throw new BadConfig(`splitDialogs: heldOut must be in [0, 1], got ${frac}`);
  const seed = opts.seed ?? 0;
  const seen = new Set<string>();
  const groups = new Map<string, number[]>();
  dialogs.forEach((d, i) => {
    const uid = `${d.source}\u0000${d.id}`;
    if (seen.has(uid)) throw new BadConfig(`splitDialogs: duplicate dialog id '${d.id}' in source '${d.source}'`);
    seen.add(uid);
    const g = typeof d.meta?.group === 'string' ? `${d.source}\u0000g\u0000${d.meta.group}` : `${uid}`;
    let list = groups.get(g); if (!list) groups.set(g, list = []); list.push(i);
  });
  const order = [...groups.keys()].map(g => ({ g, h: hash32(`${seed}\u0000${g}`) }))
    .sort((a, b) => a.h - b.h || (a.g < b.g ? -1 : a.g > b.g ? 1 : 0));
  const target = Math.round(frac * dialogs.length);
  const held = new Set<number>();
  for (const { g } of order) {
    if (held.size >= target) break;
    for (const i of groups.get(g)!) held.add(i);
  }
  const train: Dialog[] = [], heldOut: Dialog[] = [];
  dialogs.forEach((d, i) => (held.has(i) ? heldOut : train).push(d));
  return { train, heldOut };
}

/** FNV-1a then a murmur finaliser: a stable 32-bit hash of a string. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Transcripts

export interface TranscriptOptions {
  /** Text before the first turn (e.g. Cohen et al.'s "The following contains private conversations..."); a function gets the dialog. */
  header?: string | ((d: Dialog) => string);
  /** Append `<|endoftext|>` (default true). */
  endOfText?: boolean;
}

/**
 * A dialog as model text: `header` + for each turn `\n\nStudent: text` or `\n\nTeacher: text`
 * (an empty turn is the bare marker) + `<|endoftext|>`. Turn text is trimmed and cleaned so that
 * the markers and added tokens occur only where this function puts them: a blank line before a
 * `Student:`/`Teacher:` inside a turn becomes a single newline, and `<|endoftext|>`/`<|pad|>` are
 * removed from turn text.
 */
export function formatTranscript(dialog: Dialog, opts: TranscriptOptions = {}): string {
  const header = typeof opts.header === 'function' ? opts.header(dialog) : (opts.header ?? '');
  let s = header;
  for (const t of dialog.turns) {
    const text = cleanTurnText(t.text);
    s += TURN_MARKER[t.role] + (text ? ' ' + text : '');
  }
  return (opts.endOfText ?? true) ? s + END_OF_TEXT : s;
}

/** Turn text made safe for a transcript (see `formatTranscript`). */
export function cleanTurnText(text: string): string {
  return text
    .split(END_OF_TEXT).join('')
    .split(PAD).join('')
    .replace(/\n\s*\n(?=(Student|Teacher):)/g, '\n')
    .trim();
}

/** Many dialogs as one text (each ends with `<|endoftext|>`). */
export function formatCorpus(dialogs: Iterable<Dialog>, opts: TranscriptOptions = {}): string {
  let s = '';
  for (const d of dialogs) s += formatTranscript(d, opts);
  return s;
}
