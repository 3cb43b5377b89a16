export interface PageOptions {
  prefix: string;
  appUrl: string;
  grafanaVersion: string;
  datasources: Record<string, unknown>;
  defaultDatasource: string;
  theme: 'dark' | 'light';
  /** Whether this "Grafana" runs Live (Grafana's `[live] max_connections` > 0): plugins check `config.liveEnabled`. */
  liveEnabled: boolean;
  logo: string;
  /** Busts the browser cache for the page's scripts after a rebuild. */
  assetVersion: string;
}

/** JSON that is safe inside a `<script>`: no `</script>`, no HTML comment openers. */
const scriptJson = (value: unknown) =>
  JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

/**
 * The page, shaped like Grafana's index.html: `<base href>` at the sub path, the boot data on
 * `window.grafanaBootData` before any script runs (@grafana/runtime reads it as it loads), then
 * the shared packages (vendor.js, which installs the AMD `define`), then the app module through
 * the AMD loader, as plugins are loaded.
 */
export function indexHtml(options: PageOptions): string {
  const version = encodeURIComponent(options.assetVersion);
  const bootData = {
    user: {
      id: 1,
      uid: 'preview-admin',
      login: 'admin',
      email: 'admin@localhost',
      name: 'Preview',
      orgId: 1,
      orgName: 'Main Org.',
      orgRole: 'Admin',
      isGrafanaAdmin: true,
      isSignedIn: true,
      hasEditPermissionInFolders: true,
      theme: options.theme,
      lightTheme: options.theme === 'light',
      timezone: 'browser',
      weekStart: 'browser',
      locale: 'en-US',
      language: 'en-US',
      regionalFormat: 'en-US',
      helpFlags1: 0,
      gravatarUrl: '',
      permissions: {},
      analytics: { identifier: 'preview' },
    },
    settings: {
      appUrl: options.appUrl,
      appSubUrl: options.prefix,
      buildInfo: {
        version: options.grafanaVersion,
        versionString: `Grafana v${options.grafanaVersion} (LiveSync preview)`,
        commit: 'preview',
        env: 'production',
        edition: 'Open Source',
        hasUpdate: false,
        latestVersion: '',
      },
      datasources: options.datasources,
      defaultDatasource: options.defaultDatasource,
      minRefreshInterval: '1s',
      liveEnabled: options.liveEnabled,
      featureToggles: {},
      panels: {},
      apps: {},
      dateFormats: undefined,
      unifiedAlertingEnabled: false,
      exploreEnabled: true,
    },
    navTree: [],
    assets: { dark: '', light: '' },
  };
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width" />
    <base href="${options.prefix}/" />
    <title>LiveSync preview</title>
    <link rel="icon" type="image/svg+xml" href="${options.logo}" />
    <link rel="stylesheet" href="public/build/vendor.css?v=${version}" />
    <script>
      window.grafanaBootData = ${scriptJson(bootData)};
    </script>
  </head>
  <body class="theme-${options.theme}">
    <div id="reactRoot"></div>
    <script src="public/build/vendor.js?v=${version}"></script>
    <script>
      window.__amd.load('public/build/app.js?v=${version}').catch(function (err) {
        var root = document.getElementById('reactRoot');
        root.setAttribute('data-testid', 'preview-boot-error');
        root.textContent = 'The preview could not start: ' + (err && err.message ? err.message : err);
      });
    </script>
  </body>
</html>
`;
}
