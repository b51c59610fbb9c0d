/*
 * pii-mask in C: the rules of the bundled Rust plugin (plugins/pii-mask),
 * and the same golden files prove it. It ports the detectors for emails,
 * phones, SSNs and ITINs, cards and IPv4 addresses; the bundled plugin
 * also recognises IBANs, IPv6 addresses, phone extensions and trunk
 * prefixes, tells ISBNs apart, and masks columns by name hints (`ssn`,
 * `dob`, ...).
 *
 * For each column of the before and after images the rules are tried in
 * order and the first that matches decides: by column name (`columns`,
 * case-insensitive globs), by value (`detector`: email, phone, ssn, card,
 * ip or any), or both. The key image is touched only by rules naming the
 * column. Actions: mask (keep the shape), hash (HMAC-SHA256 under
 * `hash_key`), redact (null), drop (remove the column). With `{}` every
 * text value a detector recognises is masked.
 */
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "weir_json.h"
#include "weir_plugin.h"

typedef enum { DET_NONE, DET_EMAIL, DET_PHONE, DET_SSN, DET_CARD, DET_IP, DET_ANY } detector;
typedef enum { KIND_NONE, KIND_EMAIL, KIND_PHONE, KIND_SSN, KIND_CARD, KIND_IP } kind;
typedef enum { ACT_MASK, ACT_HASH, ACT_REDACT, ACT_DROP } action;

typedef struct {
    char **columns; /* NULL: every column of the before and after images */
    size_t ncolumns;
    detector detector;
    action action;
    long keep_last; /* -1: the default */
} rule;

/* The rules that can apply to one column: indexes, ended by the first
 * rule without a detector. */
typedef struct {
    size_t n;
    unsigned char idx[16];
} plan;

/* The plans of the last layout seen, per image. */
typedef struct {
    weir_str *names; /* copies */
    size_t len;
    plan *plans;
} layout;

typedef struct {
    rule *rules;
    size_t nrules;
    char **tables; /* NULL: every table */
    size_t ntables;
    hmac_sha256 hmac;
    layout layouts[3];
    char *last_table; /* "schema.table" of the last event, and its verdict */
    bool last_selected;
} pii_mask;

/* ---- text helpers -------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

/* Length of the UTF-8 sequence starting with byte `c`. */
static size_t seq_len(unsigned char c) {
    return c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
}

static uint32_t decode_cp(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    if (n == 1) return u[0];
    uint32_t cp = u[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) cp = (cp << 6) | (u[i] & 0x3f);
    return cp;
}

/* Unicode White_Space, as Rust's str::trim. */
static bool is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

static weir_str trim(weir_str s) {
    size_t i = 0, start = s.len, end = 0;
    while (i < s.len) {
        size_t n = seq_len((unsigned char)s.ptr[i]);
        if (!is_space(decode_cp(s.ptr + i, n))) {
            if (start == s.len) start = i;
            end = i + n;
        }
        i += n;
    }
    if (start == s.len) return (weir_str){s.ptr, 0};
    return (weir_str){s.ptr + start, end - start};
}

static bool ascii(weir_str s) {
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.ptr[i] >= 0x80) return false;
    return true;
}

/* A case-insensitive glob over `name`: `*` any run of characters, `?` one. */
static bool glob(const char *p, const char *s, size_t len) {
    const char *star = NULL, *retry = NULL;
    const char *end = s + len;
    while (s < end) {
        if (*p == '*') {
            star = ++p;
            retry = s;
        } else if (*p == '?') {
            p++;
            s += seq_len((unsigned char)*s);
        } else if (*p && lower(*p) == lower(*s)) {
            p++;
            s++;
        } else if (star) {
            p = star;
            retry += seq_len((unsigned char)*retry);
            s = retry;
        } else {
            return false;
        }
    }
    while (*p == '*') p++;
    return *p == 0 && s == end;
}

/* ---- detectors: whole (trimmed) ASCII values only, conservative ---------- */

static bool is_atom(char c) {
    return is_digit(c) || is_alpha(c) || (c && strchr("!#$%&'*+/=?^_`{|}~-", c));
}

