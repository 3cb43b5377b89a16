import { formatDuration } from './duration';
import type { HttpSourceConfig } from './schema';
import type { Problem } from './validate';

/**
 * What an HTTP API's shape, as configured, cannot do without losing records: refused at
 * start-up, so that nothing is lost quietly at run time. Key paths are from the dataset.
 */
export function httpSourceProblems(
  source: HttpSourceConfig,
  sync: { lagMs: number; lookbackMs: number },
): Problem[] {
  const problems: Problem[] = [];
  if (source.pagination.kind === 'none' && source.idParam === undefined) {
    problems.push({
      path: ['source', 'pagination'],
      message:
        'kind none with no idParam cannot read past more records sharing one cursor value than ' +
        'one batch holds: set source.idParam (the query parameter for the id to continue after), ' +
        'or use pagination page, offset, cursor or link',
    });
  }
  if (source.cursorType === 'number') {
    for (const [key, ms] of [
      ['lag', sync.lagMs],
      ['lookback', sync.lookbackMs],
    ] as const) {
      if (ms === 0) continue;
      problems.push({
        path: ['sync', key],
        message:
          `must be 0s (got ${formatDuration(ms)}): the source's cursorType is number, which no ` +
          'duration can move back; declare epoch_s, epoch_ms, epoch_us or epoch_ns if it counts time',
      });
    }
  }
  return problems;
}
