// Types for the `vader-sentiment` package (a JavaScript port of VADER, Hutto & Gilbert 2014).
declare module 'vader-sentiment' {
  export interface PolarityScores { neg: number; neu: number; pos: number; compound: number }
  export const SentimentIntensityAnalyzer: { polarity_scores(text: string): PolarityScores };
}
