// pii-mask in JavaScript: the rules of the bundled Rust plugin
// (plugins/pii-mask), and the same golden files prove it. It ports the
// detectors for emails, phones, SSNs and ITINs, cards and IPv4 addresses;
// the bundled plugin also recognises IBANs, IPv6 addresses, phone
// extensions and trunk prefixes, tells ISBNs apart, and masks columns by
// name hints (`ssn`, `dob`, ...).
//
// For each column of the before and after images the rules are tried in
// order and the first that matches decides: by column name (`columns`,
// case-insensitive globs), by value (`detector`: email, phone, ssn, card,
// ip or any), or both. The key image is touched only by rules naming the column.
// Actions: mask (keep the shape), hash (HMAC-SHA256 under `hash_key`),
// redact (null), drop (remove the column). With `{}` every text value a
// detector recognises is masked.

import { UNCHANGED } from './weir-plugin.js';
import { hmacSha256 } from './sha256.js';

const TOP_FIELDS = ['hash_key', 'rules', 'tables'];
const RULE_FIELDS = ['action', 'columns', 'detector', 'keep_last'];
const DETECTORS = ['email', 'phone', 'ssn', 'card', 'ip', 'any'];
const ACTIONS = ['mask', 'hash', 'redact', 'drop'];
const ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]$/;
const ASCII = /^[\x00-\x7f]*$/;

const isDigit = (c) => c >= '0' && c <= '9';

/** A case-insensitive glob: `*` any run of characters, `?` one. */
export function glob(pattern) {
  const body = Array.from(pattern, (c) =>
    c === '*' ? '[\\s\\S]*' : c === '?' ? '[\\s\\S]' : c.replace(/[.*+?^${}()|[\]\\\/-]/g, '\\$&'),
  ).join('');
  const re = new RegExp(`^(?:${body})$`, 'iu');
  return (name) => re.test(name);
}

// -- detectors: whole (trimmed) ASCII values only, conservative ----------

export function isEmail(t) {
  if (t.length < 6 || t.length > 254 || !ASCII.test(t)) return false;
  const at = t.indexOf('@');
  if (at <= 0 || at > 64) return false;
  const local = t.slice(0, at);
  if (local[0] === '.' || local[local.length - 1] === '.' || local.includes('..')) return false;
  for (const c of local) if (c !== '.' && !ATOM.test(c)) return false;
  const labels = t.slice(at + 1).split('.');
  if (labels.length < 2) return false;
  for (const l of labels) {
    if (!l || l.length > 63 || l[0] === '-' || l[l.length - 1] === '-') return false;
    if (!/^[A-Za-z0-9-]+$/.test(l)) return false;
  }
  const last = labels[labels.length - 1];
  return last.length >= 2 && /^[A-Za-z]+$/.test(last);
}

export function isSsn(t) {
  if (t.length !== 11) return false;
  const m = /^(\d{3})([- ])(\d{2})\2(\d{4})$/.exec(t);
  if (!m) return false;
  const area = Number(m[1]);
  // Areas 900 to 999 are ITINs: as sensitive.
  return area !== 0 && area !== 666 && Number(m[3]) !== 0 && Number(m[4]) !== 0;
}

/** An IPv4 address: four numbers from 0 to 255, no leading zeros. */
export function isIp(t) {
  const parts = t.split('.');
  return (
    parts.length === 4 &&
    parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)
  );
}

export function isCard(t) {
  if (t.length < 13 || t.length > 37) return false;
  let digits = 0;
  let sum = 0;
  let prevSep = true;
  for (let i = t.length - 1; i >= 0; i--) {
    const c = t[i];
    if (isDigit(c)) {
      let d = c.charCodeAt(0) - 48;
      if (digits % 2 === 1) {
        d *= 2;
        if (d > 9) d -= 9;
      }
      sum += d;
      if (++digits > 19) return false;
      prevSep = false;
    } else if (c === ' ' || c === '-') {
      if (prevSep) return false;
      prevSep = true;
    } else return false;
  }
  return !prevSep && digits >= 13 && sum % 10 === 0;
}

/** Ten digits starting 2 to 9, nine to eleven starting with a 0 prefix, or any eleven (not zero-padding). */
function isBarePhone(t) {
  if (t.startsWith('0000')) return false;
  if (t.length === 10 && /^[2-9]/.test(t)) return true;
  return (t.length >= 9 && t.length <= 11 && t[0] === '0') || t.length === 11;
}

