// The JavaScript decoder against the host's encoder: tests/golden/wire
// holds a batch weir_core::wire wrote and what it contains (checked by
// host/weir-core/tests/wire_fixture.rs). Run from sdk/js: node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as w from '../weir-plugin.js';

const golden = new URL('../../../tests/golden/wire/', import.meta.url);
const batch = new Uint8Array(readFileSync(new URL('batch.bin', golden)));
const expected = JSON.parse(readFileSync(new URL('batch.json', golden), 'utf8'));

function neutral(v) {
  if (v === null) return ['null'];
  if (v === w.UNCHANGED) return ['unchanged'];
  switch (typeof v) {
    case 'boolean':
      return ['boolean', v];
    case 'bigint':
      return ['int', v.toString()];
    case 'number':
      return ['float', v];
    case 'string':
      return ['text', v];
  }
  if (v instanceof Uint8Array) return ['bytes', Buffer.from(v).toString('hex')];
  if (typeof v.value === 'bigint') return [v.kind, v.value.toString()];
  return [v.kind, v.value];
}

const row = (r) => (r === null ? null : r.names.map((n, i) => [n, neutral(r.values[i])]));

function describe(e) {
  const s = e.source;
  return {
    op: e.op,
    source: {
      connector: s.connector,
      database: s.database,
      schema: s.schema,
      table: s.table,
      position: s.position,
      txid: s.txid,
      commit_time_us: s.commitTimeUs.toString(),
      origin: s.origin,
    },
    key: row(e.key),
    before: row(e.before),
    after: row(e.after),
  };
}

test('decodes what the host encodes', () => {
  const events = w.decodeBatch(batch);
  assert.deepEqual(events.map(describe), expected);
  // Consecutive events of one table share their names array.
  assert.equal(events[0].after.names, events[1].after.names);
});

test('encodes what the host encodes', () => {
  assert.deepEqual(w.encodeBatch(w.decodeBatch(batch)), batch);
});

test('malformed batches are errors', () => {
  const cases = [
    [[], 'empty batch'],
    [[1, 0], 'wire version 1'],
    [[...batch.subarray(0, batch.length - 1)], 'malformed batch'],
    [[...batch, 0], 'bytes after the last event'],
    [[2, 1, 9, 0], 'unknown op'],
    [[2, 1, 0, 1], 'previous source'],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(
      () => w.decodeBatch(Uint8Array.from(bytes)),
      (e) => e instanceof w.WireError && e.message.includes(message),
      message,
    );
  }
  // Any truncation is an error, never another exception.
  for (let i = 0; i < batch.length; i++) {
    assert.throws(() => w.decodeBatch(batch.subarray(0, i)), w.WireError);
  }
});

test('patches and outcomes through the test driver', () => {
  class Redact {
    transform(event) {
      if (event.op === 'd') return w.DROP;
      if (event.op === 'r') return w.replace([w.newEvent('c', event.source, { after: { copy: true } })]);
      if (!event.after) throw new Error('no after image');
      event.setAfter('secret', null);
      event.remove('after', 0);
      return w.KEEP;
    }
  }
  const out = w.runTransform(new Redact(), [
    w.makeEvent({ after: { id: 1n, secret: 'x' } }),
    w.makeEvent({ op: 'd', before: { id: 1n } }),
    w.makeEvent({ op: 't' }),
    w.makeEvent({ op: 'r', table: 'src', after: { id: 1n } }),
  ]);
  assert.deepEqual(out[0][0].after, { secret: null });
  assert.deepEqual(out[3], [{ op: 'c', table: 'src', key: {}, before: null, after: { copy: true } }]);
  assert.throws(() => w.newEvent('x', out.source), /no op x/);
  assert.deepEqual(out[1], []);
  assert.deepEqual(out[2], w.fail('no after image'));
});

// The component exports, driven natively: the host is a stand-in that
// serves the config, and the batch comes from the encoder.
test('exportTransformer turns outcomes and patches into WIT values', () => {
  class Mask {
    constructor(config) {
      if (config.bad) throw new Error('bad config');
      this.column = config.column;
    }
    transform(event) {
      if (event.op === 'd') return w.DROP;
      if (event.op === 't') return w.fail('no truncates');
      if (event.op === 'r') throw new Error('boom');
      if (event.op === 'u' && event.after.get('id') === 9n) {
        const source = new w.Source('postgresql', 'db', '', 'fanout', '0/1', null, 7n, 'eu');
        return w.replace([
          w.newEvent('c', source, { key: { k: 1n }, after: { k: 1n, d: w.date(3) } }),
          w.newEvent('d', source, { before: { k: 2n } }),
        ]);
      }
      event.setAfter(this.column, '***');
      event.setAfter('n', 5n);
      event.remove('after', 0);
    }
  }
  const host = (config) => ({ config: () => JSON.stringify(config), log() {} });
  assert.throws(() => w.exportTransformer(Mask, host({ bad: true })).init(), /bad config/);
  const { init, transform } = w.exportTransformer(Mask, host({ column: 'email' }));
  init();
  const batch = w.encodeBatch([
    w.makeEvent({ after: { id: 1n, email: 'a@b.co', n: 0n } }),
    w.makeEvent({ op: 'd', before: { id: 1n } }),
    w.makeEvent({ op: 't' }),
    w.makeEvent({ op: 'r', after: { id: 2n } }),
    w.makeEvent({ op: 'u', after: { id: 3n } }),
    w.makeEvent({ op: 'u', after: { id: 9n } }),
  ]);
  // The WIT record of the new events' source.
  const fanoutSource = {
    connector: 'postgresql',
    database: 'db',
    schema: '',
    table: 'fanout',
    position: '0/1',
    txid: undefined,
    commitTimeUs: 7n,
    origin: 'eu',
  };
  assert.deepEqual(transform(batch), [
    {
      tag: 'patch',
      val: [
        { image: 'after', index: 1, value: { tag: 'text', val: '***' } },
        { image: 'after', index: 2, value: { tag: 'int', val: 5n } },
        { image: 'after', index: 0, value: undefined },
      ],
    },
    { tag: 'drop' },
    { tag: 'failed', val: 'no truncates' },
    { tag: 'failed', val: 'boom' },
    // `email` is not in the after image: setAfter changes nothing.
    { tag: 'patch', val: [{ image: 'after', index: 0, value: undefined }] },
    {
      tag: 'replace',
      val: [
        {
          op: 'create',
          source: fanoutSource,
          key: [{ name: 'k', value: { tag: 'int', val: 1n } }],
          before: undefined,
          after: [
            { name: 'k', value: { tag: 'int', val: 1n } },
            { name: 'd', value: { tag: 'date', val: 3 } },
          ],
        },
        {
          op: 'delete',
          source: fanoutSource,
          key: [],
          before: [{ name: 'k', value: { tag: 'int', val: 2n } }],
          after: undefined,
        },
      ],
    },
  ]);
});

test('exportRouter returns destinations or the failure', () => {
  class ByTable {
    route(event) {
      if (event.table === 'secret') throw new Error('not routable');
      return [`cdc.${event.table}`];
    }
  }
  const { init, route } = w.exportRouter(ByTable, { config: () => '{}' });
  init();
  const batch = w.encodeBatch([w.makeEvent({ table: 'orders' }), w.makeEvent({ table: 'secret' })]);
  assert.deepEqual(route(batch), [
    { tag: 'to', val: ['cdc.orders'] },
    { tag: 'failed', val: 'not routable' },
  ]);
});
