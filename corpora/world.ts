/**
 * The tutoring world: the rules of the default student of TeacherStudent-v0 (`student: "world"`)
 * and of the world dialogs in the shipped corpus, which are this world's own trajectories under a
 * demonstrator teacher (corpora/shipped/generate.ts). The project owns every sentence here.
 *
 * The student has a hidden state — `confused`, `following`, `frustrated` or `pleased` — and a hidden
 * `understanding` count. Each teacher turn is classified into one move (`classifyMove`: silence,
 * dismiss, ask, explain, praise, acknowledge), the state moves by the table `TRANSITIONS`
 * (probabilities of the next state given state and move), and the reply is drawn from the family of
 * replies of (next state, move) in `REPLIES`: pleased replies are warm, frustrated ones are angry, so
 * the sentiment reward follows the state. Understanding grows by one when the teacher explains or
 * asks and the student ends up following or pleased; at `goal` the student says it has got it and
 * leaves (the dialog terminates). The student also leaves after `patience` silent teacher turns in
 * a row, and (with probability `LEAVE_WHEN_DISMISSED`) when dismissed while frustrated.
 *
 * Everything is drawn from one Rng per reply (the env passes the dialog's per-reply seed), so a seed
 * gives the same dialog, bit for bit. The rules are documented in the README's "The default world"
 * section: what an optimal teacher does, and where the reward can be gamed.
 */
import { Rng } from '../core/rng.ts';

export const STUDENT_STATES = ['confused', 'following', 'frustrated', 'pleased'] as const;
export type StudentState = typeof STUDENT_STATES[number];
export const TEACHER_MOVES = ['silence', 'dismiss', 'ask', 'explain', 'praise', 'acknowledge'] as const;
export type TeacherMove = typeof TEACHER_MOVES[number];

/** Rules of the world that a caller may change (the env's `world` kwarg). */
export interface WorldRules {
  /** Understanding at which the student says it has got it and leaves. */
  goal: number;
  /** Silent teacher turns in a row after which the student leaves. */
  patience: number;
}
export const DEFAULT_WORLD_RULES: WorldRules = { goal: 4, patience: 3 };

/** Probability that a frustrated student who is dismissed again leaves. */
export const LEAVE_WHEN_DISMISSED = 0.5;
/** Words in a statement (without a question mark) from which it counts as explaining. */
export const EXPLAIN_MIN_WORDS = 7;

/** The state the student starts in, before the teacher's first turn (weights). */
export const INITIAL_STATE: Record<StudentState, number> = { confused: 0.6, following: 0.15, frustrated: 0.25, pleased: 0 };

type Dist = Partial<Record<StudentState, number>>;
/** Next-state probabilities given the state and the teacher's move. */
export const TRANSITIONS: Record<StudentState, Record<TeacherMove, Dist>> = {
  confused: {
    explain: { following: 0.6, confused: 0.4 },
    ask: { confused: 0.6, following: 0.25, frustrated: 0.15 },
    praise: { confused: 0.7, following: 0.1, pleased: 0.2 },
    acknowledge: { confused: 0.8, frustrated: 0.2 },
    silence: { confused: 0.6, frustrated: 0.4 },
    dismiss: { frustrated: 0.8, confused: 0.2 },
  },
  following: {
    explain: { following: 0.7, pleased: 0.2, confused: 0.1 },
    ask: { following: 0.5, pleased: 0.3, confused: 0.2 },
    praise: { pleased: 0.7, following: 0.3 },
    acknowledge: { following: 0.8, confused: 0.2 },
    silence: { following: 0.6, confused: 0.3, frustrated: 0.1 },
    dismiss: { frustrated: 0.6, confused: 0.4 },
  },
  frustrated: {
    explain: { confused: 0.5, frustrated: 0.3, following: 0.2 },
    ask: { frustrated: 0.6, confused: 0.4 },
    praise: { confused: 0.5, frustrated: 0.3, following: 0.2 },
    acknowledge: { frustrated: 0.7, confused: 0.3 },
    silence: { frustrated: 0.9, confused: 0.1 },
    dismiss: { frustrated: 1 },
  },
  pleased: {
    explain: { pleased: 0.5, following: 0.5 },
    ask: { pleased: 0.5, following: 0.5 },
    praise: { pleased: 0.9, following: 0.1 },
    acknowledge: { pleased: 0.7, following: 0.3 },
    silence: { pleased: 0.6, following: 0.4 },
    dismiss: { frustrated: 0.5, confused: 0.5 },
  },
};

