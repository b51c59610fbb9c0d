// Resolvers through the test driver, with conflicts in the JSON of `weir
// plugin test` (read as weir_core::envelope::conflict_from_json reads them)
// and its output lines (resolution_to_json), and through the component
// exports. Run from sdk/js: node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';

import * as w from '../weir-plugin.js';

/** Deletes go to review, a counter column adds up, otherwise the later commit wins. */
class Policy {
  constructor(config = {}) {
    this.counter = config.counter;
  }
  resolve(conflict) {
    const incoming = conflict.incoming;
    if (incoming.op === 'd') return w.review(`deleted in ${incoming.source.origin}`);
    if (incoming.op === 't') throw new Error('no truncates');
    if (this.counter && incoming.before) {
      const delta = incoming.after.get(this.counter) - incoming.before.get(this.counter);
      const row = conflict.local.toObject();
      row[this.counter] += delta;
      return w.merged(row);
    }
    if (incoming.source.commitTimeUs > conflict.localMeta.commitTimeUs) return w.TAKE_INCOMING;
    return w.KEEP_LOCAL;
  }
}

const line = (local, incoming, meta = {}) => JSON.stringify({ local, local_meta: meta, incoming });

test('each resolution as weir plugin test prints it', () => {
  const lww = new Policy();
  const later = { op: 'u', source: { ts_us: 20, origin: 'east' }, after: { id: 1 } };
  const earlier = { op: 'u', source: { ts_us: 5, origin: 'east' }, after: { id: 1 } };
  assert.deepEqual(w.runResolve(lww, line({ id: 1 }, later, { ts_us: 10, origin: 'west' })), {
    resolution: 'take-incoming',
  });
  assert.deepEqual(w.runResolve(lww, line({ id: 1 }, earlier, { ts_us: 10, origin: 'west' })), {
    resolution: 'keep-local',
  });
  assert.deepEqual(w.runResolve(lww, { local: { id: 1 }, incoming: { op: 'd', source: { origin: 'east' } } }), {
    resolution: 'review',
    reason: 'deleted in east',
  });
  const counter = new Policy({ counter: 'stock' });
  const update = { op: 'u', before: { id: 1, stock: 10 }, after: { id: 1, stock: 8 } };
  assert.deepEqual(w.runResolve(counter, line({ id: 1, stock: 7, name: 'west' }, update)), {
    resolution: 'merged',
    row: { id: 1, stock: 5, name: 'west' },
  });
});

test('the conflict is read as the host reads it', () => {
  const seen = [];
  const look = {
    resolve(conflict) {
      seen.push(conflict);
      return w.KEEP_LOCAL;
    },
  };
  w.runResolve(look, {
    local: { id: 1, n: 1.5, big: 2n ** 60n, tags: ['a'], gone: '__debezium_unavailable_value' },
    local_meta: { ts_us: 42, origin: 'west', txId: '7' },
    incoming: {
      op: 'update',
      source: {
        connector: 'postgresql',
        db: 'shop',
        schema: 'public',
        table: 'items',
        lsn: 24023128,
        txId: 555,
        ts_ms: 3,
        origin: 'east',
      },
      key: { id: 1 },
      before: null,
      after: {
        id: 1,
        price: { $type: 'decimal', value: '1.50' },
        day: { $type: 'date', value: 3 },
        raw: { $type: 'bytes', value: 'aGk=' },
        doc: { $type: 'json', value: { k: [1] } },
        at: { $type: 'timestamptz', value: 5 },
      },
    },
  });
  const [c] = seen;
  assert.ok(c instanceof w.Conflict);
  assert.deepEqual(c.local.names, ['id', 'n', 'big', 'tags', 'gone']);
  assert.deepEqual(c.local.values.slice(0, 3), [1n, 1.5, 2n ** 60n]);
  assert.deepEqual(c.local.get('tags'), w.json('["a"]'));
  assert.equal(c.local.get('gone'), w.UNCHANGED);
  assert.deepEqual(c.localMeta, new w.VersionMeta(42n, 'west', '7'));
  const e = c.incoming;
  assert.deepEqual([e.op, e.table, e.key.toObject(), e.before], ['u', 'items', { id: 1n }, null]);
  assert.deepEqual(e.source, new w.Source('postgresql', 'shop', 'public', 'items', '0/16E9058', '555', 3000n, 'east'));
  assert.deepEqual(e.after.values, [
    1n,
    w.decimal('1.50'),
    w.date(3),
    Uint8Array.from([104, 105]),
    w.json('{"k":[1]}'),
    w.timestamptz(5),
  ]);
  // What the host leaves out defaults: no meta, no source.
  w.runResolve(look, { local: {}, incoming: { op: 'c' } });
  const d = seen.at(-1);
  assert.deepEqual(d.localMeta, new w.VersionMeta(0n, null, null));
  assert.deepEqual([d.incoming.source.position, d.incoming.key.toObject()], ['', {}]);
});

