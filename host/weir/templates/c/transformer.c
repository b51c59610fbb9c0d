/*
 * @@NAME@@: upper-cases one text column of every event's after image.
 *
 * Config: {"column": "name"}.
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

weir_outcome weir_plugin_transform(void *state, weir_event *event, char *reason,
                                   size_t reason_cap) {
    (void)reason, (void)reason_cap;
    const plugin *p = state;
    const weir_row *after = weir_event_row(event, WEIR_AFTER);
    if (!after) return WEIR_KEEP;
    long i = weir_row_index(after, p->column);
    if (i < 0 || after->values[i].kind != WEIR_TEXT) return WEIR_KEEP;
    weir_str text = after->values[i].as.str;
    char *upper = malloc(text.len + 1);
    if (!upper) abort();
    for (size_t k = 0; k < text.len; k++) {
        char c = text.ptr[k];
        upper[k] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    weir_set_text(event, WEIR_AFTER, (size_t)i, upper, text.len);
    free(upper);
    return WEIR_KEEP;
}
