/**
 * Reading errors by shape, not by class: errors raised inside Node (sockets, fetch) come from
 * another realm under test runners and VM contexts, where `instanceof Error` is false.
 */
export interface ErrorLike {
  message: string;
  code?: unknown;
  cause?: unknown;
  errors?: unknown;
  hint?: unknown;
}

export function asErrorLike(err: unknown): ErrorLike | null {
  return typeof err === 'object' && err !== null && typeof (err as ErrorLike).message === 'string'
    ? (err as ErrorLike)
    : null;
}

export function codeOf(err: unknown): string | undefined {
  const code = asErrorLike(err)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The message, or for an error with an empty one (Node's AggregateError of a refused
 * dual-stack connect) the messages of the errors inside it, or its code.
 */
export function messageOf(err: unknown): string {
  const like = asErrorLike(err);
  if (like === null) return String(err);
  if (like.message !== '') return like.message;
  const inner = Array.isArray(like.errors) ? like.errors.map(messageOf).filter(Boolean).join('; ') : '';
  return inner || codeOf(err) || 'unknown error';
}

/** A message followed by its causes: fetch() says only "fetch failed", its cause says why. */
export function messageWithCauses(err: unknown): string {
  const parts = [messageOf(err)];
  for (let cause = asErrorLike(err)?.cause, depth = 0; cause !== undefined && depth < 3; depth++) {
    parts.push(messageOf(cause));
    cause = asErrorLike(cause)?.cause;
  }
  return parts.join(': ');
}
