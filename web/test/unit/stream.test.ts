import { describe, expect, it } from 'vitest';

import { downstreamUrl } from '../../src/net/stream';

describe('the downstream over HTTP (§9.8)', () => {
  const token = '0123456789abcdef0123456789abcdef';
  it('is beside the WebSocket, with its origin and the matching http scheme', () => {
    expect(downstreamUrl('ws://127.0.0.1:8080/ws?down=http', `down ${token}`)).toBe(`http://127.0.0.1:8080/down/${token}`);
    expect(downstreamUrl('wss://drop.example.org/pq/ws?down=http', `down ${token}`)).toBe(`https://drop.example.org/pq/down/${token}`);
  });
  it('takes only a well-formed token message', () => {
    for (const m of ['', 'down', `down ${token.toUpperCase()}`, `down ${token}0`, `down ../${token.slice(3)}`, `Down ${token}`, `down  ${token}`]) {
      expect(downstreamUrl('ws://h/ws', m)).toBeUndefined();
    }
  });
});
