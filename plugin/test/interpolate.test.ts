import { expandFilters, expandList, expandValue, interpolateSingle } from '../src/interpolate';
import { FakeTemplateSrv } from './helpers/templateSrv';

const templateSrv = new FakeTemplateSrv().setVariables({
  metric: ['amount', 'fee'],
  fn: ['sum', 'max'],
  country: ['FR', 'DE'],
  one: 'orders',
  none: [],
});

describe('expandValue', () => {
  it('expands a multi-value variable in place, and two of them into their product', () => {
    expect(expandValue(templateSrv, 'sum($metric)')).toEqual(['sum(amount)', 'sum(fee)']);
    expect(expandValue(templateSrv, '${fn}([[metric]])')).toEqual([
      'sum(amount)',
      'sum(fee)',
      'max(amount)',
      'max(fee)',
    ]);
  });

  it('leaves literal text and unknown variables alone, and honours an explicit format', () => {
    expect(expandValue(templateSrv, 'count')).toEqual(['count']);
    expect(expandValue(templateSrv, '$unknown')).toEqual(['$unknown']);
    expect(expandValue(templateSrv, '${country:csv}')).toEqual(['FR,DE']);
  });

  it('lets scoped variables (repeated panels) win', () => {
    expect(expandValue(templateSrv, '$country', { country: { text: 'US', value: 'US' } })).toEqual(['US']);
  });

  it('gives nothing for a variable with no value selected', () => {
    expect(expandValue(templateSrv, '$none')).toEqual([]);
  });
});

describe('lists and filters', () => {
  it('drops blanks and repeats from lists', () => {
    expect(expandList(templateSrv, ['$country', 'FR', ' ', '$none'])).toEqual(['FR', 'DE']);
  });

  it('takes the first value where only one fits', () => {
    expect(interpolateSingle(templateSrv, '$country')).toBe('FR');
    expect(interpolateSingle(templateSrv, '$one')).toBe('orders');
    expect(interpolateSingle(templateSrv, undefined)).toBe('');
  });

  it('merges filters that interpolate to the same dimension and drops empty ones', () => {
    const filters = { country: ['$country'], '${dim}': ['US', 'FR'], device: ['$none'] };
    expect(expandFilters(templateSrv, filters, { dim: { text: 'country', value: 'country' } })).toEqual({
      country: ['FR', 'DE', 'US'],
    });
  });
});
