import type { Random } from './random';

type Weights = readonly (readonly [string, number])[];

/** `'US:28, DE:9'` → [['US', 28], ['DE', 9]]: keeps long vocabularies on one readable line. */
function weights(text: string): Weights {
  return text.split(',').map((entry) => {
    const [value = '', weight = '1'] = entry.trim().split(':');
    return [value, Number(weight)] as const;
  });
}

/** Vocabularies for dimension names a web-analytics dataset is likely to use, with realistic skews. */
const VOCABULARIES: Record<string, Weights> = {
  country: weights(
    'US:28, DE:9, GB:8, IN:8, FR:6, BR:6, JP:5, CA:4, ES:3, IT:3, NL:3, AU:3, MX:3, PL:2, SE:2, KR:2',
  ),
  device: weights('desktop:55, mobile:38, tablet:7'),
  page: weights(
    '/:30, /docs:14, /pricing:12, /blog:10, /features:8, /login:8, /signup:6, /checkout:4, /about:3, /contact:2',
  ),
  browser: weights('Chrome:64, Safari:19, Edge:5, Firefox:3, Samsung Internet:3, Opera:2'),
  os: weights('Windows:40, Android:25, iOS:18, macOS:13, Linux:4'),
  referrer: weights('direct:40, google:35, twitter:7, newsletter:6, github:5, bing:4, reddit:3'),
  plan: weights('free:70, pro:20, team:8, enterprise:2'),
  region: weights('us-east:35, eu-west:30, ap-south:15, us-west:12, sa-east:8'),
  status: weights('200:92, 304:4, 404:3, 500:1'),
};

const ALIASES: Record<string, string> = {
  source: 'referrer',
  channel: 'referrer',
  platform: 'os',
  tier: 'plan',
};

/** Any other dimension: a small vocabulary with a Zipf-like skew. */
const GENERIC: Weights = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'].map(
  (word, rank) => [word, 1 / (rank + 1)] as const,
);

/** Checkout pages sell; the rest of the site rarely does. */
const PURCHASE_CHANCE = { checkout: 0.3, other: 0.01 } as const;

export function dimensionValue(random: Random, name: string): string {
  const key = name.toLowerCase();
  return random.weighted(VOCABULARIES[key] ?? VOCABULARIES[ALIASES[key] ?? ''] ?? GENERIC);
}

/** What a metric's value may depend on besides its name. */
export interface Visit {
  page: string | undefined;
}

export function metricValue(random: Random, name: string, visit: Visit): number {
  const key = name.toLowerCase();
  if (/amount|revenue|price|total/.test(key)) {
    const chance = visit.page === '/checkout' ? PURCHASE_CHANCE.checkout : PURCHASE_CHANCE.other;
    return random.chance(chance) ? cents(random.logNormal(39, 0.8)) : 0;
  }
  if (/(^|_)ms$|duration|latency|time/.test(key)) return Math.max(1, Math.round(random.logNormal(850, 0.9)));
  if (/count|quantity|items|clicks/.test(key)) return 1 + Math.floor(random.logNormal(1, 0.8));
  if (/score|rating/.test(key)) return 1 + random.int(5);
  return cents(random.logNormal(10, 1));
}

/** Returning visitors dominate: low user numbers are drawn far more often than high ones. */
export function distinctValue(random: Random, name: string): string {
  const key = name.toLowerCase();
  if (key.includes('user') || key.includes('customer')) return `u${skewed(random, 20_000)}`;
  if (key.includes('session')) return `s${skewed(random, 200_000)}`;
  return `${key}-${skewed(random, 1_000)}`;
}

function skewed(random: Random, population: number): number {
  const u = random.next();
  return 1 + Math.floor(population * u * u);
}

function cents(value: number): number {
  return Math.max(0.01, Math.round(value * 100) / 100);
}
