/**
 * The coded error registry. Every error a client can see is one of these codes with a message;
 * never a stack. Env code throws the typed classes; the server maps them to `{code, message}`.
 */
export const ERROR_CODES = [
  'BAD_JSON', 'BAD_REQUEST', 'UNKNOWN_OP', 'UNKNOWN_ENV', 'UNKNOWN_SESSION', 'RESET_NEEDED',
  'INVALID_ACTION', 'CAPACITY', 'UNAUTHORIZED', 'PAYLOAD_TOO_LARGE', 'TIMEOUT', 'INTERNAL',
  'BAD_CONFIG', 'NOT_FOUND', 'CLOSED',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorBody { code: ErrorCode; message: string; details?: Record<string, unknown> }

export class ColloquyError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    if (details) this.details = details;
  }
  toJSON(): ErrorBody {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

/** step() was called before reset(), or after an episode ended without a reset. */
export class ResetNeeded extends ColloquyError {
  constructor(message = 'step() before reset()') { super('RESET_NEEDED', message); }
}
/** No env with this id; carries the nearest registered id when one is close. */
export class NameNotFound extends ColloquyError {
  constructor(id: string, suggestion?: string) {
    super('UNKNOWN_ENV', suggestion ? `no env '${id}'; did you mean '${suggestion}'?` : `no env '${id}'`,
      suggestion ? { suggestion } : undefined);
  }
}
/** An action outside the env's action space. */
export class InvalidAction extends ColloquyError {
  constructor(message: string) { super('INVALID_ACTION', message); }
}
/** Bad kwargs or config values. */
export class BadConfig extends ColloquyError {
  constructor(message: string, details?: Record<string, unknown>) { super('BAD_CONFIG', message, details); }
}
/** Operation on an env that was closed. */
export class EnvClosed extends ColloquyError {
  constructor(message = 'env is closed') { super('CLOSED', message); }
}

/** Turn anything thrown into a client-safe error body (unknown errors become INTERNAL, without stack). */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof ColloquyError) return err.toJSON();
  return { code: 'INTERNAL', message: 'internal error' };
}
