import { EventBusSrv, ThemeContext } from '@grafana/data';
import {
  config,
  setAppEvents,
  setBackendSrv,
  setDataSourceSrv,
  setGrafanaLiveSrv,
  setRunRequest,
  setTemplateSrv,
} from '@grafana/runtime';
import { GlobalStyles } from '@grafana/ui';
import { createRoot } from 'react-dom/client';
import { pageRegistry } from '../amd/registry';
import { PreviewBackendSrv } from './grafana/backendSrv';
import { PreviewDataSourceSrv } from './grafana/dataSourceSrv';
import { PreviewLiveSrv } from './grafana/liveSrv';
import { runRequest } from './grafana/queryRunner';
import { PreviewTemplateSrv } from './grafana/templateSrv';
import { App } from './ui/App';
import { ServicesContext } from './ui/services';

/**
 * Boots the page the way Grafana's app.ts does for what a data-source plugin touches: the boot
 * data is already on `window.grafanaBootData` (the server wrote it into the page before any
 * script ran, so @grafana/runtime's `config` read it), then the services are registered with
 * @grafana/runtime's setters, and the app renders inside Grafana's theme and global styles.
 */
function boot(): void {
  const registry = pageRegistry();
  const events = new EventBusSrv();
  const backendSrv = new PreviewBackendSrv(events, config.bootData.user.orgId);
  const templateSrv = new PreviewTemplateSrv();
  const liveSrv = new PreviewLiveSrv(backendSrv, config.bootData.user.orgId);
  const dataSourceSrv = new PreviewDataSourceSrv(registry, backendSrv);
  setAppEvents(events);
  setBackendSrv(backendSrv);
  setTemplateSrv(templateSrv);
  setGrafanaLiveSrv(liveSrv);
  setDataSourceSrv(dataSourceSrv);
  setRunRequest(runRequest);

  const element = document.getElementById('reactRoot');
  if (!element) throw new Error('#reactRoot is missing from the page');
  createRoot(element).render(
    <ThemeContext.Provider value={config.theme2}>
      <GlobalStyles />
      <ServicesContext.Provider value={{ events, backendSrv, templateSrv, liveSrv, dataSourceSrv, registry }}>
        <App />
      </ServicesContext.Provider>
    </ThemeContext.Provider>,
  );
}

boot();
