import fc from 'fast-check';
import { decodeHeld, encodeHeld, type Held } from '../../src/store/held';

const text = fc.string({ unit: fc.constantFrom('a', 'b', '\x1f', '\x00', '#', '[', ',', '1', 'é') });

describe('the stored form of a record', () => {
  // -0 reads back as 0 (as it did from JSON): the same contribution to every cell.
  const number = fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v));

  it('reads back exactly, whatever the values hold', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -1e15, max: 1e15 }), number),
        fc.array(
          text.map((v) => v.replaceAll('\x1f', ' ')),
          { minLength: 2, maxLength: 2 },
        ),
        fc.array(fc.option(number), {
          minLength: 3,
          maxLength: 3,
        }),
        fc.array(fc.option(text), { minLength: 1, maxLength: 1 }),
        fc.oneof(text, fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String)),
        (time, dims, metrics, distinct, cursor) => {
          const held: Held = { time, dims, metrics, distinct, cursor };
          expect(decodeHeld(encodeHeld(held), 2, 3, 1)).toEqual(held);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('is short for a typical record', () => {
    const held: Held = {
      time: Date.UTC(2026, 10, 27, 18, 47, 12, 345),
      dims: ['US', 'mobile'],
      metrics: [123.45, 1234],
      distinct: ['u123456'],
      cursor: '1764269232345678',
    };
    expect(encodeHeld(held)).toBe(
      [
        Date.UTC(2026, 10, 27, 18, 47, 12, 345).toString(36),
        'US',
        'mobile',
        '123.45',
        '1234',
        'u123456',
        '#' + 1764269232345678n.toString(36),
      ].join('\x1f'),
    );
    expect(encodeHeld(held).length).toBeLessThanOrEqual(50);
  });
});
