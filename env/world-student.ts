/**
 * The world's student (`student: "world"`, TeacherStudent-v0's default): a rule-driven student
 * whose hidden state (confused, following, frustrated, pleased) evolves with the teacher's moves,
 * classified from the teacher's text (corpora/world.ts holds the rules and the reply families; the
 * README's "The default world" section documents them). Deterministic: each reply is drawn with the
 * dialog's per-reply seed. One per env (its state is the dialog's), never shared.
 *
 * `info` of each exchange carries the world's view of it: `worldMove`, `worldState` (after the
 * move), `worldUnderstanding`, and `worldLeft` when the student leaves.
 */
import { Rng } from '../core/rng.ts';
import { WorldStudentState, type WorldRules } from '../corpora/world.ts';
import type { DialogTokenizer, Student, StudentReply, StudentRequest } from './students.ts';

export class WorldStudent implements Student {
  readonly kind = 'scripted' as const;
  readonly deterministic = true;
  private readonly world: WorldStudentState;

  constructor(private readonly tokenizer: DialogTokenizer, rules?: WorldRules) {
    this.world = new WorldStudentState(rules);
  }

  onEpisodeStart(): void { this.world.reset(); }

  async reply(req: StudentRequest): Promise<StudentReply> {
    const step = this.world.respond(req.teacherUtterance, new Rng(req.seed));
    const sp = this.tokenizer.special;
    const tokens = [...this.tokenizer.encode(' ' + step.reply), step.leaves ? sp.endOfText : sp.teacher].slice(0, req.maxTokens);
    const detail: Record<string, unknown> = { worldMove: step.move, worldState: step.state, worldUnderstanding: step.understanding };
    if (step.leaves) detail.worldLeft = step.leaves;
    return { tokens, detail };
  }
}
