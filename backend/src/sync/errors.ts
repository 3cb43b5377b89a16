import { SourceError, type ErrorClass } from '../sources/types';
import { StoreUnavailableError } from '../store/types';

export interface ClassifiedError {
  message: string;
  class: ErrorClass;
  /** Where it came from: the upstream or the store. */
  origin: 'upstream' | 'store';
}

/**
 * Sources classify their own errors; the store being away is always worth retrying;
 * anything unexpected is retried too, but with backoff, so a bug cannot hammer anyone.
 */
export function classify(err: unknown): ClassifiedError {
  if (err instanceof SourceError) return { message: err.message, class: err.errorClass, origin: 'upstream' };
  if (err instanceof StoreUnavailableError)
    return { message: err.message, class: 'transient', origin: 'store' };
  const message = err instanceof Error ? err.message : String(err);
  return { message, class: 'transient', origin: 'upstream' };
}
