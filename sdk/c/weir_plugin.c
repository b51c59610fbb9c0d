/*
 * The C SDK: the batch decoder (wire version 2, docs/wire-format.md), the
 * patch recorder, and the exports of the project's world over the
 * bindings `weir plugin build` generates for it (transformer.h, router.h
 * or resolver.h: only that world's header is there).
 */
#include "weir_plugin.h"

#include <stdlib.h>
#include <string.h>

#if __has_include("transformer.h")
#include "transformer.h"
#define WEIR_WORLD(name) transformer_##name
#define WEIR_TRANSFORMER 1
#elif __has_include("router.h")
#include "router.h"
#define WEIR_WORLD(name) router_##name
#define WEIR_ROUTER 1
#elif __has_include("resolver.h")
#include "resolver.h"
#define WEIR_WORLD(name) resolver_##name
#define WEIR_RESOLVER 1
#else
#error "no bindings: build with `weir plugin build`, which generates them for the world in weir-plugin.toml"
#endif

typedef WEIR_WORLD(string_t) world_string;

#if !defined(WEIR_RESOLVER)
/* ---- a per-batch arena: everything decoded lives until the batch ends */

typedef struct block {
    struct block *next;
    size_t used, cap;
    _Alignas(8) unsigned char data[];
} block;

static block *arena;

static void *arena_alloc(size_t size) {
    size = (size + 7) & ~(size_t)7;
    if (!arena || arena->cap - arena->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        block *b = malloc(sizeof(block) + cap);
        if (!b) abort();
        b->next = arena;
        b->used = 0;
        b->cap = cap;
        arena = b;
    }
    void *p = arena->data + arena->used;
    arena->used += size;
    return p;
}

static void arena_reset(void) {
    while (arena) {
        block *next = arena->next;
        free(arena);
        arena = next;
    }
}

/* ---- the decoder */

typedef struct {
    const unsigned char *p, *end;
    const char *error;
} reader;

static bool fail(reader *r, const char *problem) {
    if (!r->error) r->error = problem;
    return false;
}

static bool read_u8(reader *r, uint8_t *out) {
    if (r->p >= r->end) return fail(r, "unexpected end");
    *out = *r->p++;
    return true;
}

static bool read_varint(reader *r, uint64_t *out) {
    uint64_t n = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b;
        if (!read_u8(r, &b)) return false;
        n |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *out = n;
            return true;
        }
    }
    return fail(r, "varint too long");
}

static bool read_zigzag(reader *r, int64_t *out) {
    uint64_t n;
    if (!read_varint(r, &n)) return false;
    *out = (int64_t)(n >> 1) ^ -(int64_t)(n & 1);
    return true;
}

static bool valid_utf8(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n) return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates, beyond U+10FFFF. */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += n + 1;
    }
    return true;
}

static bool read_bytes(reader *r, weir_str *out) {
    uint64_t n;
    if (!read_varint(r, &n)) return false;
    if (n > (uint64_t)(r->end - r->p)) return fail(r, "length past the end of the batch");
    out->ptr = (const char *)r->p;
    out->len = (size_t)n;
    r->p += n;
    return true;
}

static bool read_text(reader *r, weir_str *out) {
    if (!read_bytes(r, out)) return false;
    if (!valid_utf8((const unsigned char *)out->ptr, out->len)) return fail(r, "text is not UTF-8");
    return true;
}

static bool read_value(reader *r, weir_value *v) {
    uint8_t tag;
    if (!read_u8(r, &tag)) return false;
    v->kind = (weir_kind)tag;
    switch (tag) {
    case WEIR_NULL:
    case WEIR_UNCHANGED:
        return true;
    case WEIR_BOOLEAN: {
        uint8_t b;
        if (!read_u8(r, &b)) return false;
        v->as.boolean = b != 0;
        return true;
    }
    case WEIR_INT:
    case WEIR_DATE:
    case WEIR_TIME:
    case WEIR_TIMESTAMP:
    case WEIR_TIMESTAMPTZ:
        return read_zigzag(r, &v->as.i64);
    case WEIR_FLOAT:
        if (r->end - r->p < 8) return fail(r, "unexpected end");
        memcpy(&v->as.f64, r->p, 8); /* wasm32 is little-endian, as the wire */
        r->p += 8;
        return true;
    case WEIR_BYTES:
        return read_bytes(r, &v->as.str);
    case WEIR_DECIMAL:
    case WEIR_TEXT:
    case WEIR_JSON:
    case WEIR_UUID:
        return read_text(r, &v->as.str);
    default:
        return fail(r, "unknown value tag");
    }
}

