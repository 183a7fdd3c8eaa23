/* SPDX-License-Identifier: MIT */
/* Known-answer vector access for tests. */
#include "tests/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *vec_load(const char *name)
{
    const char *dir = getenv("KTUN_VECTORS");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "tests/vectors", name);

    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("    vec: cannot open %s\n", path);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    text[len] = 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root)
        printf("    vec: %s is not valid JSON\n", path);
    return root;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long vec_hex(const char *hex, uint8_t **out)
{
    size_t n = strlen(hex);
    if (n % 2)
        return -1;
    uint8_t *b = malloc(n / 2 + 1);
    if (!b)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return -1;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    return (long)(n / 2);
}

long vec_hex_field(const cJSON *obj, const char *key, uint8_t **out)
{
    const char *s = vec_str(obj, key);
    return s ? vec_hex(s, out) : -1;
}

long long vec_int(const cJSON *obj, const char *key, long long dflt)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(it) ? (long long)it->valuedouble : dflt;
}

const char *vec_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}
