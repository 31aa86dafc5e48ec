/*
 * tests/unit/test_ace_cose.c: the CBOR pre-scan (limits, hostile heads, tags) and the COSE layer
 * against RFC 8392 Appendix A: A.3 Sign1 ES256, A.4 tag 61 + Mac0 HMAC 256/64, A.5 Encrypt0
 * AES-CCM-16-64-128 decrypting to the A.1 claims, A.6 Encrypt0 around Sign1.
 */
#include <time.h>

#include "ace/cbor_scan.h"
#include "ace/cose.h"
#include "tests/unit/ace_vectors.h"
#include "tests/unit/test.h"

static int scan_hex(const char *hex, const ace_cbor_limits_t *lim)
{
    size_t n;
    uint8_t *b = unhex(hex, &n);
    int rc = ace_cbor_scan(b, n, lim);
    free(b);
    return rc;
}

TEST(scan_accepts_claims_and_keys)
{
    ASSERT_EQ(scan_hex(RFC8392_A1, NULL), 0);
    ASSERT_EQ(scan_hex(RFC8392_A2_EC, NULL), 0);
    ASSERT_EQ(scan_hex("d83d80", NULL), 0);          /* tag 61 is fine for libcbor */
    ASSERT_EQ(scan_hex("fb41d584367c200000", NULL), 0); /* a double */
}

TEST(scan_rejects_huge_counts_without_allocating)
{
    /* platform-notes B2: these cost libcbor 2 GB and an OOM kill; here they fail on the head. */
    clock_t t0 = clock();
    ASSERT_EQ(scan_hex("9a1000000001", NULL), ACE_E_MALFORMED);
    ASSERT_EQ(scan_hex("9a000000029a000000029a000000029a000000029a000000029a000000029a000000029a"
                       "00000002",
                       NULL),
              ACE_E_MALFORMED);
    ASSERT_EQ(scan_hex("bb0000000100000000", NULL), ACE_E_MALFORMED); /* map of 2^32 pairs */
    ASSERT_EQ(scan_hex("5b00000001000000006162", NULL), ACE_E_MALFORMED);
    ASSERT_EQ(scan_hex("a2010203", NULL), ACE_E_MALFORMED);      /* map with a pair missing */
    ASSERT((clock() - t0) < CLOCKS_PER_SEC / 10);
    int err = 0;
    size_t n;
    uint8_t *b = unhex("9a1000000001", &n);
    ASSERT(ace_cbor_load(b, n, NULL, &err) == NULL);
    ASSERT_EQ(err, ACE_E_MALFORMED);
    free(b);
}

TEST(scan_limits_depth_and_size)
{
    char hex[2 * 40 + 3] = "";
    for (int i = 0; i < 16; i++)
        strcat(hex, "81");
    strcat(hex, "01");
    ASSERT_EQ(scan_hex(hex, NULL), 0); /* 16 nested arrays: the default limit */
    char deeper[2 * 40 + 3] = "81";
    strcat(deeper, hex);
    ASSERT_EQ(scan_hex(deeper, NULL), ACE_E_TOO_LARGE);
    ace_cbor_limits_t lim = {4, 0};
    ASSERT_EQ(scan_hex("818181818101", &lim), ACE_E_TOO_LARGE);
    ASSERT_EQ(scan_hex("8181818101", &lim), 0);
    ace_cbor_limits_t small = {0, 8};
    ASSERT_EQ(scan_hex(RFC8392_A1, &small), ACE_E_TOO_LARGE);
    /* a chain of tags counts as depth too */
    ASSERT_EQ(scan_hex("d83dd83dd83dd83dd83d01", &lim), ACE_E_TOO_LARGE);
}

