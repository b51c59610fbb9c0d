// Write Weir plugins in JavaScript.
//
// A plugin is a plain class built from its config, plus one export line in
// the component's entry module:
//
//   import * as host from 'weir:plugin/host@0.1.0';
//   import { exportTransformer, KEEP } from './weir-plugin.js';
//
//   class Shout {
//     constructor(config) { this.column = config.column ?? 'name'; }
//     transform(event) {
//       const name = event.after?.get(this.column);
//       if (typeof name === 'string') event.setAfter(this.column, name.toUpperCase());
//       return KEEP;
//     }
//   }
//
//   export const { init, transform } = exportTransformer(Shout, host);
//
// A router's `route(event)` returns destination names (`exportRouter`); a
// resolver's `resolve(conflict)` returns KEEP_LOCAL, TAKE_INCOMING,
// merged(row) or review(reason) (`exportResolver`).
//
// `weir plugin build` turns the project into a component with
// componentize-js; `runTransform` and `runResolve` below drive the same
// class natively under `node --test`. The batch arrives in the wire
// encoding, version 2 (docs/wire-format.md), decoded here.
//
// Values are plain JavaScript where JavaScript has the type: null, boolean,
// bigint (int), number (float), string (text), Uint8Array (bytes). The
// others are `Tagged` values (`{kind, value}`: decimal, json and uuid
// carry a string; date a number of days; time, timestamp and timestamptz a
// bigint of microseconds), and UNCHANGED marks a value the source did not
// send. So `typeof value === 'string'` is true exactly for text.

export const CONTRACT = 'weir:plugin@0.1.0';
export const WIRE_VERSION = 2;
export const OPS = ['c', 'u', 'd', 't', 'r'];
export const IMAGES = ['key', 'before', 'after'];

const SAME_SOURCE = 1;
const HAS_BEFORE = 2;
const HAS_AFTER = 4;
const HAS_TXID = 8;
const HAS_ORIGIN = 16;
const SAME_NAMES = 1;

/** A value of a type JavaScript has no type for. */
export class Tagged {
  constructor(kind, value) {
    this.kind = kind;
    this.value = value;
  }
}

export const decimal = (text) => new Tagged('decimal', String(text));
export const json = (text) => new Tagged('json', String(text));
export const uuid = (text) => new Tagged('uuid', String(text));
export const date = (days) => new Tagged('date', Number(days));
export const time = (us) => new Tagged('time', BigInt(us));
export const timestamp = (us) => new Tagged('timestamp', BigInt(us));
export const timestamptz = (us) => new Tagged('timestamptz', BigInt(us));

/** A value the source did not send (an unchanged TOAST column). */
export const UNCHANGED = Object.freeze({ kind: 'unchanged' });

export class WireError extends Error {}

/** Where a change came from. */
export class Source {
  constructor(connector, database, schema, table, position, txid, commitTimeUs, origin) {
    this.connector = connector;
    this.database = database;
    this.schema = schema;
    this.table = table;
    this.position = position;
    this.txid = txid ?? null;
    this.commitTimeUs = commitTimeUs;
    this.origin = origin ?? null;
  }
}

/**
 * One row image: column names and values in table order. Consecutive
 * events of one table share the same `names` array, so per-layout work
 * can be cached with an `===` comparison.
 */
export class Row {
  constructor(names, values) {
    this.names = names;
    this.values = values;
  }

  static fromObject(columns) {
    return new Row(Object.keys(columns), Object.values(columns));
  }

  /** The position of column `name`, or -1. */
  indexOf(name) {
    return this.names.indexOf(name);
  }

  /** The value of column `name`, or undefined. */
  get(name) {
    const i = this.names.indexOf(name);
    return i < 0 ? undefined : this.values[i];
  }

  has(name) {
    return this.names.includes(name);
  }

  get length() {
    return this.names.length;
  }

  toObject() {
    const o = {};
    this.names.forEach((n, i) => (o[n] = this.values[i]));
    return o;
  }
}

const REMOVE = Symbol('remove');

/**
 * One row change. `op` is 'c', 'u', 'd', 't' or 'r' (a snapshot read).
 * Changes made through `set`, `remove` and friends are recorded as
 * patches: only the changed columns travel back to the host.
 */
export class Event {
  constructor(op, source, key, before, after) {
    this.op = op;
    this.source = source;
    this.key = key;
    this.before = before ?? null;
    this.after = after ?? null;
    this.patches = [];
  }

  get table() {
    return this.source.table;
  }

