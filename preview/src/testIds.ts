/**
 * The preview's own test ids, in one place: the pages render them and the browser tests find
 * elements by them. Elements Grafana's components already mark (panels, the "Save & test" button,
 * the data-source alert, the refresh button) are found by Grafana's e2e selectors instead.
 */
export const testIds = {
  pluginInfo: 'preview-plugin-info',
  bootError: 'preview-boot-error',
  tab: (name: string) => `preview-tab-${name}`,
  variable: (name: string) => `preview-variable-${name}`,
  panel: (id: number) => `preview-panel-${id}`,
  noData: 'preview-no-data',
  notice: (severity: string) => `preview-panel-notice-${severity}`,
  stat: 'preview-stat',
  annotations: 'preview-annotations',
  annotationMarker: 'preview-annotation-marker',
  frames: 'preview-frames',
  runQuery: 'preview-run-query',
} as const;

/** The dashboard's panels, by id: tests and the page agree on them. */
export const panelIds = {
  eventsByCountry: 1,
  dataAge: 2,
  syncStatus: 3,
  eventsTable: 4,
  explore: 100,
} as const;
