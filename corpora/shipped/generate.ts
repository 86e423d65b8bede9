/**
 * Generates the small ORIGINAL teacher–student corpus that ships with Colloquy
 * (`corpora/shipped/dialogs.jsonl`), so that a fresh install with no data directory can
 * pretrain a base model. Every sentence comes from the templates and word lists in this file
 * (written for this project; nothing is taken from MathDial, DailyDialog or any other data set),
 * combined with a seeded Rng: the same seed gives the same file, byte for byte.
 *
 * Three subjects — science reports, math, writing — and students who are confused, frustrated,
 * anxious, curious, tired or pleased; teachers who ask questions, explain, encourage and praise.
 * Math dialogs use real numbers and compute the right answers (and typical wrong ones).
 *
 *   node bin/run.mjs corpora/shipped/generate.ts [--seed 1] [--count 420] [--world-count 320] [--out FILE]
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../core/rng.ts';
import type { Dialog, Role, Turn } from '../readers.ts';
import { toChatRecord } from '../readers.ts';
import { WorldStudentState, type StudentState, type TeacherMove } from '../world.ts';

export const DEFAULT_SEED = 1;
export const DEFAULT_COUNT = 420;
/** World dialogs (trajectories of corpora/world.ts), after the others. */
export const DEFAULT_WORLD_COUNT = 320;

type Mood = 'confused' | 'frustrated' | 'anxious' | 'curious' | 'tired' | 'pleased';
const MOODS: Mood[] = ['confused', 'confused', 'frustrated', 'frustrated', 'anxious', 'curious', 'tired', 'pleased', 'pleased'];

class Script {
  turns: Turn[] = [];
  constructor(readonly rng: Rng, readonly name: string, readonly mood: Mood) {}
  pick<T>(xs: readonly T[]): T { return xs[this.rng.int(xs.length)]!; }
  chance(p: number): boolean { return this.rng.random() < p; }
  /** Fill `{a|b|c}` alternatives and join sentence fragments. */
  say(role: Role, ...parts: (string | false | null | undefined)[]): void {
    const text = parts.filter((p): p is string => !!p).map(p => this.alt(p)).join(' ').replace(/\s+/g, ' ').trim();
    const last = this.turns[this.turns.length - 1];
    if (last && last.role === role) last.text += ' ' + text; else this.turns.push({ role, text });
  }
  alt(s: string): string {
    return s.replace(/\{([^{}]*)\}/g, (_, body: string) => this.pick(body.split('|')));
  }
  /** The student's name, sometimes, as a vocative. */
  nameOr(prefix = '', suffix = ''): string { return this.chance(0.35) ? `${prefix}${this.name}${suffix}` : ''; }
}

// ---------------------------------------------------------------------------------------------
// Shared phrase banks

const NAMES = ['Sam', 'Priya', 'Leo', 'Maya', 'Jonah', 'Aisha', 'Tom', 'Lucia', 'Ben', 'Nadia', 'Omar', 'Grace', 'Felix',
  'Hana', 'Diego', 'Zoe', 'Ravi', 'Chloe', 'Kofi', 'Ella', 'Mateo', 'Ines', 'Noah', 'Yuki', 'Amir', 'Rosa', 'Eli', 'Tara',
  'Jack', 'Mei', 'Luca', 'Freya', 'Sipho', 'Anya', 'Max', 'Lena'];

const TEACHER_ACK = ['Yeah?', 'Okay.', 'Sure, go on.', 'Alright, what about it?', 'Mm-hm?', 'Okay, tell me more.', 'Right.', 'Yes?', 'Go ahead.'];

const FEELING: Record<Mood, string[]> = {
  confused: ["I'm kind of lost.", "I don't really get it.", "I'm confused about it.", "I thought I understood it in class but now I don't.", "It just doesn't make sense to me."],
  frustrated: ["I've been stuck on this for ages.", "This is so annoying.", "I keep getting it wrong and I don't know why.", "I've tried like five times already.", "Honestly I'm about to give up on it."],
  anxious: ["It's due tomorrow and I'm really worried.", "I'm nervous I'm going to fail this one.", "I'm scared I did the whole thing wrong.", "I really need a good grade on this."],
  curious: ["I was wondering about something.", "I want to understand it properly.", "I'm curious how it works.", "I had a question about it."],
  tired: ["I'm so tired, I was up late.", "I can't really focus today.", "My brain is kind of fried.", "Sorry, I'm a bit slow today."],
  pleased: ["I think I'm almost done!", "I actually like this one.", "It's going pretty well so far.", "I finished most of it already."],
};

const AFTER_EXPLAIN: Record<Mood, string[]> = {
  confused: ["Wait, I'm still not sure I get it.", "Hmm, kind of. Can you say it another way?", "Oh... I think so? Maybe.", "So it's not just the numbers?", "Okay, I think I'm starting to get it."],
  frustrated: ["Ugh, why didn't they just say that in class?", "Okay, fine. That's easier than I thought.", "I still think this is way too complicated.", "Oh. That's actually not that bad.", "Okay, I'll try again but this is really annoying."],
  anxious: ["Okay, that helps. I was really worried.", "So if I do that I won't lose marks?", "Oh good, I thought it was going to be much harder.", "Okay. I hope I can remember that."],
  curious: ["Oh, that's interesting!", "Huh, I never thought of it like that.", "That makes sense. Why is it done that way though?", "Cool, I'll try that."],
  tired: ["Okay. That makes sense, I think.", "Right, okay, I can do that.", "Mm, okay. Sorry, give me a second.", "Okay, that's clearer."],
  pleased: ["Oh, that makes sense now!", "That's really helpful, thank you!", "Oh nice, that's easy!", "Yes! I get it now."],
};

const PRAISE = ['Exactly.', "Yes, that's it.", 'Good thinking.', 'Nice work.', "That's right.", 'Perfect.', 'Great, well done.', 'Spot on.', "Yes! You've got it.", 'Very good.'];
const CHECK = ['Does that make sense?', 'Is that clearer?', 'Can you say that back to me in your own words?', 'Do you see why?', 'How does that sound?', 'Okay so far?'];
const ENCOURAGE = ["It's okay to find this hard, lots of people do.", "Don't worry, we'll go through it step by step.", "You're closer than you think.", "Let's slow down and take it one piece at a time.", "You've already done the hardest part.", "Mistakes are how we find out what to fix."];
const HINT_OPEN = ['Let me ask you something.', "Let's look at it together.", 'Okay, think about this.', "Here's a question for you.", 'Try this.', "Let's check that."];

const STUDENT_THANKS: Record<Mood, string[]> = {
  confused: ['Okay, thanks. I think I get it now.', 'Thanks, that helped a bit.', "Thank you. I'll read it over again tonight.", "Okay, thanks. I'll ask again if I get stuck."],
  frustrated: ["Thanks. Sorry I was grumpy.", "Okay, thanks. That wasn't as bad as I thought.", 'Finally. Thank you.', "Thanks. I'm going to finish it now before I forget."],
  anxious: ["Thank you so much, I feel a lot better.", "Thanks, I was really stressing about it.", 'Okay, I think I can finish it now. Thanks!', "Thank you! I'll send it to you before it's due."],
  curious: ['Thanks, that was really interesting.', "Cool, thanks! I'll try that.", 'Thanks! Can I ask you about the next part tomorrow?', 'Thank you, that makes a lot more sense.'],
  tired: ['Okay, thanks. I think I can do the rest.', "Thanks. I'll finish it after a break.", 'Thanks for being patient.', 'Okay, got it. Thanks.'],
  pleased: ['Thanks so much, this is great!', 'Yay, thank you!', "Awesome, thanks! I'm going to finish it right now.", 'Thank you, that was really helpful!'],
};
const TEACHER_CLOSE = ["You're welcome. Good luck with it!", 'Any time. You did well today.', "Great. Let me know how it goes.", 'No problem. Nice work today.',
  "You're welcome. Come back if you get stuck again.", 'Good. Take a short break before you finish it.', "Happy to help. I'm looking forward to reading it.", "That's the spirit. See you next time."];