  /** The row 'key', 'before' or 'after' as it arrived, or null. */
  image(image) {
    switch (image) {
      case 'after':
        return this.after;
      case 'before':
        return this.before;
      case 'key':
        return this.key;
      default:
        throw new Error(`no image ${image}: give key, before or after`);
    }
  }

  set(image, index, value) {
    this.patches.push([image, index, value]);
  }

  remove(image, index) {
    this.patches.push([image, index, REMOVE]);
  }

  /** Replaces column `name` of `image`; false if there is none. */
  setColumn(image, name, value) {
    const row = this.image(image);
    const i = row ? row.indexOf(name) : -1;
    if (i < 0) return false;
    this.set(image, i, value);
    return true;
  }

  setAfter(name, value) {
    return this.setColumn('after', name, value);
  }

  /** The row `image` with the patches applied, as an object (or null). */
  patched(image) {
    const row = this.image(image);
    if (!row) return null;
    const values = row.values.slice();
    for (const [img, i, v] of this.patches) if (img === image) values[i] = v;
    const o = {};
    row.names.forEach((n, i) => {
      if (values[i] !== REMOVE) o[n] = values[i];
    });
    return o;
  }
}

/** Pass the event on, with the column changes made through it. */
export const KEEP = Object.freeze({ outcome: 'keep' });
/** Drop the event. */
export const DROP = Object.freeze({ outcome: 'drop' });
/** The event cannot be processed; it goes to the dead-letter queue. */
export const fail = (reason) => ({ outcome: 'fail', reason: String(reason) });

/**
 * Replace the event with these events (zero or more), built with
 * `newEvent`; column changes made to the input event are ignored.
 */
export function replace(events) {
  for (const e of events) {
    if (!(e instanceof Event)) throw new TypeError('replace takes events (newEvent)');
  }
  return { outcome: 'replace', events: [...events] };
}

/**
 * A new event (for `replace`): `op` is 'c', 'u', 'd', 't' or 'r', `source`
 * a `Source` (an input event's, say), the rows objects of column values.
 */
export function newEvent(op, source, { key = {}, before = null, after = null } = {}) {
  if (!OPS.includes(op)) throw new Error(`no op ${op}: give c, u, d, t or r`);
  return new Event(op, source, Row.fromObject(key), before && Row.fromObject(before), after && Row.fromObject(after));
}

/** The version of the local row in a conflict: `commitTimeUs` a bigint. */
export class VersionMeta {
  constructor(commitTimeUs, origin, txid) {
    this.commitTimeUs = commitTimeUs;
    this.origin = origin ?? null;
    this.txid = txid ?? null;
  }
}

/**
 * What a resolver settles: an incoming change meets a local row that
 * changed since the change's before image. `local` is the row as it is now
 * in the target (a `Row`), `localMeta` its `VersionMeta`, `incoming` the
 * change (an `Event`, whose `source` carries the incoming version:
 * `commitTimeUs`, `origin`, `txid`).
 */
export class Conflict {
  constructor(local, localMeta, incoming) {
    this.local = local;
    this.localMeta = localMeta;
    this.incoming = incoming;
  }
}

/** Keep the local row: nothing is written. */
export const KEEP_LOCAL = Object.freeze({ resolution: 'keep-local' });
/** Apply the incoming change. */
export const TAKE_INCOMING = Object.freeze({ resolution: 'take-incoming' });
/**
 * Write this row instead: a `Row` or an object of column values, e.g.
 * `merged({ ...conflict.local.toObject(), stock: 7n })`.
 */
export const merged = (row) => ({ resolution: 'merged', row: asRow(row) });
/** Write nothing and log the conflict for a person to look at, with this reason. */
export const review = (reason) => ({ resolution: 'review', reason: String(reason) });

function asRow(row) {
  if (row instanceof Row) return row;
  if (row !== null && typeof row === 'object' && !Array.isArray(row)) return Row.fromObject(row);
  throw new TypeError('merged takes a Row or an object of column values');
}