static bool is_domain(const char *d, size_t len) {
    size_t labels = 0, label_len = 0;
    bool label_alpha = true;
    char prev = '.';
    for (size_t i = 0; i < len; i++) {
        char c = d[i];
        if (c == '.') {
            if (label_len == 0 || prev == '-') return false;
            labels++, label_len = 0, label_alpha = true;
        } else if (c == '-') {
            if (label_len == 0) return false;
            label_len++, label_alpha = false;
        } else if (is_alpha(c)) {
            label_len++;
        } else if (is_digit(c)) {
            label_len++, label_alpha = false;
        } else {
            return false;
        }
        if (label_len > 63) return false;
        prev = c;
    }
    return labels >= 1 && label_len >= 2 && label_alpha;
}

static bool is_email(weir_str t) {
    if (t.len < 6 || t.len > 254) return false;
    bool prev_dot = true;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.ptr[i];
        if (c == '@') return i > 0 && !prev_dot && is_domain(t.ptr + i + 1, t.len - i - 1);
        if (i >= 64) return false;
        if (c == '.') {
            if (prev_dot) return false;
            prev_dot = true;
        } else if (is_atom(c)) {
            prev_dot = false;
        } else {
            return false;
        }
    }
    return false;
}

static bool is_ssn(weir_str t) {
    if (t.len != 11) return false;
    const char *b = t.ptr;
    char sep = b[3];
    if ((sep != '-' && sep != ' ') || b[6] != sep) return false;
    int area = 0, group = 0, serial = 0;
    for (int i = 0; i < 11; i++) {
        if (i == 3 || i == 6) continue;
        if (!is_digit(b[i])) return false;
        int d = b[i] - '0';
        if (i < 3) area = area * 10 + d;
        else if (i < 6) group = group * 10 + d;
        else serial = serial * 10 + d;
    }
    /* Areas 900 to 999 are ITINs: as sensitive. */
    return area != 0 && area != 666 && group != 0 && serial != 0;
}

/* An IPv4 address: four numbers from 0 to 255, no leading zeros. */
static bool is_ip(weir_str t) {
    if (t.len < 7 || t.len > 15) return false;
    int parts = 0, value = 0, digits = 0;
    for (size_t i = 0; i <= t.len; i++) {
        if (i == t.len || t.ptr[i] == '.') {
            if (digits == 0 || value > 255) return false;
            parts++;
            value = 0;
            digits = 0;
            continue;
        }
        if (!is_digit(t.ptr[i])) return false;
        if (digits == 1 && value == 0) return false; /* a leading zero */
        if (++digits > 3) return false;
        value = value * 10 + (t.ptr[i] - '0');
    }
    return parts == 4;
}

static bool is_card(weir_str t) {
    if (t.len < 13 || t.len > 37) return false;
    unsigned digits = 0, sum = 0;
    bool prev_sep = true;
    for (size_t i = t.len; i-- > 0;) {
        char c = t.ptr[i];
        if (is_digit(c)) {
            unsigned d = (unsigned)(c - '0');
            if (digits % 2 == 1) {
                d *= 2;
                if (d > 9) d -= 9;
            }
            sum += d;
            if (++digits > 19) return false;
            prev_sep = false;
        } else if (c == ' ' || c == '-') {
            if (prev_sep) return false;
            prev_sep = true;
        } else {
            return false;
        }
    }
    return !prev_sep && digits >= 13 && sum % 10 == 0;
}

/* Ten digits starting 2 to 9, nine to eleven starting with a 0 prefix, or
 * any eleven (not zero-padding: four or more leading zeros). */
static bool is_bare_phone(weir_str t) {
    for (size_t i = 0; i < t.len; i++)
        if (!is_digit(t.ptr[i])) return false;
    if (t.len >= 4 && t.ptr[0] == '0' && t.ptr[1] == '0' && t.ptr[2] == '0' && t.ptr[3] == '0')
        return false;
    if (t.len == 10 && t.ptr[0] >= '2') return true;
    return (t.len >= 9 && t.len <= 11 && t.ptr[0] == '0') || t.len == 11;
}

