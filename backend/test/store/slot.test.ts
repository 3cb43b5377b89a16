/**
 * Every key a piece of commands names is one of its dataset's, so in the Redis Cluster slot
 * of the dataset's hash tag (the cluster itself is tested in integration/cluster.test.ts).
 */
import { DatasetKeys } from '../../src/store/redis-keys';
import { assertKeysUnder, encodePiece } from '../../src/store/redis-pieces';

const keys = new DatasetKeys('ls', 'events');

describe('the keys of a piece', () => {
  it('may be any of the dataset’s', () => {
    const ops = [
      ['HSET', keys.records('0'), '1', 'r'],
      ['SADD', keys.bucketIndex(0), '1'],
      ['HSET', keys.block(60_000, 1, 'g', 0), '0', 'x'],
      ['PFMERGE', keys.scratch('t', 0), keys.sketch(60_000, 1, 0, 0, 'g')],
      ['RENAME', keys.scratch('t', 0), keys.sketch(60_000, 1, 0, 0, 'g')],
      ['UNLINK', keys.block(60_000, 1, 'g', 0), keys.bucketIndex(0)],
      ['ZADD', keys.bucketIndexes, '0', 'not a key: a member'],
    ];
    expect(() => assertKeysUnder(ops, keys.prefix)).not.toThrow();
    expect(encodePiece(ops, keys.prefix).length).toBeGreaterThan(0);
  });

  it('are refused outside the dataset, in any position a command takes keys', () => {
    const other = new DatasetKeys('ls', 'orders');
    expect(() => encodePiece([['HSET', other.records('0'), '1', 'r']], keys.prefix)).toThrow(
      'a piece of ls:{events}:* names HSET on a key outside the dataset: ls:{orders}:rec:0',
    );
    expect(() =>
      assertKeysUnder([['PFMERGE', keys.scratch('t', 0), other.sketch(1, 1, 0, 0, 'g')]], keys.prefix),
    ).toThrow('outside the dataset');
    expect(() => assertKeysUnder([['RENAME', keys.scratch('t', 0), 'ls:cache:x']], keys.prefix)).toThrow(
      'outside the dataset',
    );
  });

  it('are refused for a command whose keys are not known', () => {
    expect(() => assertKeysUnder([['EVAL', 'return 1', '0']], keys.prefix)).toThrow(
      'a piece cannot run EVAL: redis-pieces.ts does not know which of its arguments are keys',
    );
  });

  it('carry the dataset as their only hash tag', () => {
    expect(keys.prefix).toBe('ls:{events}:');
    expect(() => new DatasetKeys('ls{x}', 'events')).toThrow('may not hold { or }');
  });
});
