// Runs natively: node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { makeConflict, makeEvent, runResolve } from '../weir-plugin.js';
import { @@TYPE@@ } from '../@@NAME@@.js';

const conflict = (local, incoming) =>
  makeConflict({
    local: { id: 1n, version: local },
    incoming: makeEvent({ op: 'u', table: 'customers', key: { id: 1n }, after: { id: 1n, version: incoming } }),
  });

test('the higher version wins', () => {
  const plugin = new @@TYPE@@({ column: 'version' });
  assert.deepEqual(runResolve(plugin, conflict(2n, 3n)), { resolution: 'take-incoming' });
  assert.deepEqual(runResolve(plugin, conflict(5n, 4n)), { resolution: 'keep-local' });
  assert.deepEqual(runResolve(plugin, conflict(5n, 5n)), { resolution: 'keep-local' });
});

test('a bad config is refused', () => {
  assert.throws(() => new @@TYPE@@({ colum: 'x' }));
});
