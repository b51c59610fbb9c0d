// Native tests: `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { decimal, makeEvent, runTransform } from '../weir-plugin.js';
import { PiiMask, classify, isCard, isPhone, maskDigits, maskText } from '../pii-mask.js';

test('detectors and shapes', () => {
  assert.equal(classify('123-45-6789'), 'ssn');
  assert.equal(classify('3782 822463 10005'), 'card');
  assert.equal(classify('+1 555 123 4567'), 'phone');
  assert.equal(classify('ada@example.com'), 'email');
  assert.equal(classify('Ada Lovelace'), null);
  assert.equal(isCard('4111111111111112'), false);
  assert.equal(isPhone('192.168.100.200'), false);
  assert.equal(classify('192.168.100.200'), 'ip');
  assert.equal(classify('256.1.1.1'), null);
  assert.equal(classify('912-70-1234'), 'ssn');
  assert.equal(maskDigits('+1 (555) 123-4567', 4), '+* (***) ***-4567');
  assert.equal(maskText('Zoë Ørsted', 2), '********ed');
});

test('the default masks what the detectors recognise', () => {
  const [[out]] = runTransform(new PiiMask({}), [
    makeEvent({ key: { id: 1n }, after: { id: 1n, email: 'ada@example.com', n: 'hi' } }),
  ]);
  assert.deepEqual(out.after, { id: 1n, email: 'a***@example.com', n: 'hi' });
});

test('rules hash, drop, and redact what is not text', () => {
  const plugin = new PiiMask({
    rules: [
      { columns: ['email'], action: 'hash' },
      { columns: ['ssn'], action: 'drop' },
      { columns: ['balance'], action: 'mask' },
    ],
    hash_key: 'Jefe',
  });
  const [[out]] = runTransform(plugin, [
    makeEvent({
      after: { email: 'what do ya want for nothing?', ssn: '123-45-6789', balance: decimal('1.50') },
    }),
  ]);
  // RFC 4231, test case 2.
  assert.deepEqual(out.after, {
    email: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    balance: null,
  });
});

test('a bad config names every problem', () => {
  assert.throws(
    () => new PiiMask({ rules: [{ action: 'hash', columns: [] }], tables: [] }),
    (e) =>
      e.message.includes('rules[0].columns: an empty list matches no column') &&
      e.message.includes('rules[0].action: `hash` needs `hash_key`') &&
      e.message.includes('tables: an empty list matches no table'),
  );
});