static bool read_row(reader *r, weir_row *row, weir_row *shared) {
    uint8_t flags;
    uint64_t n;
    if (!read_u8(r, &flags) || !read_varint(r, &n)) return false;
    if (n > (uint64_t)(r->end - r->p)) return fail(r, "column count past the end of the batch");
    if (flags & 1) {
        if (!shared->names || shared->len != n)
            return fail(r, "row shares names with no previous row of its width");
        row->names = shared->names;
    } else {
        weir_str *names = arena_alloc(sizeof(weir_str) * (n ? n : 1));
        for (size_t i = 0; i < n; i++)
            if (!read_text(r, &names[i])) return false;
        row->names = names;
        shared->names = names;
        shared->len = n;
    }
    weir_value *values = arena_alloc(sizeof(weir_value) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        if (!read_value(r, &values[i])) return false;
    row->len = (size_t)n;
    row->values = values;
    return true;
}

/* Decodes a batch into `*events` (arena memory); NULL error on success. */
static const char *decode(const unsigned char *buf, size_t len, weir_event **events,
                          size_t *count) {
    reader r = {buf, buf + len, NULL};
    uint8_t version;
    if (!read_u8(&r, &version)) return "empty batch buffer";
    if (version != WEIR_WIRE_VERSION) return "batch uses a wire version this SDK does not read";
    uint64_t n;
    if (!read_varint(&r, &n)) return r.error;
    if (n > len) return "event count past the end of the batch";
    weir_event *out = arena_alloc(sizeof(weir_event) * (n ? n : 1));
    weir_row shared[3] = {{0}};
    weir_str src[5];
    bool have_src = false, have_origin = false;
    static const char OPS[] = "cudtr";
    for (size_t i = 0; i < n; i++) {
        weir_event *e = &out[i];
        memset(e, 0, sizeof *e);
        uint8_t op, flags;
        if (!read_u8(&r, &op) || !read_u8(&r, &flags)) return r.error;
        if (op > 4) return "unknown op";
        e->op = OPS[op];
        if (flags & 1) {
            if (!have_src) return "first event refers to a previous source";
        } else {
            for (int k = 0; k < 4; k++)
                if (!read_text(&r, &src[k])) return r.error;
            have_origin = flags & 16;
            if (have_origin && !read_text(&r, &src[4])) return r.error;
            have_src = true;
        }
        e->connector = src[0], e->database = src[1], e->schema = src[2], e->table = src[3];
        e->has_origin = have_origin;
        if (have_origin) e->origin = src[4];
        if (!read_text(&r, &e->position)) return r.error;
        e->has_txid = flags & 8;
        if (e->has_txid && !read_text(&r, &e->txid)) return r.error;
        if (!read_zigzag(&r, &e->commit_time_us)) return r.error;
        e->has_row[WEIR_KEY] = true;
        e->has_row[WEIR_BEFORE] = flags & 2;
        e->has_row[WEIR_AFTER] = flags & 4;
        for (int img = 0; img < 3; img++)
            if (e->has_row[img] && !read_row(&r, &e->rows[img], &shared[img])) return r.error;
    }
    if (r.p != r.end) return "bytes after the last event";
    *events = out;
    *count = (size_t)n;
    return NULL;
}

#endif /* !WEIR_RESOLVER */

/* ---- reading and patching events */

typedef struct weir_patches {
    weir_plugin_types_column_patch_t *items;
    size_t len, cap;
} weir_patches;

const weir_row *weir_event_row(const weir_event *event, weir_image image) {
    return event->has_row[image] ? &event->rows[image] : NULL;
}

long weir_row_index(const weir_row *row, const char *name) {
    for (size_t i = 0; i < row->len; i++)
        if (weir_str_eq(row->names[i], name)) return (long)i;
    return -1;
}

bool weir_str_eq(weir_str s, const char *text) {
    return strlen(text) == s.len && memcmp(s.ptr, text, s.len) == 0;
}

static weir_plugin_types_column_patch_t *push(weir_event *event, weir_image image,
                                              size_t index) {
    weir_patches *p = event->patches;
    if (p->len == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 4;
        p->items = realloc(p->items, p->cap * sizeof *p->items);
        if (!p->items) abort();
    }
    weir_plugin_types_column_patch_t *patch = &p->items[p->len++];
    memset(patch, 0, sizeof *patch);
    patch->image = (weir_plugin_types_image_t)image;
    patch->index = (uint32_t)index;
    return patch;
}

void weir_set_null(weir_event *event, weir_image image, size_t index) {
    weir_plugin_types_column_patch_t *p = push(event, image, index);
    p->value.is_some = true;
    p->value.val.tag = WEIR_PLUGIN_TYPES_VALUE_NULL;
}

void weir_set_text(weir_event *event, weir_image image, size_t index, const char *text,
                   size_t len) {
    weir_plugin_types_column_patch_t *p = push(event, image, index);
    p->value.is_some = true;
    p->value.val.tag = WEIR_PLUGIN_TYPES_VALUE_TEXT;
    /* Owned by the host call's post-return, which frees it. */
    WEIR_WORLD(string_dup_n)(&p->value.val.val.text, text, len);
}

void weir_remove(weir_event *event, weir_image image, size_t index) {
    push(event, image, index)->value.is_some = false;
}

void weir_log(weir_level level, const char *message) {
    world_string msg;
    WEIR_WORLD(string_set)(&msg, message);
    WEIR_WORLD(list_tuple2_string_string_t) fields = {NULL, 0};
    weir_plugin_host_log((weir_plugin_host_level_t)level, &msg, &fields);
}

/* ---- every world's init */

static void *plugin;

/* Builds the plugin from the host's config; false with the reason in
 * `err` if it refuses. */
static bool init(world_string *err) {
    world_string config;
    weir_plugin_host_config(&config);
    char *text = malloc(config.len + 1);
    if (!text) abort();
    memcpy(text, config.ptr, config.len);
    text[config.len] = 0;
    char error[512] = "";
    plugin = weir_plugin_new(text, config.len, error, sizeof error);
    free(text);
    WEIR_WORLD(string_free)(&config);
    if (!plugin) {
        WEIR_WORLD(string_dup)(err, error[0] ? error : "the plugin refused its configuration");
        return false;
    }
    return true;
}

/* Decodes a batch or traps: a batch this SDK cannot read leaves nothing
 * sensible to answer per event, so the host reports the trap. */
#if !defined(WEIR_RESOLVER)
static void decode_or_trap(const unsigned char *buf, size_t len, weir_event **events,
                           size_t *count) {
    const char *error = decode(buf, len, events, count);
    if (error) {
        weir_log(WEIR_LOG_ERROR, error);
        abort();
    }
}
#endif

#if defined(WEIR_TRANSFORMER)
/* ---- the transformer world's exports */

/* Frees what patches of an event that is not kept own. */
static void discard(weir_patches *patches) {
    for (size_t k = 0; k < patches->len; k++)
        weir_plugin_types_option_value_free(&patches->items[k].value);
    patches->len = 0;
}

bool exports_transformer_init(transformer_string_t *err) { return init(err); }

void exports_transformer_transform(transformer_encoded_batch_t *batch,
                                   transformer_list_outcome_t *ret) {
    weir_event *events = NULL;
    size_t count = 0;
    decode_or_trap(batch->ptr, batch->len, &events, &count);
    ret->len = count;
    ret->ptr = malloc(sizeof(transformer_outcome_t) * (count ? count : 1));
    if (!ret->ptr) abort();
    weir_patches patches = {NULL, 0, 0};
    for (size_t i = 0; i < count; i++) {
        transformer_outcome_t *out = &ret->ptr[i];
        memset(out, 0, sizeof *out);
        patches.len = 0;
        events[i].patches = &patches;
        char reason[512] = "";
        switch (weir_plugin_transform(plugin, &events[i], reason, sizeof reason)) {
        case WEIR_KEEP:
            if (patches.len == 0) {
                out->tag = WEIR_PLUGIN_TYPES_OUTCOME_KEEP;
            } else {
                out->tag = WEIR_PLUGIN_TYPES_OUTCOME_PATCH;
                out->val.patch.len = patches.len;
                out->val.patch.ptr = malloc(patches.len * sizeof *patches.items);
                if (!out->val.patch.ptr) abort();
                memcpy(out->val.patch.ptr, patches.items, patches.len * sizeof *patches.items);
            }
            break;
        case WEIR_DROP:
            discard(&patches);
            out->tag = WEIR_PLUGIN_TYPES_OUTCOME_DROP;
            break;
        default:
            discard(&patches);
            out->tag = WEIR_PLUGIN_TYPES_OUTCOME_FAILED;
            transformer_string_dup(&out->val.failed, reason[0] ? reason : "the plugin failed");
            break;
        }
    }
    free(patches.items);
    arena_reset();
    transformer_encoded_batch_free(batch);
}
#endif /* WEIR_TRANSFORMER */

#if defined(WEIR_ROUTER)
/* ---- the router world's exports */

struct weir_destinations {
    router_list_string_t names;
    size_t cap;
};

void weir_route_to(weir_destinations *to, const char *name, size_t len) {
    router_list_string_t *l = &to->names;
    if (l->len == to->cap) {
        to->cap = to->cap ? to->cap * 2 : 2;
        l->ptr = realloc(l->ptr, to->cap * sizeof *l->ptr);
        if (!l->ptr) abort();
    }
    router_string_dup_n(&l->ptr[l->len++], name, len);
}

bool exports_router_init(router_string_t *err) { return init(err); }

void exports_router_route(router_encoded_batch_t *batch, router_list_route_t *ret) {
    weir_event *events = NULL;
    size_t count = 0;
    decode_or_trap(batch->ptr, batch->len, &events, &count);
    ret->len = count;
    ret->ptr = malloc(sizeof(router_route_t) * (count ? count : 1));
    if (!ret->ptr) abort();
    for (size_t i = 0; i < count; i++) {
        router_route_t *out = &ret->ptr[i];
        memset(out, 0, sizeof *out);
        weir_destinations to = {{NULL, 0}, 0};
        char reason[512] = "";
        if (weir_plugin_route(plugin, &events[i], &to, reason, sizeof reason)) {
            out->tag = WEIR_PLUGIN_TYPES_ROUTE_TO;
            out->val.to = to.names;
        } else {
            router_list_string_free(&to.names);
            out->tag = WEIR_PLUGIN_TYPES_ROUTE_FAILED;
            router_string_dup(&out->val.failed, reason[0] ? reason : "the plugin failed");
        }
    }
    arena_reset();
    router_encoded_batch_free(batch);
}
#endif /* WEIR_ROUTER */

#if defined(WEIR_RESOLVER)
/* ---- the resolver world's exports */

static weir_str view(const resolver_string_t *s) {
    return (weir_str){(const char *)s->ptr, s->len};
}

/* A view of a WIT row: names and values point into it. */
static weir_row row_view(const weir_plugin_types_list_column_t *cols) {
    size_t n = cols->len;
    weir_str *names = malloc(sizeof *names * (n ? n : 1));
    weir_value *values = malloc(sizeof *values * (n ? n : 1));
    if (!names || !values) abort();
    for (size_t i = 0; i < n; i++) {
        const weir_plugin_types_value_t *v = &cols->ptr[i].value;
        names[i] = view(&cols->ptr[i].name);
        weir_value *out = &values[i];
        /* The contract's value tags are the wire's kinds. */
        out->kind = (weir_kind)v->tag;
        switch (v->tag) {
        case WEIR_PLUGIN_TYPES_VALUE_BOOLEAN: out->as.boolean = v->val.boolean; break;
        case WEIR_PLUGIN_TYPES_VALUE_INT: out->as.i64 = v->val.int_; break;
        case WEIR_PLUGIN_TYPES_VALUE_FLOAT: out->as.f64 = v->val.float_; break;
        case WEIR_PLUGIN_TYPES_VALUE_DECIMAL: out->as.str = view(&v->val.decimal); break;
        case WEIR_PLUGIN_TYPES_VALUE_TEXT: out->as.str = view(&v->val.text); break;
        case WEIR_PLUGIN_TYPES_VALUE_BYTES:
            out->as.str = (weir_str){(const char *)v->val.bytes.ptr, v->val.bytes.len};
            break;
        case WEIR_PLUGIN_TYPES_VALUE_JSON: out->as.str = view(&v->val.json); break;
        case WEIR_PLUGIN_TYPES_VALUE_DATE: out->as.i64 = v->val.date; break;
        case WEIR_PLUGIN_TYPES_VALUE_TIME: out->as.i64 = v->val.time; break;
        case WEIR_PLUGIN_TYPES_VALUE_TIMESTAMP: out->as.i64 = v->val.timestamp; break;
        case WEIR_PLUGIN_TYPES_VALUE_TIMESTAMPTZ: out->as.i64 = v->val.timestamptz; break;
        case WEIR_PLUGIN_TYPES_VALUE_UUID: out->as.str = view(&v->val.uuid); break;
        default: break;
        }
    }
    return (weir_row){n, names, values};
}

static void row_view_free(weir_row *row) {
    free((void *)row->names);
    free((void *)row->values);
}

struct weir_merged {
    weir_plugin_types_list_column_t row;
};

/* The merged row starts as a deep copy of the local row. */
static void copy_value(weir_plugin_types_value_t *to, const weir_plugin_types_value_t *from) {
    *to = *from;
    switch (from->tag) {
    case WEIR_PLUGIN_TYPES_VALUE_DECIMAL:
        resolver_string_dup_n(&to->val.decimal, (const char *)from->val.decimal.ptr,
                              from->val.decimal.len);
        break;
    case WEIR_PLUGIN_TYPES_VALUE_TEXT:
        resolver_string_dup_n(&to->val.text, (const char *)from->val.text.ptr, from->val.text.len);
        break;
    case WEIR_PLUGIN_TYPES_VALUE_JSON:
        resolver_string_dup_n(&to->val.json, (const char *)from->val.json.ptr, from->val.json.len);
        break;
    case WEIR_PLUGIN_TYPES_VALUE_UUID:
        resolver_string_dup_n(&to->val.uuid, (const char *)from->val.uuid.ptr, from->val.uuid.len);
        break;
    case WEIR_PLUGIN_TYPES_VALUE_BYTES:
        to->val.bytes.ptr = malloc(from->val.bytes.len ? from->val.bytes.len : 1);
        if (!to->val.bytes.ptr) abort();
        memcpy(to->val.bytes.ptr, from->val.bytes.ptr, from->val.bytes.len);
        break;
    default: break;
    }
}

static void merged_from(weir_merged *m, const weir_plugin_types_list_column_t *local) {
    m->row.len = local->len;
    m->row.ptr = malloc(sizeof *m->row.ptr * (local->len ? local->len : 1));
    if (!m->row.ptr) abort();
    for (size_t i = 0; i < local->len; i++) {
        resolver_string_dup_n(&m->row.ptr[i].name, (const char *)local->ptr[i].name.ptr,
                              local->ptr[i].name.len);
        copy_value(&m->row.ptr[i].value, &local->ptr[i].value);
    }
}

static weir_plugin_types_value_t *merged_at(weir_merged *m, size_t index) {
    if (index >= m->row.len) abort();
    weir_plugin_types_value_t *v = &m->row.ptr[index].value;
    weir_plugin_types_value_free(v);
    memset(v, 0, sizeof *v);
    return v;
}

void weir_merged_set_null(weir_merged *m, size_t index) {
    merged_at(m, index)->tag = WEIR_PLUGIN_TYPES_VALUE_NULL;
}

void weir_merged_set_int(weir_merged *m, size_t index, int64_t value) {
    weir_plugin_types_value_t *v = merged_at(m, index);
    v->tag = WEIR_PLUGIN_TYPES_VALUE_INT;
    v->val.int_ = value;
}

void weir_merged_set_text(weir_merged *m, size_t index, const char *text, size_t len) {
    weir_plugin_types_value_t *v = merged_at(m, index);
    v->tag = WEIR_PLUGIN_TYPES_VALUE_TEXT;
    resolver_string_dup_n(&v->val.text, text, len);
}

bool exports_resolver_init(resolver_string_t *err) { return init(err); }

bool exports_resolver_resolve(resolver_conflict_t *c, resolver_resolution_t *ret,
                              resolver_string_t *err) {
    static const char OPS[] = "cudtr";
    const weir_plugin_types_change_event_t *in = &c->incoming;
    const weir_plugin_types_source_info_t *s = &in->source;
    weir_event incoming;
    memset(&incoming, 0, sizeof incoming);
    incoming.op = in->op < 5 ? OPS[in->op] : '?';
    incoming.connector = view(&s->connector);
    incoming.database = view(&s->database);
    incoming.schema = view(&s->schema);
    incoming.table = view(&s->table);
    incoming.position = view(&s->position);
    incoming.has_txid = s->txid.is_some;
    if (s->txid.is_some) incoming.txid = view(&s->txid.val);
    incoming.has_origin = s->origin.is_some;
    if (s->origin.is_some) incoming.origin = view(&s->origin.val);
    incoming.commit_time_us = s->commit_time_us;
    incoming.rows[WEIR_KEY] = row_view(&in->key);
    incoming.has_row[WEIR_KEY] = true;
    incoming.has_row[WEIR_BEFORE] = in->before.is_some;
    if (in->before.is_some) incoming.rows[WEIR_BEFORE] = row_view(&in->before.val);
    incoming.has_row[WEIR_AFTER] = in->after.is_some;
    if (in->after.is_some) incoming.rows[WEIR_AFTER] = row_view(&in->after.val);
    weir_conflict conflict = {
        .local = row_view(&c->local),
        .local_commit_time_us = c->local_meta.commit_time_us,
        .has_local_origin = c->local_meta.origin.is_some,
        .has_local_txid = c->local_meta.txid.is_some,
        .incoming = &incoming,
    };
    if (c->local_meta.origin.is_some) conflict.local_origin = view(&c->local_meta.origin.val);
    if (c->local_meta.txid.is_some) conflict.local_txid = view(&c->local_meta.txid.val);
    weir_merged merged;
    merged_from(&merged, &c->local);
    char reason[512] = "";
    weir_resolution decision = weir_plugin_resolve(plugin, &conflict, &merged, reason, sizeof reason);
    bool ok = true;
    memset(ret, 0, sizeof *ret);
    switch (decision) {
    case WEIR_KEEP_LOCAL: ret->tag = WEIR_PLUGIN_TYPES_RESOLUTION_KEEP_LOCAL; break;
    case WEIR_TAKE_INCOMING: ret->tag = WEIR_PLUGIN_TYPES_RESOLUTION_TAKE_INCOMING; break;
    case WEIR_MERGED:
        ret->tag = WEIR_PLUGIN_TYPES_RESOLUTION_MERGED;
        ret->val.merged = merged.row;
        merged.row = (weir_plugin_types_list_column_t){NULL, 0};
        break;
    case WEIR_REVIEW:
        ret->tag = WEIR_PLUGIN_TYPES_RESOLUTION_REVIEW;
        resolver_string_dup(&ret->val.review, reason[0] ? reason : "the plugin asks for a review");
        break;
    default:
        ok = false;
        resolver_string_dup(err, reason[0] ? reason : "the plugin failed");
        break;
    }
    weir_plugin_types_list_column_free(&merged.row);
    row_view_free(&conflict.local);
    for (int img = 0; img < 3; img++)
        if (incoming.has_row[img]) row_view_free(&incoming.rows[img]);
    resolver_conflict_free(c);
    return ok;
}
#endif /* WEIR_RESOLVER */
