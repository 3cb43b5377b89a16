import type { EventBusSrv } from '@grafana/data';
import { createContext, useContext } from 'react';
import type { AmdRegistry } from '../../amd/registry';
import type { PreviewBackendSrv } from '../grafana/backendSrv';
import type { PreviewDataSourceSrv } from '../grafana/dataSourceSrv';
import type { PreviewLiveSrv } from '../grafana/liveSrv';
import type { PreviewTemplateSrv } from '../grafana/templateSrv';

/** The stand-ins for Grafana's services, for the preview's own pages (the plugin reaches them through @grafana/runtime). */
export interface Services {
  events: EventBusSrv;
  backendSrv: PreviewBackendSrv;
  templateSrv: PreviewTemplateSrv;
  liveSrv: PreviewLiveSrv;
  dataSourceSrv: PreviewDataSourceSrv;
  registry: AmdRegistry;
}

export const ServicesContext = createContext<Services | null>(null);

export function useServices(): Services {
  const services = useContext(ServicesContext);
  if (!services) throw new Error('useServices outside ServicesContext');
  return services;
}
