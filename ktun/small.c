/* SPDX-License-Identifier: MIT */
/* Size profile only (make PROFILE=size): definitions that keep unused library code out of
 * the statically linked `ktun`, worth about 200 KB on MIPS and 32-bit ARM.
 *
 * sodium_init() selects the fastest implementation of several primitives, and each selector
 * links the code it selects from:
 * - Curve25519 scalar multiplication: the Curve25519/Ed25519 field and scalar arithmetic with
 *   its 30 KB table (140 KB). ktun uses no public-key operation of libsodium.
 * - Argon2 and BLAKE2b: libsodium's unrolled BLAKE2b compression and Argon2 block filling
 *   (60 KB on MIPS). The size profile derives the secure mode's key with its own Argon2id
 *   (crypto/argon2.c) and hashes nothing else with BLAKE2b.
 * ktun uses Salsa20, ChaCha20, XSalsa20-Poly1305, HMAC-SHA256 and random bytes only, so these
 * selections do nothing here: the primitives would still work (they fall back to libsodium's
 * default implementations), but nothing calls them. Should anything start to, the linker
 * stops with a duplicate definition instead of linking silently. If a libsodium release
 * renames a selector, its definition here is merely unused. */
#ifdef KTUN_SIZE_PROFILE
int ktun_curve25519_pick(void) __asm__("_crypto_scalarmult_curve25519_pick_best_implementation");
int ktun_argon2_pick(void) __asm__("_crypto_pwhash_argon2_pick_best_implementation");
int ktun_blake2b_pick(void) __asm__("_crypto_generichash_blake2b_pick_best_implementation");

int ktun_curve25519_pick(void)
{
    return 0;
}

int ktun_argon2_pick(void)
{
    return 0;
}

int ktun_blake2b_pick(void)
{
    return 0;
}
#endif