static bool is_phone(weir_str t) {
    enum { START, DIGIT, SEP, OPEN, CLOSE } prev = START;
    bool bare = t.len > 0;
    for (size_t i = 0; i < t.len && bare; i++) bare = is_digit(t.ptr[i]);
    if (bare) return is_bare_phone(t);
    if (t.len < 8 || t.len > 32) return false;
    bool plus = t.ptr[0] == '+', paren_open = false, paren_seen = false;
    unsigned digits = 0, seps = 0, dots = 0, group = 0, longest = 0, paren = 0;
    for (size_t i = plus ? 1 : 0; i < t.len; i++) {
        char c = t.ptr[i];
        if (is_digit(c)) {
            if (++digits > 15) return false;
            group++;
            if (paren_open) paren++;
            prev = DIGIT;
        } else if (c == ' ' || c == '-' || c == '.') {
            if (paren_open || !(prev == DIGIT || prev == CLOSE)) return false;
            seps++;
            dots += c == '.';
            if (group > longest) longest = group;
            group = 0;
            prev = SEP;
        } else if (c == '(') {
            if (paren_seen || !(prev == START || prev == SEP)) return false;
            paren_open = paren_seen = true;
            paren = 0;
            prev = OPEN;
        } else if (c == ')') {
            if (!paren_open || paren < 1 || paren > 4) return false;
            paren_open = false;
            if (group > longest) longest = group;
            group = 0;
            prev = CLOSE;
        } else {
            return false;
        }
    }
    if (group > longest) longest = group;
    if (prev != DIGIT) return false;
    if (plus) return digits >= 7;
    bool separated = seps > 0 || paren_seen;
    bool dotted_quad = !paren_seen && seps == 3 && dots == 3 && longest <= 3;
    return separated && !dotted_quad && digits >= 10;
}

/* Email, SSN, card, IP, phone: tried in that order. */
static kind classify(weir_str t) {
    if (!ascii(t)) return KIND_NONE;
    if (is_email(t)) return KIND_EMAIL;
    if (is_ssn(t)) return KIND_SSN;
    if (is_card(t)) return KIND_CARD;
    if (is_ip(t)) return KIND_IP;
    if (is_phone(t)) return KIND_PHONE;
    return KIND_NONE;
}

static kind detect(detector d, weir_str t) {
    if (d == DET_ANY) return classify(t);
    if (!ascii(t)) return KIND_NONE;
    switch (d) {
    case DET_EMAIL: return is_email(t) ? KIND_EMAIL : KIND_NONE;
    case DET_PHONE: return is_phone(t) ? KIND_PHONE : KIND_NONE;
    case DET_SSN: return is_ssn(t) ? KIND_SSN : KIND_NONE;
    case DET_CARD: return is_card(t) ? KIND_CARD : KIND_NONE;
    case DET_IP: return is_ip(t) ? KIND_IP : KIND_NONE;
    default: return KIND_NONE;
    }
}

/* ---- masks (into `out`, which holds at least t.len + 4 bytes) ------------- */

static size_t mask_text(weir_str t, size_t keep, char *out) {
    size_t chars = 0;
    for (size_t i = 0; i < t.len; i += seq_len((unsigned char)t.ptr[i])) chars++;
    size_t hide = chars <= keep ? chars : chars - keep, n = 0, i = 0;
    for (size_t c = 0; c < hide; c++) {
        out[n++] = '*';
        i += seq_len((unsigned char)t.ptr[i]);
    }
    if (chars > keep) {
        memcpy(out + n, t.ptr + i, t.len - i);
        n += t.len - i;
    }
    return n;
}

static size_t mask_digits(weir_str t, size_t keep, char *out) {
    size_t digits = 0, seen = 0;
    for (size_t i = 0; i < t.len; i++) digits += is_digit(t.ptr[i]);
    size_t hide = digits > keep ? digits - keep : digits;
    for (size_t i = 0; i < t.len; i++) {
        bool d = is_digit(t.ptr[i]);
        out[i] = d && ++seen <= hide ? '*' : t.ptr[i];
    }
    return t.len;
}

static size_t mask_email(weir_str t, char *out) {
    const char *at = memchr(t.ptr, '@', t.len);
    weir_str local = {t.ptr, at ? (size_t)(at - t.ptr) : 0};
    if (!at || local.len == 0 || !ascii(local)) return mask_text(t, 0, out);
    size_t domain = t.len - local.len - 1;
    out[0] = t.ptr[0];
    memcpy(out + 1, "***@", 4);
    memcpy(out + 5, at + 1, domain);
    return 5 + domain;
}

static size_t mask(weir_str t, kind k, long keep_last, char *out) {
    if (k == KIND_EMAIL) return mask_email(t, out);
    if (k == KIND_IP) return mask_digits(t, keep_last < 0 ? 0 : (size_t)keep_last, out);
    if (k != KIND_NONE) return mask_digits(t, keep_last < 0 ? 4 : (size_t)keep_last, out);
    return mask_text(t, keep_last < 0 ? 0 : (size_t)keep_last, out);
}

