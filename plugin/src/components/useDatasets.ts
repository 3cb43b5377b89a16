import { useEffect, useState } from 'react';
import type { DatasetInfo } from '../api';
import type { DataSource } from '../datasource';

export interface DatasetsState {
  datasets: DatasetInfo[];
  loading: boolean;
  error?: string;
}

interface Loaded {
  from?: DataSource;
  datasets: DatasetInfo[];
  error?: string;
}

/** The service's datasets, loaded once per data source; editors show loading and error states from it. */
export function useDatasets(datasource: DataSource): DatasetsState {
  const [loaded, setLoaded] = useState<Loaded>({ datasets: [] });
  useEffect(() => {
    let current = true;
    datasource.getDatasets().then(
      (datasets) => current && setLoaded({ from: datasource, datasets }),
      (err: unknown) =>
        current &&
        setLoaded({
          from: datasource,
          datasets: [],
          error: err instanceof Error ? err.message : String(err),
        }),
    );
    return () => {
      current = false;
    };
  }, [datasource]);
  // Still loading until the answer belongs to this data source (it can change under a mounted editor).
  if (loaded.from !== datasource) return { datasets: [], loading: true };
  return { datasets: loaded.datasets, loading: false, error: loaded.error };
}
