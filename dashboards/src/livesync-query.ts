import type { DataSourceRef } from '@grafana/grafana-foundation-sdk/common';
import type { Builder, Dataquery } from '@grafana/grafana-foundation-sdk/cog';
import { LIVESYNC } from './datasources';

/**
 * The LiveSync data source's queries are not among the SDK's data sources: the SDK takes any
 * `Builder<Dataquery>` as a panel target or annotation target (its documented way to add a
 * third-party query type), where a Dataquery is any object that says it is one. The marker
 * method disappears when the dashboard is serialized to JSON.
 */
interface QueryBase extends Dataquery {
  refId?: string;
  hide?: boolean;
  datasource?: DataSourceRef;
}

export type QueryKind = 'metrics' | 'freshness' | 'status';

/** A panel target: the plugin's query model (plugin/src/types.ts). */
export interface LiveSyncQuery extends QueryBase {
  kind: QueryKind;
  /** For freshness and status, empty means every dataset. */
  dataset: string;
  /** `count`, `sum(amount)`, `avg(duration_ms)`, `min|max(metric)`, `distinct(user_id)`. */
  aggregations: string[];
  groupBy: string[];
  /** Dimension → the values to keep; a multi-value variable such as `$country` expands to its values. */
  filters: Record<string, string[]>;
  format: 'timeseries' | 'table';
  /** Follow the dataset's changes over Grafana Live while the range ends at now. */
  live: boolean;
}

/** An annotation target: the dataset's sync state changes (failures, resyncs, pauses), as regions. */
export interface LiveSyncAnnotationQuery extends QueryBase {
  kind: 'annotations';
  /** Empty means every dataset. */
  dataset: string;
}

const marker = { _implementsDataqueryVariant(): void {} };

export class LiveSyncQueryBuilder implements Builder<Dataquery> {
  private readonly internal: LiveSyncQuery;

  constructor(kind: QueryKind, dataset: string) {
    this.internal = {
      ...marker,
      refId: 'A',
      datasource: LIVESYNC,
      kind,
      dataset,
      aggregations: kind === 'metrics' ? ['count'] : [],
      groupBy: [],
      filters: {},
      format: kind === 'metrics' ? 'timeseries' : 'table',
      live: true,
    };
  }

  build(): LiveSyncQuery {
    return this.internal;
  }

  refId(refId: string): this {
    this.internal.refId = refId;
    return this;
  }

  aggregations(aggregations: string[]): this {
    this.internal.aggregations = aggregations;
    return this;
  }

  groupBy(dimensions: string[]): this {
    this.internal.groupBy = dimensions;
    return this;
  }

  filter(dimension: string, values: string[]): this {
    this.internal.filters = { ...this.internal.filters, [dimension]: values };
    return this;
  }

  format(format: LiveSyncQuery['format']): this {
    this.internal.format = format;
    return this;
  }

  live(live: boolean): this {
    this.internal.live = live;
    return this;
  }
}

export class LiveSyncAnnotationQueryBuilder implements Builder<Dataquery> {
  private readonly internal: LiveSyncAnnotationQuery;

  constructor(dataset: string) {
    this.internal = { ...marker, refId: 'Anno', datasource: LIVESYNC, kind: 'annotations', dataset };
  }

  build(): LiveSyncAnnotationQuery {
    return this.internal;
  }
}
