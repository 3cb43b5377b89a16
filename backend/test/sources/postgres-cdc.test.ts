import {
  comparePositions,
  decodePosition,
  encodePosition,
  formatLsn,
  parseLsn,
  type CdcPosition,
} from '../../src/sources/postgres-cdc-position';
import { epochMsOfText } from '../../src/sources/postgres-cdc-rows';

describe('CDC positions', () => {
  const positions: CdcPosition[] = [
    { phase: 'snapshot', slotLsn: parseLsn('0/16B3748'), rows: 0, key: '' },
    { phase: 'snapshot', slotLsn: parseLsn('0/16B3748'), rows: 5000, key: 'a:b' },
    { phase: 'stream', lsn: parseLsn('0/16B3748'), partial: null },
    {
      phase: 'stream',
      lsn: parseLsn('0/16B3748'),
      partial: { commitLsn: parseLsn('0/16B4000'), changes: 500 },
    },
    {
      phase: 'stream',
      lsn: parseLsn('0/16B3748'),
      partial: { commitLsn: parseLsn('0/16B4000'), changes: 1000 },
    },
    { phase: 'stream', lsn: parseLsn('0/16B4100'), partial: null },
    { phase: 'stream', lsn: parseLsn('1/0'), partial: null },
  ];

  test('round-trip through the engine position, whatever the key holds', () => {
    for (const position of positions) expect(decodePosition(encodePosition(position))).toEqual(position);
  });

  test('order: the snapshot by rows read, then the stream by LSN and changes applied', () => {
    for (let i = 0; i < positions.length; i++) {
      for (let j = 0; j < positions.length; j++) {
        expect(Math.sign(comparePositions(positions[i]!, positions[j]!))).toBe(Math.sign(i - j));
      }
    }
  });

  test('LSNs in PostgreSQL text form', () => {
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848');
    expect(parseLsn('1/0')).toBe(1n << 32n);
    expect(() => parseLsn('16-B374')).toThrow('"16-B374" is not an LSN');
  });

  test('a polling cursor is not a CDC position', () => {
    expect(() => decodePosition({ cursor: '1767571200000000', id: '42' })).toThrow(
      '"1767571200000000" is not an LSN',
    );
  });
});

describe('time values in text form', () => {
  test('timestamptz, timestamp and date, rounded down to milliseconds like floor(extract(epoch) * 1000)', () => {
    expect(epochMsOfText('2026-01-05 00:00:00+00')).toBe(Date.UTC(2026, 0, 5));
    expect(epochMsOfText('2026-01-05 01:02:03.456789+00')).toBe(Date.UTC(2026, 0, 5, 1, 2, 3, 456));
    expect(epochMsOfText('2026-01-05 01:02:03.5+05:30')).toBe(Date.UTC(2026, 0, 4, 19, 32, 3, 500));
    expect(epochMsOfText('2026-01-05 01:02:03')).toBe(Date.UTC(2026, 0, 5, 1, 2, 3));
    expect(epochMsOfText('2026-01-05')).toBe(Date.UTC(2026, 0, 5));
    expect(epochMsOfText('1969-12-31 23:59:59.9995+00')).toBe(-1);
  });

  test('anything else is not a time', () => {
    expect(epochMsOfText('infinity')).toBeNull();
    expect(epochMsOfText('0044-03-15 00:00:00+00 BC')).toBeNull();
    expect(epochMsOfText('1767571200000')).toBeNull();
  });
});
