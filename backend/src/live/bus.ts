import { EventEmitter } from 'node:events';
import type { FreshnessUpdate } from '../query/status-frames';
import type { ChangeEvent } from '../sync/engine';
import type { SyncManager } from '../sync/manager';
import { FreshnessWatch, type FreshnessWatchOptions } from './freshness-watch';

/**
 * The change bus: one event per committed batch that changed data, and one per change of a
 * dataset's freshness (see FreshnessWatch), from every dataset. Grafana Live pushes and SSE
 * streams listen here; nothing on it is needed for correctness (caches check data versions,
 * answers judge freshness when they are made), so a listener that falls behind loses nothing
 * but timeliness.
 */
export class ChangeBus extends EventEmitter<{ change: [ChangeEvent]; freshness: [FreshnessUpdate] }> {
  readonly freshness: FreshnessWatch;

  constructor(sync: SyncManager, options: FreshnessWatchOptions = {}) {
    super();
    // Every SSE client is a listener; the default cap of 10 would warn about a leak.
    this.setMaxListeners(0);
    for (const engine of sync.engines.values()) engine.on('change', (event) => this.emit('change', event));
    this.freshness = new FreshnessWatch(sync, (update) => this.emit('freshness', update), options);
  }

  close(): void {
    this.freshness.close();
  }
}
