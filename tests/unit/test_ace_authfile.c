/*
 * tests/unit/test_ace_authfile.c: Mosquitto-format password files (hashes written by Debian's
 * mosquitto_passwd 2.0.11 and by hand for the old $6$ form) and ACL files (anonymous section, user
 * sections, patterns with %c/%u, deny lines, subscribe filters).
 */
#include "ace/authfile.h"
#include "ace/token.h"
#include "tests/unit/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* `mosquitto_passwd -b -c f user pass` and `mosquitto_passwd -b f alice 'S3cret pw!'` (2.0.11), plus
 * bob in the 1.x form: SHA-512("old-secret" || "0123456789ab"). */
static const char pwfile[] =
    "# written by mosquitto_passwd\n"
    "user:$7$101$JFmjVIvOXHXy/4Yq$AzWA6zul7n2tVQDVy2OdczEkeIFdJ3L81Ds/ILFhNcCrCbe0MlphtVj9S4+KSMMf/"
    "XDghVFavtnzgr0Iv7L6Dw==\n"
    "\n"
    "alice:$7$101$RkmqSAs89QDDWera$fHUbe7TTlxsI4xRW+o+6g2qG0WU0CDQGZgljIIF2duG5XSRDRcaSExkQBdQ+LMyD+"
    "NIwZK00wCYMg3Y/Bo+znQ==\r\n"
    "bob:$6$MDEyMzQ1Njc4OWFi$YX27RyzbcV6dBMVi9Nh3dwYZ6VxMmu4NpjEaKVgDU/AaJBmf1mEkGpRHYkXCDaBD3uxmt3JG"
    "HCI2bMwrcUWXYA==";

#define PW(s) (const uint8_t *)(s), strlen(s)

TEST(mosquitto_hashes)
{
    ace_pwfile_t *pf;
    size_t line = 99;
    ASSERT_EQ(ace_pwfile_parse(pwfile, strlen(pwfile), &pf, &line), 0);
    ASSERT_EQ(line, 0);
    ASSERT_EQ(ace_pwfile_count(pf), 3);
    ASSERT_EQ(ace_pwfile_check(pf, "user", PW("pass")), 0);
    ASSERT_EQ(ace_pwfile_check(pf, "user", PW("Pass")), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pwfile_check(pf, "user", PW("pass ")), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pwfile_check(pf, "user", PW("")), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pwfile_check(pf, "alice", PW("S3cret pw!")), 0);
    ASSERT_EQ(ace_pwfile_check(pf, "alice", PW("pass")), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pwfile_check(pf, "bob", PW("old-secret")), 0);
    ASSERT_EQ(ace_pwfile_check(pf, "bob", PW("old-secreT")), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pwfile_check(pf, "mallory", PW("pass")), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pwfile_check(pf, "User", PW("pass")), ACE_E_BAD_SIGNATURE);
    ace_pwfile_free(pf);
}

TEST(hash_round_trip)
{
    char h[ACE_PW_HASH_BUF], h2[ACE_PW_HASH_BUF];
    ASSERT_EQ(ace_pw_hash(PW("correct horse"), ACE_PW_DEFAULT_ITERATIONS, h, sizeof h), 0);
    ASSERT(strncmp(h, "$7$101$", 7) == 0);
    ASSERT_EQ(strlen(h), 7 + 16 + 1 + 88);
    ASSERT_EQ(ace_pw_verify(h, strlen(h), PW("correct horse")), 0);
    ASSERT_EQ(ace_pw_verify(h, strlen(h), PW("correct horsE")), ACE_E_BAD_SIGNATURE);
    ASSERT_EQ(ace_pw_hash(PW("correct horse"), 1000, h2, sizeof h2), 0);
    ASSERT(strncmp(h2, "$7$1000$", 8) == 0);
    ASSERT_EQ(ace_pw_verify(h2, strlen(h2), PW("correct horse")), 0);
    ASSERT(strcmp(h + 7, h2 + 8) != 0); /* fresh salt */
    ASSERT_EQ(ace_pw_hash(PW("x"), 0, h, sizeof h), ACE_E_ARG);
    ASSERT_EQ(ace_pw_hash(PW("x"), 101, h, 40), ACE_E_TOO_LARGE);
}

