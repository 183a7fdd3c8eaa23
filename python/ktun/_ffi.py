# SPDX-License-Identifier: MIT
"""Loads libktun.so through cffi's ABI mode and declares the functions the binding calls.

ABI mode (ffi.dlopen + cdef) needs no C compiler when the package is installed: the C side is
built once by ktun's Makefile (`make libktun.so`), and this module only declares what it calls.
The declarations of core functions are copied from ktun's public headers, and those of the
binding's own functions from python/csrc/pyshim.c's KPY_API prototypes: an installed package has
neither file to read them from. tests/test_ffi.py checks that both lists still match their
sources word for word (and that every function the package calls is declared), so a changed
signature shows up as a test failure instead of a silent ABI mismatch. Structs are never
declared: statistics and configuration go through python/csrc/pyshim.c's name tables.
"""

import os
import pathlib

import cffi

# Declarations copied from common/kcp.h, common/link.h, common/mux.h, crypto/crypt.h, common/err.h,
# common/comp.h, crypto/qpp.h (CORE_CDEF) and python/csrc/pyshim.c's KPY_API prototypes
# (SHIM_CDEF); tests/test_ffi.py checks both against their sources.
CORE_CDEF = """
void kcp_set_nodelay(struct kcp *k, int nodelay, int interval_ms, int resend, int nc);
int kcp_set_window(struct kcp *k, int sndwnd, int rcvwnd);
int kcp_set_mtu(struct kcp *k, size_t mtu);
void kcp_set_pacing(struct kcp *k, bool on, uint64_t now_ms);
void kcp_set_ack_repeat(struct kcp *k, bool on);
void kcp_set_stream(struct kcp *k, bool stream);
void kcp_set_ack_nodelay(struct kcp *k, bool on);
int kcp_send(struct kcp *k, const uint8_t *data, size_t len);
size_t kcp_wait_snd(const struct kcp *k);
size_t kcp_send_room(const struct kcp *k);
int kcp_input(struct kcp *k, const uint8_t *pkt, size_t len, bool regular, uint64_t now_ms);
ssize_t kcp_recv(struct kcp *k, uint8_t *buf, size_t cap);
size_t kcp_recv_avail(const struct kcp *k);
void kcp_flush(struct kcp *k, uint64_t now_ms);
uint64_t kcp_next_deadline(const struct kcp *k, uint64_t now_ms);
void kcp_tick(struct kcp *k, uint64_t now_ms);
uint32_t kcp_conv(const struct kcp *k);
bool kcp_is_dead(const struct kcp *k);
uint32_t kcp_rto(const struct kcp *k);
uint32_t kcp_srtt(const struct kcp *k);
uint32_t kcp_cwnd(const struct kcp *k);
size_t kcp_mss(const struct kcp *k);
size_t kcp_rcv_buf_count(const struct kcp *k);
size_t kcp_rcv_queue_count(const struct kcp *k);

int link_send(struct link *l, const uint8_t *data, size_t len);
size_t link_send_room(const struct link *l);
size_t link_wait_snd(const struct link *l);
size_t link_recv_avail(const struct link *l);
void link_flush(struct link *l, uint64_t now_ms);
uint64_t link_next_deadline(const struct link *l, uint64_t now_ms);
void link_tick(struct link *l, uint64_t now_ms);
void link_set_wall_offset(struct link *l, int64_t wall_offset_ms);
uint32_t link_conv(const struct link *l);
bool link_is_dead(const struct link *l);
uint32_t link_srtt(const struct link *l);
uint32_t link_rto(const struct link *l);

ssize_t mux_input(struct mux *m, const uint8_t *data, size_t len, uint64_t now_ms);
bool mux_input_blocked(const struct mux *m);
uint64_t mux_next_deadline(const struct mux *m);
int mux_tick(struct mux *m, uint64_t now_ms);
bool mux_is_closed(const struct mux *m);
int mux_stream_open(struct mux *m, uint32_t *sid);
ssize_t mux_stream_write(struct mux *m, uint32_t sid, const uint8_t *data, size_t len);
size_t mux_stream_writable(const struct mux *m, uint32_t sid);
int mux_stream_close(struct mux *m, uint32_t sid);
int mux_stream_release(struct mux *m, uint32_t sid);
size_t mux_stream_buffered(const struct mux *m, uint32_t sid);
bool mux_stream_exists(const struct mux *m, uint32_t sid);
size_t mux_stream_count(const struct mux *m);
int mux_config_validate(const struct mux_config *cfg);

const char *const *crypt_method_names(void);
bool crypt_method_is_known(const char *method);
void crypt_set_start(struct crypt *c, uint64_t now_ms);
const char *crypt_method(const struct crypt *c);
size_t crypt_head_len(const struct crypt *c);
size_t crypt_tail_len(const struct crypt *c);
bool crypt_is_authenticated(const struct crypt *c);

const char *err_str(int err);

void qpp_free(struct qpp *q);

struct comp_encoder *comp_encoder_new(void);
void comp_encoder_free(struct comp_encoder *enc);
struct comp_decoder *comp_decoder_new(void);
void comp_decoder_free(struct comp_decoder *dec);
"""