TEST(scan_rejects_indefinite_trailing_reserved_and_tags_6_to_20)
{
    ASSERT_EQ(scan_hex("9f01ff", NULL), ACE_E_MALFORMED);
    ASSERT_EQ(scan_hex("5f4101ff", NULL), ACE_E_MALFORMED);
    ASSERT_EQ(scan_hex("0101", NULL), ACE_E_MALFORMED);   /* trailing byte */
    ASSERT_EQ(scan_hex("1c", NULL), ACE_E_MALFORMED);     /* reserved additional info */
    ASSERT_EQ(scan_hex("f801", NULL), ACE_E_MALFORMED);   /* invalid 1-byte simple value */
    ASSERT_EQ(scan_hex("ff", NULL), ACE_E_MALFORMED);     /* lone break */
    ASSERT_EQ(scan_hex("", NULL), ACE_E_MALFORMED);
    ASSERT_EQ(scan_hex("81d280", NULL), ACE_E_MALFORMED); /* tag 18 nested in an array */
    ASSERT_EQ(scan_hex("a101d180", NULL), ACE_E_MALFORMED); /* tag 17 as a map value */
    ASSERT_EQ(scan_hex("d0", NULL), ACE_E_MALFORMED);
    ASSERT_EQ(scan_hex("c680", NULL), ACE_E_MALFORMED);   /* tag 6 */
    ASSERT_EQ(scan_hex("d480", NULL), ACE_E_MALFORMED);   /* tag 20 */
    ASSERT_EQ(scan_hex("d580", NULL), 0);                 /* tag 21: libcbor copes */
}

TEST(peel_tags)
{
    uint64_t tags[3];
    size_t nt, off;
    const uint8_t b[] = {0xd8, 0x3d, 0xd1, 0x84, 0x00};
    ASSERT_EQ(ace_cbor_peel_tags(b, sizeof(b), tags, 3, &nt, &off), 0);
    ASSERT_EQ(nt, 2);
    ASSERT_EQ(tags[0], 61);
    ASSERT_EQ(tags[1], 17);
    ASSERT_EQ(off, 3);
    const uint8_t only[] = {0xd8, 0x3d};
    ASSERT_EQ(ace_cbor_peel_tags(only, sizeof(only), tags, 3, &nt, &off), ACE_E_MALFORMED);
    const uint8_t many[] = {0xc1, 0xc1, 0xc1, 0xc1, 0x00};
    ASSERT_EQ(ace_cbor_peel_tags(many, sizeof(many), tags, 3, &nt, &off), ACE_E_MALFORMED);
}

static int parse_hex(const char *hex, ace_cose_msg_t *m)
{
    size_t n;
    uint8_t *b = unhex(hex, &n);
    int rc = ace_cose_parse(b, n, NULL, m);
    free(b); /* m points into its own libcbor items, not into b */
    return rc;
}

TEST(rfc8392_a3_sign1_es256)
{
    ace_keypair_t kp;
    ace_ec_ctx_t ec;
    ace_cose_msg_t m;
    ASSERT_EQ(key_from_text(RFC8392_A2_EC, 1, &kp), 0);
    ASSERT_EQ(kp.pub.kid_len, 18);
    ASSERT(kp.has_private);
    ASSERT_EQ(ace_ec_ctx_init(&ec, &kp.pub), 0);
    ASSERT_EQ(parse_hex(RFC8392_A3, &m), 0);
    ASSERT_EQ(m.type, ACE_COSE_SIGN1);
    ASSERT_EQ(m.alg, ACE_COSE_ALG_ES256);
    ASSERT_EQ(m.kid_len, 18);
    ASSERT_MEM_EQ(m.kid, "AsymmetricECDSA256", 18);
    ASSERT_EQ(ace_cose_verify_sign1(&m, &ec), 0);
    size_t n;
    uint8_t *a1 = unhex(RFC8392_A1, &n);
    ASSERT_EQ(m.payload_len, n);
    ASSERT_MEM_EQ(m.payload, a1, n);
    free(a1);
    ace_cose_free(&m);
    /* one flipped bit in the signature */
    char bad[] = RFC8392_A3;
    bad[sizeof(bad) - 2] = bad[sizeof(bad) - 2] == '0' ? '1' : '0';
    ASSERT_EQ(parse_hex(bad, &m), 0);
    ASSERT_EQ(ace_cose_verify_sign1(&m, &ec), ACE_E_BAD_SIGNATURE);
    ace_cose_free(&m);
    ace_ec_ctx_free(&ec);
}

