/*
 * A small JSON reader for plugin configs: parse once at load, walk the
 * tree, free it. Strings are unescaped and NUL-terminated.
 */
#ifndef WEIR_JSON_H
#define WEIR_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    WEIR_JSON_NULL,
    WEIR_JSON_BOOL,
    WEIR_JSON_NUMBER,
    WEIR_JSON_STRING,
    WEIR_JSON_ARRAY,
    WEIR_JSON_OBJECT,
} weir_json_type;

typedef struct weir_json {
    weir_json_type type;
    bool boolean;
    double number;
    char *string;            /* WEIR_JSON_STRING */
    size_t count;            /* items of an array or members of an object */
    struct weir_json *items; /* array items or member values */
    char **keys;             /* member names of an object */
} weir_json;

/* Parses `len` bytes of `text`; NULL with a message in `error` when it is
 * not one JSON document. */
weir_json *weir_json_parse(const char *text, size_t len, char *error, size_t error_cap);

/* The member `key` of an object, or NULL. */
const weir_json *weir_json_get(const weir_json *object, const char *key);

void weir_json_free(weir_json *value);

#endif
