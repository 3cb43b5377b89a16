import type { Logger } from 'pino';
import type { DatasetSpec } from '../config/dataset';
import type { Source } from '../sources/types';
import type { Store } from '../store/types';
import { SyncEngine, type EngineOptions } from './engine';
import type { DatasetStatus } from './status';

/** The sync engines of every configured dataset, started and stopped together. */
export class SyncManager {
  readonly engines = new Map<string, SyncEngine>();

  constructor(
    datasets: DatasetSpec[],
    createSource: (spec: DatasetSpec) => Source,
    private readonly store: Store,
    log: Logger,
    options: EngineOptions = {},
  ) {
    for (const spec of datasets) {
      const engine = new SyncEngine(
        spec,
        createSource(spec),
        store,
        log.child({ dataset: spec.name }),
        options,
      );
      this.engines.set(spec.name, engine);
    }
  }

  /** Registers the datasets, takes up what the store holds of each (see SyncEngine.restore), then starts syncing. */
  async start(): Promise<void> {
    for (const engine of this.engines.values()) await this.store.register(engine.spec);
    await Promise.all([...this.engines.values()].map((e) => e.restore()));
    for (const engine of this.engines.values()) engine.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.engines.values()].map((e) => e.stop()));
    await Promise.all([...this.engines.values()].map((e) => e.source.close()));
  }

  get(name: string): SyncEngine | undefined {
    return this.engines.get(name);
  }

  specs(): DatasetSpec[] {
    return [...this.engines.values()].map((e) => e.spec);
  }

  statuses(): DatasetStatus[] {
    return [...this.engines.values()].map((e) => e.status());
  }

  /**
   * Before answering from the store: checks that it still holds what each named dataset
   * synced (see SyncEngine.checkStore), so no answer after a loss goes out as complete.
   */
  async checkStore(names: Iterable<string>): Promise<void> {
    await Promise.all([...new Set(names)].map((name) => this.engines.get(name)?.checkStore()));
  }
}
