/*
 * @@NAME@@: routes every event to `<prefix>.<table>`.
 *
 * Config: {"prefix": "lake"}.
 */
#include <stdlib.h>
#include <string.h>

#include "weir_json.h"
#include "weir_plugin.h"

typedef struct {
    char *prefix;
    size_t len;
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
    const weir_json *prefix = weir_json_get(doc, "prefix");
    if (doc->type != WEIR_JSON_OBJECT || doc->count != 1 || !prefix ||
        prefix->type != WEIR_JSON_STRING || !prefix->string[0]) {
        say(error, error_cap, "invalid plugin config: expected {\"prefix\": \"<a prefix>\"}");
    } else {
        p = malloc(sizeof *p);
        if (!p) abort();
        p->len = strlen(prefix->string);
        p->prefix = malloc(p->len + 1);
        if (!p->prefix) abort();
        memcpy(p->prefix, prefix->string, p->len + 1);
    }
    weir_json_free(doc);
    return p;
}

bool weir_plugin_route(void *state, const weir_event *event, weir_destinations *to,
                       char *reason, size_t reason_cap) {
    (void)reason, (void)reason_cap;
    const plugin *p = state;
    size_t len = p->len + 1 + event->table.len;
    char *name = malloc(len);
    if (!name) abort();
    memcpy(name, p->prefix, p->len);
    name[p->len] = '.';
    memcpy(name + p->len + 1, event->table.ptr, event->table.len);
    weir_route_to(to, name, len);
    free(name);
    return true;
}