function teacherReassure(s: Script): string {
  if (s.mood === 'frustrated' || s.mood === 'anxious' || s.mood === 'confused' || s.mood === 'tired') return s.pick(ENCOURAGE);
  if (s.mood === 'pleased') return s.pick(["I like the energy.", "Let's have a look together.", "Good, let's make it even better."]);
  return s.pick(["Let's figure it out.", "Let's look at it carefully.", 'Questions are good.']);
}

function closing(s: Script): void {
  s.say('student', s.pick(STUDENT_THANKS[s.mood]));
  s.say('teacher', s.pick(TEACHER_CLOSE));
}

// ---------------------------------------------------------------------------------------------
// Science reports

interface Experiment {
  topic: string; did: string; iv: string; dv: string; controlled: string; hypothesis: string;
  result: string; numbers: string; why: string; error: string; next: string;
  /** Whether the results support the hypothesis. */
  supported?: boolean;
}
const EXPERIMENTS: Experiment[] = ([
  { topic: 'plants and light', did: 'grew bean plants under red, blue and white light', iv: 'the colour of the light', dv: 'how tall the plants grew', controlled: 'the amount of water and the type of soil',
    hypothesis: 'the plants under blue light would grow the tallest', result: 'the plants under blue light grew the tallest and the red ones were the shortest', numbers: 'the blue ones were about 14 centimetres after two weeks and the red ones only 9',
    why: 'plants use some colours of light more than others for photosynthesis', error: 'some of the pots were closer to the window so they got extra sunlight', next: 'try more colours and keep all the pots away from the window' },
  { topic: 'dissolving sugar', did: 'timed how long sugar took to dissolve in water at different temperatures', iv: 'the temperature of the water', dv: 'the time it took the sugar to dissolve', controlled: 'the amount of sugar and how fast we stirred',
    hypothesis: 'sugar would dissolve faster in hot water', result: 'the sugar dissolved fastest in the hottest water', numbers: 'it took 20 seconds in hot water and almost two minutes in cold water',
    why: 'the water particles move faster when they are hot and break up the sugar crystals more quickly', error: 'we stirred by hand so the stirring was probably not exactly the same each time', next: 'use a stirring machine or not stir at all' },
  { topic: 'pendulums', did: 'measured how long a pendulum took to swing with different string lengths', iv: 'the length of the string', dv: 'the time for ten swings', controlled: 'the weight on the end and the angle we let go from',
    hypothesis: 'a longer string would make the pendulum swing slower', result: 'the longer strings took longer to swing back and forth', numbers: 'ten swings took about 12 seconds with the short string and 20 seconds with the long one',
    why: 'the weight has further to travel on a longer string', error: 'it was hard to start and stop the stopwatch at exactly the right moment', next: 'film it and count the swings on the video' },
  { topic: 'bouncing balls', did: 'dropped a tennis ball from different heights and measured how high it bounced', iv: 'the drop height', dv: 'the bounce height', controlled: 'the ball and the floor we dropped it on',
    hypothesis: 'the higher we dropped it the higher it would bounce', result: 'the ball bounced higher when we dropped it from higher up', numbers: 'from one metre it bounced about 55 centimetres and from two metres about 1 metre',
    why: 'the ball has more energy when it falls further', error: 'it was hard to see exactly where the top of the bounce was', next: 'use a phone camera in slow motion' },
  { topic: 'yeast and balloons', did: 'put yeast and sugar in bottles with balloons on top at different temperatures', iv: 'the temperature of the water', dv: 'how big the balloon got', controlled: 'the amount of yeast and sugar',
    hypothesis: 'the warm bottle would blow up the balloon the most', result: 'the balloon on the warm bottle got the biggest and the cold one hardly changed', numbers: 'the warm balloon was about 30 centimetres around and the cold one was about 12',
    why: 'the yeast is more active when it is warm and makes more carbon dioxide', error: 'the warm water cooled down during the experiment', next: 'keep the bottles in a water bath so the temperature stays the same' },
  { topic: 'magnets', did: 'tested how many paper clips a magnet could pick up through different numbers of cards', iv: 'the number of cards between the magnet and the clips', dv: 'the number of paper clips it picked up', controlled: 'the magnet and the size of the paper clips',
    hypothesis: 'the magnet would pick up fewer clips with more cards in the way', result: 'the more cards we added the fewer clips it picked up', numbers: 'with no cards it picked up 11 clips and with ten cards only 2',
    why: 'the magnetic force gets weaker as the distance gets bigger', error: 'the clips sometimes stuck to each other in a chain', next: 'use something heavier than paper clips' },
  { topic: 'melting ice', did: 'put salt, sugar and sand on ice cubes to see which melted them fastest', iv: 'what we put on the ice', dv: 'how long the ice took to melt', controlled: 'the size of the ice cubes and the room temperature',
    hypothesis: 'salt would melt the ice fastest', result: 'the ice with salt melted first and the sand one was almost the same as plain ice', numbers: 'the salty ice melted in about 25 minutes and the plain ice took 40',
    why: 'salt lowers the temperature at which water freezes', error: 'the ice cubes were not all exactly the same size', next: 'weigh the ice cubes before we start' },
  { topic: 'paper planes', did: 'made paper planes with different wing sizes and measured how far they flew', iv: 'the wing size', dv: 'the distance the plane flew', controlled: 'the type of paper and who threw it',
    hypothesis: 'the planes with bigger wings would fly further', result: 'the medium wings flew furthest and the biggest wings actually flew a shorter distance', numbers: 'the medium plane flew about 7 metres on average and the big one about 5',
    why: 'bigger wings give more lift but also more drag', error: 'the person throwing it might not have thrown it the same way every time', next: 'build a launcher from a rubber band so every throw is the same', supported: false },
  { topic: 'seeds and water', did: 'gave cress seeds different amounts of water each day', iv: 'the amount of water', dv: 'how many seeds sprouted', controlled: 'the number of seeds and where we kept them',
    hypothesis: 'more water would make more seeds sprout', result: 'the middle amount of water worked best and the ones with too much water went mouldy', numbers: '18 out of 20 sprouted with the middle amount and only 6 with the most water',
    why: 'seeds need water to sprout but too much water stops air getting to them', error: 'we forgot to water them on one day over the weekend', next: 'set a reminder and use a measuring syringe', supported: false },
  { topic: 'circuits', did: 'added more batteries to a circuit with a bulb and looked at how bright it was', iv: 'the number of batteries', dv: 'the brightness of the bulb', controlled: 'the bulb and the length of the wires',
    hypothesis: 'more batteries would make the bulb brighter', result: 'the bulb got brighter with every battery we added', numbers: 'we used a light meter app and it went from 40 to 95 to 150',
    why: 'more batteries push more current through the bulb', error: 'the light meter app jumped around a lot', next: 'take three readings each time and use the average' },
  { topic: 'bread mould', did: 'kept slices of bread in different places and checked them for mould every day', iv: 'where we kept the bread', dv: 'how many days until mould appeared', controlled: 'the type of bread and the size of the slices',
    hypothesis: 'the bread in the warm dark cupboard would go mouldy first', result: 'the bread in the warm cupboard got mould first and the one in the fridge took the longest', numbers: 'mould showed up after 4 days in the cupboard and after 12 days in the fridge',
    why: 'mould grows faster when it is warm and damp', error: 'it was hard to decide exactly when a spot counted as mould', next: 'take a photo each day and decide using a rule' },
  { topic: 'evaporation', did: 'left the same amount of water in containers with different shapes', iv: 'the surface area of the container', dv: 'how much water evaporated in a week', controlled: 'the starting amount of water and where we left them',
    hypothesis: 'the wide flat dish would lose the most water', result: 'the wide dish lost the most water and the tall narrow glass lost the least', numbers: 'the dish lost 80 millilitres and the glass only 15',
    why: 'more water is touching the air in a wide container so more of it can evaporate', error: 'someone moved one of the containers into the sun for a day', next: 'put a sign on them so nobody moves them' },
] as Experiment[]).map(e => ({ ...e, supported: e.supported ?? true }));

const SECTIONS = ['introduction', 'hypothesis', 'method', 'results', 'discussion', 'conclusion', 'abstract', 'variables'] as const;
type Section = (typeof SECTIONS)[number];

