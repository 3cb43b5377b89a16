import {
  compareCursorValues,
  cursorValue,
  inferCursorType,
  instantValue,
  rewindCursor,
  timestampMs,
} from '../../src/sources/cursor-type';
import { linkTarget } from '../../src/sources/link-header';

const sign = (n: number) => Math.sign(n);

describe('cursor types', () => {
  it('orders RFC 3339 timestamps as instants, whatever their spelling', () => {
    // Trimmed fractions (Go's RFC3339Nano), padded ones, offsets, lower case, a space for T.
    const ordered = [
      '2024-01-01T00:00:05Z',
      '2024-01-01T00:00:05.000000001Z',
      '2024-01-01T00:00:05.0000001Z',
      '2024-01-01T00:00:05.000001Z',
      '2024-01-01T00:00:05.05Z',
      '2024-01-01T00:00:05.5Z',
      '2024-01-01T01:00:05.75+01:00',
      '2024-01-01T00:00:06Z',
      '2023-12-31T19:00:07-05:00',
    ];
    for (let i = 1; i < ordered.length; i++) {
      expect(sign(compareCursorValues('timestamp', ordered[i - 1]!, ordered[i]!))).toBe(-1);
      expect(sign(compareCursorValues('timestamp', ordered[i]!, ordered[i - 1]!))).toBe(1);
    }
    expect(compareCursorValues('timestamp', '2024-01-01T00:00:05.500Z', '2024-01-01t01:00:05.5+01:00')).toBe(
      0,
    );
    expect(compareCursorValues('timestamp', '2024-01-01 00:00:05Z', '2024-01-01T00:00:05.000z')).toBe(0);
    // Text order would put "…:05.5Z" before "…:05Z".
    expect('2024-01-01T00:00:05.5Z' < '2024-01-01T00:00:05Z').toBe(true);
  });

  it('keeps nanoseconds exact', () => {
    expect(cursorValue('timestamp', '2024-01-01T00:00:05.123456789Z')).toBe('1704067205.123456789');
    expect(cursorValue('timestamp', '1969-12-31T23:59:59.5Z')).toBe('-0.5');
    expect(sign(compareCursorValues('epoch_ns', '1704067205123456789', '1704067205123456790'))).toBe(-1);
    expect(timestampMs('2024-01-01T00:00:05.9999Z')).toBe(1_704_067_205_999);
  });

  it('refuses what is not RFC 3339 or not a valid date', () => {
    for (const text of [
      '2024-01-01',
      '2024-01-01T00:00:05',
      '2024-02-30T00:00:00Z',
      '2024-01-01T24:00:00Z',
      'soon',
    ]) {
      expect(cursorValue('timestamp', text)).toBeNull();
    }
    expect(cursorValue('epoch_ms', '2024-01-01T00:00:05Z')).toBeNull();
    expect(() => compareCursorValues('number', '1', 'x')).toThrow('as number cursors');
  });

  it('infers a timestamp or a number, and nothing else', () => {
    expect(inferCursorType('2024-01-01T00:00:05.5+02:00')).toBe('timestamp');
    expect(inferCursorType('1704067205123')).toBe('number');
    expect(inferCursorType('abc')).toBeNull();
  });

  it('moves a cursor back by a duration in its own unit and spelling, never forward', () => {
    expect(rewindCursor('timestamp', '2024-01-01T00:00:35.123456789Z', 30_000)).toBe(
      '2024-01-01T00:00:05.123456789Z',
    );
    expect(rewindCursor('timestamp', '2024-01-01T02:00:35+02:00', 30_500)).toBe('2024-01-01T02:00:04+02:00');
    expect(rewindCursor('timestamp', '2024-01-01T00:00:35.5Z', 250)).toBe('2024-01-01T00:00:35.2Z');
    expect(rewindCursor('epoch_ms', '1704067235123', 30_000)).toBe('1704067205123');
    expect(rewindCursor('epoch_s', '1704067235', 1_500)).toBe('1704067233');
    expect(rewindCursor('epoch_us', '1704067235000001', 1)).toBe('1704067234999001');
    expect(rewindCursor('epoch_ns', '1704067235000000001', 1)).toBe('1704067234999000001');
    expect(() => rewindCursor('number', '17', 1)).toThrow('cannot be moved back');
  });

  it('spells an instant in the unit of each time type', () => {
    expect(instantValue('timestamp', 1_704_067_205_500)).toBe('1704067205.5');
    expect(instantValue('epoch_s', 1_704_067_205_500)).toBe('1704067205.5');
    expect(instantValue('epoch_ms', 1_704_067_205_500)).toBe('1704067205500');
    expect(instantValue('epoch_ns', 1_704_067_205_500)).toBe('1704067205500000000');
  });
});

describe('Link header', () => {
  const base = 'http://api.test/v1/events?page=1';

  it('finds rel="next" among several links and resolves it against the request', () => {
    const header =
      '<http://api.test/v1/events?page=1>; rel="first", </v1/events?page=2>; rel="next", <?page=9>; rel=last';
    expect(linkTarget(header, 'next', base)).toBe('http://api.test/v1/events?page=2');
    expect(linkTarget(header, 'last', base)).toBe('http://api.test/v1/events?page=9');
  });

  it('reads quoted parameters with commas, several relation types and any case', () => {
    const header = '<a?x=1>; title="a, b; c"; rel="prev", <b?x=2>; REL="Next Last"; type="application/json"';
    expect(linkTarget(header, 'next', base)).toBe('http://api.test/v1/b?x=2');
  });

  it('has no next page without such a link', () => {
    expect(linkTarget(null, 'next', base)).toBeNull();
    expect(linkTarget('<b>; rel="prev"', 'next', base)).toBeNull();
    // Only the first rel parameter counts.
    expect(linkTarget('<b>; rel="prev"; rel="next"', 'next', base)).toBeNull();
  });
});
