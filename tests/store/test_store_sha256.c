/* test_store_sha256.c — the store's SHA-256 against the FIPS 180-4 / NIST example vectors (empty,
 * "abc", the 448- and 896-bit messages, one million 'a'), plus incremental updates split at every
 * offset, which must agree with one-shot hashing across block boundaries. */
#include "helpers.h"

static void hex_of(aspen_store_sha256_ctx *c, char hex[65])
{
    uint8_t d[32];
    aspen_store_sha256_final(c, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void test_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
         "lmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
        {"The quick brown fox jumps over the lazy dog",
         "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char hex[65];
        aspen_store_sha256_hex(v[i].msg, strlen(v[i].msg), hex);
        assert_string_equal(hex, v[i].hex);
    }
}

static void test_million_a(void **state)
{
    (void)state;
    aspen_store_sha256_ctx c;
    aspen_store_sha256_init(&c);
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    for (int i = 0; i < 1000; i++)
        aspen_store_sha256_update(&c, chunk, sizeof chunk);
    char hex[65];
    hex_of(&c, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_incremental_splits(void **state)
{
    (void)state;
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    /* Every length around the padding boundaries (55, 56, 63, 64, ...) and every split point. */
    for (size_t len = 0; len <= sizeof data; len += (len < 140 ? 1 : 37)) {
        char whole[65];
        aspen_store_sha256_hex(data, len, whole);
        for (size_t cut = 0; cut <= len; cut += (len < 70 ? 1 : 13)) {
            aspen_store_sha256_ctx c;
            aspen_store_sha256_init(&c);
            aspen_store_sha256_update(&c, data, cut);
            aspen_store_sha256_update(&c, data + cut, 0);
            aspen_store_sha256_update(&c, data + cut, len - cut);
            char hex[65];
            hex_of(&c, hex);
            if (strcmp(hex, whole) != 0)
                fail_msg("len %zu split at %zu differs", len, cut);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_incremental_splits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
