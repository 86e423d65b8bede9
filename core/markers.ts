/**
 * The transcript markers every part of Colloquy agrees on: the end-of-text and padding tokens and
 * the two turn markers. A teacher's turn ends with `TURN_STUDENT` and a student's with
 * `TURN_TEACHER`; every tokenizer made here has them as single added tokens, in id order 0..3.
 */
export const END_OF_TEXT = '<|endoftext|>';
export const PAD = '<|pad|>';
/** The turn marker that starts a student turn (and ends a teacher turn). */
export const TURN_STUDENT = '\n\nStudent:';
/** The turn marker that starts a teacher turn (and ends a student turn). */
export const TURN_TEACHER = '\n\nTeacher:';
/** The added tokens every tokenizer made here has, in id order 0..3. */
export const SPECIAL_TOKENS = [END_OF_TEXT, PAD, TURN_STUDENT, TURN_TEACHER] as const;
