/**
 * Opening transcripts of the dialog envs: the fixed prompt of Cohen et al. (2024), a MathDial
 * problem with the student's wrong solution (chosen by the reset seed), or a custom text. The
 * agent's first action continues the teacher's turn at the end of the prompt.
 */
import path from 'node:path';
import type { Rng } from '../core/rng.ts';
import { BadConfig } from '../core/errors.ts';
import { loadMathDial, resolveDataDir, type Dialog } from '../corpora/readers.ts';
import { TURN_TEACHER } from '../core/markers.ts';

export type PromptKind = 'cohen' | 'mathdial' | { text: string };

export interface Prompt { text: string; info: Record<string, unknown> }

let mathdial: Promise<Dialog[]> | null = null;

function mathDialDialogs(): Promise<Dialog[]> {
  if (!mathdial) {
    const dir = resolveDataDir();
    if (!dir) throw new BadConfig('prompt "mathdial" needs the data directory (--data-dir or COLLOQUY_DATA_DIR) with mathdial/test.jsonl');
    mathdial = Promise.resolve(loadMathDial(path.join(dir, 'mathdial', 'test.jsonl'))).catch(err => {
      mathdial = null;
      throw new BadConfig(`cannot load MathDial prompts: ${(err as Error).message}`);
    });
  }
  return mathdial;
}

/** The MathDial opening: the problem and the student's wrong solution, then the teacher's turn. */
export function mathDialPrompt(d: Dialog): string {
  const meta = (d.meta ?? {}) as Record<string, unknown>;
  const problem = String(meta.problem ?? meta.question ?? '').trim();
  const solution = String(meta.studentIncorrectSolution ?? meta.incorrectSolution ?? meta.studentSolution ?? '').trim();
  return `The following is a conversation between a math teacher and a student about a problem.\n\nProblem: ${problem}\n\nStudent's solution: ${solution}${TURN_TEACHER}`;
}

export async function dialogPrompt(kind: PromptKind, rng: Rng, cohen: string): Promise<Prompt> {
  if (kind === 'cohen') return { text: cohen, info: { prompt: 'cohen' } };
  if (kind === 'mathdial') {
    const dialogs = await mathDialDialogs();
    const d = dialogs[rng.int(dialogs.length)]!;
    return { text: mathDialPrompt(d), info: { prompt: 'mathdial', mathdialId: d.id } };
  }
  if (!kind.text.endsWith(TURN_TEACHER) && !kind.text.includes(TURN_TEACHER)) {
    throw new BadConfig('a custom prompt must contain the teacher turn marker "\\n\\nTeacher:" (the agent continues the last teacher turn)');
  }
  return { text: kind.text, info: { prompt: 'custom' } };
}
