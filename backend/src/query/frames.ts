import { Pacer } from './pace';

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

/**
 * `JSON.stringify(frames)`, a column at a time with turns of the event loop between
 * (see Pacer), so serializing a large answer does not stall the service.
 */
export async function stringifyFrames(frames: DataFrame[], pacer = new Pacer()): Promise<string> {
  const parts: string[] = [];
  for (const frame of frames) {
    const columns: string[] = [];
    for (const column of frame.data.values) {
      columns.push(JSON.stringify(column));
      await pacer.tick();
    }
    parts.push(`{"schema":${JSON.stringify(frame.schema)},"data":{"values":[${columns.join(',')}]}}`);
  }
  return `[${parts.join(',')}]`;
}
