/* SPDX-License-Identifier: MIT */
/* Pure core: SOCKS5 server-side messages (see socks5.h). */
#include "common/socks5.h"

#include "common/err.h"

#include <string.h>

int socks5_greeting_parse(const uint8_t *p, size_t len, bool *no_auth)
{
    *no_auth = false;
    if (len >= 1 && p[0] != SOCKS5_VERSION)
        return ERR_PROTO;
    if (len >= 2 && p[1] == 0)
        return ERR_PROTO;
    if (len < 2 || len < 2u + p[1])
        return ERR_AGAIN;
    for (size_t i = 0; i < p[1]; i++)
        if (p[2 + i] == SOCKS5_NO_AUTH)
            *no_auth = true;
    return 2 + p[1];
}

void socks5_method_reply(bool no_auth, uint8_t out[2])
{
    out[0] = SOCKS5_VERSION;
    out[1] = no_auth ? SOCKS5_NO_AUTH : SOCKS5_NO_METHOD;
}

/* ATYP ADDR PORT at |p| (|len| bytes) into |t|. Returns the length, ERR_AGAIN, ERR_PROTO for
 * a bad name, or ERR_INVAL for an unknown type. */
static int parse_addr(const uint8_t *p, size_t len, struct fwd_target *t)
{
    size_t alen, off = 1;
    memset(t, 0, sizeof(*t));
    if (len < 1)
        return ERR_AGAIN;
    switch (p[0]) {
    case FWD_ATYP_IPV4:
        alen = 4;
        break;
    case FWD_ATYP_IPV6:
        alen = 16;
        break;
    case FWD_ATYP_NAME:
        if (len < 2)
            return ERR_AGAIN;
        alen = p[1];
        off = 2;
        break;
    default:
        return ERR_INVAL;
    }
    if (len < off + alen + 2)
        return ERR_AGAIN;
    uint16_t port = (uint16_t)(p[off + alen] << 8 | p[off + alen + 1]);
    if (p[0] == FWD_ATYP_NAME) {
        char name[256];
        memcpy(name, p + off, alen);
        name[alen] = '\0';
        /* fwd_target_set checks the bytes (and takes an address literal as an address);
         * a port of 0 is carried apart, since it refuses that */
        if (alen == 0 || memchr(name, '\0', alen) || fwd_target_set(t, name, 1) < 0)
            return ERR_PROTO;
        t->port = port;
    } else {
        t->atyp = p[0];
        memcpy(t->addr, p + off, alen);
        t->port = port;
    }
    return (int)(off + alen + 2);
}

int socks5_request_parse(const uint8_t *p, size_t len, struct socks5_request *r)
{
    memset(r, 0, sizeof(*r));
    if ((len >= 1 && p[0] != SOCKS5_VERSION) || (len >= 3 && p[2] != 0))
        return ERR_PROTO;
    if (len < 4)
        return ERR_AGAIN;
    r->cmd = p[1];
    int n = parse_addr(p + 3, len - 3, &r->target);
    if (n == ERR_AGAIN)
        return ERR_AGAIN;
    if (n == ERR_INVAL) {
        r->rep = FWD_BAD_ATYP;
        return (int)len;
    }
    if (n == ERR_PROTO) {
        /* the name's length is known: frame it, refuse it */
        r->rep = FWD_FAIL;
        return (int)(3 + 2 + p[4] + 2);
    }
    if (r->cmd != SOCKS5_CMD_CONNECT && r->cmd != SOCKS5_CMD_UDP)
        r->rep = SOCKS5_REP_CMD_UNSUPPORTED;
    return 3 + n;
}

size_t socks5_reply_encode(uint8_t rep, const struct fwd_target *bnd, uint8_t *out)
{
    size_t n = 0;
    out[n++] = SOCKS5_VERSION;
    out[n++] = rep;
    out[n++] = 0;
    if (bnd && (bnd->atyp == FWD_ATYP_IPV4 || bnd->atyp == FWD_ATYP_IPV6)) {
        n += (size_t)fwd_addr_encode(bnd, out + n);
    } else {
        out[n++] = FWD_ATYP_IPV4;
        memset(out + n, 0, 6);
        n += 6;
    }
    return n;
}

int socks5_udp_parse(const uint8_t *p, size_t len, struct fwd_target *t)
{
    memset(t, 0, sizeof(*t));
    if (len < 4 || p[0] != 0 || p[1] != 0 || p[2] != 0)
        return ERR_PROTO;
    int n = parse_addr(p + 3, len - 3, t);
    if (n < 0 || t->port == 0)
        return ERR_PROTO;
    return 3 + n;
}

int socks5_udp_encode(const struct fwd_target *t, uint8_t *out, size_t cap)
{
    uint8_t tmp[SOCKS5_UDP_HDR_MAX] = {0}; /* RSV RSV FRAG, then the address */
    int n = fwd_addr_encode(t, tmp + 3);
    if (n < 0 || 3 + (size_t)n > cap)
        return ERR_INVAL;
    memcpy(out, tmp, 3 + (size_t)n);
    return 3 + n;
}
