import { EventEmitter } from 'node:events';
import type { ChangeEvent } from '../sync/engine';
import type { SyncManager } from '../sync/manager';

/**
 * The change bus: one event per committed batch that changed data, from every dataset.
 * Grafana Live pushes and SSE streams listen here; nothing on it is needed for
 * correctness (caches check data versions), so a listener that falls behind loses nothing
 * but timeliness.
 */
export class ChangeBus extends EventEmitter<{ change: [ChangeEvent] }> {
  constructor(sync: SyncManager) {
    super();
    // Every SSE client is a listener; the default cap of 10 would warn about a leak.
    this.setMaxListeners(0);
    for (const engine of sync.engines.values()) engine.on('change', (event) => this.emit('change', event));
  }
}