test('a merged row is written as the envelope writes it', () => {
  const every = {
    resolve: () =>
      w.merged({
        null: null,
        bool: true,
        int: -3n,
        float: 1.5,
        nan: NaN,
        text: 't',
        decimal: w.decimal('12.50'),
        json: w.json('{"a":1}'),
        uuid: w.uuid('00000000-0000-0000-0000-000000000001'),
        bytes: Uint8Array.from([0, 255]),
        date: w.date(19675),
        time: w.time(1),
        timestamp: w.timestamp(2),
        timestamptz: w.timestamptz(1700000000123456n),
        before: w.timestamptz(-1),
        unchanged: w.UNCHANGED,
      }),
  };
  const out = w.runResolve(every, w.makeConflict());
  assert.deepEqual(out, {
    resolution: 'merged',
    row: {
      null: null,
      bool: true,
      int: -3,
      float: 1.5,
      nan: null,
      text: 't',
      decimal: '12.50',
      json: '{"a":1}',
      uuid: '00000000-0000-0000-0000-000000000001',
      bytes: 'AP8=',
      date: 19675,
      time: 1,
      timestamp: 2,
      timestamptz: '2023-11-14T22:13:20.123456Z',
      before: '1969-12-31T23:59:59.999999Z',
      unchanged: '__debezium_unavailable_value',
    },
  });
  // Exactly the JSON types: the line can be written and compared.
  assert.deepEqual(JSON.parse(JSON.stringify(out)), out);
});

test('a conflict built from JavaScript values', () => {
  const conflict = w.makeConflict({
    local: { id: 1n, price: w.decimal('2.00') },
    incoming: w.makeEvent({ op: 'u', after: { id: 1n, price: w.decimal('3.00') }, commitTimeUs: 9n }),
    commitTimeUs: 4n,
    origin: 'west',
  });
  assert.deepEqual(w.runResolve(new Policy(), conflict), { resolution: 'take-incoming' });
  assert.deepEqual(w.merged(conflict.local), w.merged({ id: 1n, price: w.decimal('2.00') }));
});

test('bad conflicts name the field', () => {
  const date = (value) => ({ local: { a: { $type: 'date', value } } });
  const change = (fields) => ({ local: {}, incoming: { op: 'c', ...fields } });
  const cases = [
    [[1], '`local`: missing; expected the local row as an object'],
    [{ local: 1 }, '`local`: missing; expected the local row as an object'],
    [date('x'), '`local.a`: a date value must be an integer'],
    [date(2 ** 32), '`local.a`: a date value must fit in 32 bits'],
    [{ local: { a: { $type: 'odd' } } }, '`local.a`: unknown $type "odd"'],
    [{ local: { a: { $type: 1 } } }, '`local.a`: `$type` must be a string'],
    [{ local: {} }, '`incoming`: missing; expected an envelope'],
    [{ local: {}, incoming: null }, '`incoming.$`: expected a JSON object'],
    [change({ op: null }), '`incoming.op`: missing; expected one of c, u, d, t, r'],
    [change({ op: 'x' }), '`incoming.op`: unknown op "x"'],
    [change({ source: [] }), '`incoming.source`: expected an object'],
    [change({ source: { ts_us: '1' } }), '`incoming.source.ts_us`: expected an integer'],
    [change({ after: [1] }), '`incoming.after`: expected an object or null'],
    [change({ key: { k: { $type: 'bytes', value: '!' } } }), '`incoming.key.k`: a bytes value must be base64'],
  ];
  for (const [doc, message] of cases) {
    // Parsed or as the line's text, alike.
    for (const conflict of [doc, JSON.stringify(doc)]) {
      assert.throws(
        () => w.runResolve(new Policy(), conflict),
        (e) => e instanceof w.EnvelopeError && e.message.startsWith(message),
        message,
      );
    }
  }
  assert.throws(
    () => w.runResolve(new Policy(), '{'),
    (e) => e instanceof w.EnvelopeError && /^not JSON: /.test(e.message),
  );
});