const BAD_RESOLUTION = 'return KEEP_LOCAL, TAKE_INCOMING, merged(row) or review(reason)';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a batch into events; throws WireError when it is malformed. */
export function decodeBatch(buf) {
  const end = buf.length;
  let pos = 0;
  const bad = (problem) => {
    throw new WireError(`malformed batch at byte ${pos}: ${problem}`);
  };
  const byte = () => (pos < end ? buf[pos++] : bad('unexpected end'));
  // Unsigned LEB128: a Number up to 49 bits (exact), a BigInt beyond.
  const varint = () => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = byte();
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
      if (mul > 2 ** 42) return bigVarint(n, mul);
    }
  };
  const bigVarint = (low, mul) => {
    let n = BigInt(low);
    let shift = BigInt(Math.log2(mul));
    for (;;) {
      const b = byte();
      n |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return n;
      shift += 7n;
      if (shift > 63n) bad('varint too long');
    }
  };
  const zigzag = () => {
    const n = varint();
    if (typeof n === 'bigint') return (n >> 1n) ^ -(n & 1n);
    return BigInt(n % 2 === 0 ? n / 2 : -(n + 1) / 2);
  };
  const raw = () => {
    const n = Number(varint());
    if (n > end - pos) bad('length past the end of the batch');
    const s = buf.subarray(pos, pos + n);
    pos += n;
    return s;
  };
  const text = () => {
    const n = Number(varint());
    if (n > end - pos) bad('length past the end of the batch');
    try {
      return utf8.decode(buf.subarray(pos, (pos += n)));
    } catch {
      bad('text is not UTF-8');
    }
  };
  const value = () => {
    switch (byte()) {
      case 0:
        return null;
      case 1:
        return byte() !== 0;
      case 2:
        return zigzag();
      case 3: {
        if (end - pos < 8) bad('unexpected end');
        const f = new DataView(buf.buffer, buf.byteOffset + pos, 8).getFloat64(0, true);
        pos += 8;
        return f;
      }
      case 4:
        return new Tagged('decimal', text());
      case 5:
        return text();
      case 6:
        return raw().slice();
      case 7:
        return new Tagged('json', text());
      case 8:
        return new Tagged('date', Number(zigzag()));
      case 9:
        return new Tagged('time', zigzag());
      case 10:
        return new Tagged('timestamp', zigzag());
      case 11:
        return new Tagged('timestamptz', zigzag());
      case 12:
        return new Tagged('uuid', text());
      case 13:
        return UNCHANGED;
      default:
        pos--;
        bad(`unknown value tag ${buf[pos]}`);
    }
  };
  const shared = [null, null, null];
  const row = (slot) => {
    const flags = byte();
    const n = Number(varint());
    let names;
    if (flags & SAME_NAMES) {
      names = shared[slot];
      if (!names || names.length !== n) bad('row shares names with no previous row of its width');
    } else {
      if (n > end - pos) bad('column count past the end of the batch');
      names = new Array(n);
      for (let i = 0; i < n; i++) names[i] = text();
      shared[slot] = names;
    }
    const values = new Array(n);
    for (let i = 0; i < n; i++) values[i] = value();
    return new Row(names, values);
  };

  const version = end > 0 ? byte() : bad('empty batch buffer');
  if (version !== WIRE_VERSION) {
    throw new WireError(`batch uses wire version ${version}, this SDK reads version ${WIRE_VERSION}`);
  }
  const count = Number(varint());
  const events = [];
  let src = null;
  for (let e = 0; e < count; e++) {
    const code = byte();
    if (code > 4) bad(`unknown op ${code}`);
    const flags = byte();
    if (flags & SAME_SOURCE) {
      if (!src) bad('first event refers to a previous source');
    } else {
      src = [text(), text(), text(), text(), flags & HAS_ORIGIN ? text() : null];
    }
    const position = text();
    const txid = flags & HAS_TXID ? text() : null;
    const source = new Source(src[0], src[1], src[2], src[3], position, txid, zigzag(), src[4]);
    const key = row(0);
    const before = flags & HAS_BEFORE ? row(1) : null;
    const after = flags & HAS_AFTER ? row(2) : null;
    events.push(new Event(OPS[code], source, key, before, after));
  }
  if (pos !== end) bad('bytes after the last event');
  return events;
}

const TAG_CODES = {
  decimal: 4,
  json: 7,
  date: 8,
  time: 9,
  timestamp: 10,
  timestamptz: 11,
  uuid: 12,
};