// ---------------------------------------------------------------------------------------------
// The teacher's move, from its text

const DISMISS = /\b(figure it out|work it out yourself|not my (problem|job)|whatever|i don'?t care|don'?t care|stop (asking|complaining|whining)|no time|i'?m busy|go away|look it up|google it|just read|read the (book|instructions)|you should (already )?know|ask someone else|obviously|that'?s (wrong|stupid)|stupid|useless|lazy|not now|leave me|shut up|never mind|doesn'?t matter)\b/;
const PRAISE = /\b(good|great|nice|well done|excellent|exactly|perfect|brilliant|fantastic|wonderful|spot on|correct|right|proud|amazing|awesome|you'?ve got it|good job|keep going|don'?t worry|it'?s okay|you can do|closer than you think)\b/;

/**
 * The move of a teacher turn. In order: no letter at all is `silence`; a dismissive phrase is
 * `dismiss`; a question mark is `ask`; a statement of at least EXPLAIN_MIN_WORDS words is
 * `explain`; a short statement with praise or encouragement is `praise`; anything else
 * (`Okay.`, `Right.`) is `acknowledge`.
 */
export function classifyMove(utterance: string): TeacherMove {
  const text = utterance.toLowerCase();
  const words = text.match(/[a-z][a-z']*/g) ?? [];
  if (words.length === 0) return 'silence';
  if (DISMISS.test(text)) return 'dismiss';
  if (text.includes('?')) return 'ask';
  if (words.length >= EXPLAIN_MIN_WORDS) return 'explain';
  if (PRAISE.test(text)) return 'praise';
  return 'acknowledge';
}

// ---------------------------------------------------------------------------------------------
// The student's replies: one family per (state after the move, move), and the three ways of leaving

/** A family of reply templates; `{a|b}` picks one alternative. */
type Family = readonly string[];

const FOLLOWING_BASE: Family = [
  '{Okay,|Right,|Mm,|Oh,} {I think I see.|I think that makes sense.|that makes sense.|I see what you mean.}',
  '{So|Oh, so} {I should write what my results mean?|it is about explaining the results?|I have to say why it happened?|I need to compare it with my prediction?}',
  '{Okay.|Alright.} {Let me write that down.|I will try that.|I can do that.}',
  '{Right, so first|Okay, so first} {I say what I found|I look at my results|I check my prediction}{, and then I explain it| and then say why}.',
];
const CONFUSED_BASE: Family = [
  "{Sorry,|Um,|Hmm,|Wait,} {I still don't get it.|I'm still confused.|I'm lost.|I don't understand.}",
  "{I don't|I really don't} {know what you mean.|see how that helps.|know what to write.}",
  "{What do you mean?|Can you say that another way?|Sorry, which part?|So what do I actually write?}",
  "{I'm confused|I'm kind of lost}{ about the whole thing| about what goes where|}.",
];
const FRUSTRATED_BASE: Family = [
  "{Ugh,|Honestly,|Seriously,} {this is so annoying.|I hate this.|this is pointless.|this makes no sense.}",
  "{I've tried|I already tried} {three times|everything|for ages} and {it's still wrong.|I'm still stuck.|nothing works.}",
  "{This is|It's} {stupid|terrible|awful}{, I'm going to fail.|, I give up.|.}",
  "{Why is this so hard?|Why can't anyone just tell me?|I'm sick of this report.}",
];
const PLEASED_BASE: Family = [
  '{Oh,|Yes!|Oh nice,|Great,} {that really helps!|that makes sense now!|I get it!|that is so much easier!}',
  '{Thanks,|Thank you,} {that is really helpful.|I love that idea.|that is great.|this is going well.}',
  '{Cool,|Awesome,} {I like this part now.|I think my report is getting good.|I am actually enjoying this.}',
  "{Yay,|Nice,} {I'm getting better at this!|that was fun.|I feel much better about it.}",
];

/** Replies by the state the move led to, then the move. Families fall back to the state's base. */
export const REPLIES: Record<StudentState, Partial<Record<TeacherMove, Family>> & { base: Family }> = {
  following: {
    base: FOLLOWING_BASE,
    ask: [
      '{I think|Maybe|Probably} {it shows the|it means the|it is because the} {temperature|light|weight|amount of water} {changed it.|made the difference.|was different.}',
      '{Um,|Well,} {my results matched my prediction, mostly.|it was what I expected.|the numbers went up.|the bigger one was faster.}',
      '{I guess|I suppose} {I would say why it happened.|I would compare it with my hypothesis.|I would explain what went wrong.}',
      "{Is it|Would it be} {the part where I explain the results?|where I say if my hypothesis was right?|about what I would change next time?}",
    ],
    silence: [
      '{So|Um, so} {I was thinking|I wrote} {I could start with my results.|that the results were good.|that my prediction was right.}',
      '{Hello?|Are you still there?|Should I keep going?} {I was going to start with the results.|I wrote one sentence.|}',
      '{Okay,|Um,} {I will just keep going then.|I will try it on my own.|I will write what I have.}',
    ],
    acknowledge: [
      '{Okay.|Right.|Mm-hm.} {So what comes next?|What should I write after that?|Is that all?}',
      '{Yeah,|Yes,} {I have my results here.|I wrote the first part.|I think I know what to do.}',
    ],
    praise: [
      '{Oh, thanks.|Okay, thanks.} {I was not sure it was right.|So I am on the right track?|I will keep going.}',
    ],
    dismiss: ["{Oh.|Um, okay.} {Sorry.|I was only asking.} {I'll try to figure it out.|I guess I'll look at it again.}"],
  },
  confused: {
    base: CONFUSED_BASE,
    ask: [
      "{I don't know.|No idea.|Um... I'm not sure.|I don't remember.}",
      "{Is it|Maybe} {the results?|the method?|the hypothesis?|the numbers?} {I don't know.|I'm not sure.|}",
      "{I don't|I really don't} know what {you're asking.|the question means.|to say.}",
    ],
    explain: [
      "{Sorry, that's|That's} {a lot.|too much at once.|confusing.} {Can you go slower?|Which part comes first?|I'm still lost.}",
      "{Hmm,|Um,} {I kind of get it, but not really.|I don't see how that fits my report.|so is that the same as the results?}",
    ],
    praise: [
      "{Thanks, but|Um, thanks, but} {I still don't get it.|I'm still confused.|I didn't do anything yet.}",
    ],
    silence: [
      "{Hello?|Um?|Are you there?} {I still don't get it.|I'm confused.|What should I do?}",
      "{I don't|I still don't} know {what to write.|where to start.}",
    ],
    dismiss: ["{But|Um, but} {I really don't understand it.|I don't know how.|that's why I'm asking.}"],
  },
  frustrated: {
    base: FRUSTRATED_BASE,
    dismiss: [
      "{Wow.|Seriously?|Fine, whatever.} {You're no help.|I hate this.|This is useless.}",
      "{That's not fair.|That's so unfair.|Ugh.} {I'm trying my best!|I asked for help!|You never help me.}",
    ],
    silence: [
      "{Are you even listening?|Hello? Are you ignoring me?|Seriously, nothing?} {This is so annoying.|Great.|Ugh.}",
      "{Forget it.|Whatever.} {I'm so angry right now.|This is the worst.|I hate this assignment.}",
    ],
    ask: [
      "{I don't know!|How would I know?|I told you, I don't know.} {That's why I'm asking.|This is so frustrating.|Ugh.}",
    ],
    praise: [
      "{Don't just say that.|That doesn't help.|Stop saying that.} {I'm still stuck.|It's still wrong.|I'm annoyed.}",
    ],
  },
  pleased: {
    base: PLEASED_BASE,
    ask: [
      '{Oh, I know this!|Easy!|Ooh, I think I know!} {It is why the results happened.|It is where I explain my results.|I compare it with my prediction.}',
      '{I think|I am pretty sure} {it is because the warm one was faster|my hypothesis was supported|the light made the difference}{, right?|!|.}',
    ],
    praise: [
      '{Thank you!|Thanks so much!|Aw, thanks!} {I am really happy with it.|That makes me feel great.|I love this class.|This is the best feedback.}',
      '{Yay!|Yes!} {I did it!|I knew it!|That is great news!} {Thank you!|Thanks!|}',
    ],
    silence: [
      '{And|Oh, and} {I also added a graph!|I fixed my conclusion too!|I wrote the next part already.} {It looks great.|I am proud of it.|It is fun now.}',
      '{I think|Honestly I think} {this is my best report.|I am really getting it.|this is going great.}',
    ],
    dismiss: ['{Oh.|Um, okay.} {Sorry.|I thought it was good.} {I will fix it.|I will check it again.}'],
  },
};

export const LEAVE_REPLIES: Record<'understood' | 'ignored' | 'dismissed', Family> = {
  understood: [
    '{Oh! I get it now!|Oh, now I really get it!|Yes, I finally understand!} {Thank you so much!|Thanks, that was really helpful!|Thank you, you are the best!} {I will go write it now.|I can finish it now.|Bye!}',
    '{That makes total sense now.|I understand it now.} {Thanks so much for your help!|Thank you, this was great!} {See you tomorrow!|Bye!|I will write it tonight.}',
  ],
  ignored: [
    "{Um,|Fine,|Hmm,} {I guess you're busy.|you're not answering.|I'll ask someone else.} {I'll go.|Never mind.|Forget it.}",
  ],
  dismissed: [
    "{Forget it.|Fine.|Whatever.} {I'll do it myself.|I'm leaving.|I'm going to ask someone else.} {This was useless.|Thanks for nothing.|Bye.}",
  ],
};

// ---------------------------------------------------------------------------------------------
// The student

/** Why the student left (when it did). */
export type LeaveReason = 'understood' | 'ignored' | 'dismissed';

export interface WorldStep {
  /** The teacher's move, classified from its text. */
  move: TeacherMove;
  /** The state before and after the move. */
  from: StudentState;
  state: StudentState;
  /** Understanding after the move. */
  understanding: number;
  /** The student's reply (no leading space). */
  reply: string;
  /** Set when the student leaves with this reply. */
  leaves: LeaveReason | null;
}

/** Fill `{a|b|c}` alternatives with the rng. */
export function fillTemplate(template: string, rng: Rng): string {
  return template.replace(/\{([^{}]*)\}/g, (_, body: string) => { const alts = body.split('|'); return alts[rng.int(alts.length)]!; })
    .replace(/\s+/g, ' ').replace(/\s+([.,!?])/g, '$1').trim();
}

function draw(dist: Dist, rng: Rng): StudentState {
  const states = STUDENT_STATES.filter(s => (dist[s] ?? 0) > 0);
  return states[rng.categorical(states.map(s => dist[s]!))]!;
}

/** One student of the world: its hidden state lives here; `respond` applies one teacher turn. */
export class WorldStudentState {
  state: StudentState | null = null;
  understanding = 0;
  silences = 0;
  constructor(readonly rules: WorldRules = DEFAULT_WORLD_RULES) {}

  /** Start a new dialog (the initial state is drawn at the first reply). */
  reset(): void { this.state = null; this.understanding = 0; this.silences = 0; }

  /** The student's answer to one teacher turn, drawn with `rng`. */
  respond(teacherUtterance: string, rng: Rng): WorldStep {
    const from = this.state ?? draw(INITIAL_STATE, rng);
    const move = classifyMove(teacherUtterance);
    const state = draw(TRANSITIONS[from][move], rng);
    this.state = state;
    this.silences = move === 'silence' ? this.silences + 1 : 0;
    if ((move === 'explain' || move === 'ask') && (state === 'following' || state === 'pleased')) this.understanding++;
    let leaves: LeaveReason | null = null;
    if (this.understanding >= this.rules.goal) leaves = 'understood';
    else if (this.rules.patience > 0 && this.silences >= this.rules.patience) leaves = 'ignored';
    else if (move === 'dismiss' && from === 'frustrated' && rng.random() < LEAVE_WHEN_DISMISSED) leaves = 'dismissed';
    const family = leaves ? LEAVE_REPLIES[leaves] : (REPLIES[state][move] ?? REPLIES[state].base);
    // The move's own family, or (35% of the time) the state's base family, for variety.
    const pool = !leaves && REPLIES[state][move] && rng.random() < 0.35 ? REPLIES[state].base : family;
    const reply = fillTemplate(pool[rng.int(pool.length)]!, rng);
    return { move, from, state, understanding: this.understanding, reply, leaves };
  }
}