TEST(malformed_password_files)
{
    static const char *bad[] = {
        "user:pass\n",                                   /* plain text */
        "user\n",                                        /* no colon */
        (":$6$MDEyMzQ1Njc4OWFi$YX27RyzbcV6dBMVi9Nh3dwYZ6VxMmu4NpjEaKVgDU/AaJBmf1mEkGpRHYkXCDaBD3uxmt3JG"
         "HCI2bMwrcUWXYA==\n"), /* empty user */
        "a:$7$0$JFmjVIvOXHXy/4Yq$AzWA\n",                 /* zero iterations, short hash */
        "a:$7$99999999999$JFmjVIvOXHXy/4Yq$AzWA\n",
        "a:$7$101$JFmjVIvOXHXy/4Yq$AzWA6zul7n2tVQDVy2OdczEkeIFdJ3L81Ds/ILFhNcCrCbe0Mlph\n", /* 40 B */
        "a:$8$101$JFmjVIvOXHXy/4Yq$x\n",
        "a:$7$101$!!!!$AzWA\n",
    };
    ace_pwfile_t *pf = NULL;
    size_t line;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "# header\n%s", bad[i]);
        if (ace_pwfile_parse(text, strlen(text), &pf, &line) != ACE_E_MALFORMED)
            TEST_FAIL_("accepted bad line %zu", i);
        ASSERT_EQ(line, 2);
    }
    /* The same user twice. */
    char dup[1024];
    snprintf(dup, sizeof dup, "%s\n%s", pwfile, strchr(pwfile, '\n') + 1);
    ASSERT_EQ(ace_pwfile_parse(dup, strlen(dup), &pf, &line), ACE_E_MALFORMED);
    ASSERT_EQ(ace_pwfile_load("/nonexistent/acemq-pw", &pf, &line), ACE_E_IO);
    ASSERT_EQ(ace_pwfile_parse("", 0, &pf, &line), 0);
    ASSERT_EQ(ace_pwfile_count(pf), 0);
    ASSERT_EQ(ace_pwfile_check(pf, "user", PW("pass")), ACE_E_BAD_SIGNATURE);
    ace_pwfile_free(pf);
}

TEST(load_from_file)
{
    char path[] = "/tmp/acemq-test-pw-XXXXXX";
    int fd = mkstemp(path);
    ace_pwfile_t *pf;
    size_t line;
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, pwfile, strlen(pwfile)), (long long)strlen(pwfile));
    close(fd);
    int rc = ace_pwfile_load(path, &pf, &line);
    unlink(path);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(ace_pwfile_check(pf, "alice", PW("S3cret pw!")), 0);
    ace_pwfile_free(pf);
}

static const char aclfile[] =
    "# anonymous clients\n"
    "topic read public/#\n"
    "topic deny public/secret\n"
    "\n"
    "user alice\n"
    "topic sensors/#\n"
    "topic write cmd/+/set\n"
    "topic deny sensors/private/#\n"
    "\n"
    "user bob smith\n"
    "topic read $SYS/broker/#\n"
    "\n"
    "pattern write devices/%c/out\n"
    "pattern read devices/%c/in/#\n"
    "pattern readwrite users/%u/#\n"
    "pattern deny users/%u/locked\n";

#define CHECK(u, c, a, t) ace_acl_check(acl, (u), (c), (a), (t), strlen(t))
#define CHECK_SUB(u, c, f) ace_acl_check_subscribe(acl, (u), (c), (f), strlen(f))

TEST(acl_anonymous_and_users)
{
    ace_acl_t *acl;
    size_t line;
    ASSERT_EQ(ace_acl_parse(aclfile, strlen(aclfile), &acl, &line), 0);
    /* Anonymous section: only before the first user line. */
    ASSERT(CHECK(NULL, "c1", ACE_ACL_READ, "public/news"));
    ASSERT(!CHECK(NULL, "c1", ACE_ACL_WRITE, "public/news"));
    ASSERT(!CHECK(NULL, "c1", ACE_ACL_READ, "public/secret"));
    ASSERT(!CHECK(NULL, "c1", ACE_ACL_READ, "sensors/x"));
    ASSERT(!CHECK("carol", "c1", ACE_ACL_READ, "public/news")); /* a named user is not anonymous */
    /* alice: default readwrite, write-only, deny. */
    ASSERT(CHECK("alice", "c2", ACE_ACL_READ, "sensors/t1"));
    ASSERT(CHECK("alice", "c2", ACE_ACL_WRITE, "sensors/t1"));
    ASSERT(CHECK("alice", "c2", ACE_ACL_WRITE, "cmd/lamp/set"));
    ASSERT(!CHECK("alice", "c2", ACE_ACL_READ, "cmd/lamp/set"));
    ASSERT(!CHECK("alice", "c2", ACE_ACL_READ, "sensors/private/x"));
    ASSERT(!CHECK("alice", "c2", ACE_ACL_WRITE, "sensors/private"));
    ASSERT(!CHECK("alice", "c2", ACE_ACL_READ, "public/news"));
    /* A user name with a space, and a $SYS rule. */
    ASSERT(CHECK("bob smith", "c3", ACE_ACL_READ, "$SYS/broker/uptime"));
    ASSERT(!CHECK("bob", "c3", ACE_ACL_READ, "$SYS/broker/uptime"));
    /* Invalid input never matches. */
    ASSERT(!CHECK("alice", "c2", ACE_ACL_READ, "sensors/+"));
    ASSERT(!CHECK("alice", "c2", 3, "sensors/t1"));
    ace_acl_free(acl);
}

