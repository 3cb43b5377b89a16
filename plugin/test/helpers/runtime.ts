import { FakeBackendSrv } from './backendSrv';
import { FakeLiveSrv } from './liveSrv';
import { FakeTemplateSrv } from './templateSrv';

/**
 * The doubles behind `@grafana/runtime`'s getBackendSrv/getTemplateSrv/getGrafanaLiveSrv for
 * the current test. Test files mock the module with `mockRuntime()`; everything else in it
 * (`config` included) stays real.
 */
export const doubles: { backendSrv?: FakeBackendSrv; templateSrv?: FakeTemplateSrv; liveSrv?: FakeLiveSrv } =
  {};

export function mockRuntime() {
  return {
    ...jest.requireActual('@grafana/runtime'),
    getBackendSrv: () => {
      if (!doubles.backendSrv) throw new Error('no BackendSrv double installed for this test');
      return doubles.backendSrv;
    },
    getTemplateSrv: () => {
      if (!doubles.templateSrv) throw new Error('no TemplateSrv double installed for this test');
      return doubles.templateSrv;
    },
    // Like Grafana before its live service starts: nothing, unless the test installs one.
    getGrafanaLiveSrv: () => doubles.liveSrv,
  };
}

/** Fresh doubles for every test; the BackendSrv (and the live service, if any) is verified after each one. */
export function installDoubles() {
  beforeEach(() => {
    doubles.backendSrv = new FakeBackendSrv();
    // DataSourceWithBackend reaches BackendSrv inside @grafana/runtime, past the mock above.
    jest
      .requireActual<typeof import('@grafana/runtime')>('@grafana/runtime')
      .setBackendSrv(doubles.backendSrv);
    doubles.templateSrv = new FakeTemplateSrv();
    doubles.liveSrv = undefined;
  });
  afterEach(() => {
    const { backendSrv, liveSrv } = doubles;
    doubles.backendSrv = undefined;
    doubles.templateSrv = undefined;
    doubles.liveSrv = undefined;
    backendSrv?.verify();
    liveSrv?.verify();
  });
}

/** Gives this test a Grafana Live service. */
export function installLiveSrv(): FakeLiveSrv {
  doubles.liveSrv = new FakeLiveSrv();
  return doubles.liveSrv;
}

export function backendSrv(): FakeBackendSrv {
  if (!doubles.backendSrv) throw new Error('no BackendSrv double installed for this test');
  return doubles.backendSrv;
}

export function templateSrv(): FakeTemplateSrv {
  if (!doubles.templateSrv) throw new Error('no TemplateSrv double installed for this test');
  return doubles.templateSrv;
}
