import { FakeBackendSrv } from './backendSrv';
import { FakeTemplateSrv } from './templateSrv';

/**
 * The doubles behind `@grafana/runtime`'s getBackendSrv/getTemplateSrv for the current test.
 * Test files mock the module with `mockRuntime()`; everything else in it stays real.
 */
export const doubles: { backendSrv?: FakeBackendSrv; templateSrv?: FakeTemplateSrv } = {};

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
  };
}

/** Fresh doubles for every test; the BackendSrv is verified after each one. */
export function installDoubles() {
  beforeEach(() => {
    doubles.backendSrv = new FakeBackendSrv();
    doubles.templateSrv = new FakeTemplateSrv();
  });
  afterEach(() => {
    const backendSrv = doubles.backendSrv;
    doubles.backendSrv = undefined;
    doubles.templateSrv = undefined;
    backendSrv?.verify();
  });
}

export function backendSrv(): FakeBackendSrv {
  if (!doubles.backendSrv) throw new Error('no BackendSrv double installed for this test');
  return doubles.backendSrv;
}

export function templateSrv(): FakeTemplateSrv {
  if (!doubles.templateSrv) throw new Error('no TemplateSrv double installed for this test');
  return doubles.templateSrv;
}
