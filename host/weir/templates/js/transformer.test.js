// Runs natively: node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { makeEvent, runTransform } from '../weir-plugin.js';
import { @@TYPE@@ } from '../@@NAME@@.js';

test('upper-cases the configured column only', () => {
  const plugin = new @@TYPE@@({ column: 'name' });
  const event = makeEvent({ table: 'customers', key: { id: 1n }, after: { id: 1n, name: 'ada', city: 'london' } });
  const [[out]] = runTransform(plugin, [event]);
  assert.deepEqual(out.after, { id: 1n, name: 'ADA', city: 'london' });
});

test('a bad config is refused', () => {
  assert.throws(() => new @@TYPE@@({ colum: 'x' }));
});
