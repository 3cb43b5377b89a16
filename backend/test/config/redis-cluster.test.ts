import { parseRedisUrl } from '../../src/config/redis-url';
import { loadConfig } from '../../src/config/load';
import { configFiles, loadFile, problemsOf, problemsOfEnv } from './helpers';

const DEMO = `datasets:\n  - name: demo\n    source: { kind: demo }\n`;
const files = configFiles();
afterAll(() => files.cleanup());

describe('a Redis Cluster URL', () => {
  it('names the nodes, the user and the password', () => {
    expect(parseRedisUrl('redis+cluster://app:p%40ss@10.0.0.1:7000,cache-b:7001,[::1]:7002')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'cache-b', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      username: 'app',
      password: 'p@ss',
      tls: false,
    });
    expect(parseRedisUrl('rediss+cluster://:secret@a:1/0')).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'a', port: 1 }],
      password: 'secret',
      tls: true,
    });
    expect(parseRedisUrl('redis://cache:6379/2')).toEqual({ kind: 'server', url: 'redis://cache:6379/2' });
  });

  it.each([
    ['redis+cluster://', 'names no node: write redis+cluster://host:port,host:port'],
    ['redis+cluster://a:7000,b', 'node "b" must be host:port, with a port from 1 to 65535'],
    ['redis+cluster://a:70000', 'node "a:70000" must be host:port, with a port from 1 to 65535'],
    ['redis+cluster://a:7000/2', 'a Redis Cluster has only database 0; drop "/2"'],
    ['redis+cluster://a:7000?tls=1', 'a redis+cluster:// URL takes no query or fragment'],
  ])('refuses %s', (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(message);
  });

  it('is taken from the config file and from REDIS_URL', () => {
    const url = 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001';
    expect(loadFile(files.write(`redis: { url: "${url}" }\n${DEMO}`)).redis).toEqual({
      url,
      prefix: 'livesync',
    });
    expect(loadConfig({ REDIS_URL: url }).redis).toEqual({ url, prefix: 'livesync' });
  });

  it('stops start-up naming the key and the problem, never the password', () => {
    const file = files.write(`redis: { url: "redis+cluster://:hunter2@cache-a:7000,cache-b" }\n${DEMO}`);
    expect(problemsOf(file)).toEqual([
      'redis.url: node "cache-b" must be host:port, with a port from 1 to 65535',
    ]);
    expect(problemsOfEnv({ REDIS_URL: 'redis+cluster://:hunter2@/1' })).toEqual([
      'environment variable REDIS_URL: a Redis Cluster has only database 0; drop "/1"',
    ]);
  });
});
