import type { DatasetSpec } from '../config/dataset';
import { DemoSource } from './demo';
import { HttpSource } from './http';
import { PostgresSource } from './postgres';
import { PostgresCdcSource } from './postgres-cdc';
import type { Source } from './types';

export function createSource(spec: DatasetSpec): Source {
  const config = spec.source;
  switch (config.kind) {
    case 'postgres':
      return config.mode === 'cdc' ? new PostgresCdcSource(spec, config) : new PostgresSource(spec, config);
    case 'http':
      return new HttpSource(spec, config);
    case 'demo':
      return new DemoSource(spec, config);
    default:
      // Unreachable for a validated config; keeps a hand-built spec from yielding undefined.
      throw new Error(
        `datasets.${spec.name}.source: unknown kind "${(config satisfies never as { kind: string }).kind}"`,
      );
  }
}