/* ---- configuration --------------------------------------------------------- */

/* Every problem is reported at once, joined by "; ". (No snprintf: stdio
 * would link WASI into the component; see weir_plugin.h.) */
typedef struct {
    char *text;
    size_t len, cap;
} errors;

static void add(errors *e, const char *s) {
    size_t n = strlen(s);
    if (e->len + n + 1 > e->cap) {
        e->cap = (e->len + n + 1) * 2;
        e->text = realloc(e->text, e->cap);
        if (!e->text) abort();
    }
    memcpy(e->text + e->len, s, n + 1);
    e->len += n;
}

static void add_num(errors *e, size_t n) {
    char digits[24], out[24];
    size_t k = 0, j = 0;
    do digits[k++] = (char)('0' + n % 10); while ((n /= 10) > 0);
    while (k > 0) out[j++] = digits[--k];
    out[j] = 0;
    add(e, out);
}

/* Starts a new problem. */
static void next(errors *e) {
    if (e->len) add(e, "; ");
}

/* "rules[i]<field>: <message>" */
static void rule_error(errors *e, size_t i, const char *field, const char *message) {
    next(e);
    add(e, "rules[");
    add_num(e, i);
    add(e, "]");
    add(e, field);
    add(e, ": ");
    add(e, message);
}

static void error(errors *e, const char *message) {
    next(e);
    add(e, message);
}

static char **string_list(const weir_json *v, size_t *n) {
    if (v->type != WEIR_JSON_ARRAY) return NULL;
    for (size_t i = 0; i < v->count; i++)
        if (v->items[i].type != WEIR_JSON_STRING) return NULL;
    char **out = calloc(v->count ? v->count : 1, sizeof *out);
    if (!out) abort();
    for (size_t i = 0; i < v->count; i++) out[i] = strdup(v->items[i].string);
    *n = v->count;
    return out;
}