/** Encodes events as a batch (native tests; the host encodes real batches). */
export function encodeBatch(events) {
  const out = [];
  const enc = new TextEncoder();
  const varint = (n) => {
    let v = BigInt(n);
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
  };
  const zigzag = (n) => {
    const v = BigInt(n);
    varint(BigInt.asUintN(64, (v << 1n) ^ (v >> 63n)));
  };
  const str = (s) => {
    const b = enc.encode(s);
    varint(b.length);
    out.push(...b);
  };
  const put = (v) => {
    if (v === null || v === undefined) out.push(0);
    else if (v === UNCHANGED) out.push(13);
    else if (typeof v === 'boolean') out.push(1, v ? 1 : 0);
    else if (typeof v === 'bigint') out.push(2), zigzag(v);
    else if (typeof v === 'number') {
      out.push(3);
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v, true);
      out.push(...b);
    } else if (typeof v === 'string') out.push(5), str(v);
    else if (v instanceof Uint8Array) out.push(6), varint(v.length), out.push(...v);
    else if (v instanceof Tagged && v.kind in TAG_CODES) {
      out.push(TAG_CODES[v.kind]);
      if (typeof v.value === 'string') str(v.value);
      else zigzag(v.value);
    } else throw new TypeError(`a column value cannot be ${v}`);
  };
  out.push(WIRE_VERSION);
  varint(events.length);
  let prev = null;
  for (const e of events) {
    const s = e.source;
    const p = prev?.source;
    const sameSource =
      p &&
      p.connector === s.connector &&
      p.database === s.database &&
      p.schema === s.schema &&
      p.table === s.table &&
      p.origin === s.origin;
    let flags = 0;
    if (sameSource) flags |= SAME_SOURCE;
    if (e.before) flags |= HAS_BEFORE;
    if (e.after) flags |= HAS_AFTER;
    if (s.txid !== null) flags |= HAS_TXID;
    if (s.origin !== null) flags |= HAS_ORIGIN;
    out.push(OPS.indexOf(e.op), flags);
    if (!sameSource) {
      [s.connector, s.database, s.schema, s.table].forEach(str);
      if (s.origin !== null) str(s.origin);
    }
    str(s.position);
    if (s.txid !== null) str(s.txid);
    zigzag(s.commitTimeUs);
    for (const image of IMAGES) {
      const r = e[image];
      if (!r) continue;
      const q = prev?.[image];
      const same = q && q.names.length === r.names.length && q.names.every((n, i) => n === r.names[i]);
      out.push(same ? SAME_NAMES : 0);
      varint(r.names.length);
      if (!same) r.names.forEach(str);
      r.values.forEach(put);
    }
    prev = e;
  }
  return Uint8Array.from(out);
}

/** An event built from objects of column values (for tests). */
export function makeEvent({
  op = 'c',
  table = 't',
  key = {},
  before = null,
  after = null,
  schema = 'public',
  database = 'db',
  connector = 'postgresql',
  position = '0/0',
  txid = null,
  commitTimeUs = 0n,
  origin = null,
} = {}) {
  const source = new Source(connector, database, schema, table, position, txid, commitTimeUs, origin);
  return newEvent(op, source, { key, before, after });
}

/**
 * Runs a transformer natively over events, through the same encoding.
 * Per input event: an array of the events it became, as
 * `{op, table, key, before, after}` objects with the changes applied (empty when
 * dropped), or `{outcome: 'fail', reason}`.
 */
export function runTransform(plugin, events) {
  return decodeBatch(encodeBatch(events)).map((e) => {
    let r;
    try {
      r = plugin.transform(e);
    } catch (err) {
      return fail(errorMessage(err));
    }
    if (r === undefined || r === null || r === KEEP) return [asObject(e)];
    if (r === DROP) return [];
    if (r && r.outcome === 'replace') return r.events.map(asObject);
    if (r && r.outcome === 'fail') return r;
    return fail(`transform returned ${r}; return KEEP, DROP, replace(events) or fail(reason)`);
  });
}

function asObject(e) {
  return { op: e.op, table: e.table, key: e.patched('key'), before: e.patched('before'), after: e.patched('after') };
}

/**
 * A conflict built from an object of the local row's column values, the
 * local row's version (`commitTimeUs`, `origin`, `txid`) and the incoming
 * event (`makeEvent`; its source carries the incoming version).
 */
export function makeConflict({
  local = {},
  incoming = makeEvent(),
  commitTimeUs = 0n,
  origin = null,
  txid = null,
} = {}) {
  return new Conflict(Row.fromObject(local), new VersionMeta(commitTimeUs, origin, txid), incoming);
}

/**
 * Runs a resolver natively over one conflict and returns what `weir plugin
 * test` prints for it, as JSON.parse reads that line:
 * `{resolution: 'keep-local'}`, `{resolution: 'take-incoming'}`,
 * `{resolution: 'merged', row: {...}}` (values as the Debezium envelope
 * writes them; ints as numbers) or `{resolution: 'review', reason}`.
 *
 * The conflict is a `Conflict` (`makeConflict`), or an input line of `weir
 * plugin test` for resolvers, as text or parsed: `{local: {row},
 * local_meta: {ts_us, origin, txId}, incoming: envelope}`, read as the
 * host reads it (a whole number is an int; a bigint may stand for one). A
 * bad one throws an EnvelopeError naming the field; a throw from `resolve`
 * propagates.
 */
