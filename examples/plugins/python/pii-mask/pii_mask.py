"""pii-mask in Python: the rules of the bundled Rust plugin
(``plugins/pii-mask``), and the same golden files prove it. It ports the
detectors for emails, phones, SSNs and ITINs, cards and IPv4 addresses;
the bundled plugin also recognises IBANs, IPv6 addresses, phone
extensions and trunk prefixes, tells ISBNs apart, and masks columns by
name hints (``ssn``, ``dob``, ...).

For each column of the before and after images the rules are tried in
order and the first that matches decides: by column name (``columns``,
case-insensitive globs), by value (``detector``: email, phone, ssn, card,
ip or any), or both. The key image is touched only by rules naming the
column. Actions: ``mask`` (keep the shape), ``hash`` (HMAC-SHA256 under
``hash_key``), ``redact`` (null), ``drop`` (remove the column). With ``{}``
every text value a detector recognises is masked.
"""

import hashlib
import re

from weir_plugin import UNCHANGED

_TOP_FIELDS = {"rules", "hash_key", "tables"}
_RULE_FIELDS = {"columns", "detector", "action", "keep_last"}
_DETECTORS = ("email", "phone", "ssn", "card", "ip", "any")
_ACTIONS = ("mask", "hash", "redact", "drop")
_ATOM = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-")
_DIGITS = set("0123456789")


def glob(pattern):
    """A case-insensitive glob: ``*`` any run of characters, ``?`` one."""
    parts = ["." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL).fullmatch


# -- detectors: whole (trimmed) ASCII values only, conservative ----------


def is_email(t):
    if len(t) < 6 or len(t) > 254 or not t.isascii():
        return False
    at = t.find("@")
    if at <= 0 or at > 64:
        return False
    local = t[:at]
    if local[0] == "." or local[-1] == "." or ".." in local:
        return False
    if any(c not in _ATOM and c != "." for c in local):
        return False
    labels = t[at + 1 :].split(".")
    if len(labels) < 2:
        return False
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isalnum() or c == "-" for c in label):
            return False
    last = labels[-1]
    return len(last) >= 2 and last.isalpha()


def is_ssn(t):
    if len(t) != 11 or not t.isascii():
        return False
    sep = t[3]
    if sep not in "- " or t[6] != sep:
        return False
    area, group, serial = t[0:3], t[4:6], t[7:11]
    if not (area.isdigit() and group.isdigit() and serial.isdigit()):
        return False
    a = int(area)
    # Areas 900 to 999 are ITINs: as sensitive.
    return a != 0 and a != 666 and int(group) != 0 and int(serial) != 0


def is_ip(t):
    """An IPv4 address: four numbers from 0 to 255, no leading zeros."""
    parts = t.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not (p.isascii() and p.isdigit()) or len(p) > 3 or (len(p) > 1 and p[0] == "0"):
            return False
        if int(p) > 255:
            return False
    return True


def is_card(t):
    if len(t) < 13 or len(t) > 37 or not t.isascii():
        return False
    digits = 0
    total = 0
    prev_sep = True
    for c in reversed(t):
        if c in _DIGITS:
            d = ord(c) - 48
            if digits % 2 == 1:
                d *= 2
                if d > 9:
                    d -= 9
            total += d
            digits += 1
            if digits > 19:
                return False
            prev_sep = False
        elif c == " " or c == "-":
            if prev_sep:
                return False
            prev_sep = True
        else:
            return False
    return not prev_sep and digits >= 13 and total % 10 == 0


def is_bare_phone(t):
    """Ten digits starting 2 to 9, nine to eleven starting with a 0 prefix,
    or any eleven (not zero-padding: four or more leading zeros)."""
    if t.startswith("0000"):
        return False
    if len(t) == 10 and t[0] in "23456789":
        return True
    return (len(t) in (9, 10, 11) and t[0] == "0") or len(t) == 11


def is_phone(t):
    if t.isascii() and t.isdigit():
        return is_bare_phone(t)
    if len(t) < 8 or len(t) > 32 or not t.isascii():
        return False
    plus = t[0] == "+"
    prev = "start"
    digits = seps = dots = group = longest = 0
    paren = None
    paren_seen = False
    for c in t[1:] if plus else t:
        if c in _DIGITS:
            digits += 1
            if digits > 15:
                return False
            group += 1
            if paren is not None:
                paren += 1
            prev = "digit"
        elif c in " -.":
            if paren is not None or prev not in ("digit", "close"):
                return False
            seps += 1
            dots += c == "."
            longest = max(longest, group)
            group = 0
            prev = "sep"
        elif c == "(":
            if paren_seen or prev not in ("start", "sep"):
                return False
            paren = 0
            paren_seen = True
            prev = "open"
        elif c == ")":
            if paren is None or not 1 <= paren <= 4:
                return False
            paren = None
            longest = max(longest, group)
            group = 0
            prev = "close"
        else:
            return False
    longest = max(longest, group)
    if prev != "digit":
        return False
    if plus:
        return digits >= 7
    separated = seps > 0 or paren_seen
    dotted_quad = not paren_seen and seps == 3 and dots == 3 and longest <= 3
    return separated and not dotted_quad and digits >= 10


