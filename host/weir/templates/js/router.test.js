// Runs natively: node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { decodeBatch, encodeBatch, makeEvent } from '../weir-plugin.js';
import { @@TYPE@@ } from '../@@NAME@@.js';

test('routes by table under the prefix', () => {
  const plugin = new @@TYPE@@({ prefix: 'lake' });
  const [event] = decodeBatch(encodeBatch([makeEvent({ table: 'customers', key: { id: 1n }, after: { id: 1n } })]));
  assert.deepEqual(plugin.route(event), ['lake.customers']);
});

test('a bad config is refused', () => {
  assert.throws(() => new @@TYPE@@({ prefix: '' }));
});