export function runResolve(plugin, conflict) {
  if (!(conflict instanceof Conflict)) {
    if (typeof conflict === 'string') {
      try {
        conflict = JSON.parse(conflict);
      } catch (err) {
        throw new EnvelopeError(null, `not JSON: ${err.message}`);
      }
    }
    conflict = conflictFromJson(conflict);
  }
  const r = plugin.resolve(conflict);
  switch (r?.resolution) {
    case 'keep-local':
    case 'take-incoming':
      return { resolution: r.resolution };
    case 'merged': {
      const row = asRow(r.row);
      const o = {};
      row.names.forEach((n, i) => (o[n] = valueToJson(row.values[i])));
      return { resolution: 'merged', row: o };
    }
    case 'review':
      return { resolution: 'review', reason: String(r.reason) };
  }
  throw new TypeError(`resolve returned ${r}; ${BAD_RESOLUTION}`);
}

// The JSON of `weir plugin test` for resolvers, read and written as the
// host does (host/weir-core/src/envelope.rs).

/** Debezium's placeholder for a value the source did not send. */
export const UNAVAILABLE_VALUE = '__debezium_unavailable_value';

/**
 * A conflict or envelope in JSON could not be read; the message names the
 * field (`` `local.id`: ... ``), as `weir plugin test` does.
 */
export class EnvelopeError extends Error {
  constructor(field, problem) {
    super(field === null ? problem : `\`${field}\`: ${problem}`);
    this.field = field;
    this.problem = problem;
  }
}

/** What is wrong with one value; the caller names the field. */
class Problem extends Error {}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
// The op as `op` may spell it, and its code.
const OP_SPELLINGS = {
  c: 'c',
  create: 'c',
  insert: 'c',
  u: 'u',
  update: 'u',
  d: 'd',
  delete: 'd',
  t: 't',
  truncate: 't',
  r: 'r',
  read: 'r',
};
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNumber = (v) => typeof v === 'number' || typeof v === 'bigint';
const debug = (text) => JSON.stringify(text);

/** `v` as a bigint if it is a whole number that fits in 64 bits, else null. */
function jsonInt(v) {
  let n;
  if (typeof v === 'bigint') n = v;
  else if (Number.isInteger(v)) n = BigInt(v);
  else return null;
  return n >= I64_MIN && n <= I64_MAX ? n : null;
}

/** A value: plain JSON by its JSON type, or `{$type: T, value: V}`. */
function valueFromJson(v) {
  if (v === null || typeof v === 'boolean') return v;
  if (isNumber(v)) return jsonInt(v) ?? Number(v);
  if (typeof v === 'string') return v === UNAVAILABLE_VALUE ? UNCHANGED : v;
  if (isObject(v) && '$type' in v) return typedValue(v);
  if (typeof v === 'object') return new Tagged('json', JSON.stringify(v));
  throw new Problem(`not a JSON value: ${v}`);
}

function typedValue(m) {
  const ty = m.$type;
  if (typeof ty !== 'string') throw new Problem('`$type` must be a string');
  const v = m.value ?? null;
  const text = () => {
    if (typeof v !== 'string') throw new Problem(`a ${ty} value must be a string`);
    return v;
  };
  const int = () => {
    const n = jsonInt(v);
    if (n === null) throw new Problem(`a ${ty} value must be an integer`);
    return n;
  };
  switch (ty) {
    case 'null':
      return null;
    case 'boolean':
      if (typeof v !== 'boolean') throw new Problem('a boolean value must be true or false');
      return v;
    case 'int':
      return int();
    case 'float':
      if (!isNumber(v)) throw new Problem('a float value must be a number');
      return Number(v);
    case 'decimal':
    case 'uuid':
      return new Tagged(ty, text());
    case 'text':
      return text();
    case 'bytes': {
      const b64 = text();
      if (!BASE64.test(b64)) throw new Problem('a bytes value must be base64: padded, standard alphabet');
      return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    }
    case 'json':
      return new Tagged('json', typeof v === 'string' ? v : JSON.stringify(v));
    case 'date': {
      const days = int();
      if (days < -(2n ** 31n) || days >= 2n ** 31n) throw new Problem('a date value must fit in 32 bits');
      return new Tagged('date', Number(days));
    }
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return new Tagged(ty, int());
    case 'unchanged':
      return UNCHANGED;
  }
  throw new Problem(`unknown $type ${debug(ty)}`);
}