test('errors and bad decisions', () => {
  assert.throws(() => w.runResolve(new Policy(), { local: {}, incoming: { op: 't' } }), /^Error: no truncates$/);
  assert.throws(
    () => w.runResolve({ resolve() {} }, w.makeConflict()),
    (e) => e instanceof TypeError && e.message.includes('KEEP_LOCAL, TAKE_INCOMING, merged(row) or review(reason)'),
  );
  assert.throws(() => w.merged([['id', 1n]]), TypeError);
});

// The component exports, driven natively: the host is a stand-in that
// serves the config, and the conflict is the WIT record.
test('exportResolver turns WIT conflicts into WIT decisions', () => {
  class Counter {
    constructor(config) {
      if (!config.counter) throw new Error('invalid plugin config: `counter` is missing');
      this.column = config.counter;
    }
    resolve(conflict) {
      const incoming = conflict.incoming;
      if (incoming.op === 'd') return w.review(`deleted in ${incoming.source.origin}`);
      if (incoming.op === 't') throw new Error('no truncates');
      if (incoming.op === 'r') return undefined;
      if (!incoming.before) {
        return incoming.source.commitTimeUs > conflict.localMeta.commitTimeUs ? w.TAKE_INCOMING : w.KEEP_LOCAL;
      }
      const row = conflict.local.toObject();
      row[this.column] += incoming.after.get(this.column) - incoming.before.get(this.column);
      // What the plugin saw, as a JSON column.
      row.seen = w.json(JSON.stringify([conflict.localMeta.origin, conflict.local.get('d').kind]));
      return w.merged(row);
    }
  }
  const host = (config) => ({ config: () => JSON.stringify(config), log() {} });
  assert.throws(() => w.exportResolver(Counter, host({})).init(), /`counter` is missing/);
  const { init, resolve } = w.exportResolver(Counter, host({ counter: 'n' }));
  init();
  const int = (val) => ({ tag: 'int', val });
  const local = [
    { name: 'id', value: int(1n) },
    { name: 'n', value: int(7n) },
    { name: 'd', value: { tag: 'decimal', val: '1.5' } },
    { name: 'gone', value: { tag: 'unchanged' } },
  ];
  const n = (v) => [
    { name: 'id', value: int(1n) },
    { name: 'n', value: int(v) },
  ];
  const conflict = (op, { before, after, at = 10n } = {}) => ({
    local,
    localMeta: { commitTimeUs: 5n, origin: 'west', txid: undefined },
    incoming: {
      op,
      source: {
        connector: 'postgresql',
        database: 'db',
        schema: 'public',
        table: 't',
        position: '0/1',
        txid: '9',
        commitTimeUs: at,
        origin: 'east',
      },
      key: [{ name: 'id', value: int(1n) }],
      before,
      after,
    },
  });
  assert.deepEqual(resolve(conflict('update', { before: n(10n), after: n(12n) })), {
    tag: 'merged',
    val: [
      { name: 'id', value: int(1n) },
      { name: 'n', value: int(9n) },
      { name: 'd', value: { tag: 'decimal', val: '1.5' } },
      { name: 'gone', value: { tag: 'unchanged' } },
      { name: 'seen', value: { tag: 'json', val: '["west","decimal"]' } },
    ],
  });
  assert.deepEqual(resolve(conflict('create', { at: 10n })), { tag: 'take-incoming' });
  assert.deepEqual(resolve(conflict('create', { at: 1n })), { tag: 'keep-local' });
  assert.deepEqual(resolve(conflict('delete')), { tag: 'review', val: 'deleted in east' });
  // An error is thrown as its message: the result's err.
  assert.throws(() => resolve(conflict('truncate')), (e) => e === 'no truncates');
  assert.throws(
    () => resolve(conflict('read')),
    (e) => typeof e === 'string' && e.startsWith('resolve returned undefined; return KEEP_LOCAL'),
  );
});
