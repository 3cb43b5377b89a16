import type { Random } from './random';

/** Values with weights, drawn in proportion to them. */
class Vocabulary {
  private readonly values: string[] = [];
  private readonly cumulative: number[] = [];

  /** `'US:28, DE:9'`: keeps a long vocabulary on one readable line. */
  constructor(text: string) {
    let total = 0;
    for (const entry of text.split(',')) {
      const [value = '', weight = '1'] = entry.trim().split(':');
      total += Number(weight);
      this.values.push(value);
      this.cumulative.push(total);
    }
  }

  pick(random: Random): string {
    const target = random.next() * (this.cumulative.at(-1) ?? 0);
    const index = this.cumulative.findIndex((bound) => target < bound);
    return this.values[index < 0 ? this.values.length - 1 : index] ?? '';
  }
}

/** Vocabularies for dimension names a web-analytics dataset is likely to use, with realistic skews. */
const VOCABULARIES: Record<string, Vocabulary> = {
  country: new Vocabulary(
    'US:28, DE:9, GB:8, IN:8, FR:6, BR:6, JP:5, CA:4, ES:3, IT:3, NL:3, AU:3, MX:3, PL:2, SE:2, KR:2',
  ),
  device: new Vocabulary('desktop:55, mobile:38, tablet:7'),
  page: new Vocabulary(
    '/:30, /docs:14, /pricing:12, /blog:10, /features:8, /login:8, /signup:6, /checkout:4, /about:3, /contact:2',
  ),
  browser: new Vocabulary('Chrome:64, Safari:19, Edge:5, Firefox:3, Samsung Internet:3, Opera:2'),
  os: new Vocabulary('Windows:40, Android:25, iOS:18, macOS:13, Linux:4'),
  referrer: new Vocabulary('direct:40, google:35, twitter:7, newsletter:6, github:5, bing:4, reddit:3'),
  plan: new Vocabulary('free:70, pro:20, team:8, enterprise:2'),
  region: new Vocabulary('us-east:35, eu-west:30, ap-south:15, us-west:12, sa-east:8'),
  status: new Vocabulary('200:92, 304:4, 404:3, 500:1'),
};

const ALIASES: Record<string, string> = {
  source: 'referrer',
  channel: 'referrer',
  platform: 'os',
  tier: 'plan',
};

/** Any other dimension: a small vocabulary with a Zipf-like skew. */
const GENERIC = new Vocabulary('alpha:24, beta:12, gamma:8, delta:6, epsilon:5, zeta:4, eta:3, theta:3');

/** Checkout pages sell; the rest of the site rarely does. */
const PURCHASE_CHANCE = { checkout: 0.3, other: 0.01 } as const;

/** What a metric's value may depend on besides its name. */
export interface Visit {
  page: string | undefined;
}

export type DimensionGenerator = (random: Random) => string;
export type MetricGenerator = (random: Random, visit: Visit) => number;
export type DistinctGenerator = (random: Random) => string;

export function dimensionGenerator(name: string): DimensionGenerator {
  const key = name.toLowerCase();
  const vocabulary = VOCABULARIES[key] ?? VOCABULARIES[ALIASES[key] ?? ''] ?? GENERIC;
  return (random) => vocabulary.pick(random);
}

/** Chosen by what the name suggests: money, a duration, a count, a score, or else a positive amount. */
export function metricGenerator(name: string): MetricGenerator {
  const key = name.toLowerCase();
  if (/amount|revenue|price|total/.test(key)) return purchase;
  if (/(^|_)ms$|duration|latency|time/.test(key))
    return (random) => Math.max(1, Math.round(random.logNormal(850, 0.9)));
  if (/count|quantity|items|clicks/.test(key)) return (random) => 1 + Math.floor(random.logNormal(1, 0.8));
  if (/score|rating/.test(key)) return (random) => 1 + random.int(5);
  return (random) => cents(random.logNormal(10, 1));
}

function purchase(random: Random, visit: Visit): number {
  const chance = visit.page === '/checkout' ? PURCHASE_CHANCE.checkout : PURCHASE_CHANCE.other;
  return random.chance(chance) ? cents(random.logNormal(39, 0.8)) : 0;
}

/** Returning visitors dominate: low numbers are drawn far more often than high ones. */
export function distinctGenerator(name: string): DistinctGenerator {
  const key = name.toLowerCase();
  if (key.includes('user') || key.includes('customer')) return (random) => `u${skewed(random, 20_000)}`;
  if (key.includes('session')) return (random) => `s${skewed(random, 200_000)}`;
  return (random) => `${key}-${skewed(random, 1_000)}`;
}

function skewed(random: Random, population: number): number {
  const u = random.next();
  return 1 + Math.floor(population * u * u);
}

function cents(value: number): number {
  return Math.max(0.01, Math.round(value * 100) / 100);
}