function sectionExplain(sec: Section, e: Experiment, s: Script): string {
  switch (sec) {
    case 'introduction': return s.alt(`The introduction tells the reader {what question you were trying to answer|what you wanted to find out} and why it matters. You can give a little background, like the fact that ${e.why}, and then say what you tested.`);
    case 'hypothesis': return s.alt(`A hypothesis is {your prediction|what you think will happen} and why. It's usually an "if... then... because" sentence. Something like: if we change ${e.iv}, then ${e.dv} will change, because ${e.why}.`);
    case 'method': return s.alt(`The method is {like a recipe|step by step instructions} so that someone else could do exactly the same experiment. You list what you used, what you changed, what you measured and what you kept the same.`);
    case 'results': return s.alt(`The results section is just what happened, {without explaining it yet|with no opinions yet}. You put your table or graph in and describe the pattern in a sentence or two, like "${cap(e.result)}."`);
    case 'discussion': return s.alt(`The discussion is where you explain what your results mean. You say whether they support your hypothesis, why you think it happened, and what might have gone wrong or could be improved.`);
    case 'conclusion': return s.alt(`The conclusion is short. You answer your question in one or two sentences, say if your hypothesis was right, and maybe suggest {what to test next|a follow-up experiment}.`);
    case 'abstract': return s.alt(`The abstract is a tiny summary of the whole report, {written last|easiest to write at the end}. One sentence each for what you tested, how you did it, what you found and what it means.`);
    case 'variables': return s.alt(`The independent variable is the thing you change on purpose, the dependent variable is what you measure, and the controlled variables are everything you keep the same so the test is fair.`);
  }
}

function sectionQuestion(sec: Section, e: Experiment, s: Script): { q: string; a: string; follow: string } {
  switch (sec) {
    case 'introduction': return { q: s.alt('{What was the question you were trying to answer?|Why did you want to do this experiment in the first place?}'), a: s.alt(`We wanted to find out if ${e.iv} changes ${e.dv}.`), follow: s.alt(`{Great, that's your opening sentence.|Perfect, start with exactly that.} Then add a sentence about why it's interesting, for example that ${e.why}.`) };
    case 'hypothesis': return { q: s.alt('{Before you started, what did you think would happen?|What did you predict?}'), a: s.alt(`I thought ${e.hypothesis}.`), follow: s.alt(`Good. Now add the "because" part. Why did you think that?`) };
    case 'method': return { q: s.alt('{If I wanted to do your experiment at home, what would I need to do first?|Can you tell me what you actually did, step by step?}'), a: s.alt(`Um, we ${e.did}.`), follow: s.alt(`Right. Now break that into numbered steps, and say what you kept the same, like ${e.controlled}.`) };
    case 'results': return { q: s.alt('{What did you find?|What happened when you did it?|What did your measurements show?}'), a: s.alt(`${cap(e.result)}. Like, ${e.numbers}.`), follow: s.alt(`That's exactly what goes in the results. Put the numbers in a table and write that sentence under it.`) };
    case 'discussion': return { q: s.alt(`{So what did you find out?|What happened in your experiment?}`), a: s.alt(`${cap(e.result)}.`), follow: s.alt(`Good. And why do you think that happened?`) };
    case 'conclusion': return { q: s.alt('{If you had to answer your question in one sentence, what would you say?|So, was your hypothesis right?}'), a: s.alt(`I guess yes, ${e.result}.`), follow: s.alt(`That's your conclusion, basically. Add one sentence about what you would test next.`) };
    case 'abstract': return { q: s.alt('Can you tell me in one sentence what you tested?'), a: s.alt(`We tested how ${e.iv} affects ${e.dv}.`), follow: s.alt(`Great. Now one sentence on how, one on what you found, and you're nearly done.`) };
    case 'variables': return { q: s.alt('What did you change on purpose in your experiment?'), a: s.alt(`${cap(e.iv)}?`), follow: s.alt(`Yes, that's your independent variable. And what did you measure?`) };
  }
}

function cap(x: string): string { return x.charAt(0).toUpperCase() + x.slice(1); }

function scienceDialog(s: Script): Record<string, string> {
  const e = s.pick(EXPERIMENTS);
  const sec = s.chance(0.3) ? 'discussion' : s.pick(SECTIONS);
  // Opening.
  const styles = ['cohen', 'direct', 'teacher', 'direct'];
  const style = s.pick(styles);
  if (style === 'cohen') {
    s.say('student', `{For our science reports|For the science report|For our lab reports}, {we have to|we're supposed to} write up the experiment where we ${e.did}.`);
    s.say('teacher', s.pick(TEACHER_ACK));
    s.say('student', s.pick([`I don't understand what is supposed to go in the ${sec} section.`, `I don't get what I'm supposed to write in the ${sec}.`, `I'm stuck on the ${sec} section.`, `My ${sec} is really short and I don't know what else to put in it.`]),
      s.chance(0.5) && s.pick(FEELING[s.mood]));
  } else if (style === 'teacher') {
    s.say('teacher', `{Hi|Hey|Hello}${s.chance(0.6) ? ' ' + s.name : ''}, {how is the science report going?|what are you working on today?|how's the write-up coming along?}`);
    s.say('student', `{It's okay|Not great|Pretty good actually|Kind of slowly}. {It's|We did} the ${e.topic} experiment.`, s.pick(FEELING[s.mood]),
      s.pick([`I need help with the ${sec}.`, `I don't know what to do for the ${sec} section.`, `Can you help me with the ${sec} part?`]));
  } else {
    s.say('student', `{Can you help me with|I need help with|Could you look at} my science report? It's about ${e.topic}.`, s.pick(FEELING[s.mood]));
    s.say('teacher', `{Of course.|Sure.|Happy to.} {Which part?|What are you stuck on?|Where are you up to?}`);
    s.say('student', `The ${sec}. {I don't know what goes in it.|I wrote something but I don't think it's right.|I don't really know how to start it.}`);
  }

  // Middle: question-led or explanation-led.
  const qa = sectionQuestion(sec, e, s);
  if (s.chance(0.55)) {
    s.say('teacher', s.chance(0.4) && teacherReassure(s), s.pick(HINT_OPEN), qa.q);
    if (s.mood === 'tired' && s.chance(0.5)) { s.say('student', "I don't know."); s.say('teacher', `{That's okay.|No problem.} {Just tell me what you did.|Think back to the day you did it.} ${qa.q}`); }
    s.say('student', qa.a);
    s.say('teacher', qa.follow);
    if (sec === 'discussion') {
      if (s.chance(0.6)) s.say('student', `{Maybe because|I think because|Is it because} ${e.why}?`);
      else s.say('student', `{I don't know why.|I'm not sure. Is that something I need to know?}`, s.chance(0.5) && s.pick(FEELING[s.mood]));
      const last = s.turns[s.turns.length - 1]!.text;
      if (last.includes('because')) s.say('teacher', s.pick(PRAISE), `{Write that down.|That's the heart of your discussion.} Then say whether your hypothesis was supported. {What did you predict?|Was it what you expected?}`);
      else s.say('teacher', `{You do, and you probably know more than you think.|That's the part the marks are for.} ${cap(e.why)}. {Does that ring a bell?|Have you heard that before?}`);
      s.say('student', e.supported
        ? s.pick([`Yeah, I thought ${e.hypothesis}, and it did.`, `I predicted ${e.hypothesis}, so it was right.`])
        : s.pick([`I thought ${e.hypothesis}, but that's not really what happened.`, `I predicted ${e.hypothesis}. So I was wrong?`]));
      if (!e.supported) s.say('teacher', `{That's fine, a hypothesis that isn't supported is still a good result.|Being wrong is okay in science. Just say so and explain it.}`);
      s.say('teacher', `{Good.|Great.} {One more thing for the discussion:|The last part is} what might have gone wrong. {Was there anything that could have affected your results?|Was anything not quite fair in your test?}`);
      s.say('student', `{Well,|Um,|Oh,} ${e.error}.`);
      s.say('teacher', s.pick(PRAISE), `{That's a source of error.|Put that in.} {And how could you fix it next time?|What would you do differently?}`);
      s.say('student', `{We could|Maybe} ${e.next}.`);
      s.say('teacher', `{Perfect.|Excellent.} {Then that's your whole discussion:|So the discussion has four parts:} what you found, why it happened, whether it matched your prediction, and what you would improve.`);
    } else if (sec === 'hypothesis') {
      s.say('student', `{Because|I guess because} ${e.why}.`);
      s.say('teacher', s.pick(PRAISE), `So your hypothesis could be: "If we change ${e.iv}, then ${e.dv} will change, because ${e.why}."`, s.pick(CHECK));
    } else if (sec === 'variables') {
      s.say('student', `${cap(e.dv)}.`);
      s.say('teacher', s.pick(PRAISE), `That's the dependent variable. {And what did you keep the same?|Last one: what stayed the same?}`);
      s.say('student', `${cap(e.controlled)}.`);
      s.say('teacher', `{Exactly, those are your controlled variables.|Those are the controlled variables.} ${sectionExplain('variables', e, s)}`);
    }
  } else {
    s.say('teacher', s.chance(0.4) && teacherReassure(s), sectionExplain(sec, e, s), s.chance(0.5) && s.pick(CHECK));
    s.say('student', s.pick(AFTER_EXPLAIN[s.mood]));
    if (s.mood === 'confused' || s.mood === 'frustrated' || s.chance(0.3)) {
      s.say('teacher', `{Let's use your experiment.|Let me put it another way.|Think about your own results.}`, qa.q);
      s.say('student', qa.a);
      s.say('teacher', qa.follow);
      s.say('student', s.pick(AFTER_EXPLAIN[s.mood === 'frustrated' ? 'pleased' : s.mood]));
    }
    if (s.chance(0.4)) {
      const [q, a] = s.pick([
        ['How long should it be?', '{A paragraph or two is plenty.|Quality matters more than length. A solid paragraph is fine.}'],
        ['Does it need a title?', '{Just the section heading is enough.|The heading is enough, like "' + cap(sec) + '".}'],
        ['Do I write it in the past tense?', '{Yes, past tense, because you already did the experiment.|Yes, you did the experiment already, so past tense.}'],
        ['Can I use "I" in it?', '{Check with your teacher, but "we" is usually fine for a class experiment.|Most teachers are fine with "we" for a class experiment.}'],
      ] as const);
      s.say('student', q);
      s.say('teacher', a);
    }
  }
  closing(s);
  return { subject: 'science', topic: e.topic, section: sec };
}

