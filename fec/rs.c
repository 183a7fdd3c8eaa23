/* SPDX-License-Identifier: MIT */
/* Reed-Solomon erasure codec: klauspost's default coding matrix, ISA-L GF(2^8) kernels (or ours,
 * fec/isal_own.c, without libisal). */
#include "fec/rs.h"

#include "common/err.h"

#ifdef KTUN_NO_ISAL
#include "fec/isal_own.h" /* ISA-L's kernels in portable C (make ISAL=0) */
#else
#include <isa-l/erasure_code.h>
#endif
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define RS_CACHE_SLOTS 16 /* decode tables kept per codec (one per erasure pattern) */
#define RS_KEY_WORDS (RS_MAX_SHARDS / 64)

/* Decode tables for one erasure pattern: which rows fed the inversion (the first ds present
 * shards in index order) fully determines which data shards were missing. */
struct rs_cache_entry {
    uint64_t rows[RS_KEY_WORDS]; /* bitmap of the shard rows used as sources */
    uint8_t *tables;             /* ISA-L tables: 32 * ds * missing bytes; NULL = free slot */
    int missing;                 /* number of data shards this pattern rebuilds */
    uint64_t stamp;              /* last use, for least-recently-used eviction */
};

struct rs {
    int ds;                                     /* data shards */
    int ps;                                     /* parity shards */
    uint8_t *matrix;                            /* (ds+ps) x ds coding matrix, row-major */
    uint8_t *enc_tables;                        /* ISA-L tables for the parity rows */
    uint8_t *sub;                               /* ds x ds scratch: rows to invert */
    uint8_t *inv;                               /* ds x ds scratch: their inverse */
    uint8_t *dec_rows;                          /* ps x ds scratch: rows of missing data */
    uint8_t **src;                              /* ds scratch pointers: decode sources */
    uint8_t **dst;                              /* ps scratch pointers: decode outputs */
    struct rs_cache_entry cache[RS_CACHE_SLOTS]; /* decode-table cache */
    uint64_t clock;                             /* cache use counter */
};

/* Fills rs->matrix: identity on top, then rows ds.. of V x inverse(top square of V), where
 * V[r][c] = r^c with a^0 = 1 for every a, 0 included (klauspost's galExp). */
static int build_matrix(struct rs *rs)
{
    int ds = rs->ds, total = rs->ds + rs->ps;
    uint8_t *vrow = rs->dec_rows; /* ds bytes of scratch: one Vandermonde row */
    for (int r = 0; r < ds; r++) {
        rs->sub[r * ds] = 1; /* r^0 = 1, 0^0 included */
        for (int c = 1; c < ds; c++)
            rs->sub[r * ds + c] = gf_mul(rs->sub[r * ds + c - 1], (uint8_t)r);
    }
    if (gf_invert_matrix(rs->sub, rs->inv, ds) != 0)
        return ERR_INVAL;
    memset(rs->matrix, 0, (size_t)ds * (size_t)ds);
    for (int r = 0; r < ds; r++)
        rs->matrix[r * ds + r] = 1;
    for (int r = ds; r < total; r++) {
        vrow[0] = 1;
        for (int k = 1; k < ds; k++)
            vrow[k] = gf_mul(vrow[k - 1], (uint8_t)r);
        for (int c = 0; c < ds; c++) {
            uint8_t acc = 0;
            for (int k = 0; k < ds; k++)
                acc ^= gf_mul(vrow[k], rs->inv[k * ds + c]);
            rs->matrix[r * ds + c] = acc;
        }
    }
    return 0;
}

struct rs *rs_new(int data_shards, int parity_shards)
{
    struct rs *rs = NULL;
    if (data_shards < 1 || parity_shards < 1 || data_shards + parity_shards > RS_MAX_SHARDS)
        return NULL;
    rs = calloc(1, sizeof(*rs));
    if (!rs)
        return NULL;
    rs->ds = data_shards;
    rs->ps = parity_shards;
    size_t ds = (size_t)data_shards, ps = (size_t)parity_shards;
    rs->matrix = malloc((ds + ps) * ds);
    rs->enc_tables = malloc(32 * ds * ps);
    rs->sub = malloc(ds * ds);
    rs->inv = malloc(ds * ds);
    rs->dec_rows = malloc(ps * ds);
    rs->src = calloc(ds, sizeof(*rs->src));
    rs->dst = calloc(ps, sizeof(*rs->dst));
    if (!rs->matrix || !rs->enc_tables || !rs->sub || !rs->inv || !rs->dec_rows || !rs->src ||
        !rs->dst)
        goto out;
    if (build_matrix(rs) != 0)
        goto out;
    ec_init_tables(rs->ds, rs->ps, rs->matrix + ds * ds, rs->enc_tables);
    return rs;
out:
    rs_free(rs);
    return NULL;
}