def classify(t):
    """The kind of ``t``: email, ssn, card, ip, phone (tried in that order) or None."""
    if is_email(t):
        return "email"
    if is_ssn(t):
        return "ssn"
    if is_card(t):
        return "card"
    if is_ip(t):
        return "ip"
    if is_phone(t):
        return "phone"
    return None


_DETECT = {"email": is_email, "phone": is_phone, "ssn": is_ssn, "card": is_card, "ip": is_ip}


def detect(detector, t):
    if detector == "any":
        return classify(t)
    return detector if _DETECT[detector](t) else None


# -- actions --------------------------------------------------------------


def mask_text(t, keep):
    if len(t) <= keep:
        return "*" * len(t)
    return "*" * (len(t) - keep) + t[len(t) - keep :]


def mask_digits(t, keep):
    digits = sum(1 for c in t if c in _DIGITS)
    hide = digits - keep if digits > keep else digits
    out = []
    seen = 0
    for c in t:
        if c in _DIGITS:
            seen += 1
            if seen <= hide:
                out.append("*")
                continue
        out.append(c)
    return "".join(out)


def mask_email(t):
    local, at, domain = t.partition("@")
    if at and local and local.isascii():
        return local[0] + "***@" + domain
    return mask_text(t, 0)


def mask(t, kind, keep_last):
    if kind == "email":
        return mask_email(t)
    if kind == "ip":
        return mask_digits(t, 0 if keep_last is None else keep_last)
    if kind is not None:
        return mask_digits(t, 4 if keep_last is None else keep_last)
    return mask_text(t, 0 if keep_last is None else keep_last)


class Hmac:
    """Keyed HMAC-SHA256 (RFC 2104) over hashlib's SHA-256.

    Written out because the stdlib ``hmac`` module goes through OpenSSL's
    HMAC, which asks WASI for randomness that a plugin is not granted (the
    component traps); plain SHA-256 needs nothing.
    """

    __slots__ = ("inner", "outer")

    def __init__(self, key):
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hex(self, text):
        """The lower-case hex MAC of ``text``'s UTF-8 bytes."""
        inner = self.inner.copy()
        inner.update(text.encode())
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


# -- configuration -------------------------------------------------------


class Rule:
    __slots__ = ("columns", "detector", "action", "keep_last", "hmac")

    def names(self, name, key_image):
        if self.columns is None:
            return not key_image
        return any(m(name) for m in self.columns)


def _is_string_list(v):
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


def _compile_rule(i, doc, hasher, errors):
    if not isinstance(doc, dict):
        errors.append("rules[%d]: expected an object" % i)
        return None
    before = len(errors)
    for k in doc:
        if k not in _RULE_FIELDS:
            errors.append(
                "rules[%d]: unknown field `%s`, expected one of %s"
                % (i, k, ", ".join("`%s`" % f for f in sorted(_RULE_FIELDS)))
            )
    columns = doc.get("columns")
    detector = doc.get("detector")
    action = doc.get("action")
    keep_last = doc.get("keep_last")
    if action is None:
        errors.append("rules[%d]: missing field `action`" % i)
    elif action not in _ACTIONS:
        errors.append("rules[%d].action: unknown action %r, expected one of %s" % (i, action, ", ".join(_ACTIONS)))
    if detector is not None and detector not in _DETECTORS:
        errors.append(
            "rules[%d].detector: unknown detector %r, expected one of %s"
            % (i, detector, ", ".join(_DETECTORS))
        )
    if columns is not None:
        if not _is_string_list(columns):
            errors.append("rules[%d].columns: expected a list of strings" % i)
        elif not columns:
            errors.append("rules[%d].columns: an empty list matches no column" % i)
        else:
            for j, p in enumerate(columns):
                if not p:
                    errors.append("rules[%d].columns[%d]: an empty pattern matches no column" % (i, j))
    elif detector is None:
        errors.append("rules[%d]: give `columns`, `detector` or both" % i)
    if keep_last is not None:
        if type(keep_last) is not int or keep_last < 0:
            errors.append("rules[%d].keep_last: expected a non-negative integer" % i)
        elif action != "mask":
            errors.append("rules[%d].keep_last: only the `mask` action takes `keep_last`" % i)
    if action == "hash" and hasher is None:
        errors.append(
            "rules[%d].action: `hash` needs `hash_key` (the HMAC secret) at the top level of the config" % i
        )
    if len(errors) > before:
        return None
    rule = Rule()
    rule.columns = None if columns is None else [glob(p) for p in columns]
    rule.detector = detector
    rule.action = action
    rule.keep_last = keep_last
    rule.hmac = hasher if action == "hash" else None
    return rule