function rowFromJson(field, m) {
  const names = [];
  const values = [];
  for (const [k, v] of Object.entries(m)) {
    try {
      values.push(valueFromJson(v));
    } catch (err) {
      if (err instanceof Problem) throw new EnvelopeError(`${field}.${k}`, err.message);
      throw err;
    }
    names.push(k);
  }
  return new Row(names, values);
}

function sourceFromJson(s) {
  const text = (k) => {
    const v = s[k];
    if (typeof v === 'string') return v;
    return isNumber(v) ? String(v) : null;
  };
  let commitTimeUs = 0n;
  if ('ts_us' in s) {
    commitTimeUs = jsonInt(s.ts_us);
    if (commitTimeUs === null) throw new EnvelopeError('source.ts_us', 'expected an integer');
  } else if ('ts_ms' in s) {
    const ms = jsonInt(s.ts_ms);
    if (ms === null) throw new EnvelopeError('source.ts_ms', 'expected an integer');
    commitTimeUs = ms * 1000n;
  }
  return new Source(
    text('connector') ?? '',
    text('db') ?? '',
    text('schema') ?? '',
    text('table') ?? '',
    positionFromJson(s) ?? '',
    text('txId'),
    commitTimeUs,
    text('origin'),
  );
}

/** `pos` when it is text, MySQL's `file` and `pos`, or PostgreSQL's numeric `lsn`. */
function positionFromJson(s) {
  const { pos, file, lsn } = s;
  if (typeof pos === 'string') return pos;
  if (isNumber(pos) && typeof file === 'string') return `${file}:${String(pos)}`;
  if (isNumber(lsn)) {
    const n = typeof lsn === 'bigint' || Number.isInteger(lsn) ? BigInt(lsn) : -1n;
    if (n < 0n || n >= 2n ** 64n) return null;
    const hex = (x) => x.toString(16).toUpperCase();
    return `${hex(n >> 32n)}/${hex(n & 0xffffffffn)}`;
  }
  if (typeof lsn === 'string') return lsn;
  return null;
}

/** An event from its envelope. */
function eventFromJson(doc) {
  if (!isObject(doc)) throw new EnvelopeError('$', 'expected a JSON object');
  const op = doc.op;
  if (typeof op !== 'string') throw new EnvelopeError('op', 'missing; expected one of c, u, d, t, r');
  if (!Object.hasOwn(OP_SPELLINGS, op)) throw new EnvelopeError('op', `unknown op ${debug(op)}`);
  let source;
  if (!('source' in doc)) source = new Source('', '', '', '', '', null, 0n, null);
  else if (isObject(doc.source)) source = sourceFromJson(doc.source);
  else throw new EnvelopeError('source', 'expected an object');
  const image = (name) => {
    const v = doc[name];
    if (v === undefined || v === null) return null;
    if (!isObject(v)) throw new EnvelopeError(name, 'expected an object or null');
    return rowFromJson(name, v);
  };
  const key = image('key') ?? new Row([], []);
  return new Event(OP_SPELLINGS[op], source, key, image('before'), image('after'));
}

function conflictFromJson(doc) {
  const local = isObject(doc) ? doc.local : undefined;
  if (!isObject(local)) throw new EnvelopeError('local', 'missing; expected the local row as an object');
  const row = rowFromJson('local', local);
  const meta = isObject(doc.local_meta) ? doc.local_meta : {};
  const text = (k) => (typeof meta[k] === 'string' ? meta[k] : null);
  const localMeta = new VersionMeta(jsonInt(meta.ts_us) ?? 0n, text('origin'), text('txId'));
  if (!('incoming' in doc)) throw new EnvelopeError('incoming', 'missing; expected an envelope');
  let incoming;
  try {
    incoming = eventFromJson(doc.incoming);
  } catch (err) {
    if (err instanceof EnvelopeError) throw new EnvelopeError(`incoming.${err.field}`, err.problem);
    throw err;
  }
  return new Conflict(row, localMeta, incoming);
}

