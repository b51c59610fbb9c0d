/*
 * @@NAME@@: settles a conflict by a version column: the higher version
 * wins, a tie keeps the local row, an incoming delete wins.
 *
 * Config: {"column": "version"}.
 */
#include <stdlib.h>
#include <string.h>

#include "weir_json.h"
#include "weir_plugin.h"

typedef struct {
    char *column;
} plugin;

/* Copies `message` into `out` (`cap` bytes, NUL-terminated). */
static void say(char *out, size_t cap, const char *message) {
    size_t n = strlen(message);
    if (cap == 0) return;
    if (n >= cap) n = cap - 1;
    memcpy(out, message, n);
    out[n] = '\0';
}

void *weir_plugin_new(const char *config, size_t len, char *error, size_t error_cap) {
    weir_json *doc = weir_json_parse(config, len, error, error_cap);
    if (!doc) return NULL;
    plugin *p = NULL;
    const weir_json *column = weir_json_get(doc, "column");
    if (doc->type != WEIR_JSON_OBJECT || doc->count != 1 || !column ||
        column->type != WEIR_JSON_STRING || !column->string[0]) {
        say(error, error_cap, "invalid plugin config: expected {\"column\": \"<a column>\"}");
    } else {
        p = malloc(sizeof *p);
        if (!p) abort();
        size_t n = strlen(column->string);
        p->column = malloc(n + 1);
        if (!p->column) abort();
        memcpy(p->column, column->string, n + 1);
    }
    weir_json_free(doc);
    return p;
}

/* The row's integer in `column`, if it has one. */
static bool version(const weir_row *row, const char *column, int64_t *out) {
    long i = weir_row_index(row, column);
    if (i < 0 || row->values[i].kind != WEIR_INT) return false;
    *out = row->values[i].as.i64;
    return true;
}

weir_resolution weir_plugin_resolve(void *state, const weir_conflict *conflict,
                                    weir_merged *merged, char *reason, size_t reason_cap) {
    (void)merged;
    const plugin *p = state;
    const weir_row *incoming = weir_event_row(conflict->incoming, WEIR_AFTER);
    if (!incoming) return WEIR_TAKE_INCOMING;
    int64_t local, theirs;
    if (!version(&conflict->local, p->column, &local) || !version(incoming, p->column, &theirs)) {
        say(reason, reason_cap, "the version column is not an integer in both versions");
        return WEIR_RESOLVE_FAILED;
    }
    return theirs > local ? WEIR_TAKE_INCOMING : WEIR_KEEP_LOCAL;
}
