/**
 * Every label and test id the editors expose, in one place: the editors render them and the
 * tests find elements by them, so a rename cannot leave a test looking for a stale label.
 */
export const selectors = {
  queryEditor: {
    container: 'livesync-query-editor',
    kind: 'Query kind',
    kindOptions: { metrics: 'Metrics', freshness: 'Freshness', status: 'Sync status' },
    dataset: 'Dataset',
    aggregations: 'Aggregations',
    groupBy: 'Group by',
    filterValues: (dimension: string) => `${dimension} in`,
    removeFilter: (dimension: string) => `Remove filter on ${dimension}`,
    addFilter: 'Add filter',
    format: 'Format',
    formatOptions: { timeseries: 'Time series', table: 'Table' },
    live: 'Live',
    loadError: 'Could not load datasets from LiveSync',
    noDatasets: 'LiveSync has no datasets yet',
  },
  configEditor: {
    url: 'URL',
    apiKey: 'API key',
    liveEnabled: 'Live updates',
  },
  annotationEditor: {
    container: 'livesync-annotation-editor',
    dataset: 'Dataset',
    kinds: { failure: 'Failures', resync: 'Resyncs', pause: 'Pauses' },
    minRecords: 'Batches of at least',
  },
  variableEditor: {
    container: 'livesync-variable-editor',
    type: 'Query type',
    typeOptions: { datasets: 'Datasets', dimensions: 'Dimensions', values: 'Values' },
    dataset: 'Dataset',
    dimension: 'Dimension',
    syntax: 'livesync-variable-syntax',
    unreadable: 'The saved query could not be read',
  },
} as const;
