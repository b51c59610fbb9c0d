#include "weir_json.h"

#include <stdlib.h>
#include <string.h>

/* No stdio and no strtod here: both reference libc's stderr, which links
 * WASI file descriptors into the component. */

typedef struct {
    const char *p, *end, *start;
    char *error;
    size_t error_cap;
    bool failed;
    int depth;
} parser;

static bool fail(parser *ps, const char *what) {
    if (!ps->failed && ps->error_cap > 0) {
        char msg[160] = "invalid JSON at byte ";
        char digits[24];
        size_t at = (size_t)(ps->p - ps->start), n = 0;
        do digits[n++] = (char)('0' + at % 10); while ((at /= 10) > 0);
        size_t len = strlen(msg);
        while (n > 0) msg[len++] = digits[--n];
        msg[len] = 0;
        strncat(msg, ": ", sizeof msg - len - 1);
        strncat(msg, what, sizeof msg - strlen(msg) - 1);
        strncpy(ps->error, msg, ps->error_cap - 1);
        ps->error[ps->error_cap - 1] = 0;
    }
    ps->failed = true;
    return false;
}

/* A JSON number: -?int(.frac)?([eE][+-]?exp)? */
static bool number(parser *ps, double *out) {
    const char *p = ps->p;
    double sign = 1, v = 0;
    if (p < ps->end && *p == '-') sign = -1, p++;
    if (p >= ps->end || *p < '0' || *p > '9') return fail(ps, "unexpected token");
    while (p < ps->end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    if (p < ps->end && *p == '.') {
        double scale = 0.1;
        if (++p >= ps->end || *p < '0' || *p > '9') return fail(ps, "bad number");
        while (p < ps->end && *p >= '0' && *p <= '9') v += (*p++ - '0') * scale, scale /= 10;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        int esign = 1, e = 0;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-')) esign = *p++ == '-' ? -1 : 1;
        if (p >= ps->end || *p < '0' || *p > '9') return fail(ps, "bad number");
        while (p < ps->end && *p >= '0' && *p <= '9') e = e < 1000 ? e * 10 + (*p - '0') : e, p++;
        while (e-- > 0) v = esign > 0 ? v * 10 : v / 10;
    }
    ps->p = p;
    *out = sign * v;
    return true;
}

static void skip_space(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static bool literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return fail(ps, "unexpected token");
    ps->p += n;
    return true;
}

static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(parser *ps, unsigned *out) {
    if (ps->end - ps->p < 4) return fail(ps, "short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex(ps->p[i]);
        if (h < 0) return fail(ps, "bad \\u escape");
        v = v * 16 + (unsigned)h;
    }
    ps->p += 4;
    *out = v;
    return true;
}

static bool string(parser *ps, char **out) {
    ps->p++; /* the opening quote */
    /* Unescaping never makes text longer. */
    char *buf = malloc((size_t)(ps->end - ps->p) + 1);
    if (!buf) abort();
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p++;
        if (c < 0x20) {
            free(buf);
            return fail(ps, "control character in a string");
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            continue;
        }
        if (ps->p >= ps->end) break;
        char e = *ps->p++;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (!read_hex4(ps, &cp)) {
                free(buf);
                return false;
            }
            if (cp >= 0xd800 && cp <= 0xdbff && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
                ps->p[1] == 'u') {
                unsigned lo;
                ps->p += 2;
                if (!read_hex4(ps, &lo)) {
                    free(buf);
                    return false;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp < 0x80) {
                buf[n++] = (char)cp;
            } else if (cp < 0x800) {
                buf[n++] = (char)(0xc0 | (cp >> 6));
                buf[n++] = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                buf[n++] = (char)(0xe0 | (cp >> 12));
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                buf[n++] = (char)(0x80 | (cp & 0x3f));
            } else {
                buf[n++] = (char)(0xf0 | (cp >> 18));
                buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                buf[n++] = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default:
            free(buf);
            return fail(ps, "bad escape");
        }
    }
    if (ps->p >= ps->end) {
        free(buf);
        return fail(ps, "unterminated string");
    }
    ps->p++;
    buf[n] = 0;
    *out = buf;
    return true;
}

static bool value(parser *ps, weir_json *v);

static bool grow(weir_json *v, size_t *cap, bool with_keys) {
    if (v->count < *cap) return true;
    *cap = *cap ? *cap * 2 : 4;
    v->items = realloc(v->items, *cap * sizeof *v->items);
    if (with_keys) v->keys = realloc(v->keys, *cap * sizeof *v->keys);
    if (!v->items || (with_keys && !v->keys)) abort();
    return true;
}

static bool container(parser *ps, weir_json *v, bool object) {
    char close = object ? '}' : ']';
    v->type = object ? WEIR_JSON_OBJECT : WEIR_JSON_ARRAY;
    if (++ps->depth > 64) return fail(ps, "nested too deep");
    ps->p++;
    size_t cap = 0;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return true;
    }
    for (;;) {
        skip_space(ps);
        grow(v, &cap, object);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a member name");
            if (!string(ps, &v->keys[v->count])) return false;
            skip_space(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(v->keys[v->count]);
                return fail(ps, "expected ':'");
            }
            ps->p++;
        }
        memset(&v->items[v->count], 0, sizeof v->items[0]);
        v->count++;
        if (!value(ps, &v->items[v->count - 1])) return false;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return true;
        }
        return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool value(parser *ps, weir_json *v) {
    skip_space(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end");
    switch (*ps->p) {
    case '{':
        return container(ps, v, true);
    case '[':
        return container(ps, v, false);
    case '"':
        v->type = WEIR_JSON_STRING;
        return string(ps, &v->string);
    case 't':
        v->type = WEIR_JSON_BOOL;
        v->boolean = true;
        return literal(ps, "true");
    case 'f':
        v->type = WEIR_JSON_BOOL;
        return literal(ps, "false");
    case 'n':
        v->type = WEIR_JSON_NULL;
        return literal(ps, "null");
    default:
        v->type = WEIR_JSON_NUMBER;
        return number(ps, &v->number);
    }
}

weir_json *weir_json_parse(const char *text, size_t len, char *error, size_t error_cap) {
    parser ps = {text, text + len, text, error, error_cap, false, 0};
    weir_json *v = calloc(1, sizeof *v);
    if (!v) abort();
    if (value(&ps, v)) {
        skip_space(&ps);
        if (ps.p == ps.end) return v;
        fail(&ps, "text after the document");
    }
    weir_json_free(v);
    return NULL;
}

const weir_json *weir_json_get(const weir_json *object, const char *key) {
    if (!object || object->type != WEIR_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < object->count; i++)
        if (strcmp(object->keys[i], key) == 0) return &object->items[i];
    return NULL;
}

static void release(weir_json *v) {
    free(v->string);
    for (size_t i = 0; i < v->count; i++) {
        release(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

void weir_json_free(weir_json *value) {
    if (!value) return;
    release(value);
    free(value);
}