// ---------------------------------------------------------------------------------------------
// Math

function gcd(a: number, b: number): number { return b === 0 ? Math.abs(a) : gcd(b, a % b); }
function lcm(a: number, b: number): number { return (a / gcd(a, b)) * b; }
function frac(n: number, d: number): string { const g = gcd(n, d); return d / g === 1 ? String(n / g) : `${n / g}/${d / g}`; }

function mathOpen(s: Script, problem: string, work: string): void {
  const style = s.rng.int(3);
  if (style === 0) {
    s.say('student', `{I'm doing my math homework and|Can you check this?|I have a question about my homework.} ${problem}`, s.pick(FEELING[s.mood]));
    s.say('teacher', `{Sure.|Okay.|Let's see.} {What did you get?|What have you done so far?|Talk me through what you did.}`);
  } else if (style === 1) {
    s.say('teacher', `{Hi|Hello|Hey} ${s.name}, {let's look at the next problem.|how did you get on with the homework?|which question are you on?}`);
    s.say('student', `{This one:|I'm on this one:|It's this one:} ${problem}`, s.chance(0.6) && s.pick(FEELING[s.mood]));
    s.say('teacher', `{Okay, what did you do?|Talk me through your answer.|Show me your working.}`);
  } else {
    s.say('student', `{I don't get this question.|I got this one wrong and I don't know why.|Is this right?} ${problem}`);
    s.say('teacher', s.pick(TEACHER_ACK), '{What did you try?|How did you start?}');
  }
  s.say('student', work);
}