TEST(acl_patterns)
{
    ace_acl_t *acl;
    size_t line;
    ASSERT_EQ(ace_acl_parse(aclfile, strlen(aclfile), &acl, &line), 0);
    ASSERT(CHECK(NULL, "dev7", ACE_ACL_WRITE, "devices/dev7/out"));
    ASSERT(!CHECK(NULL, "dev7", ACE_ACL_READ, "devices/dev7/out"));
    ASSERT(!CHECK(NULL, "dev7", ACE_ACL_WRITE, "devices/dev8/out"));
    ASSERT(CHECK("alice", "dev7", ACE_ACL_READ, "devices/dev7/in/cfg"));
    ASSERT(CHECK("alice", "x", ACE_ACL_WRITE, "users/alice/notes"));
    ASSERT(!CHECK("alice", "x", ACE_ACL_WRITE, "users/bob/notes"));
    ASSERT(!CHECK("alice", "x", ACE_ACL_WRITE, "users/alice/locked"));
    ASSERT(!CHECK(NULL, "x", ACE_ACL_READ, "users//notes")); /* %u: no username, no match */
    ASSERT(!CHECK(NULL, NULL, ACE_ACL_WRITE, "devices//out"));
    /* Wildcards in the client id or user name must not widen a pattern. */
    ASSERT(!CHECK(NULL, "+", ACE_ACL_WRITE, "devices/x/out"));
    ASSERT(!CHECK(NULL, "#", ACE_ACL_READ, "public/news"));
    ASSERT(!CHECK("a#", "x", ACE_ACL_READ, "users/a/x"));
    ace_acl_free(acl);
}

TEST(acl_subscribe)
{
    ace_acl_t *acl;
    size_t line;
    ASSERT_EQ(ace_acl_parse(aclfile, strlen(aclfile), &acl, &line), 0);
    ASSERT(CHECK_SUB(NULL, "c", "public/#"));
    ASSERT(CHECK_SUB(NULL, "c", "public/+/x"));
    ASSERT(!CHECK_SUB(NULL, "c", "#"));
    ASSERT(!CHECK_SUB(NULL, "c", "public/secret"));
    ASSERT(CHECK_SUB("alice", "c", "sensors/+/t"));
    ASSERT(!CHECK_SUB("alice", "c", "sensors/private/+"));
    ASSERT(!CHECK_SUB("alice", "c", "cmd/+/set")); /* write only */
    ASSERT(CHECK_SUB("alice", "dev1", "devices/dev1/in/#"));
    ASSERT(!CHECK_SUB("alice", "dev1", "devices/+/in/#"));
    ASSERT(!CHECK_SUB("bob smith", "c", "$SYS/#"));
    ASSERT(CHECK_SUB("bob smith", "c", "$SYS/broker/+"));
    ace_acl_free(acl);
}

TEST(acl_malformed)
{
    static const char *bad[] = {
        "topic\n", "topic read\n", "topic read a/#/b\n", "pattern write %c#\n", "user\n",
        "topc read a\n", "topic deny +x\n",
    };
    ace_acl_t *acl = NULL;
    size_t line;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "topic read ok\n%s", bad[i]);
        if (ace_acl_parse(text, strlen(text), &acl, &line) != ACE_E_MALFORMED)
            TEST_FAIL_("accepted %s", bad[i]);
        ASSERT_EQ(line, 2);
    }
    /* A topic may be called "read" and may contain spaces. */
    const char *odd = "topic readable\ntopic write a b\n";
    ASSERT_EQ(ace_acl_parse(odd, strlen(odd), &acl, &line), 0);
    ASSERT(ace_acl_check(acl, NULL, "c", ACE_ACL_READ, "readable", 8));
    ASSERT(ace_acl_check(acl, NULL, "c", ACE_ACL_WRITE, "a b", 3));
    ace_acl_free(acl);
    ASSERT_EQ(ace_acl_load("/nonexistent/acemq-acl", &acl, &line), ACE_E_IO);
}

int main(void)
{
    RUN(mosquitto_hashes);
    RUN(hash_round_trip);
    RUN(malformed_password_files);
    RUN(load_from_file);
    RUN(acl_anonymous_and_users);
    RUN(acl_patterns);
    RUN(acl_subscribe);
    RUN(acl_malformed);
    return test_summary();
}