export function isPhone(t) {
  if (/^[0-9]+$/.test(t)) return isBarePhone(t);
  if (t.length < 8 || t.length > 32 || !ASCII.test(t)) return false;
  const plus = t[0] === '+';
  let prev = 'start';
  let digits = 0;
  let seps = 0;
  let dots = 0;
  let group = 0;
  let longest = 0;
  let paren = null;
  let parenSeen = false;
  for (let i = plus ? 1 : 0; i < t.length; i++) {
    const c = t[i];
    if (isDigit(c)) {
      if (++digits > 15) return false;
      group++;
      if (paren !== null) paren++;
      prev = 'digit';
    } else if (c === ' ' || c === '-' || c === '.') {
      if (paren !== null || !(prev === 'digit' || prev === 'close')) return false;
      seps++;
      if (c === '.') dots++;
      longest = Math.max(longest, group);
      group = 0;
      prev = 'sep';
    } else if (c === '(') {
      if (parenSeen || !(prev === 'start' || prev === 'sep')) return false;
      paren = 0;
      parenSeen = true;
      prev = 'open';
    } else if (c === ')') {
      if (paren === null || paren < 1 || paren > 4) return false;
      paren = null;
      longest = Math.max(longest, group);
      group = 0;
      prev = 'close';
    } else return false;
  }
  longest = Math.max(longest, group);
  if (prev !== 'digit') return false;
  if (plus) return digits >= 7;
  const separated = seps > 0 || parenSeen;
  const dottedQuad = !parenSeen && seps === 3 && dots === 3 && longest <= 3;
  return separated && !dottedQuad && digits >= 10;
}

/** The kind of `t`: email, ssn, card, ip, phone (tried in that order) or null. */
export function classify(t) {
  if (isEmail(t)) return 'email';
  if (isSsn(t)) return 'ssn';
  if (isCard(t)) return 'card';
  if (isIp(t)) return 'ip';
  if (isPhone(t)) return 'phone';
  return null;
}

const DETECT = { email: isEmail, phone: isPhone, ssn: isSsn, card: isCard, ip: isIp };

function detect(detector, t) {
  if (detector === 'any') return classify(t);
  return DETECT[detector](t) ? detector : null;
}

// -- actions --------------------------------------------------------------

export function maskText(t, keep) {
  const chars = Array.from(t);
  if (chars.length <= keep) return '*'.repeat(chars.length);
  return '*'.repeat(chars.length - keep) + chars.slice(chars.length - keep).join('');
}

export function maskDigits(t, keep) {
  let digits = 0;
  for (const c of t) if (isDigit(c)) digits++;
  const hide = digits > keep ? digits - keep : digits;
  let seen = 0;
  let out = '';
  for (const c of t) {
    if (isDigit(c) && ++seen <= hide) out += '*';
    else out += c;
  }
  return out;
}

export function maskEmail(t) {
  const at = t.indexOf('@');
  const local = at < 0 ? '' : t.slice(0, at);
  if (at > 0 && ASCII.test(local)) return `${local[0]}***@${t.slice(at + 1)}`;
  return maskText(t, 0);
}

function mask(t, kind, keepLast) {
  if (kind === 'email') return maskEmail(t);
  if (kind === 'ip') return maskDigits(t, keepLast ?? 0);
  if (kind !== null) return maskDigits(t, keepLast ?? 4);
  return maskText(t, keepLast ?? 0);
}

// -- configuration -------------------------------------------------------

const isStringList = (v) => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function compileRule(i, doc, hasher, errors) {
  if (!isObject(doc)) {
    errors.push(`rules[${i}]: expected an object`);
    return null;
  }
  const before = errors.length;
  for (const k of Object.keys(doc)) {
    if (!RULE_FIELDS.includes(k)) {
      errors.push(`rules[${i}]: unknown field \`${k}\`, expected one of ${RULE_FIELDS.map((f) => `\`${f}\``).join(', ')}`);
    }
  }
  const { columns, detector, action, keep_last: keepLast } = doc;
  if (action === undefined) errors.push(`rules[${i}]: missing field \`action\``);
  else if (!ACTIONS.includes(action)) {
    errors.push(`rules[${i}].action: unknown action ${JSON.stringify(action)}, expected one of ${ACTIONS.join(', ')}`);
  }
  if (detector !== undefined && !DETECTORS.includes(detector)) {
    errors.push(`rules[${i}].detector: unknown detector ${JSON.stringify(detector)}, expected one of ${DETECTORS.join(', ')}`);
  }
  if (columns !== undefined) {
    if (!isStringList(columns)) errors.push(`rules[${i}].columns: expected a list of strings`);
    else if (columns.length === 0) errors.push(`rules[${i}].columns: an empty list matches no column`);
    else {
      columns.forEach((p, j) => {
        if (!p) errors.push(`rules[${i}].columns[${j}]: an empty pattern matches no column`);
      });
    }
  } else if (detector === undefined) {
    errors.push(`rules[${i}]: give \`columns\`, \`detector\` or both`);
  }
  if (keepLast !== undefined) {
    if (!Number.isInteger(keepLast) || keepLast < 0) {
      errors.push(`rules[${i}].keep_last: expected a non-negative integer`);
    } else if (action !== 'mask') {
      errors.push(`rules[${i}].keep_last: only the \`mask\` action takes \`keep_last\``);
    }
  }
  if (action === 'hash' && !hasher) {
    errors.push(`rules[${i}].action: \`hash\` needs \`hash_key\` (the HMAC secret) at the top level of the config`);
  }
  if (errors.length > before) return null;
  return {
    columns: columns === undefined ? null : columns.map(glob),
    detector: detector ?? null,
    action,
    keepLast: keepLast ?? null,
    hasher: action === 'hash' ? hasher : null,
  };
}

