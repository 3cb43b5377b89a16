import {
  CustomVariableSupport,
  type DataQueryRequest,
  type DataQueryResponse,
  FieldType,
  createDataFrame,
} from '@grafana/data';
import { type Observable, from, map } from 'rxjs';
import { VariableQueryEditor } from './components/VariableQueryEditor';
import type { DataSource } from './datasource';
import type { LiveSyncVariableQuery } from './types';

/**
 * Template variables with a structured editor (datasets, dimensions of a dataset, values of a
 * dimension). Answers through `metricFindQuery`, which also reads the text form.
 */
export class LiveSyncVariableSupport extends CustomVariableSupport<DataSource, LiveSyncVariableQuery> {
  editor = VariableQueryEditor;

  constructor(private readonly datasource: DataSource) {
    super();
  }

  query(request: DataQueryRequest<LiveSyncVariableQuery>): Observable<DataQueryResponse> {
    const [query] = request.targets;
    return from(
      this.datasource.metricFindQuery(query ?? 'datasets', {
        scopedVars: request.scopedVars,
        range: request.range,
      }),
    ).pipe(
      map((values) => {
        const texts = values.map((v) => String(v.text));
        const frame = createDataFrame({
          refId: query?.refId,
          fields: [
            { name: 'text', type: FieldType.string, values: texts },
            { name: 'value', type: FieldType.string, values: texts },
          ],
        });
        return { data: [frame] };
      }),
    );
  }
}
