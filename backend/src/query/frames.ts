/** Grafana DataFrame JSON, the shape Grafana's backend data sources return and `dataFrameFromJSON` reads. */
export interface FieldSchema {
  name: string;
  type: 'time' | 'number' | 'string' | 'boolean';
  typeInfo?: { frame: string; nullable?: boolean };
  labels?: Record<string, string>;
  config?: Record<string, unknown>;
}

export interface Notice {
  severity: 'info' | 'warning' | 'error';
  text: string;
}

export interface FrameMeta {
  custom?: Record<string, unknown>;
  notices?: Notice[];
  executedQueryString?: string;
}

export interface DataFrame {
  schema: { name?: string; refId: string; meta?: FrameMeta; fields: FieldSchema[] };
  data: { values: unknown[][] };
}