void rs_free(struct rs *rs)
{
    if (!rs)
        return;
    for (int i = 0; i < RS_CACHE_SLOTS; i++)
        free(rs->cache[i].tables);
    free(rs->matrix);
    free(rs->enc_tables);
    free(rs->sub);
    free(rs->inv);
    free(rs->dec_rows);
    free(rs->src);
    free(rs->dst);
    free(rs);
}

int rs_data_shards(const struct rs *rs)
{
    return rs->ds;
}

int rs_parity_shards(const struct rs *rs)
{
    return rs->ps;
}

uint8_t rs_parity_coef(const struct rs *rs, int row, int col)
{
    return rs->matrix[(rs->ds + row) * rs->ds + col];
}

int rs_encode(struct rs *rs, const uint8_t *const *data, uint8_t *const *parity, size_t len)
{
    if (len > INT_MAX)
        return ERR_TOOBIG;
    if (len == 0)
        return 0;
    /* ISA-L takes non-const pointer arrays but only reads the sources. */
    ec_encode_data((int)len, rs->ds, rs->ps, rs->enc_tables, (unsigned char **)(uintptr_t)data,
                   (unsigned char **)(uintptr_t)parity);
    return 0;
}

/* Returns the cache slot holding |rows|, or NULL. */
static struct rs_cache_entry *cache_find(struct rs *rs, const uint64_t *rows)
{
    for (int i = 0; i < RS_CACHE_SLOTS; i++) {
        struct rs_cache_entry *e = &rs->cache[i];
        if (e->tables && memcmp(e->rows, rows, sizeof(e->rows)) == 0)
            return e;
    }
    return NULL;
}

/* Builds decode tables for the pattern |rows| (ds source rows, |missing| data shards absent)
 * into the least recently used slot. Returns the slot or NULL on allocation failure. */
static struct rs_cache_entry *cache_build(struct rs *rs, const uint64_t *rows, int missing)
{
    int ds = rs->ds, n = 0, m = 0;
    for (int r = 0; r < ds + rs->ps && n < ds; r++) {
        if (!(rows[r / 64] >> (r % 64) & 1))
            continue;
        memcpy(rs->sub + (size_t)n * (size_t)ds, rs->matrix + (size_t)r * (size_t)ds,
               (size_t)ds);
        n++;
    }
    if (gf_invert_matrix(rs->sub, rs->inv, ds) != 0)
        return NULL; /* cannot happen: any ds rows of M are independent */
    /* Row i of the inverse rebuilds data shard i from the sources. */
    for (int i = 0; i < ds; i++)
        if (!(rows[i / 64] >> (i % 64) & 1))
            memcpy(rs->dec_rows + (size_t)m++ * (size_t)ds, rs->inv + (size_t)i * (size_t)ds,
                   (size_t)ds);

    struct rs_cache_entry *victim = &rs->cache[0];
    for (int i = 1; i < RS_CACHE_SLOTS && victim->tables; i++)
        if (!rs->cache[i].tables || rs->cache[i].stamp < victim->stamp)
            victim = &rs->cache[i];
    uint8_t *tables = malloc(32 * (size_t)ds * (size_t)missing);
    if (!tables)
        return NULL;
    free(victim->tables);
    victim->tables = tables;
    memcpy(victim->rows, rows, sizeof(victim->rows));
    victim->missing = missing;
    ec_init_tables(ds, missing, rs->dec_rows, victim->tables);
    return victim;
}

int rs_reconstruct_data(struct rs *rs, uint8_t *const *shards, const bool *present, size_t len)
{
    uint64_t rows[RS_KEY_WORDS] = {0};
    int ds = rs->ds, total = rs->ds + rs->ps, n = 0, missing = 0;

    if (len > INT_MAX)
        return ERR_TOOBIG;
    /* Sources: the first ds present shards. Present data shards all come first, so the data
     * shards outside this set are exactly the missing ones. */
    for (int r = 0; r < total && n < ds; r++) {
        if (!present[r])
            continue;
        rows[r / 64] |= (uint64_t)1 << (r % 64);
        rs->src[n++] = shards[r];
    }
    if (n < ds)
        return ERR_AGAIN;
    for (int i = 0; i < ds; i++)
        if (!present[i])
            rs->dst[missing++] = shards[i];
    if (missing == 0 || len == 0)
        return 0;

    struct rs_cache_entry *e = cache_find(rs, rows);
    if (!e)
        e = cache_build(rs, rows, missing);
    if (!e)
        return ERR_NOMEM;
    e->stamp = ++rs->clock;
    ec_encode_data((int)len, ds, missing, e->tables, rs->src, rs->dst);
    return 0;
}
