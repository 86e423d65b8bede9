/**
 * The rewards package: sentiment scorers, Jaques et al.'s implicit signals, composite rewards from
 * configs/rewards/*.json, and returns/credit assignment. Import from here.
 */
export * from './types.ts';
export { createScorer, sharedScorer, clearSharedScorers, defaultClassifierDir, ScorerSpecSchema, SCORER_NAMES, type ScorerSpec, type ScorerName } from './sentiment.ts';
export { VaderScorer, vaderCompound, vaderPolarity } from './vader.ts';
export {
  DD_EMOTIONS, DEFAULT_EMOTION_WEIGHTS, emotionWeightVector, emotionValence, emotionTransition, loadDailyDialog,
  type EmotionName, type EmotionUtterance,
} from './emotions.ts';
export {
  laughter, laughterCount, wordsElicited, questionAsked, conversationLength, repetitionPenalty, sentimentTransition,
  previousUserMessage, LAUGHTER_CLIP, WORDS_CLIP, WH_WORDS,
} from './signals.ts';
export {
  createCompositeReward, loadRewardConfig, listRewardConfigs, validateRewardConfig, RewardConfigSchema, RunningStats, SIGNALS,
  REWARD_CONFIG_DIR, type CompositeReward, type RewardConfig, type RewardTerm, type SignalName,
} from './composite.ts';
export { discountedReturns, spreadReward, spreadTurnRewards, gae, tokenReturns, whiten, type GaeInput, type SpreadMode } from './returns.ts';
export { sanitizeText, wordTokens, countWords, MAX_TEXT_CHARS } from './text.ts';