SHIM_CDEF = """
size_t kpy_queue_peek(const struct kpy_queue *q, const uint8_t **p, size_t *count);
void kpy_queue_clear(struct kpy_queue *q);
uint64_t kpy_queue_lost(const struct kpy_queue *q);
struct kpy_queue *kpy_queue_new(void);
void kpy_queue_free(struct kpy_queue *q);
size_t kpy_table_size(int t);
const char *kpy_table_name(int t, size_t i);
const char *kpy_config_name(int which, size_t i);

struct kpy_kcp *kpy_kcp_new(uint32_t conv);
void kpy_kcp_free(struct kpy_kcp *o);
struct kcp *kpy_kcp_engine(struct kpy_kcp *o);
struct kpy_queue *kpy_kcp_queue(struct kpy_kcp *o);
long kpy_kcp_input_batch(struct kpy_kcp *o, const uint8_t *batch, size_t len, bool regular,
                         uint64_t now_ms);
long kpy_kcp_recv_all(struct kpy_kcp *o, struct kpy_queue *out, bool framed);
void kpy_kcp_stats(const struct kpy_kcp *o, uint64_t *out);

struct kpy_crypt *kpy_crypt_new(const char *method, const char *password, int role, int *err,
                                char *msg, size_t cap);
void kpy_crypt_free(struct kpy_crypt *o);
struct crypt *kpy_crypt_obj(struct kpy_crypt *o);
void kpy_crypt_stats(const struct kpy_crypt *o, uint64_t *out);

struct link_config *kpy_link_config_new(void);
void kpy_link_config_free(struct link_config *c);
int kpy_link_config_set(struct link_config *c, const char *name, int64_t v);
int kpy_link_config_get(const struct link_config *c, const char *name, int64_t *v);
struct kpy_link *kpy_link_new(uint32_t conv, const struct link_config *cfg,
                              struct kpy_crypt *crypt, int *err);
void kpy_link_free(struct kpy_link *o);
struct link *kpy_link_obj(struct kpy_link *o);
struct kpy_queue *kpy_link_queue(struct kpy_link *o);
unsigned kpy_link_log(const struct kpy_link *o, const char **msg);
long kpy_link_input_batch(struct kpy_link *o, const uint8_t *batch, size_t len, uint64_t now_ms,
                          long *errors);
int kpy_link_input(struct kpy_link *o, const uint8_t *dgram, size_t len, uint64_t now_ms);
long kpy_link_recv_all(struct kpy_link *o, struct kpy_queue *out);
void kpy_link_stats(const struct kpy_link *o, uint64_t *out);

struct mux_config *kpy_mux_config_new(void);
void kpy_mux_config_free(struct mux_config *c);
int kpy_mux_config_set(struct mux_config *c, const char *name, int64_t v);
int kpy_mux_config_get(const struct mux_config *c, const char *name, int64_t *v);
struct kpy_mux *kpy_mux_new(const struct mux_config *cfg, bool is_client, uint64_t now_ms);
void kpy_mux_free(struct kpy_mux *o);
struct mux *kpy_mux_obj(struct kpy_mux *o);
struct kpy_queue *kpy_mux_queue(struct kpy_mux *o, int which);
const char *kpy_mux_close_reason(const struct kpy_mux *o);
long kpy_mux_read_all(struct kpy_mux *o, uint32_t sid, struct kpy_queue *out);
void kpy_mux_stats(const struct kpy_mux *o, uint64_t *out);

long kpy_comp_encode(struct comp_encoder *enc, const uint8_t *in, size_t len,
                     struct kpy_queue *out);
long kpy_comp_decode(struct comp_decoder *dec, const uint8_t *in, size_t len,
                     struct kpy_queue *out);
const char *kpy_comp_fault(const struct comp_decoder *dec);

struct qpp *kpy_qpp_new(const uint8_t *seed, size_t seed_len, unsigned count,
                        const char *variant, int *err);
void kpy_mux_config_set_qpp(struct mux_config *c, const struct qpp *q);
"""

OPAQUE = """
struct kcp; struct link; struct mux; struct crypt; struct link_config; struct mux_config;
struct comp_encoder; struct comp_decoder; struct qpp;
struct kpy_queue; struct kpy_kcp; struct kpy_link; struct kpy_mux; struct kpy_crypt;
"""

ffi = cffi.FFI()
ffi.cdef(OPAQUE + CORE_CDEF + SHIM_CDEF)

_HERE = pathlib.Path(__file__).resolve().parent


def _candidates():
    env = os.environ.get("KTUN_LIBRARY")
    if env:
        yield pathlib.Path(env)
        return
    yield _HERE / "libktun.so"                              # installed with the package
    yield _HERE.parent.parent / "build" / "libktun.so"     # ktun's build tree (python/ktun/..)


def _load():
    tried = []
    for path in _candidates():
        if path.is_file():
            return ffi.dlopen(str(path)), str(path)
        tried.append(str(path))
    raise ImportError("libktun.so not found (run `make libktun.so` in ktun's source tree, or set "
                      "KTUN_LIBRARY); looked in: " + ", ".join(tried))


lib, LIBRARY_PATH = _load()
