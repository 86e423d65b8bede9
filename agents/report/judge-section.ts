/**
 * The "People as judges" section of a study's report.html: per question, each agent pair's win rate
 * (ties half) with its 95% interval over pairs of transcripts, ties, the left-side share, and the
 * Bradley–Terry strengths when more than two agents were judged (agents/judging.ts computes them
 * from the judgements people gave on `/judge`).
 */
import type { QuestionSummary } from '../judging.ts';
import { escapeHtml, iv } from './report.ts';

export interface StudyJudging {
  study: string;
  /** Dialog pairs on /judge for this study, and the judgements given so far. */
  pairs: number;
  judgements: number;
  questions: QuestionSummary[];
}

export function renderJudgeSection(j: StudyJudging): string {
  const head = `<h2>People as judges</h2>
<p>${j.pairs} pairs of transcripts (the same env seed, agents' names hidden, sides shuffled per judge) wait on <code>/judge?study=${escapeHtml(j.study)}</code>; ${j.judgements} judgements so far. Win rates count a tie as half a win; intervals are 95% percentile-bootstrap intervals that resample pairs of transcripts.</p>`;
  if (!j.questions.length) return `${head}\n<p class="na">No judgements yet: send people to the page, then rerun the command (finished stages are reused) to redraw this section.</p>`;
  const rows = j.questions.flatMap(q => q.pairwise.map(p => `<tr><td>${escapeHtml(q.question)}</td><td class="agent">${escapeHtml(p.agent)}</td><td class="agent">${escapeHtml(p.opponent)}</td><td>${iv(p.winRate, 3)}</td><td>${p.wins} / ${p.losses} / ${p.ties}</td><td>${p.pairs}</td><td>${iv(q.leftShare, 2)}</td></tr>`));
  const bt = j.questions.flatMap(q => (q.bradleyTerry ?? []).map(b => `<tr><td>${escapeHtml(q.question)}</td><td class="agent">${escapeHtml(b.agent)}</td><td>${iv(b.strength, 3)}</td></tr>`));
  return `${head}
<div class="scroll"><table class="metrics"><tr><th>question</th><th>agent</th><th>against</th><th>win rate</th><th>wins / losses / ties</th><th>pairs</th><th>left side chosen (non-ties)</th></tr>
${rows.join('\n')}</table></div>${bt.length ? `
<div class="scroll"><table class="metrics"><tr><th>question</th><th>agent</th><th>Bradley–Terry strength (geometric mean 1)</th></tr>
${bt.join('\n')}</table></div>` : ''}`;
}

/** The report with the section placed before its closing tags. */
export function withJudgeSection(html: string, j: StudyJudging): string {
  const at = html.lastIndexOf('</body>');
  const section = renderJudgeSection(j);
  return at < 0 ? `${html}\n${section}\n` : `${html.slice(0, at)}${section}\n${html.slice(at)}`;
}