/** A value as the Debezium envelope writes it. */
function valueToJson(v) {
  if (v === null || v === undefined) return null;
  if (v === UNCHANGED) return UNAVAILABLE_VALUE;
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'bigint':
      return Number(v);
    case 'number':
      // Like the host, a float JSON cannot hold becomes null.
      return Number.isFinite(v) ? v : null;
  }
  if (v instanceof Uint8Array) {
    let bin = '';
    for (const b of v) bin += String.fromCharCode(b);
    return btoa(bin);
  }
  if (v instanceof Tagged && v.kind in TAG_CODES) {
    switch (v.kind) {
      case 'timestamptz':
        return formatUtcMicros(BigInt(v.value));
      case 'date':
      case 'time':
      case 'timestamp':
        return Number(v.value);
      default:
        return String(v.value);
    }
  }
  throw new TypeError(`a column value cannot be ${v}`);
}

/** Microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
function formatUtcMicros(us) {
  // Floor division, as the host's div_euclid for a positive divisor.
  const div = (a, b) => (a % b < 0n ? a / b - 1n : a / b);
  const secs = div(us, 1000000n);
  const micros = us - secs * 1000000n;
  const days = div(secs, 86400n);
  const sod = Number(secs - days * 86400n);
  const [y, m, d] = civilFromDays(days);
  const pad = (n, width) => String(n).padStart(width, '0');
  const year = y < 0n ? `-${pad(-y, 3)}` : pad(y, 4);
  const hms = [Math.floor(sod / 3600), Math.floor((sod % 3600) / 60), sod % 60];
  const time = hms.map((n) => pad(n, 2)).join(':');
  return `${year}-${pad(m, 2)}-${pad(d, 2)}T${time}.${pad(micros, 6)}Z`;
}

/** Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm, as the host). */
function civilFromDays(days) {
  const z = days + 719468n;
  const era = z < 0n && z % 146097n !== 0n ? z / 146097n - 1n : z / 146097n;
  const doe = z - era * 146097n;
  const yoe = (doe - doe / 1460n + doe / 36524n - doe / 146096n) / 365n;
  const doy = doe - (365n * yoe + yoe / 4n - yoe / 100n);
  const mp = (5n * doy + 2n) / 153n;
  const d = doy - (153n * mp + 2n) / 5n + 1n;
  const m = mp < 10n ? mp + 3n : mp - 9n;
  return [yoe + era * 400n + (m <= 2n ? 1n : 0n), m, d];
}

function errorMessage(err) {
  return err instanceof Error ? err.message || err.name : String(err);
}

function toWit(v) {
  if (v === null || v === undefined) return { tag: 'null' };
  if (v === UNCHANGED) return { tag: 'unchanged' };
  switch (typeof v) {
    case 'string':
      return { tag: 'text', val: v };
    case 'boolean':
      return { tag: 'boolean', val: v };
    case 'bigint':
      return { tag: 'int', val: v };
    case 'number':
      return { tag: 'float', val: v };
  }
  if (v instanceof Uint8Array) return { tag: 'bytes', val: v };
  if (v instanceof Tagged && v.kind in TAG_CODES) {
    const val = v.kind === 'date' ? Number(v.value) : typeof v.value === 'string' ? v.value : BigInt(v.value);
    return { tag: v.kind, val };
  }
  throw new TypeError(`a column value cannot be ${v}`);
}

const OP_NAMES = { c: 'create', u: 'update', d: 'delete', t: 'truncate', r: 'read' };

function columns(row) {
  return row.names.map((name, i) => ({ name, value: toWit(row.values[i]) }));
}

/** An event as the WIT `change-event` record. */
function changeEvent(e) {
  const s = e.source;
  return {
    op: OP_NAMES[e.op],
    source: {
      connector: s.connector,
      database: s.database,
      schema: s.schema,
      table: s.table,
      position: s.position,
      txid: s.txid ?? undefined,
      commitTimeUs: BigInt(s.commitTimeUs),
      origin: s.origin ?? undefined,
    },
    key: columns(e.key),
    before: e.before ? columns(e.before) : undefined,
    after: e.after ? columns(e.after) : undefined,
  };
}

function initWith(PluginClass, host) {
  return () => {
    try {
      return new PluginClass(JSON.parse(host.config()));
    } catch (err) {
      // Refuses the plugin at load with this message.
      throw errorMessage(err);
    }
  };
}

/**
 * The `init` and `transform` exports of a transformer component.
 * `new PluginClass(config)` builds the plugin (a throw refuses it at load
 * with its message); `plugin.transform(event)` returns KEEP (or nothing),
 * DROP, replace(events) or fail(reason); a throw fails just that event.
 */