/** Validates the config, reporting every problem at once. */
export function compileConfig(config) {
  if (!isObject(config)) throw new Error('invalid plugin config: expected a JSON object');
  const errors = [];
  for (const k of Object.keys(config)) {
    if (!TOP_FIELDS.includes(k)) {
      errors.push(`unknown field \`${k}\`, expected one of \`hash_key\`, \`rules\`, \`tables\``);
    }
  }
  let hasher = null;
  const key = config.hash_key;
  if (key !== undefined) {
    if (typeof key !== 'string') errors.push('hash_key: expected a string');
    else if (key === '') errors.push('hash_key: must not be empty');
    else hasher = hmacSha256(key);
  }
  let tables = null;
  if (config.tables !== undefined) {
    if (!isStringList(config.tables)) errors.push('tables: expected a list of strings');
    else if (config.tables.length === 0) {
      errors.push('tables: an empty list matches no table; leave `tables` out to mask every table');
    } else tables = config.tables.map(glob);
  }
  let rules = [];
  const raw = config.rules;
  if (raw === undefined) {
    rules = [{ columns: null, detector: 'any', action: 'mask', keepLast: null, hasher: null }];
  } else if (!Array.isArray(raw)) errors.push('rules: expected a list of rules');
  else if (raw.length === 0) {
    errors.push('rules: an empty list masks nothing; leave `rules` out for the default detectors');
  } else rules = raw.map((d, i) => compileRule(i, d, hasher, errors)).filter((r) => r);
  if (errors.length) throw new Error(`invalid plugin config: ${errors.join('; ')}`);
  return { rules, tables };
}

// -- the transformer ---------------------------------------------------------

const names = (rule, name, keyImage) =>
  rule.columns === null ? !keyImage : rule.columns.some((m) => m(name));

/** The rules that can apply to column `name`; the first without a detector ends the list. */
function plan(rules, name, keyImage) {
  const candidates = [];
  for (let i = 0; i < rules.length; i++) {
    if (!names(rules[i], name, keyImage)) continue;
    candidates.push(i);
    if (rules[i].detector === null) break;
  }
  return candidates;
}

const REMOVE = Symbol('remove');
const LEAVE = Symbol('leave');

/** What `rule` makes of `value`: LEAVE, REMOVE, or the new value. */
function change(rule, value, kind) {
  if (rule.action === 'drop') return REMOVE;
  if (typeof value !== 'string') {
    // Nulls and unchanged values stay; masked or hashed text would not
    // fit a column of another type, so those are redacted.
    return value === null || value === UNCHANGED ? LEAVE : null;
  }
  switch (rule.action) {
    case 'mask': {
      const trimmed = value.trim();
      if (!trimmed) return LEAVE;
      return mask(trimmed, kind ?? classify(trimmed), rule.keepLast);
    }
    case 'hash':
      return rule.hasher.hex(value);
    default:
      return null; // redact
  }
}

export class PiiMask {
  constructor(config) {
    const { rules, tables } = compileConfig(config);
    this.rules = rules;
    this.tables = tables;
    this.uniform = rules.every((r) => r.columns === null) ? plan(rules, '', false) : null;
    this.selected = new Map();
    this.layouts = new Map();
    this.last = { names: null, keyImage: false, plans: null };
  }

  tableSelected(source) {
    if (this.tables === null) return true;
    const k = `${source.schema}\u0000${source.table}`;
    let hit = this.selected.get(k);
    if (hit === undefined) {
      const name = source.schema ? `${source.schema}.${source.table}` : source.table;
      hit = this.tables.some((m) => m(name));
      this.selected.set(k, hit);
    }
    return hit;
  }

  plans(columnNames, keyImage) {
    // Events of a run of one table share their names array.
    const last = this.last;
    if (last.names === columnNames && last.keyImage === keyImage) return last.plans;
    const k = `${keyImage}\u0000${columnNames.join('\u0000')}`;
    let plans = this.layouts.get(k);
    if (!plans) {
      plans = columnNames.map((n) => plan(this.rules, n, keyImage));
      this.layouts.set(k, plans);
    }
    this.last = { names: columnNames, keyImage, plans };
    return plans;
  }

  transform(event) {
    if (!this.tableSelected(event.source)) return;
    const images = this.uniform ? ['before', 'after'] : ['key', 'before', 'after'];
    for (const image of images) {
      const row = event.image(image);
      if (!row) continue;
      const plans = this.uniform ? null : this.plans(row.names, image === 'key');
      const values = row.values;
      for (let i = 0; i < values.length; i++) {
        const candidates = plans ? plans[i] : this.uniform;
        if (candidates.length) this.apply(event, image, i, values[i], candidates);
      }
    }
  }

  apply(event, image, index, value, candidates) {
    const text = typeof value === 'string' ? value.trim() : null;
    for (const r of candidates) {
      const rule = this.rules[r];
      let kind = null;
      if (rule.detector !== null) {
        if (text === null) continue;
        kind = detect(rule.detector, text);
        if (kind === null) continue;
      }
      const next = change(rule, value, kind);
      if (next === REMOVE) event.remove(image, index);
      else if (next !== LEAVE) event.set(image, index, next);
      return;
    }
  }
}