function fractionsDialog(s: Script): Record<string, string> {
  const ds = [2, 3, 4, 5, 6, 8, 10, 12];
  let b = s.pick(ds), d = s.pick(ds);
  while (d === b) d = s.pick(ds);
  const a = 1 + s.rng.int(b - 1), c = 1 + s.rng.int(d - 1);
  const L = lcm(b, d), n1 = a * (L / b), n2 = c * (L / d), sum = n1 + n2;
  mathOpen(s, `What is ${a}/${b} + ${c}/${d}?`, `I added the tops and the bottoms, so I got ${a + c}/${b + d}.`);
  const sizeQ = s.chance(0.4) && (a + c) / (b + d) < a / b;
  s.say('teacher', s.chance(0.5) && teacherReassure(s), s.pick(HINT_OPEN), sizeQ ? `Is ${a + c}/${b + d} bigger or smaller than ${a}/${b}?` : 'What do we need to do before we can add two fractions?');
  const onTrack = s.chance(0.6);
  if (sizeQ) s.say('student', onTrack ? `Oh... it's smaller? That's weird, I added something.` : `Bigger? I don't know.`);
  else s.say('student', onTrack ? s.pick(['Make the bottoms the same?', 'The denominators have to be the same?']) : s.pick(["I don't remember.", "I don't know. Just add them?"]));
  s.say('teacher', sizeQ
    ? (onTrack ? `{Exactly, adding something should make it bigger, so something went wrong.|Right, it's smaller, and that can't be right.} We need a common denominator first.` : `It's actually smaller, which can't be right if we added something. We need a common denominator first.`)
    : (onTrack ? `{Right, we need a common denominator.|Yes, the denominators have to match first.}` : `{That's okay.|No problem.} We need a common denominator first.`),
    `The bottom number tells you the size of the pieces, and you can only add pieces of the same size. {What is a number that both ${b} and ${d} go into?|What's the smallest number that ${b} and ${d} both divide?}`);
  if (s.chance(0.3)) {
    s.say('student', `${b * d}?`);
    s.say('teacher', L === b * d ? `${s.pick(PRAISE)} ${b * d} works.` : `That works, but there's a smaller one. {Try counting up in ${Math.max(b, d)}s.|What about ${L}?}`);
    if (L !== b * d) s.say('student', `Oh, ${L}.`);
  } else s.say('student', `${L}?`);
  s.say('teacher', s.pick(PRAISE), `So what is ${a}/${b} in ${L}ths?`);
  s.say('student', `${n1}/${L}. {And|So} ${c}/${d} is ${n2}/${L}.`);
  s.say('teacher', `{Great. Now add them.|Now you can add the tops.|And now?}`);
  const simp = frac(sum, L);
  s.say('student', `${sum}/${L}${simp !== `${sum}/${L}` ? `. Oh, and that's ${simp}.` : '.'}`);
  s.say('teacher', s.pick(PRAISE), simp !== `${sum}/${L}` ? 'And well spotted that it simplifies.' : '', s.chance(0.5) ? `Remember: same size pieces first, then add the tops. The bottom stays the same.` : s.pick(CHECK));
  s.say('student', s.pick(AFTER_EXPLAIN[s.mood === 'confused' ? 'pleased' : s.mood]));
  closing(s);
  return { subject: 'math', topic: 'fractions' };
}

function percentDialog(s: Script): Record<string, string> {
  const p = s.pick([10, 20, 25, 30, 40, 50, 75, 15, 5]);
  const base = s.pick([40, 60, 80, 120, 200, 160, 240, 300, 360]);
  const item = s.pick(['a jacket', 'a bike', 'a video game', 'a pair of shoes', 'a backpack', 'a ticket', 'a guitar']);
  const off = (p * base) / 100, final = base - off;
  mathOpen(s, `${cap(item)} costs $${base} and it's on sale for ${p}% off. How much does it cost now?`,
    s.pick([`I did ${base} minus ${p} and got $${base - p}.`, `I got $${off}.`, `I divided ${base} by ${p} and got ${+(base / p).toFixed(2)}.`]));
  const wrong = s.turns[s.turns.length - 1]!.text;
  const asksSame = wrong.includes('minus');
  s.say('teacher', s.chance(0.4) && teacherReassure(s), s.pick(HINT_OPEN), asksSame ? `Is ${p}% the same as $${p}?` : `What does "percent" mean?`);
  const knows = s.chance(0.5);
  s.say('student', asksSame ? s.pick(knows ? ['No?', "Oh. No, it's a percent of the price."] : ["Isn't it?", 'I thought it was.']) : s.pick(knows ? ['Um, out of a hundred?', 'Per hundred, I think.'] : ["I don't remember.", 'Like a part of something?']));
  s.say('teacher', knows ? '{Right.|Yes.}' : '{Not quite.|Good try.}', `Percent means out of a hundred. So ${p}% of something is ${p} out of every 100. {How much is ${p}% of $${base}?|Can you find ${p}% of ${base}?} {Try finding 1% first.|Hint: 10% is easy to find.}`);
  if (s.chance(0.35)) {
    s.say('student', `${base / 10}?`);
    s.say('teacher', p === 10 ? s.pick(PRAISE) + ' That is the discount.' : `That's 10%. {So what's ${p}%?|Now use it to get ${p}%.}`);
  }
  s.say('student', `{So it's|Oh, it's} $${off}.`);
  s.say('teacher', s.pick(PRAISE), `{But is that the answer to the question?|Careful, what is the question asking for?|That's the discount. What do you pay?}`);
  s.say('student', `Oh, the new price. $${base} minus $${off} is $${final}.`);
  s.say('teacher', s.pick(PRAISE), s.chance(0.5) ? `Another way is to notice you pay ${100 - p}%, and ${100 - p}% of ${base} is also ${final}.` : s.pick(CHECK));
  s.say('student', s.pick(AFTER_EXPLAIN[s.mood]));
  closing(s);
  return { subject: 'math', topic: 'percentages' };
}

function equationDialog(s: Script): Record<string, string> {
  const a = 2 + s.rng.int(8), x = 1 + s.rng.int(12), b = 1 + s.rng.int(20);
  const c = a * x + b;
  const wrongX = +((c + b) / a).toFixed(2);
  mathOpen(s, `Solve ${a}x + ${b} = ${c}.`, s.pick([`I added ${b} to both sides and got ${a}x = ${c + b}, so x is ${wrongX}.`, `I divided by ${a} first but then I got a decimal and got stuck.`, `I got x = ${c - b}.`]));
  const w = s.turns[s.turns.length - 1]!.text;
  if (w.includes('added')) {
    s.say('teacher', `{Close, but check the first step.|You have the right idea about doing the same thing to both sides.} {To get rid of "+ ${b}", should you add ${b} or take it away?|What's the opposite of adding ${b}?}`);
    s.say('student', `{Take it away?|Subtract it.|Oh, subtract.}`);
  } else if (w.includes('divided')) {
    s.say('teacher', `{You can do it that way, but it's harder.|That can work, but there's an easier order.} {It's usually easier to deal with the ${b} first.|Try getting the x term on its own first.} What could you do to get rid of the ${b}?`);
    s.say('student', `Subtract ${b} from both sides?`);
  } else {
    s.say('teacher', `{You took ${b} away, good, but what about the ${a}?|That's ${a}x, not x.} What does ${a}x mean?`);
    s.say('student', `${a} times x. {Oh, so I have to divide too.|So I still need to divide by ${a}?}`);
  }
  s.say('teacher', s.pick(PRAISE), `{So what do you get?|Try it now.|Go on.}`);
  s.say('student', `${a}x = ${c - b}, so x = ${x}.`);
  s.say('teacher', s.pick(PRAISE), `{Can you check it?|How could you check that's right?|Always check by putting it back in.}`);
  s.say('student', `${a} times ${x} is ${a * x}, plus ${b} is ${c}. {Yes!|It works.|Oh nice, it works.}`);
  s.say('teacher', `{Exactly. Undo the adding first, then the multiplying.|That's the method: undo things in reverse order.}`, s.mood === 'frustrated' || s.mood === 'anxious' ? "See, you could do it all along." : '');
  closing(s);
  return { subject: 'math', topic: 'equations' };
}

function areaDialog(s: Script): Record<string, string> {
  const l = 3 + s.rng.int(12), w = 2 + s.rng.int(9);
  const thing = s.pick(['garden', 'room', 'classroom floor', 'rug', 'poster', 'playground', 'swimming pool cover']);
  const askArea = s.chance(0.5);
  const right = askArea ? l * w : 2 * (l + w), wrong = askArea ? 2 * (l + w) : l * w;
  const unit = askArea ? 'square metres' : 'metres';
  mathOpen(s, `A rectangular ${thing} is ${l} metres long and ${w} metres wide. What is its ${askArea ? 'area' : 'perimeter'}?`, `I got ${wrong}.`);
  s.say('teacher', s.pick(HINT_OPEN), `{How did you get ${wrong}?|What did you do to get ${wrong}?}`);
  s.say('student', askArea ? `I added all the sides, ${l} plus ${w} plus ${l} plus ${w}.` : `I did ${l} times ${w}.`);
  s.say('teacher', askArea
    ? `{That's the perimeter, the distance around the edge.|Adding the sides gives you the distance around the outside.} The area is how much space is inside, {like how many one-metre tiles would cover it.|the number of squares that fit inside.} How could you find that?`
    : `{That gives you the area, the space inside.|Multiplying gives the space inside.} The perimeter is the distance all the way around the edge, {like a fence.|like walking around it.} How could you find that?`);
  s.say('student', askArea ? `Oh, ${l} times ${w}? So ${right}.` : `Add all the sides? ${l} plus ${w} plus ${l} plus ${w} is ${right}.`);
  s.say('teacher', s.pick(PRAISE), `${right} ${unit}.`, askArea ? 'Area is in square units because it counts squares.' : 'Perimeter is a length, so it is just metres.');
  s.say('student', s.pick([`I always mix those two up.`, `So area is inside and perimeter is around.`, ...AFTER_EXPLAIN[s.mood]]));
  s.say('teacher', `{A trick: perimeter has "rim" in it, the rim goes around the outside.|Think of area as carpet and perimeter as fence.}`);
  closing(s);
  return { subject: 'math', topic: askArea ? 'area' : 'perimeter' };
}

function meanDialog(s: Script): Record<string, string> {
  const n = 4 + s.rng.int(3);
  const mean = 5 + s.rng.int(20);
  const xs: number[] = [];
  let total = 0;
  for (let i = 0; i < n - 1; i++) { const v = mean + s.rng.int(9) - 4; xs.push(v); total += v; }
  xs.push(mean * n - total);
  const sum = mean * n;
  const what = s.pick(['test scores', 'points scored in each game', 'hours of reading each week', 'temperatures', 'goals per match']);
  mathOpen(s, `Find the mean of these ${what}: ${xs.join(', ')}.`, s.pick([`I added them up and got ${sum}. Is that the mean?`, `I got ${+(sum / (n - 1)).toFixed(2)}.`, `I picked the middle one, ${[...xs].sort((p, q) => p - q)[Math.floor(n / 2)]}.`]));
  const w = s.turns[s.turns.length - 1]!.text;
  if (w.includes('added')) s.say('teacher', `{Adding them up is the first step.|Good start, ${sum} is the total.} What do you do after you add them?`);
  else if (w.includes('middle')) s.say('teacher', `{The middle number is the median, which is different.|That's the median, not the mean.} For the mean, what's the first step?`);
  else s.say('teacher', `{Very close.|You're nearly there.} How many numbers are in the list?`);
  s.say('student', w.includes('middle') ? `Add them all up? That's ${sum}.` : `{Divide by how many there are?|Oh, ${n}. I divided by ${n - 1}.|Divide?}`);
  s.say('teacher', `{Right, and there are ${n} numbers.|Yes, divide by the count, which is ${n}.}`, s.pick(CHECK));
  s.say('student', `${sum} divided by ${n} is ${mean}.`);
  s.say('teacher', s.pick(PRAISE), `{The mean is ${mean}.|So the average is ${mean}.} {Does ${mean} look sensible, compared with the numbers in the list?|A quick check: it should be somewhere between the smallest and the largest.}`);
  s.say('student', s.pick(['Yeah, it is in the middle of them.', 'Oh yeah, that makes sense.', ...AFTER_EXPLAIN[s.mood]]));
  closing(s);
  return { subject: 'math', topic: 'mean' };
}

function orderOpsDialog(s: Script): Record<string, string> {
  const a = 2 + s.rng.int(10), b = 2 + s.rng.int(8), c = 2 + s.rng.int(8);
  mathOpen(s, `What is ${a} + ${b} × ${c}?`, `I got ${(a + b) * c}.`);
  s.say('teacher', `{Which did you do first, the adding or the multiplying?|Walk me through the order you did it in.}`);
  s.say('student', `I did ${a} plus ${b} first because it comes first.`);
  s.say('teacher', s.chance(0.5) && teacherReassure(s), `{That's a really common mistake.|Reading left to right feels natural, I know.} But multiplication comes before addition, unless there are brackets. So what's ${b} × ${c}?`);
  s.say('student', `${b * c}. {Then plus ${a} is ${a + b * c}.|So the answer is ${a + b * c}?}`);
  s.say('teacher', s.pick(PRAISE), `{If they wanted you to add first, they would write (${a} + ${b}) × ${c}.|Brackets first, then times and divide, then plus and minus.}`);
  s.say('student', s.pick(AFTER_EXPLAIN[s.mood]));
  closing(s);
  return { subject: 'math', topic: 'order of operations' };
}

function rateDialog(s: Script): Record<string, string> {
  const n = s.pick([3, 4, 5, 6, 8]), unit = 1 + s.rng.int(5), m = s.pick([7, 9, 10, 12, 15]);
  const thing = s.pick(['notebooks', 'apples', 'pens', 'cupcakes', 'stickers', 'bus tickets']);
  mathOpen(s, `${n} ${thing} cost $${n * unit}. How much do ${m} ${thing} cost?`, s.pick([`I did ${n * unit} times ${m} and got ${n * unit * m}.`, `I don't know where to start.`]));
  s.say('teacher', s.pick(HINT_OPEN), `{How much does one of them cost?|What if you only bought one?}`);
  s.say('student', `{$${n * unit} divided by ${n}... $${unit}?|Is it $${unit}?}`);
  s.say('teacher', s.pick(PRAISE), `{That's the unit price.|Once you know the price of one, the rest is easy.} {So how much for ${m}?|Now find ${m} of them.}`);
  s.say('student', `${m} times ${unit} is $${m * unit}.`);
  s.say('teacher', s.pick(PRAISE), `{Does it make sense that ${m} cost more than ${n}?|Check: more ${thing} should cost more, and ${m * unit} is more than ${n * unit}.}`);
  s.say('student', s.pick(AFTER_EXPLAIN[s.mood]));
  closing(s);
  return { subject: 'math', topic: 'unit rates' };
}

// ---------------------------------------------------------------------------------------------
// Writing

const ESSAY_TOPICS = [
  { topic: 'whether school should start later', opinion: 'school should start later', r1: 'teenagers need more sleep', r2: 'students concentrate better when they are not tired', counter: 'it would make after-school clubs finish late' },
  { topic: 'whether homework should be banned', opinion: 'homework should be limited, not banned', r1: 'practice helps you remember things', r2: 'too much homework leaves no time for sport and family', counter: 'some students do not have a quiet place to work at home' },
  { topic: 'school uniforms', opinion: 'school uniforms are a good idea', r1: 'they stop people being judged for their clothes', r2: 'they save time in the morning', counter: 'they can be expensive for families' },
  { topic: 'whether zoos should exist', opinion: 'zoos are useful if they focus on conservation', r1: 'they help protect endangered species', r2: 'they teach people about animals', counter: 'some animals suffer in small enclosures' },
  { topic: 'phones in the classroom', opinion: 'phones should be kept in bags during lessons', r1: 'they are a big distraction', r2: 'people learn more when they are not checking messages', counter: 'phones can be useful for research' },
  { topic: 'a four-day school week', opinion: 'a four-day week would be better for students', r1: 'students would have a full day to rest', r2: 'teachers would have more time to plan', counter: 'the school days would have to be longer' },
  { topic: 'whether video games are good for you', opinion: 'some video games can be good for you', r1: 'they can improve problem solving', r2: 'they can help people make friends', counter: 'playing too much can hurt your sleep' },
  { topic: 'protecting the local park', opinion: 'the town should protect the park instead of building on it', r1: 'people need green spaces to relax', r2: 'the park is home to birds and insects', counter: 'the town needs more houses' },
];
const BOOKS = [
  { title: 'The Lighthouse Keeper’s Daughter', hero: 'Mara', theme: 'courage', event: 'she rows out in the storm to rescue the fishermen' },
  { title: 'Ten Miles of River', hero: 'Owen', theme: 'friendship', event: 'he shares his last food with the boy who bullied him' },
  { title: 'The Clockmaker’s Secret', hero: 'Ines', theme: 'honesty', event: 'she admits she broke the clock even though nobody saw her' },
  { title: 'Winter at Gull Point', hero: 'Theo', theme: 'growing up', event: 'he decides to look after his sister when their dad is away' },
  { title: 'The Map in the Attic', hero: 'Ada', theme: 'curiosity', event: 'she follows the map even though everyone says it is fake' },
].map(b => ({ ...b, title: b.title.replace('’', "'") }));

function thesisDialog(s: Script): Record<string, string> {
  const t = s.pick(ESSAY_TOPICS);
  s.say('student', `{I have to write a persuasive essay about|My essay is on|We're writing an argument essay about} ${t.topic}.`, s.pick(FEELING[s.mood]),
    `{I don't know how to write the thesis.|My teacher said my thesis is too weak.|I don't know how to start it.}`);
  s.say('teacher', `{Okay.|Sure.|Let's work on it.} {What did you write so far?|What's your thesis right now?|Read me your first sentence.}`);
  s.say('student', `"{This essay is about|In this essay I will talk about|My essay is about} ${t.topic}."`);
  s.say('teacher', `{That tells me the topic, but not what you think.|That's a start. It tells me the subject, but a thesis has to take a side.} {So what do you actually think?|What's your opinion?|If you had to choose, which side are you on?}`);
  s.say('student', `{I think|Honestly I think|Probably that} ${t.opinion}.`);
  s.say('teacher', s.pick(PRAISE), `{Why?|What are your two best reasons?|Give me your reasons.}`);
  s.say('student', `{Because|Well,} ${t.r1}, and {also|I guess} ${t.r2}.`);
  s.say('teacher', `{Great, those are your two body paragraphs.|Perfect, now put it all together.} {Try one sentence with your opinion and both reasons.|Can you say that as one sentence?}`);
  s.say('student', `"${cap(t.opinion)} because ${t.r1} and ${t.r2}."`);
  s.say('teacher', s.pick(PRAISE), `{That's a strong thesis.|That's a clear thesis: it takes a side and gives reasons.}`, s.chance(0.6) ? `For a top mark, you could answer the other side too. Some people say ${t.counter}. How would you reply to that?` : s.pick(CHECK));
  s.say('student', s.pick(AFTER_EXPLAIN[s.mood]));
  closing(s);
  return { subject: 'writing', topic: 'thesis' };
}

function evidenceDialog(s: Script): Record<string, string> {
  const b = s.pick(BOOKS);
  s.say('student', `{I'm writing about|My essay is on|For English we have to write about} ${b.title}. {My teacher said I need more evidence.|I don't know how to use quotes.|It says I need to explain my quotes more.}`, s.pick(FEELING[s.mood]));
  s.say('teacher', `{Okay. What's the main point of your paragraph?|What are you trying to prove in that paragraph?}`);
  s.say('student', `That ${b.hero} {shows|learns about} ${b.theme}.`);
  s.say('teacher', `{Good point.|Nice.} {Which moment in the book shows that best?|Where in the story do we see that?}`);
  s.say('student', `{When|The part where} ${b.event}.`);
  s.say('teacher', s.pick(PRAISE), `{That's your evidence.|So that's the moment to quote.} A good paragraph goes: point, evidence, explanation. You make the point, give the quote from that moment, and then explain how it shows ${b.theme}.`, s.pick(CHECK));
  s.say('student', s.pick(['So I can\'t just put the quote and move on?', 'What do I write for the explanation part?', ...AFTER_EXPLAIN[s.mood]]));
  s.say('teacher', `{Right, the explanation is where the marks are.|The explanation is the most important bit.} Ask yourself: {why does this moment matter? What does it tell us about ${b.hero}?|what does ${b.hero} risk here, and what does that say about ${b.theme}?}`);
  s.say('student', `{Um, that|I guess that} ${b.hero} {does the right thing even when it's hard.|cares more about other people than about being safe.|has changed since the start of the book.}`);
  s.say('teacher', s.pick(PRAISE), `{Write exactly that.|That's your explanation.}`, s.mood === 'anxious' ? "You're going to be fine." : '');
  closing(s);
  return { subject: 'writing', topic: 'evidence' };
}

function runOnDialog(s: Script): Record<string, string> {
  const pairs = [
    ['we went to the museum', 'it was really crowded'], ['my dog ran out of the house', 'we chased him down the street'],
    ['the storm started at night', 'the power went out'], ['I finished my project', 'I showed it to my mum'],
    ['the team lost the first game', 'they won the next three'], ['the river flooded', 'the road was closed for a week'],
  ];
  const [p1, p2] = s.pick(pairs);
  const sent = `${cap(p1!)} ${p2}`;
  s.say('student', `{My teacher wrote "run-on" next to this sentence|I got marked down for this sentence|What's wrong with this sentence}: "${sent}."`, s.chance(0.5) && s.pick(FEELING[s.mood]));
  s.say('teacher', `{How many ideas are in that sentence?|How many complete thoughts can you find in it?}`);
  s.say('student', s.pick(['Two?', 'One?', "I don't know."]));
  s.say('teacher', `{There are two.|Two:} "${cap(p1!)}" and "${p2}". Each one could be a sentence on its own. When two complete sentences are joined with nothing between them, that's a run-on. {How could you fix it?|What could you put between them?}`);
  s.say('student', s.pick([`A full stop?`, `A comma?`, `Put "and" in?`]));
  const last = s.turns[s.turns.length - 1]!.text;
  if (last.includes('comma')) s.say('teacher', `{A comma on its own isn't enough, that's called a comma splice.|Almost, but a comma alone makes a comma splice.} You need a full stop, or a comma plus a joining word like "and" or "so".`);
  else s.say('teacher', s.pick(PRAISE), `{That works.|Yes.} You could write "${cap(p1!)}. ${cap(p2!)}." or "${cap(p1!)}, and ${p2}."`);
  s.say('student', s.pick(AFTER_EXPLAIN[s.mood]));
  s.say('teacher', `{Try reading your sentences out loud.|A good test is to read it aloud.} If you run out of breath, {it might be a run-on.|check for two ideas.}`);
  closing(s);
  return { subject: 'writing', topic: 'run-on sentences' };
}

function conclusionDialog(s: Script): Record<string, string> {
  const t = s.pick(ESSAY_TOPICS);
  s.say('student', `{I've finished my essay about|I'm nearly done with my essay on} ${t.topic} {but I don't know how to end it.|but my conclusion is terrible.|and I need a conclusion.}`, s.pick(FEELING[s.mood]));
  s.say('teacher', `{What have you written so far?|What does it say at the moment?}`);
  s.say('student', `"{In conclusion, that is my essay.|So that is why I think that.|The end.}"`);
  s.say('teacher', `{Okay, that's a bit short!|Ha, that's honest.} A conclusion does three things: it restates your opinion in new words, it reminds the reader of your reasons, and it leaves them with something to think about. {What was your opinion?|What did you argue?}`);
  s.say('student', `That ${t.opinion}.`);
  s.say('teacher', s.pick(PRAISE), `{Now say it in a new way.|Try saying that differently, so you're not repeating the introduction.}`);
  s.say('student', `{Um,|Maybe like,} "{It is clear that|Overall,|All things considered,} ${t.opinion}, {since|because} ${t.r1}."`);
  s.say('teacher', s.pick(PRAISE), `{Now a last sentence that makes the reader think.|And finally, a thought to end on. What would change if people listened to you?}`);
  s.say('student', s.pick([`"If we make this change, everyone will benefit."`, `"It is time for schools to listen to students."`, `I don't know, something about the future?`]));
  s.say('teacher', `{That works nicely.|Good, that's a strong ending.} {Avoid starting with "In conclusion" every time though, it can sound a bit flat.|Read the whole thing again to make sure it flows.}`);
  closing(s);
  return { subject: 'writing', topic: 'conclusion' };
}

function storyDialog(s: Script): Record<string, string> {
  const setting = s.pick(['a lighthouse', 'an old train station', 'a space station', 'a forest at night', 'a flooded village', 'a school after dark']);
  s.say('student', `{We have to write a story|I'm writing a short story} {set in|that happens in} ${setting}. {I don't know how to start it.|My opening is boring.|I can't think of a good first line.}`, s.pick(FEELING[s.mood]));
  s.say('teacher', `{What's your first sentence now?|Read me what you have.}`);
  s.say('student', `"{One day there was a girl who lived near|Once upon a time there was|This is a story about} ${setting}."`);
  s.say('teacher', `{It's clear, but it doesn't grab me yet.|That's a fine start, but let's hook the reader.} {What's the most exciting thing that happens in your story?|Could you start in the middle of the action?|What does your main character hear or see first?}`);
  s.say('student', s.pick([`Something is knocking on the door but nobody is there.`, `The lights go out all at once.`, `She finds a note with her own name on it.`, `There is water coming in under the door.`]));
  s.say('teacher', `{Start there!|That's your first line.} {Drop the reader straight into that moment,|Begin with that moment,} and explain the rest later.`, s.pick(CHECK));
  s.say('student', s.pick(AFTER_EXPLAIN[s.mood]));
  s.say('teacher', `{And use the senses: what can she hear, smell, feel?|Try adding one detail about a sound or a smell.}`);
  closing(s);
  return { subject: 'writing', topic: 'story opening' };
}

// ---------------------------------------------------------------------------------------------
// Short check-ins (variety of length and of turn-taking)

const CHECKIN_FEELING: Record<Mood, string[]> = {
  confused: ["Not great. I don't understand what we're supposed to do.", "I'm kind of lost with it.", "I read the instructions three times and I still don't get it."],
  frustrated: ["Badly. I've been stuck on it for ages.", "Honestly, I hate it.", "Not good. Nothing I try works."],
  anxious: ["I'm worried about it, it's due soon.", "I'm really stressed about it.", "I don't think I'm going to finish in time."],
  curious: ["Okay! But I have loads of questions.", "Pretty well, I want to add some extra research.", "Good, I found some interesting stuff for it."],
  tired: ["Slowly. I'm really tired this week.", "I haven't done much, I've been so tired.", "Okay, I guess. I just can't focus."],
  pleased: ["Really well actually!", "Good, I'm nearly finished.", "Great, I think it's my best one yet."],
};

function checkInDialog(s: Script): Record<string, string> {
  const subj = s.pick(['science report', 'math homework', 'essay', 'reading log', 'lab write-up', 'book report']);
  if (s.mood === 'pleased') {
    s.say('student', `{Guess what!|I have good news.} {I got a B plus on my|I got an A on my|My teacher liked my} ${subj}!`);
    s.say('teacher', `{That's wonderful!|Well done!|Fantastic!} {What do you think made the difference?|You worked hard for that.}`);
    s.say('student', `{I think it was|Probably} {going through it step by step like you said.|checking my work at the end.|asking for help earlier.}`);
    s.say('teacher', `{Keep doing that.|That's a great habit.} {I'm proud of you.|You should be proud.}`);
  } else {
    s.say('teacher', `{How are you feeling about the|How's the} ${subj}{ going|}?`);
    s.say('student', s.pick(CHECKIN_FEELING[s.mood]));
    s.say('teacher', teacherReassure(s), `{What's the hardest part?|Which bit is worrying you most?|Where do you get stuck?}`);
    s.say('student', s.pick([`Starting it.`, `I don't know, all of it.`, `Remembering how to do the steps.`, `Making it long enough.`, `Checking if it's right.`]));
    s.say('teacher', s.pick([`Let's just do the first step together, then.`, `Okay. Break it into small pieces and do one tonight.`, `Write down what you do know first, and we'll fill in the gaps.`, `Try a messy first version, you can fix it later.`]));
    s.say('student', s.pick(AFTER_EXPLAIN[s.mood]));
  }
  closing(s);
  return { subject: 'general', topic: 'check-in' };
}

// ---------------------------------------------------------------------------------------------
// World dialogs: trajectories of the tutoring world (corpora/world.ts) under a demonstrator teacher
// who reads the student's state and mostly teaches well (explains to a confused student, checks a
// following one with a question, encourages a frustrated one), with a little silence and dismissal.
// The student's turns are the world student's own replies, so the base model learns the world.

const WORLD_SECTIONS: Record<string, { explain: string[]; ask: string[] }> = {
  discussion: {
    explain: ['The discussion is where you explain what your results mean.', 'Start with what you found, then say why you think it happened.',
      'Compare your results with your hypothesis and say whether they match.', 'Then write one or two things that might have gone wrong in your test.',
      'Think of it as the story behind your numbers, in your own words.', 'You say what you found, why, and what you would change next time.'],
    ask: ['Do you have your results with you?', 'Do you know what your results showed?', 'Do you remember what you predicted?', 'Why do you think that happened?',
      'What did you expect before the experiment?', 'What would you change next time?', 'Does that match your hypothesis?'],
  },
  results: {
    explain: ['The results section just says what happened, with your numbers.', 'Put your measurements in a table and describe the pattern in one sentence.',
      'Save the explaining for the discussion, the results only report what you saw.', 'A graph with labelled axes makes the pattern easy to see.'],
    ask: ['Do you have a table of your measurements?', 'Do you see a pattern in the numbers?', 'What was the biggest value you measured?', 'Which one changed the most?'],
  },
  method: {
    explain: ['The method is a recipe, so someone else could repeat your experiment.', 'Write the steps in order, in the past tense, with the amounts you used.',
      'Say what you changed, what you measured and what you kept the same.', 'Someone reading it should be able to do exactly what you did.'],
    ask: ['Do you remember the steps you followed?', 'What did you change in the experiment?', 'What did you measure each time?', 'What did you keep the same?'],
  },
  hypothesis: {
    explain: ['A hypothesis is a prediction you can test, with a reason behind it.', 'Try the pattern: if I change this, then that will happen, because of this reason.',
      'It is fine if your results do not support it, that is still good science.', 'Your hypothesis goes before the experiment, so write what you expected.'],
    ask: ['Do you know what you expected to happen?', 'What did you think would happen?', 'Why did you think that?', 'Can you say it as an if and then sentence?'],
  },
};
const WORLD_PRAISE = ['Exactly.', 'Good thinking.', 'Nice work.', "That's right.", 'Perfect.', 'Great, well done.', 'Spot on.', 'Very good.', "Don't worry, you're doing fine.",
  "It's okay, keep going.", "You're closer than you think.", 'Good, I am proud of you.', 'Nice, keep going.'];
const WORLD_ACK = ['Okay.', 'Right.', 'Mm-hm.', 'I see.', 'Go on.', 'Alright.', 'Okay then.'];
const WORLD_DISMISS = ['Just read the instructions.', "I don't have time for this.", 'Figure it out yourself.', 'Whatever, just write something.',
  'You should know this already.', 'Look it up in the book.', "That's not my problem."];
const WORLD_SILENCE = ['...', '…', '-'];
const WORLD_TEACHER: Record<StudentState, Partial<Record<TeacherMove, number>>> = {
  confused: { explain: 0.55, ask: 0.2, praise: 0.1, acknowledge: 0.05, silence: 0.07, dismiss: 0.03 },
  following: { ask: 0.45, explain: 0.25, praise: 0.15, silence: 0.08, acknowledge: 0.05, dismiss: 0.02 },
  frustrated: { praise: 0.35, explain: 0.4, ask: 0.1, silence: 0.1, dismiss: 0.05 },
  pleased: { ask: 0.4, praise: 0.3, explain: 0.2, silence: 0.1 },
};

function worldTeacherTurn(s: Script, move: TeacherMove, sec: { explain: string[]; ask: string[] }): string {
  switch (move) {
    case 'explain': return s.chance(0.4) ? `${s.pick(sec.explain)} ${s.pick(sec.explain)}` : s.pick(sec.explain);
    case 'ask': return s.chance(0.3) ? `${s.pick(sec.explain)} ${s.pick(sec.ask)}` : s.pick(sec.ask);
    case 'praise': return s.pick(WORLD_PRAISE);
    case 'acknowledge': return s.pick(WORLD_ACK);
    case 'dismiss': return s.pick(WORLD_DISMISS);
    case 'silence': return s.pick(WORLD_SILENCE);
  }
}

function worldDialog(s: Script): Record<string, string> {
  const name = s.chance(0.5) ? 'discussion' : s.pick(Object.keys(WORLD_SECTIONS));
  const sec = WORLD_SECTIONS[name]!;
  if (s.chance(0.5)) s.say('student', 'For our science reports...');
  else s.say('student', `{For the science report|For our lab reports|About my science report}...`);
  s.say('teacher', s.pick(TEACHER_ACK));
  s.say('student', s.pick([`I don't understand what is supposed to go in the ${name} section.`, `I don't get what I'm supposed to write in the ${name}.`, `I'm stuck on the ${name} section.`]));
  const world = new WorldStudentState();
  const exchanges = 6 + s.rng.int(5);
  let first = true;
  let start: StudentState | null = null;
  for (let k = 0; k < exchanges; k++) {
    const state = world.state ?? 'confused';
    const weights = WORLD_TEACHER[state];
    const moves = Object.keys(weights) as TeacherMove[];
    let move = moves[s.rng.categorical(moves.map(m => weights[m]!))]!;
    if (first) move = 'ask';
    let text = worldTeacherTurn(s, move, sec);
    if (first) text = `Do you ${s.pick(['have your results with you?', 'know what your results showed?', 'remember what you predicted?', 'know what the section is for?', 'want to go through it together?'])}`;
    first = false;
    s.turns.push({ role: 'teacher', text });
    const step = world.respond(text, s.rng);
    start ??= step.from;
    s.turns.push({ role: 'student', text: step.reply });
    if (step.leaves) break;
  }
  return { subject: 'science', topic: `world: ${name}`, mood: start ?? 'confused' };
}

// ---------------------------------------------------------------------------------------------

const BUILDERS: [number, (s: Script) => Record<string, string>][] = [
  [7, scienceDialog],
  [2, fractionsDialog], [2, percentDialog], [2, equationDialog], [1.5, areaDialog], [1.5, meanDialog], [1, orderOpsDialog], [1, rateDialog],
  [2, thesisDialog], [1.5, evidenceDialog], [1, runOnDialog], [1.2, conclusionDialog], [1.2, storyDialog],
  [1.2, checkInDialog],
];

/** Generate the shipped corpus: `count` scripted dialogs, then `worldCount` world dialogs. */
export function generateShippedCorpus(opts: { seed?: number; count?: number; worldCount?: number } = {}): Dialog[] {
  const rng = new Rng(opts.seed ?? DEFAULT_SEED);
  const count = opts.count ?? DEFAULT_COUNT;
  const worldCount = opts.worldCount ?? DEFAULT_WORLD_COUNT;
  const weights = BUILDERS.map(b => b[0]);
  const out: Dialog[] = [];
  for (let i = 0; i < count + worldCount; i++) {
    const s = new Script(new Rng(rng.seed()), NAMES[rng.int(NAMES.length)]!, MOODS[rng.int(MOODS.length)]!);
    const meta = i < count ? { mood: s.mood, ...BUILDERS[rng.categorical(weights)]![1](s) } : worldDialog(s);
    out.push({ id: `shipped-${String(i + 1).padStart(4, '0')}`, source: 'shipped', turns: s.turns, meta });
  }
  return out;
}

/** The JSONL text of a corpus in the chat-messages format (one record per line). */
export function toJsonl(dialogs: Dialog[]): string {
  return dialogs.map(d => JSON.stringify(toChatRecord(d))).join('\n') + '\n';
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string', default: String(DEFAULT_SEED) },
      count: { type: 'string', default: String(DEFAULT_COUNT) },
      'world-count': { type: 'string', default: String(DEFAULT_WORLD_COUNT) },
      out: { type: 'string', default: path.join(path.dirname(fileURLToPath(import.meta.url)), 'dialogs.jsonl') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('usage: node bin/run.mjs corpora/shipped/generate.ts [--seed N] [--count N] [--world-count N] [--out FILE]');
    process.exit(0);
  }
  const dialogs = generateShippedCorpus({ seed: Number(values.seed), count: Number(values.count), worldCount: Number(values['world-count']) });
  const text = toJsonl(dialogs);
  writeFileSync(values.out!, text);
  const turns = dialogs.reduce((n, d) => n + d.turns.length, 0);
  console.log(`wrote ${dialogs.length} dialogs, ${turns} turns, ${text.length} bytes to ${values.out}`);
}