TEST(rfc8392_a4_mac0_with_cwt_tag)
{
    ace_keypair_t kp;
    ace_cose_msg_t m;
    ASSERT_EQ(key_from_text(RFC8392_A2_SYM256, 1, &kp), 0);
    ASSERT_EQ(kp.pub.k_len, 32);
    ASSERT_EQ(parse_hex(RFC8392_A4, &m), 0);
    ASSERT_EQ(m.type, ACE_COSE_MAC0);
    ASSERT_EQ(m.alg, ACE_COSE_ALG_HMAC256_64);
    ASSERT_EQ(ace_cose_verify_mac0(&m, kp.pub.k, kp.pub.k_len), 0);
    ASSERT_EQ(ace_cose_verify_mac0(&m, kp.pub.k, 16), ACE_E_BAD_SIGNATURE);
    ace_cose_free(&m);
    /* without the outer tag 61 it is still a Mac0 */
    ASSERT_EQ(parse_hex(&RFC8392_A4[4], &m), 0);
    ASSERT_EQ(ace_cose_verify_mac0(&m, kp.pub.k, kp.pub.k_len), 0);
    ace_cose_free(&m);
}

TEST(rfc8392_a5_encrypt0_decrypts_to_a1)
{
    ace_keypair_t kp;
    ace_cose_msg_t m;
    uint8_t *pt;
    size_t pt_len, n;
    ASSERT_EQ(key_from_text(RFC8392_A2_SYM128, 1, &kp), 0);
    ASSERT_EQ(parse_hex(RFC8392_A5, &m), 0);
    ASSERT_EQ(m.type, ACE_COSE_ENCRYPT0);
    ASSERT_EQ(m.iv_len, 13);
    ASSERT_EQ(ace_cose_decrypt0(&m, kp.pub.k, kp.pub.k_len, &pt, &pt_len), 0);
    uint8_t *a1 = unhex(RFC8392_A1, &n);
    ASSERT_EQ(pt_len, n);
    ASSERT_MEM_EQ(pt, a1, n);
    free(a1);
    free(pt);
    kp.pub.k[0] ^= 1;
    ASSERT_EQ(ace_cose_decrypt0(&m, kp.pub.k, kp.pub.k_len, &pt, &pt_len), ACE_E_BAD_SIGNATURE);
    ace_cose_free(&m);
}

TEST(rfc8392_a6_nested)
{
    ace_keypair_t sym, ec_kp;
    ace_ec_ctx_t ec;
    ace_cose_msg_t outer, inner;
    uint8_t *pt;
    size_t pt_len;
    ASSERT_EQ(key_from_text(RFC8392_A2_SYM128, 1, &sym), 0);
    ASSERT_EQ(key_from_text(RFC8392_A2_EC, 1, &ec_kp), 0);
    ASSERT_EQ(ace_ec_ctx_init(&ec, &ec_kp.pub), 0);
    ASSERT_EQ(parse_hex(RFC8392_A6, &outer), 0);
    ASSERT_EQ(ace_cose_decrypt0(&outer, sym.pub.k, sym.pub.k_len, &pt, &pt_len), 0);
    ASSERT(ace_cose_looks_nested(pt, pt_len));
    ASSERT_EQ(pt[0], 0xd2);
    ASSERT_EQ(ace_cose_parse(pt, pt_len, NULL, &inner), 0);
    ASSERT_EQ(ace_cose_verify_sign1(&inner, &ec), 0);
    ace_cose_free(&inner);
    free(pt);
    ace_cose_free(&outer);
    ace_ec_ctx_free(&ec);
}

TEST(rfc8392_a7_mac0_float_date)
{
    ace_keypair_t kp;
    ace_cose_msg_t m;
    ASSERT_EQ(key_from_text(RFC8392_A2_SYM256, 1, &kp), 0);
    ASSERT_EQ(parse_hex(RFC8392_A7, &m), 0);
    ASSERT_EQ(ace_cose_verify_mac0(&m, kp.pub.k, kp.pub.k_len), 0);
    ace_cose_free(&m);
}

