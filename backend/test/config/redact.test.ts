import { redactUrl } from '../../src/config/load';

describe('redactUrl', () => {
  it.each([
    ['postgres://app:s3cret@db:5432/shop', 'postgres://app:***@db:5432/shop'],
    ['postgresql://app:p%40ss@db/shop?sslmode=require', 'postgresql://app:***@db/shop?sslmode=require'],
    ['redis://:s3cret@cache:6379/0', 'redis://:***@cache:6379/0'],
    ['rediss://default:s3cret@cache:6380', 'rediss://default:***@cache:6380'],
    ['postgres://app:pa@ss/w0rd@db/shop', 'postgres://app:***@db/shop'],
    [
      'postgres://db/shop?user=app&password=s3cret&sslmode=require',
      'postgres://db/shop?user=app&password=***&sslmode=require',
    ],
    ['https://api.example.com/v1?token=abc&limit=5', 'https://api.example.com/v1?token=***&limit=5'],
    ['/api/stream?apiKey=abc', '/api/stream?apiKey=***'],
    ["host=db user=app password='s3 cret' dbname=shop", 'host=db user=app password=*** dbname=shop'],
  ])('%s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });

  it.each([
    'postgres://app@db/shop',
    'redis://cache:6379/0',
    'unix:///run/redis.sock',
    'https://x.test/a@b',
    'events',
  ])('leaves %s alone', (input) => {
    expect(redactUrl(input)).toBe(input);
  });
});
