import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { type FrameJson, LineProtocolError, parseLines, toFrames } from './lineProtocol';

export interface LiveOptions {
  /**
   * The service-account token Grafana would have issued to the pusher: the token of the
   * service's own `grafanaLive` config. Undefined when Live is not configured: pushes are refused.
   */
  token: () => Promise<string | undefined>;
  heartbeatMs?: number;
  /**
   * Runs a data source's `ds/<uid>/<path>` channel (the plugin's RunStream, see backendApi.ts):
   * packets go to `onPacket` until the returned function stops it; `onError` ends it. Undefined:
   * ds channels are refused.
   */
  dataSourceStream?: (
    uid: string,
    path: string,
    onPacket: (packet: unknown) => void,
    onError: (message: string) => void,
  ) => (() => void) | undefined;
}

interface Session {
  res: ServerResponse;
  channels: Set<string>;
}

interface ChannelState {
  /** The last frame with its schema, sent to every new subscriber (Grafana's managed-stream cache). */
  last: FrameJson;
  schemaKey: string;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Grafana Live's server side, for `stream` and `ds` channels (pkg/services/live). A `ds/<uid>/<path>`
 * channel is the data source's backend stream: subscribing runs the plugin's SubscribeStream and
 * RunStream (through `dataSourceStream`), one per channel, stopped when its last subscriber leaves.
 * For `stream` channels, the HTTP push endpoint
 * `POST /api/live/push/<streamId>` takes InfluxDB line protocol with a service-account bearer
 * token, converts it to frames (one per measurement and time, see lineProtocol.ts) and publishes
 * each to `stream/<streamId>/<measurement>` the way a managed stream does: with its schema when
 * the schema changed since the channel's last frame, as data only otherwise; a new subscriber
 * first gets the channel's last frame with schema. `POST /api/live/publish` takes a frame for a
 * stream channel the same way.
 *
 * The browser side of Grafana's transport (Centrifuge over a WebSocket) is replaced by one
 * server-sent-event stream per page with subscribe and unsubscribe calls (see the browser's
 * liveSrv.ts): the channel semantics are Grafana's, the wire is the preview's. Organisations are
 * reduced to the one org, 1.
 */
export function registerLive(app: FastifyInstance, options: LiveOptions): void {
  const sessions = new Map<string, Session>();
  const channels = new Map<string, ChannelState>();
  /** Running ds/ channels: each is one RunStream of the plugin, however many pages listen. */
  const running = new Map<string, () => void>();

  const broadcast = (channel: string, payload: string) => {
    for (const session of sessions.values()) if (session.channels.has(channel)) session.res.write(payload);
  };

  const publish = (channel: string, frame: FrameJson) => {
    const schemaKey = JSON.stringify(frame.schema);
    const before = channels.get(channel);
    channels.set(channel, { last: frame, schemaKey });
    const message = before?.schemaKey === schemaKey ? { data: frame.data } : frame;
    broadcast(channel, `data: ${JSON.stringify({ channel, data: message })}\n\n`);
  };

  /**
   * Starts a ds/ channel's stream unless it runs. As Grafana's does, it forwards the plugin's
   * packets as they are (schema and all) and keeps none for later subscribers; a failed stream
   * is a channel error, and the channel's next subscription starts it again.
   */
  const runDataSourceChannel = (channel: string): string | undefined => {
    if (running.has(channel)) return undefined;
    const [, uid = '', ...path] = channel.split('/');
    const stop = options.dataSourceStream?.(
      uid,
      path.join('/'),
      (packet) => broadcast(channel, `data: ${JSON.stringify({ channel, data: packet })}\n\n`),
      (error) => {
        running.delete(channel);
        broadcast(channel, `event: channel-error\ndata: ${JSON.stringify({ channel, error })}\n\n`);
      },
    );
    if (!stop) return `no data source with uid "${uid}" has a backend here`;
    running.set(channel, stop);
    return undefined;
  };

  /** Stops a ds/ channel's stream once no page listens to it (Grafana ends RunStream then). */
  const releaseDataSourceChannel = (channel: string) => {
    if ([...sessions.values()].some((s) => s.channels.has(channel))) return;
    running.get(channel)?.();
    running.delete(channel);
  };

  app.addHook('preClose', async () => {
    for (const session of sessions.values()) session.res.end();
    sessions.clear();
    for (const stop of running.values()) stop();
    running.clear();
  });

  app.post('/api/live/push/:streamId', async (request, reply) => {
    const expected = await options.token();
    const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
    if (!expected || !match || !timingSafeEqual(digest(match[1]!.trim()), digest(expected))) {
      return reply.status(401).send({ message: 'Unauthorized' });
    }
    const { streamId } = request.params as { streamId: string };
    const body = Buffer.isBuffer(request.body) ? request.body.toString('utf8') : String(request.body ?? '');
    let frames;
    try {
      frames = toFrames(parseLines(body));
    } catch (err) {
      if (err instanceof LineProtocolError) return reply.status(400).send({ message: err.message });
      throw err;
    }
    for (const { key, frame } of frames) publish(`stream/${streamId}/${key}`, frame);
    return reply.status(200).send();
  });

  app.post('/api/live/publish', async (request, reply) => {
    const { channel, data } = (request.body ?? {}) as { channel?: string; data?: FrameJson };
    if (typeof channel !== 'string' || !/^stream\/[A-Za-z0-9_\-=.]+\/[A-Za-z0-9_\-=./]+$/.test(channel)) {
      return reply.status(400).send({ message: 'only stream channels can be published to here' });
    }
    if (!data || typeof data !== 'object' || !data.schema || !data.data) {
      return reply.status(400).send({ message: 'data must be a frame with schema and data' });
    }
    publish(channel, data);
    return {};
  });

  app.get('/api/live/preview/events', (request, reply) => {
    const { session: id } = request.query as { session?: string };
    if (!id || id.length > 64) return reply.status(400).send({ message: 'session is required' });
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 1000\n\n');
    sessions.get(id)?.res.end();
    const session: Session = { res, channels: new Set() };
    sessions.set(id, session);
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), options.heartbeatMs ?? 15_000);
    res.on('close', () => {
      clearInterval(heartbeat);
      if (sessions.get(id) === session) sessions.delete(id);
      for (const channel of session.channels)
        if (channel.startsWith('ds/')) releaseDataSourceChannel(channel);
    });
  });

  app.post('/api/live/preview/:action', async (request, reply) => {
    const { action } = request.params as { action: string };
    const { session: id, channel: orgChannel } = (request.body ?? {}) as {
      session?: string;
      channel?: string;
    };
    const session = id ? sessions.get(id) : undefined;
    if (!session) return reply.status(409).send({ message: 'no open Live connection for this session' });
    const channel = orgChannel?.replace(/^1\//, '') ?? '';
    if (!/^(stream|ds|plugin|grafana)\/[^/]+\/.+$/.test(channel)) {
      return reply.status(400).send({ message: `invalid channel "${orgChannel ?? ''}"` });
    }
    const scope = channel.split('/')[0];
    if (scope !== 'stream' && scope !== 'ds') {
      return reply.status(400).send({ message: `${scope} channels are not supported by the preview` });
    }
    if (action === 'subscribe') {
      if (scope === 'ds') {
        const refused = runDataSourceChannel(channel);
        if (refused) return reply.status(404).send({ message: refused });
      }
      session.channels.add(channel);
      const last = channels.get(channel)?.last;
      if (last) session.res.write(`data: ${JSON.stringify({ channel, data: last })}\n\n`);
    } else if (action === 'unsubscribe') {
      session.channels.delete(channel);
      if (scope === 'ds') releaseDataSourceChannel(channel);
    } else {
      return reply.status(404).send({ message: 'unknown action' });
    }
    return {};
  });
}
