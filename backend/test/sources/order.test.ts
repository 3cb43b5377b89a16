import { compareCursors, compareDecimals, compareIds, comparePositions } from '../../src/sources/order';

const sign = (n: number) => Math.sign(n);

describe('source order', () => {
  it('compares decimal text exactly, beyond the precision of a double', () => {
    expect(sign(compareDecimals('9007199254740993', '9007199254740992'))).toBe(1);
    expect(sign(compareDecimals('1704067200123456', '1704067200123457'))).toBe(-1);
    expect(sign(compareDecimals('-5', '3'))).toBe(-1);
    expect(sign(compareDecimals('-5', '-30'))).toBe(1);
    expect(sign(compareDecimals('1.25', '1.3'))).toBe(-1);
    expect(sign(compareDecimals('1.50', '1.5'))).toBe(0);
    expect(sign(compareDecimals('0.000000000000000001', '0'))).toBe(1);
    expect(() => compareDecimals('1e3', '1')).toThrow('cannot compare');
  });

  it('compares cursors as numbers when both are, else as text', () => {
    expect(sign(compareCursors('9', '10'))).toBe(-1);
    expect(sign(compareCursors('2024-01-02T00:00:00Z', '2024-01-10T00:00:00Z'))).toBe(-1);
  });

  it('compares integer ids numerically and other ids as text', () => {
    expect(sign(compareIds('9', '10'))).toBe(-1);
    expect(sign(compareIds('a9', 'a10'))).toBe(1);
    expect(
      sign(compareIds('123e4567-e89b-12d3-a456-426614174000', '223e4567-e89b-12d3-a456-426614174000')),
    ).toBe(-1);
  });

  it('orders positions by cursor, then id', () => {
    expect(sign(comparePositions({ cursor: '1', id: '9' }, { cursor: '2', id: '1' }))).toBe(-1);
    expect(sign(comparePositions({ cursor: '2', id: '10' }, { cursor: '2', id: '9' }))).toBe(1);
    expect(comparePositions({ cursor: '2', id: '9' }, { cursor: '2', id: '9' })).toBe(0);
  });
});