def compile_config(config):
    """Validates the config, reporting every problem at once."""
    if not isinstance(config, dict):
        raise ValueError("invalid plugin config: expected a JSON object")
    errors = []
    for k in config:
        if k not in _TOP_FIELDS:
            errors.append(
                "unknown field `%s`, expected one of `hash_key`, `rules`, `tables`" % k
            )
    key = config.get("hash_key")
    hasher = None
    if key is not None:
        if not isinstance(key, str):
            errors.append("hash_key: expected a string")
        elif key == "":
            errors.append("hash_key: must not be empty")
        else:
            hasher = Hmac(key.encode())
    tables = config.get("tables")
    if tables is not None:
        if not _is_string_list(tables):
            errors.append("tables: expected a list of strings")
            tables = None
        elif not tables:
            errors.append(
                "tables: an empty list matches no table; leave `tables` out to mask every table"
            )
        else:
            tables = [glob(p) for p in tables]
    raw = config.get("rules")
    if raw is None:
        rule = Rule()
        rule.columns, rule.detector, rule.action, rule.keep_last, rule.hmac = (
            None,
            "any",
            "mask",
            None,
            None,
        )
        rules = [rule]
    elif not isinstance(raw, list):
        errors.append("rules: expected a list of rules")
        rules = []
    elif not raw:
        errors.append("rules: an empty list masks nothing; leave `rules` out for the default detectors")
        rules = []
    else:
        rules = [r for r in (_compile_rule(i, d, hasher, errors) for i, d in enumerate(raw)) if r]
    if errors:
        raise ValueError("invalid plugin config: " + "; ".join(errors))
    return rules, tables


# -- the transformer ---------------------------------------------------------

_SKIP = ()


def plan(rules, name, key_image):
    """The indexes of the rules that can apply to column ``name``: the
    first rule without a detector ends the list."""
    candidates = []
    for i, rule in enumerate(rules):
        if rule.names(name, key_image):
            candidates.append(i)
            if rule.detector is None:
                break
    return tuple(candidates) if candidates else _SKIP


_REMOVE = object()
_NULL = object()


def change(rule, value, kind):
    """What ``rule`` makes of ``value``: None to leave it, ``_REMOVE`` to
    drop the column, ``_NULL`` to make it null, else the new text."""
    if rule.action == "drop":
        return _REMOVE
    if value is None or type(value) is not str:
        # Nulls and unchanged values stay; masked or hashed text would not
        # fit a column of another type, so those are redacted.
        return None if value is None or value is UNCHANGED else _NULL
    if rule.action == "mask":
        trimmed = value.strip()
        if not trimmed:
            return None
        return mask(trimmed, kind or classify(trimmed), rule.keep_last)
    if rule.action == "hash":
        return rule.hmac.hex(value)
    return _NULL  # redact


class PiiMask:
    def __init__(self, config):
        self.rules, self.tables = compile_config(config)
        self.uniform = all(r.columns is None for r in self.rules)
        self.uniform_plan = plan(self.rules, "", False) if self.uniform else None
        self.selected = {}  # (schema, table) -> bool
        self.layouts = {}  # (key_image, names tuple) -> plans
        self.last = (None, None, None)  # the names list last seen, per layout

    def table_selected(self, source):
        if self.tables is None:
            return True
        k = (source.schema, source.table)
        hit = self.selected.get(k)
        if hit is None:
            name = source.table if not source.schema else source.schema + "." + source.table
            hit = self.selected[k] = any(m(name) for m in self.tables)
        return hit

    def plans(self, names, key_image):
        # Events of a run of one table share their names list: compare by
        # identity first, then by content.
        last_names, last_key, last_plans = self.last
        if names is last_names and key_image == last_key:
            return last_plans
        k = (key_image, tuple(names))
        plans = self.layouts.get(k)
        if plans is None:
            plans = self.layouts[k] = [plan(self.rules, n, key_image) for n in names]
        self.last = (names, key_image, plans)
        return plans

    def transform(self, event):
        if not self.table_selected(event.source):
            return None
        images = ("before", "after") if self.uniform else ("key", "before", "after")
        for image in images:
            row = event.image(image)
            if row is None:
                continue
            if self.uniform:
                plans = None
            else:
                plans = self.plans(row.names, image == "key")
            for i, value in enumerate(row.values):
                candidates = self.uniform_plan if plans is None else plans[i]
                if candidates:
                    self.apply(event, image, i, value, candidates)
        return None

    def apply(self, event, image, index, value, candidates):
        text = value.strip() if type(value) is str else None
        for r in candidates:
            rule = self.rules[r]
            if rule.detector is None:
                kind = None
            elif text is None:
                continue
            else:
                kind = detect(rule.detector, text)
                if kind is None:
                    continue
            new = change(rule, value, kind)
            if new is _REMOVE:
                event.remove(image, index)
            elif new is _NULL:
                event.set(image, index, None)
            elif new is not None:
                event.set(image, index, new)
            return