TEST(cose_parse_rejects_bad_structures)
{
    ace_cose_msg_t m;
    ASSERT_EQ(parse_hex("d1d8" "3d" "80", &m), ACE_E_MALFORMED);       /* tags in the wrong order */
    ASSERT_EQ(parse_hex("d2d2840000000000", &m), ACE_E_MALFORMED);     /* two COSE tags */
    ASSERT_EQ(parse_hex("d284" "40a0" "4100" "4100", &m), ACE_E_BAD_ALG); /* no alg */
    ASSERT_EQ(parse_hex("d284" "43a10126" "a10126" "4100" "4100", &m), ACE_E_BAD_ALG); /* alg unprotected */
    ASSERT_EQ(parse_hex("d284" "45a1012602" "80" "a0" "4100" "4100", &m), ACE_E_MALFORMED);
    ASSERT_EQ(parse_hex("d284" "47a1012602810a" "a0" "4100" "4100", &m), ACE_E_MALFORMED);
    ASSERT_EQ(parse_hex("d284" "46a2012602810a" "a0" "4100" "4100", &m), ACE_E_BAD_ALG); /* crit */
    ASSERT_EQ(parse_hex("d284" "43a10126" "a0" "f6" "4100", &m), ACE_E_MALFORMED);   /* detached */
    ASSERT_EQ(parse_hex("d184" "43a10126" "a0" "4100" "4100", &m), ACE_E_BAD_ALG);  /* Mac0 + ES256 */
    ASSERT_EQ(parse_hex("d083" "43a10126" "a0" "4100", &m), ACE_E_BAD_ALG);
    ASSERT_EQ(parse_hex("d284" "43a10126" "a0" "4100", &m), ACE_E_MALFORMED);       /* 3 items */
    ASSERT_EQ(parse_hex("d284" "43a10126" "a1" "04d2" "80" "4100" "4100", &m), ACE_E_MALFORMED);
}

TEST(cose_create_round_trips)
{
    ace_keypair_t ec_kp, sym, aes;
    ace_ec_ctx_t ec;
    ace_cose_msg_t m;
    uint8_t *out, *pt;
    size_t out_len, pt_len, n;
    uint8_t *a1 = unhex(RFC8392_A1, &n);
    ASSERT_EQ(ace_key_generate(ACE_KEY_EC2_P256, 0, &ec_kp), 0);
    ASSERT_EQ(ace_key_generate(ACE_KEY_SYMMETRIC, 32, &sym), 0);
    ASSERT_EQ(ace_key_generate(ACE_KEY_SYMMETRIC, 16, &aes), 0);
    ASSERT_EQ(ace_ec_ctx_init(&ec, &ec_kp.pub), 0);
    ASSERT_EQ(ace_cose_sign1_create(a1, n, &ec_kp, 1, &out, &out_len), 0);
    ASSERT_EQ(out[0], 0xd8);
    ASSERT_EQ(ace_cose_parse(out, out_len, NULL, &m), 0);
    ASSERT_EQ(ace_cose_verify_sign1(&m, &ec), 0);
    ace_cose_free(&m);
    free(out);
    for (int alg = 4; alg <= 5; alg++) {
        ASSERT_EQ(ace_cose_mac0_create(a1, n, alg, &sym.pub, 0, &out, &out_len), 0);
        ASSERT_EQ(ace_cose_parse(out, out_len, NULL, &m), 0);
        ASSERT_EQ(m.alg, alg);
        ASSERT_EQ(ace_cose_verify_mac0(&m, sym.pub.k, sym.pub.k_len), 0);
        ace_cose_free(&m);
        free(out);
    }
    ASSERT_EQ(ace_cose_encrypt0_create(a1, n, &aes.pub, 1, 0, &out, &out_len), 0);
    ASSERT_EQ(ace_cose_parse(out, out_len, NULL, &m), 0);
    ASSERT_EQ(ace_cose_decrypt0(&m, aes.pub.k, 16, &pt, &pt_len), 0);
    ASSERT_EQ(pt_len, n);
    ASSERT_MEM_EQ(pt, a1, n);
    free(pt);
    ace_cose_free(&m);
    free(out);
    free(a1);
    ace_ec_ctx_free(&ec);
}

int main(void)
{
    RUN(scan_accepts_claims_and_keys);
    RUN(scan_rejects_huge_counts_without_allocating);
    RUN(scan_limits_depth_and_size);
    RUN(scan_rejects_indefinite_trailing_reserved_and_tags_6_to_20);
    RUN(peel_tags);
    RUN(rfc8392_a3_sign1_es256);
    RUN(rfc8392_a4_mac0_with_cwt_tag);
    RUN(rfc8392_a5_encrypt0_decrypts_to_a1);
    RUN(rfc8392_a6_nested);
    RUN(rfc8392_a7_mac0_float_date);
    RUN(cose_parse_rejects_bad_structures);
    RUN(cose_create_round_trips);
    return test_summary();
}