export function exportTransformer(PluginClass, host) {
  const make = initWith(PluginClass, host);
  let plugin = null;
  const keep = { tag: 'keep' };
  const drop = { tag: 'drop' };
  const outcome = (event, r) => {
    if (r === undefined || r === null || r === KEEP) {
      if (event.patches.length === 0) return keep;
      return {
        tag: 'patch',
        val: event.patches.map(([image, index, v]) => ({
          image,
          index,
          value: v === REMOVE ? undefined : toWit(v),
        })),
      };
    }
    if (r === DROP) return drop;
    if (r && r.outcome === 'replace') return { tag: 'replace', val: r.events.map(changeEvent) };
    if (r && r.outcome === 'fail') return { tag: 'failed', val: r.reason };
    return {
      tag: 'failed',
      val: `transform returned ${r}; return KEEP, DROP, replace(events) or fail(reason)`,
    };
  };
  return {
    init() {
      plugin = make();
    },
    transform(batch) {
      return decodeBatch(batch).map((event) => {
        try {
          return outcome(event, plugin.transform(event));
        } catch (err) {
          return { tag: 'failed', val: errorMessage(err) };
        }
      });
    },
  };
}

/**
 * The `init` and `route` exports of a router component: `plugin.route(event)`
 * returns destination names (an empty array drops the event).
 */
export function exportRouter(PluginClass, host) {
  const make = initWith(PluginClass, host);
  let plugin = null;
  return {
    init() {
      plugin = make();
    },
    route(batch) {
      return decodeBatch(batch).map((event) => {
        try {
          return { tag: 'to', val: plugin.route(event).map(String) };
        } catch (err) {
          return { tag: 'failed', val: errorMessage(err) };
        }
      });
    },
  };
}

const OPS_BY_NAME = { create: 'c', update: 'u', delete: 'd', truncate: 't', read: 'r' };

/** A WIT `value` as an SDK value. */
function fromWit(v) {
  switch (v.tag) {
    case 'null':
      return null;
    case 'boolean':
    case 'int':
    case 'float':
    case 'text':
    case 'bytes':
      return v.val;
    case 'unchanged':
      return UNCHANGED;
  }
  if (v.tag in TAG_CODES) return new Tagged(v.tag, v.val);
  throw new TypeError(`unknown value ${v.tag}`);
}

function rowFromWit(columns) {
  if (!columns) return null;
  return new Row(
    columns.map((c) => c.name),
    columns.map((c) => fromWit(c.value)),
  );
}

/** The WIT `conflict` record as a `Conflict`. */
function conflictFromWit(c) {
  const e = c.incoming;
  const s = e.source;
  const m = c.localMeta;
  const source = new Source(s.connector, s.database, s.schema, s.table, s.position, s.txid, s.commitTimeUs, s.origin);
  return new Conflict(
    rowFromWit(c.local),
    new VersionMeta(m.commitTimeUs, m.origin, m.txid),
    new Event(OPS_BY_NAME[e.op], source, rowFromWit(e.key), rowFromWit(e.before), rowFromWit(e.after)),
  );
}

/**
 * The `init` and `resolve` exports of a resolver component:
 * `plugin.resolve(conflict)` (a `Conflict`) returns KEEP_LOCAL,
 * TAKE_INCOMING, merged(row) or review(reason). A throw is the call's
 * error: the change goes to the dead letters and the target keeps its row.
 */
export function exportResolver(PluginClass, host) {
  const make = initWith(PluginClass, host);
  let plugin = null;
  const keepLocal = { tag: 'keep-local' };
  const takeIncoming = { tag: 'take-incoming' };
  const resolution = (r) => {
    switch (r?.resolution) {
      case 'keep-local':
        return keepLocal;
      case 'take-incoming':
        return takeIncoming;
      case 'merged':
        return { tag: 'merged', val: columns(asRow(r.row)) };
      case 'review':
        return { tag: 'review', val: String(r.reason) };
    }
    throw new TypeError(`resolve returned ${r}; ${BAD_RESOLUTION}`);
  };
  return {
    init() {
      plugin = make();
    },
    resolve(conflict) {
      try {
        return resolution(plugin.resolve(conflictFromWit(conflict)));
      } catch (err) {
        // The call's error, with the message.
        throw errorMessage(err);
      }
    },
  };
}

/** Structured logging through the host (to stderr natively). */
export function logger(host) {
  const write = (level) => (message, fields = {}) => {
    const pairs = Object.entries(fields).map(([k, v]) => [k, String(v)]);
    if (host) host.log(level, message, pairs);
    else console.error(`[${level}] ${message}`, pairs);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
