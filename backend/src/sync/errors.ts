import { SourceError, type ErrorClass, type ErrorOrigin } from '../sources/types';
import { StoreError } from '../store/types';

export interface ClassifiedError {
  message: string;
  class: ErrorClass;
  /** Where it came from, kept in status, events, logs and metrics. */
  origin: ErrorOrigin;
}

/**
 * Sources classify their own errors; anything the store throws is the store's; anything
 * unexpected is our own. Both are retried, with backoff, so a bug cannot hammer anyone.
 */
export function classify(err: unknown): ClassifiedError {
  if (err instanceof SourceError) return { message: err.message, class: err.errorClass, origin: err.origin };
  // A refused command may be a script error or a full store: retried with backoff like an outage.
  if (err instanceof StoreError) return { message: err.message, class: 'transient', origin: 'store' };
  const message = err instanceof Error ? err.message : String(err);
  return { message, class: 'transient', origin: 'internal' };
}
