/*
 * check.h - what every C unit test program shares: checks that record a
 * failure and carry on, named cases, the summary that decides the exit
 * status, and the chunkings a stream parser is fed in.
 *
 * A test program includes it once (its definitions are static) and ends
 * main with `return check_summary();`:
 *
 *     static void test_parse(void)
 *     {
 *         CHECK(parse("a") == 0);
 *         CHECK_EQ_INT(count, 3);
 *         CHECK_STR(out, "a=1");
 *         CHECK_MSG(ok, "split at %zu", cut);        printf-style explanation
 *         CHECK_OR_RETURN(, p != NULL, "no reply");  stop this function here
 *     }
 *     int main(void)
 *     {
 *         RUN(test_parse);
 *         return check_summary();
 *     }
 *
 * Every check counts (passed or failed); a failure prints FILE:LINE, the
 * case it is in and the expression. RUN(fn) runs a void case and prints
 * "FAIL fn" once at its end if any of its checks failed; checks outside any
 * case count the same. check_summary() prints "N passed, M failed" and
 * fails a program that checked nothing.
 *
 * MUST(expr) is for set-up that has to work (a socketpair, a loop, an
 * allocation): it aborts, whatever NDEBUG says, instead of counting.
 */
#ifndef DFWS_TEST_CHECK_H
#define DFWS_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one state of a test program: its counters and the current case. */
static struct {
    int passed, failed;
    const char *case_name; /* NULL outside RUN / check_begin */
    int case_failed_at;    /* `failed` when the case began */
} check_state __attribute__((unused));

static inline void check_pass(void)
{
    check_state.passed++;
}

/* Records one failure: "FAIL file:line: case: expr: message". */
__attribute__((format(printf, 4, 5))) static inline void
check_fail_at(const char *file, int line, const char *expr, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    check_state.failed++;
    fprintf(stderr, "FAIL %s:%d: %s%s%s%s%s\n", file, line,
            check_state.case_name ? check_state.case_name : "", check_state.case_name ? ": " : "",
            expr, msg[0] ? ": " : "", msg);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond)                                                                                  \
            check_pass();                                                                          \
        else                                                                                       \
            check_fail_at(__FILE__, __LINE__, #cond, "%s", "");                                    \
    } while (0)

/* CHECK with a printf-style explanation printed on failure. */
#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (cond)                                                                                  \
            check_pass();                                                                          \
        else                                                                                       \
            check_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__);                                 \
    } while (0)

/* CHECK_MSG that returns `ret` (empty in a void function) on failure, for
 * checks the rest of the function depends on. */
#define CHECK_OR_RETURN(ret, cond, ...)                                                            \
    do {                                                                                           \
        if (cond) {                                                                                \
            check_pass();                                                                          \
        } else {                                                                                   \
            check_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__);                                 \
            return ret;                                                                            \
        }                                                                                          \
    } while (0)

/* A failure found by the test's own logic (a transcript that differs). */
#define CHECK_FAIL(...) check_fail_at(__FILE__, __LINE__, "failed", __VA_ARGS__)

/* Integers of any type, compared and printed as long long. */
#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ == check_b_)                                                                  \
            check_pass();                                                                          \
        else                                                                                       \
            check_fail_at(__FILE__, __LINE__, #a " == " #b, "%lld, expected %lld", check_a_,       \
                          check_b_);                                                               \
    } while (0)

