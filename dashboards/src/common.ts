import type { Builder, Dataquery } from '@grafana/grafana-foundation-sdk/cog';
import { AnnotationQueryBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { GRAFANA } from './datasources';

/** The target of Grafana's built-in annotation query, in the Dataquery shape the SDK asks for. */
const builtInTarget: Builder<Dataquery> = {
  build: () => ({
    _implementsDataqueryVariant(): void {},
    limit: 100,
    matchAny: false,
    tags: [],
    type: 'dashboard',
  }),
};

/** Grafana's built-in "Annotations & Alerts": alert state changes and hand-made annotations. */
export function builtInAnnotations(): AnnotationQueryBuilder[] {
  return [
    new AnnotationQueryBuilder()
      .name('Annotations & Alerts')
      .datasource(GRAFANA)
      .builtIn(1)
      .enable(true)
      .hide(true)
      .iconColor('rgba(0, 211, 255, 1)')
      .type('dashboard')
      .target(builtInTarget),
  ];
}
