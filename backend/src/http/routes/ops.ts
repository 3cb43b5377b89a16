import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Operation } from '../../store/types';
import { specOf } from './datasets';

const NameParams = Type.Object({ name: Type.String({ maxLength: 128 }) });

const Accepted = Type.Object({
  dataset: Type.String(),
  operation: Type.Union([Type.Literal('pause'), Type.Literal('resume'), Type.Literal('resync')]),
  at: Type.Number(),
  by: Type.String(),
  /** The replica that holds the dataset's lease and carries the operation out (null: none now; the next holder will). */
  holder: Type.Union([Type.String(), Type.Null()]),
});

/**
 * Operations on one dataset, inside the authenticated /api scope: pause, resume, and resync
 * from scratch (the rollback lever after a bad upstream change was synced). Each is stored in
 * the store beside the dataset (not reset with it), so it holds across restarts and replicas;
 * whichever replica holds the lease carries it out, at once when that is this one, else
 * within a lease renewal (a third of `lease.ttl`), and records it as an annotation.
 */
export const opsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const operate = (operation: Operation) =>
    app.post(
      `/api/datasets/:name/${operation}`,
      { schema: { params: NameParams, response: { 202: Accepted } } },
      async (request, reply) => {
        const spec = specOf(app, request.params.name);
        const at = app.clock();
        const mark = { at, by: `api ${request.ip}` };
        if (operation === 'pause') await app.store.writeControl(spec.name, 'paused', mark);
        if (operation === 'resume') {
          await app.store.writeControl(spec.name, 'resumed', mark);
          await app.store.writeControl(spec.name, 'paused', null);
        }
        if (operation === 'resync') await app.store.writeControl(spec.name, 'resync', mark);
        request.log.info({ dataset: spec.name, operation }, 'operation on a dataset');
        const engine = app.sync.get(spec.name)!;
        await engine.controlsChanged();
        const lease = await app.store.readLease(spec.name);
        return reply
          .status(202)
          .send({ dataset: spec.name, operation, ...mark, holder: lease?.holder ?? null });
      },
    );
  operate('pause');
  operate('resume');
  operate('resync');
};
