/*
 * Write Weir plugins in C: transformers, routers and resolvers.
 *
 * A transformer defines two functions and `weir plugin build` does the rest
 * (bindings, clang for wasm32-wasi, component encoding); routers and
 * resolvers define weir_plugin_route or weir_plugin_resolve instead of
 * weir_plugin_transform (below):
 *
 *   void *weir_plugin_new(const char *config, size_t len,
 *                         char *error, size_t error_cap);
 *       Builds the plugin from its JSON config (NUL-terminated; `len`
 *       bytes). Return NULL with a message in `error` to refuse it.
 *
 *   weir_outcome weir_plugin_transform(void *plugin, weir_event *event,
 *                                      char *reason, size_t reason_cap);
 *       Decides one event: WEIR_KEEP (with the column changes made through
 *       weir_set_* / weir_remove), WEIR_DROP, or WEIR_FAIL with a reason.
 *
 * Events are views over the batch buffer: reading copies nothing, and the
 * strings (`weir_str`) are not NUL-terminated. Only changed columns travel
 * back to the host. weir_json.h parses the config.
 *
 * A plugin is granted no WASI: the build refuses code that links it. Of
 * libc, memory and string functions are fine; stdio (the printf family,
 * snprintf included) and strtod are not, as they reference stderr.
 */
#ifndef WEIR_PLUGIN_H
#define WEIR_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEIR_CONTRACT "weir:plugin@0.1.0"
#define WEIR_WIRE_VERSION 2

/* Bytes of UTF-8 text (or raw bytes), not NUL-terminated. */
typedef struct {
    const char *ptr;
    size_t len;
} weir_str;

/* Value kinds, numbered as on the wire (docs/wire-format.md). */
typedef enum {
    WEIR_NULL = 0,
    WEIR_BOOLEAN = 1,
    WEIR_INT = 2,
    WEIR_FLOAT = 3,
    WEIR_DECIMAL = 4,  /* str: exact decimal text */
    WEIR_TEXT = 5,     /* str */
    WEIR_BYTES = 6,    /* str: raw bytes */
    WEIR_JSON = 7,     /* str */
    WEIR_DATE = 8,     /* i64: days since 1970-01-01 */
    WEIR_TIME = 9,     /* i64: microseconds since midnight */
    WEIR_TIMESTAMP = 10,   /* i64: microseconds since the epoch */
    WEIR_TIMESTAMPTZ = 11, /* i64: microseconds since the epoch, UTC */
    WEIR_UUID = 12,    /* str */
    WEIR_UNCHANGED = 13, /* not sent by the source (unchanged TOAST) */
} weir_kind;

typedef struct {
    weir_kind kind;
    union {
        bool boolean;
        int64_t i64;
        double f64;
        weir_str str;
    } as;
} weir_value;

/* One row image: column names and values in table order. Consecutive
 * events of one table share the same `names` array. */
typedef struct {
    size_t len;
    const weir_str *names;
    const weir_value *values;
} weir_row;

typedef enum { WEIR_KEY = 0, WEIR_BEFORE = 1, WEIR_AFTER = 2 } weir_image;

typedef struct weir_event {
    char op; /* 'c', 'u', 'd', 't' or 'r' (a snapshot read) */
    weir_str connector, database, schema, table, position;
    bool has_txid, has_origin;
    weir_str txid, origin;
    int64_t commit_time_us;
    /* rows[WEIR_KEY] always; rows[WEIR_BEFORE] and rows[WEIR_AFTER] when
     * has_row[...] is true. */
    weir_row rows[3];
    bool has_row[3];
    struct weir_patches *patches; /* private */
} weir_event;

typedef enum { WEIR_KEEP = 0, WEIR_DROP = 1, WEIR_FAIL = 2 } weir_outcome;

/* The row `image`, or NULL when the event has none. */
const weir_row *weir_event_row(const weir_event *event, weir_image image);

/* The position of column `name` (NUL-terminated), or -1. */
long weir_row_index(const weir_row *row, const char *name);

/* Whether `s` equals the NUL-terminated `text`. */
bool weir_str_eq(weir_str s, const char *text);

/* Column changes, recorded as patches (the host applies them). Text is
 * copied. */
void weir_set_null(weir_event *event, weir_image image, size_t index);
void weir_set_text(weir_event *event, weir_image image, size_t index,
                   const char *text, size_t len);
void weir_remove(weir_event *event, weir_image image, size_t index);

/* Structured logging through the host. */
typedef enum {
    WEIR_LOG_TRACE = 0,
    WEIR_LOG_DEBUG = 1,
    WEIR_LOG_INFO = 2,
    WEIR_LOG_WARN = 3,
    WEIR_LOG_ERROR = 4,
} weir_level;
void weir_log(weir_level level, const char *message);

/* What the plugin defines: weir_plugin_new, and the function of its world
 * (weir-plugin.toml's `world`): weir_plugin_transform, weir_plugin_route or
 * weir_plugin_resolve. */
void *weir_plugin_new(const char *config, size_t len, char *error, size_t error_cap);

/* A transformer decides one event. */
weir_outcome weir_plugin_transform(void *plugin, weir_event *event, char *reason,
                                   size_t reason_cap);

/* A router names one event's destinations with weir_route_to (none: the
 * event is dropped) and returns true, or returns false with a reason. */
typedef struct weir_destinations weir_destinations;
void weir_route_to(weir_destinations *to, const char *name, size_t len);
bool weir_plugin_route(void *plugin, const weir_event *event, weir_destinations *to,
                       char *reason, size_t reason_cap);

/* A resolver settles one conflict: the local row (as the target holds it,
 * with its version) against the incoming change, whose source carries the
 * incoming version (`commit_time_us`, `origin`, `txid`). */
typedef struct {
    weir_row local;
    int64_t local_commit_time_us;
    bool has_local_origin, has_local_txid;
    weir_str local_origin, local_txid;
    const weir_event *incoming;
} weir_conflict;

typedef enum {
    WEIR_KEEP_LOCAL = 0,
    WEIR_TAKE_INCOMING = 1,
    WEIR_MERGED = 2, /* write the merged row */
    WEIR_REVIEW = 3, /* park it for a human; the reason says why */
    WEIR_RESOLVE_FAILED = 4, /* an error; the reason says why */
} weir_resolution;

/* The merged row: a copy of the local row (same columns, same order) that
 * weir_merged_set_* change by column index. Used when the resolver
 * returns WEIR_MERGED. */
typedef struct weir_merged weir_merged;
void weir_merged_set_null(weir_merged *merged, size_t index);
void weir_merged_set_int(weir_merged *merged, size_t index, int64_t value);
void weir_merged_set_text(weir_merged *merged, size_t index, const char *text, size_t len);

weir_resolution weir_plugin_resolve(void *plugin, const weir_conflict *conflict,
                                    weir_merged *merged, char *reason, size_t reason_cap);

#endif
