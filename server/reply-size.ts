/**
 * How large a session's replies get, known before any is built: `make` compares
 * numEnvs x (one observation's JSON + the per-env fields of a step) with `limits.maxReplyBytes`,
 * so that no client can make the server build (for seconds, on its event loop) a reply that no
 * frame can carry. It is an estimate from the observation space: numbers of a float Box count
 * 10 bytes (a float32 value printed as a double takes 10 to 20), integers as their widest bound,
 * texts their minimum length (a text's size is known only when it is written: the reply itself is
 * checked against the limit once built).
 */
import { Box, Dict, Discrete, MultiDiscrete, Text, Tuple, type Space } from '../env/spaces.ts';

const FLOAT_BYTES = 10;
/** reward, terminated, truncated, an empty info, their commas. */
const PER_ENV_STEP_BYTES = 40;

function digits(x: number): number { return Number.isFinite(x) ? String(Math.trunc(x)).length : 11; }

function widest(b: number | number[]): number {
  if (typeof b === 'number') return digits(b);
  let w = 1;
  for (const x of b) w = Math.max(w, digits(x));
  return w;
}

/** About the fewest bytes one observation of `space` takes as JSON (`packed`: a float64 Box as base64). */
export function observationBytes(space: Space, packed = false): number {
  if (space instanceof Box) {
    if (packed) return Math.ceil(space.size * 8 / 3) * 4;
    const per = space.dtype === 'int32' ? Math.max(widest(space.low), widest(space.high)) + 1 : FLOAT_BYTES;
    return 2 + space.size * per;
  }
  if (space instanceof Discrete) return digits(space.start + space.n) + 1;
  if (space instanceof MultiDiscrete) return 2 + space.nvec.reduce((a, n) => a + digits(n) + 1, 0);
  if (space instanceof Text) return 3 + space.minLength;
  if (space instanceof Dict) return 2 + Object.entries(space.spaces).reduce((a, [k, v]) => a + k.length + 4 + observationBytes(v as Space), 0);
  if (space instanceof Tuple) return 2 + space.spaces.reduce((a, v) => a + 1 + observationBytes(v), 0);
  return 2;
}

/** About the fewest bytes of a step reply of `numEnvs` sub-envs with this observation space. */
export function replyBytesEstimate(space: Space, numEnvs: number, packed = false): number {
  return 64 + numEnvs * ((packed ? 0 : 1) + observationBytes(space, packed) + PER_ENV_STEP_BYTES) + (packed ? 64 : 0);
}
