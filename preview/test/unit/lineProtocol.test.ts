import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineProtocolError, parseLines, toFrames } from '../../server/lineProtocol';

test('parses measurements, escaped tags, every field type and nanosecond times', () => {
  const [metric] = parseLines(
    'my\\ data,host=a\\,b,zone=eu x=1.5,n=3i,u=4u,ok=t,s="say \\"hi\\"" 1700000000123456789',
  );
  assert.deepEqual(metric, {
    measurement: 'my data',
    tags: { host: 'a,b', zone: 'eu' },
    fields: { x: 1.5, n: 3, u: 4, ok: true, s: 'say "hi"' },
    timeNs: 1700000000123456789n,
  });
});

test('skips blank lines and comments; a line without a time is now', () => {
  const metrics = parseLines('# comment\n\ndemo v=1\n', 42_000_000n);
  assert.equal(metrics.length, 1);
  assert.equal(metrics[0]?.timeNs, 42_000_000n);
});

test('names the line that is wrong', () => {
  assert.throws(
    () => parseLines('ok v=1\nbad v=what'),
    (err: unknown) => {
      assert.ok(err instanceof LineProtocolError);
      assert.match(err.message, /^line 2: field v has an invalid value "what"/);
      return true;
    },
  );
});

test('makes wide frames as Grafana Live does: time, then sorted fields as float64, tags as labels', () => {
  const frames = toFrames(parseLines('demo,dc=x version=7i,age_seconds=0.5,busy=f 1700000000001000000'));
  assert.equal(frames.length, 1);
  assert.equal(frames[0]?.key, 'demo');
  assert.deepEqual(frames[0]?.frame, {
    schema: {
      name: 'demo',
      fields: [
        { name: 'time', type: 'time', typeInfo: { frame: 'time.Time' } },
        {
          name: 'age_seconds',
          type: 'number',
          typeInfo: { frame: 'float64', nullable: true },
          labels: { dc: 'x' },
        },
        { name: 'busy', type: 'boolean', typeInfo: { frame: 'bool', nullable: true }, labels: { dc: 'x' } },
        {
          name: 'version',
          type: 'number',
          typeInfo: { frame: 'float64', nullable: true },
          labels: { dc: 'x' },
        },
      ],
    },
    data: { values: [[1700000000001], [0.5], [false], [7]] },
  });
});

test('one frame per measurement and time, in the order of the lines', () => {
  const frames = toFrames(parseLines('a v=1 1000000\nb v=2 1000000\na v=3 2000000\na w=4 1000000'));
  assert.deepEqual(
    frames.map((f) => [f.key, f.frame.data.values]),
    [
      ['a', [[1], [1], [4]]],
      ['b', [[1], [2]]],
      ['a', [[2], [3]]],
    ],
  );
});