static int lookup(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static void compile_rule(pii_mask *m, size_t i, const weir_json *doc, bool has_key, errors *e) {
    static const char *const FIELDS[] = {"action", "columns", "detector", "keep_last"};
    static const char *const DETECTORS[] = {"email", "phone", "ssn", "card", "ip", "any"};
    static const char *const ACTIONS[] = {"mask", "hash", "redact", "drop"};
    if (doc->type != WEIR_JSON_OBJECT) {
        rule_error(e, i, "", "expected an object");
        return;
    }
    size_t before = e->len;
    for (size_t k = 0; k < doc->count; k++) {
        if (lookup(doc->keys[k], FIELDS, 4) >= 0) continue;
        rule_error(e, i, "", "unknown field `");
        add(e, doc->keys[k]);
        add(e, "`, expected one of `action`, `columns`, `detector`, `keep_last`");
    }
    rule r = {NULL, 0, DET_NONE, ACT_MASK, -1};
    const weir_json *columns = weir_json_get(doc, "columns");
    const weir_json *det = weir_json_get(doc, "detector");
    const weir_json *act = weir_json_get(doc, "action");
    const weir_json *keep = weir_json_get(doc, "keep_last");
    int a = -1;
    if (!act) rule_error(e, i, "", "missing field `action`");
    else if (act->type != WEIR_JSON_STRING || (a = lookup(act->string, ACTIONS, 4)) < 0)
        rule_error(e, i, ".action", "expected one of mask, hash, redact, drop");
    if (det) {
        int d;
        if (det->type != WEIR_JSON_STRING || (d = lookup(det->string, DETECTORS, 6)) < 0)
            rule_error(e, i, ".detector", "expected one of email, phone, ssn, card, ip, any");
        else r.detector = (detector)(d + 1);
    }
    if (columns) {
        r.columns = string_list(columns, &r.ncolumns);
        if (!r.columns) rule_error(e, i, ".columns", "expected a list of strings");
        else if (r.ncolumns == 0) rule_error(e, i, ".columns", "an empty list matches no column");
        for (size_t j = 0; r.columns && j < r.ncolumns; j++) {
            if (r.columns[j][0]) continue;
            next(e);
            add(e, "rules[");
            add_num(e, i);
            add(e, "].columns[");
            add_num(e, j);
            add(e, "]: an empty pattern matches no column");
        }
    } else if (!det) {
        rule_error(e, i, "", "give `columns`, `detector` or both");
    }
    if (keep) {
        if (keep->type != WEIR_JSON_NUMBER || keep->number < 0 || keep->number != (long)keep->number)
            rule_error(e, i, ".keep_last", "expected a non-negative integer");
        else if (a != ACT_MASK)
            rule_error(e, i, ".keep_last", "only the `mask` action takes `keep_last`");
        else r.keep_last = (long)keep->number;
    }
    if (a == ACT_HASH && !has_key)
        rule_error(e, i, ".action",
                   "`hash` needs `hash_key` (the HMAC secret) at the top level of the config");
    if (e->len > before) return;
    r.action = (action)a;
    m->rules[m->nrules++] = r;
}

void *weir_plugin_new(const char *config, size_t len, char *error_out, size_t error_cap) {
    weir_json *doc = weir_json_parse(config, len, error_out, error_cap);
    if (!doc) return NULL;
    pii_mask *m = calloc(1, sizeof *m);
    if (!m) abort();
    errors e = {NULL, 0, 0};
    if (doc->type != WEIR_JSON_OBJECT) error(&e, "expected a JSON object");
    for (size_t k = 0; doc->type == WEIR_JSON_OBJECT && k < doc->count; k++) {
        if (!strcmp(doc->keys[k], "rules") || !strcmp(doc->keys[k], "hash_key") ||
            !strcmp(doc->keys[k], "tables"))
            continue;
        error(&e, "unknown field `");
        add(&e, doc->keys[k]);
        add(&e, "`, expected one of `hash_key`, `rules`, `tables`");
    }
    const weir_json *key = weir_json_get(doc, "hash_key");
    bool has_key = false;
    if (key) {
        if (key->type != WEIR_JSON_STRING) error(&e, "hash_key: expected a string");
        else if (!key->string[0]) error(&e, "hash_key: must not be empty");
        else {
            hmac_sha256_init(&m->hmac, key->string, strlen(key->string));
            has_key = true;
        }
    }
    const weir_json *tables = weir_json_get(doc, "tables");
    if (tables) {
        m->tables = string_list(tables, &m->ntables);
        if (!m->tables) error(&e, "tables: expected a list of strings");
        else if (m->ntables == 0)
            error(&e, "tables: an empty list matches no table; leave `tables` out to mask every "
                      "table");
    }
    const weir_json *rules = weir_json_get(doc, "rules");
    if (!rules) {
        m->rules = calloc(1, sizeof *m->rules);
        m->rules[0] = (rule){NULL, 0, DET_ANY, ACT_MASK, -1};
        m->nrules = 1;
    } else if (rules->type != WEIR_JSON_ARRAY) {
        error(&e, "rules: expected a list of rules");
    } else if (rules->count == 0) {
        error(&e, "rules: an empty list masks nothing; leave `rules` out for the default "
                  "detectors");
    } else if (rules->count > 16) {
        error(&e, "rules: at most 16 rules");
    } else {
        m->rules = calloc(rules->count, sizeof *m->rules);
        for (size_t i = 0; i < rules->count; i++) compile_rule(m, i, &rules->items[i], has_key, &e);
    }
    weir_json_free(doc);
    if (e.len) {
        /* The plugin is refused; the instance goes with it. */
        const char *prefix = "invalid plugin config: ";
        size_t n = strlen(prefix);
        if (error_cap > n) {
            memcpy(error_out, prefix, n);
            strncpy(error_out + n, e.text, error_cap - n - 1);
            error_out[error_cap - 1] = 0;
        }
        free(e.text);
        return NULL;
    }
    return m;
}

/* ---- the transformer ------------------------------------------------------- */

static bool names_column(const rule *r, weir_str name, bool key_image) {
    if (!r->columns) return !key_image;
    for (size_t i = 0; i < r->ncolumns; i++)
        if (glob(r->columns[i], name.ptr, name.len)) return true;
    return false;
}

static plan plan_for(const pii_mask *m, weir_str name, bool key_image) {
    plan p = {0, {0}};
    for (size_t i = 0; i < m->nrules; i++) {
        if (!names_column(&m->rules[i], name, key_image)) continue;
        p.idx[p.n++] = (unsigned char)i;
        if (m->rules[i].detector == DET_NONE) break;
    }
    return p;
}

static bool same_names(const layout *l, const weir_row *row) {
    if (l->len != row->len || !l->plans) return false;
    for (size_t i = 0; i < row->len; i++)
        if (l->names[i].len != row->names[i].len ||
            memcmp(l->names[i].ptr, row->names[i].ptr, row->names[i].len))
            return false;
    return true;
}

/* The plans of `row`'s columns, cached by layout (names are compared, not
 * their addresses: batches reuse memory). */
static const plan *plans(pii_mask *m, weir_image image, const weir_row *row) {
    layout *l = &m->layouts[image];
    if (same_names(l, row)) return l->plans;
    for (size_t i = 0; i < l->len; i++) free((void *)l->names[i].ptr);
    free(l->names);
    free(l->plans);
    l->len = row->len;
    l->names = calloc(row->len ? row->len : 1, sizeof *l->names);
    l->plans = calloc(row->len ? row->len : 1, sizeof *l->plans);
    for (size_t i = 0; i < row->len; i++) {
        char *copy = malloc(row->names[i].len + 1);
        memcpy(copy, row->names[i].ptr, row->names[i].len);
        l->names[i] = (weir_str){copy, row->names[i].len};
        l->plans[i] = plan_for(m, row->names[i], image == WEIR_KEY);
    }
    return l->plans;
}

/* Whether the event's table (`schema.table`, or `table` without a schema)
 * matches `tables`. */
static bool selected(pii_mask *m, const weir_event *e) {
    if (!m->tables) return true;
    size_t len = e->schema.len + (e->schema.len ? 1 : 0) + e->table.len;
    char *name = malloc(len + 1);
    if (!name) abort();
    memcpy(name, e->schema.ptr, e->schema.len);
    if (e->schema.len) name[e->schema.len] = '.';
    memcpy(name + len - e->table.len, e->table.ptr, e->table.len);
    name[len] = 0;
    if (m->last_table && strcmp(m->last_table, name) == 0) {
        free(name);
        return m->last_selected;
    }
    free(m->last_table);
    m->last_table = name;
    m->last_selected = false;
    for (size_t i = 0; i < m->ntables; i++)
        if (glob(m->tables[i], name, strlen(name))) m->last_selected = true;
    return m->last_selected;
}

static void apply(pii_mask *m, weir_event *e, weir_image image, size_t index, const weir_value *v,
                  const plan *p) {
    bool text = v->kind == WEIR_TEXT;
    weir_str trimmed = text ? trim(v->as.str) : (weir_str){NULL, 0};
    for (size_t c = 0; c < p->n; c++) {
        const rule *r = &m->rules[p->idx[c]];
        kind k = KIND_NONE;
        if (r->detector != DET_NONE) {
            if (!text) continue;
            k = detect(r->detector, trimmed);
            if (k == KIND_NONE) continue;
        }
        if (r->action == ACT_DROP) {
            weir_remove(e, image, index);
            return;
        }
        if (v->kind == WEIR_NULL || v->kind == WEIR_UNCHANGED) return;
        /* Masked or hashed text would not fit a column of another type. */
        if (!text || r->action == ACT_REDACT) {
            weir_set_null(e, image, index);
            return;
        }
        if (r->action == ACT_HASH) {
            char hex[65];
            hmac_sha256_hex(&m->hmac, v->as.str.ptr, v->as.str.len, hex);
            weir_set_text(e, image, index, hex, 64);
            return;
        }
        if (trimmed.len == 0) return;
        if (k == KIND_NONE) k = classify(trimmed);
        char small[256];
        char *out = trimmed.len + 4 <= sizeof small ? small : malloc(trimmed.len + 4);
        size_t n = mask(trimmed, k, r->keep_last, out);
        weir_set_text(e, image, index, out, n);
        if (out != small) free(out);
        return;
    }
}

weir_outcome weir_plugin_transform(void *plugin, weir_event *e, char *reason, size_t reason_cap) {
    (void)reason, (void)reason_cap;
    pii_mask *m = plugin;
    if (!selected(m, e)) return WEIR_KEEP;
    for (int image = WEIR_KEY; image <= WEIR_AFTER; image++) {
        const weir_row *row = weir_event_row(e, (weir_image)image);
        if (!row) continue;
        const plan *p = plans(m, (weir_image)image, row);
        for (size_t i = 0; i < row->len; i++)
            if (p[i].n) apply(m, e, (weir_image)image, i, &row->values[i], &p[i]);
    }
    return WEIR_KEEP;
}
