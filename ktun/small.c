/* SPDX-License-Identifier: MIT */
/* Size profile only (make PROFILE=size): a definition that keeps unused library code out of
 * the statically linked `ktun`, worth about 140 KB on MIPS and 32-bit ARM.
 *
 * sodium_init() selects the fastest Curve25519 scalar multiplication, which links the
 * Curve25519/Ed25519 field and scalar arithmetic with its 30 KB table (140 KB). ktun uses no
 * public-key operation of libsodium (Salsa20, XSalsa20-Poly1305, Argon2id, random bytes only),
 * so the selection does nothing here: crypto_scalarmult would still work (it falls back to
 * libsodium's default implementation) but nothing calls it.
 * If a libsodium release renames the selector, this definition is merely unused. */
#ifdef KTUN_SIZE_PROFILE
int ktun_curve25519_pick(void) __asm__("_crypto_scalarmult_curve25519_pick_best_implementation");

int ktun_curve25519_pick(void)
{
    return 0;
}
#endif