/* NUL-terminated strings (NULL is a failure, not a crash). */
#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0)                               \
            check_pass();                                                                          \
        else                                                                                       \
            check_fail_at(__FILE__, __LINE__, #a, "\n    got      [%s]\n    expected [%s]",        \
                          check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");         \
    } while (0)

/* Bytes: `alen` bytes at a equal `blen` bytes at b. */
#define CHECK_MEM(a, alen, b, blen)                                                                \
    do {                                                                                           \
        size_t check_al_ = (alen), check_bl_ = (blen);                                             \
        if (check_al_ == check_bl_ && memcmp((a), (b), check_al_) == 0)                            \
            check_pass();                                                                          \
        else                                                                                       \
            check_fail_at(__FILE__, __LINE__, #a, "%zu bytes [%.*s], expected %zu [%.*s]",         \
                          check_al_, (int)check_al_, (const char *)(a), check_bl_, (int)check_bl_, \
                          (const char *)(b));                                                      \
    } while (0)

#define MUST(expr)                                                                                 \
    do {                                                                                           \
        if (!(expr)) {                                                                             \
            fprintf(stderr, "%s:%d: set-up failed: %s\n", __FILE__, __LINE__, #expr);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A named case, for runners that take more than a void function. */
static inline void check_begin(const char *name)
{
    check_state.case_name = name;
    check_state.case_failed_at = check_state.failed;
}

/* Whether a check failed since check_begin (to stop trying chunkings). */
static inline int check_case_failed(void)
{
    return check_state.failed > check_state.case_failed_at;
}

static inline void check_end(void)
{
    printf("%s %s\n", check_case_failed() ? "FAIL" : "ok  ", check_state.case_name);
    check_state.case_name = NULL;
}

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        check_begin(#fn);                                                                          \
        fn();                                                                                      \
        check_end();                                                                               \
    } while (0)

/* The end of main: the counts, and the exit status (a program that checked
 * nothing fails: it tested nothing). */
static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_state.passed, check_state.failed);
    if (check_state.passed + check_state.failed == 0) {
        fprintf(stderr, "FAIL: no check ran\n");
        return 1;
    }
    return check_state.failed ? 1 : 0;
}

/*
 * Every chunking of an input of `len` bytes, as a stream parser must take
 * it: whole, split in two at every offset, then one byte at a time.
 *
 *     check_chunking_t c;
 *     for (check_chunking_init(&c, len); check_chunking_next(&c);) {
 *         parser_init(&p);
 *         for (size_t pos = 0, n; pos < len; pos += n) {
 *             n = check_chunk_len(&c, pos);
 *             parser_feed(&p, in + pos, n);
 *         }
 *         CHECK_MSG(p.done, "%s", check_chunking_name(&c));
 *     }
 */
typedef struct {
    size_t len;
    int mode;   /* 0 before the first, 1 whole, 2 split in two at `cut`, 3 byte by byte */
    size_t cut; /* mode 2: the first piece's length, 1..len-1 */
    char name[40];
} check_chunking_t;

static inline void check_chunking_init(check_chunking_t *c, size_t len)
{
    memset(c, 0, sizeof(*c));
    c->len = len;
}

/* Moves to the next chunking; 0 when all were given. */
static inline int check_chunking_next(check_chunking_t *c)
{
    if (c->mode == 0) {
        c->mode = 1;
    } else if (c->mode == 1 || c->mode == 2) {
        c->cut = c->mode == 1 ? 1 : c->cut + 1;
        c->mode = 2;
        if (c->cut >= c->len)
            c->mode = c->len > 1 ? 3 : 4; /* bytewise is whole for 0 or 1 byte */
    } else {
        c->mode = 4;
    }
    return c->mode <= 3;
}

/* The length of the piece that starts at `pos` (< len) in this chunking. */
static inline size_t check_chunk_len(const check_chunking_t *c, size_t pos)
{
    if (c->mode == 3)
        return 1;
    if (c->mode == 2 && pos < c->cut)
        return c->cut - pos;
    return c->len - pos;
}

/* "whole", "split at N", "byte by byte": for failure messages. */
static inline const char *check_chunking_name(check_chunking_t *c)
{
    if (c->mode == 2)
        snprintf(c->name, sizeof(c->name), "split at %zu of %zu", c->cut, c->len);
    else
        snprintf(c->name, sizeof(c->name), "%s", c->mode == 3 ? "byte by byte" : "whole");
    return c->name;
}

/* "0aff..." -> bytes into out (at least strlen(h) / 2 long); the count. */
static inline size_t check_unhex(const char *h, unsigned char *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned int b = 0;
        sscanf(h + 2 * i, "%2x", &b);
        out[i] = (unsigned char)b;
    }
    return n;
}

#endif
