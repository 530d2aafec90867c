/* Checksums and parsers that confirm a candidate PII match. */
#include "crucible/sanitize/cf_pii_check.h"

#include <arpa/inet.h>
#include <string.h>

int cf_luhn_valid(const char *s, size_t n)
{
    int digits[32];
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (nd == 32)
                return 0;
            digits[nd++] = c - '0';
        } else if (c != ' ' && c != '-') {
            return 0;
        }
    }
    if (nd < 13 || nd > 19)
        return 0;
    int sum = 0;
    for (size_t k = 0; k < nd; k++) {
        int d = digits[nd - 1 - k];
        if (k & 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

/* IBAN lengths by country (ISO 13616 registry, SWIFT release 2024). */
static const struct {
    char cc[3];
    unsigned char len;
} iban_lengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22},
    {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20},
    {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30},
    {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21},
    {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33},
    {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
    {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29},
    {"VA", 22}, {"VG", 24}, {"XK", 20},
};

static int iban_length_for(const char *cc)
{
    size_t lo = 0, hi = sizeof iban_lengths / sizeof iban_lengths[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(cc, iban_lengths[mid].cc, 2);
        if (c == 0)
            return iban_lengths[mid].len;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

int cf_iban_valid(const char *s, size_t n)
{
    char c[40];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' || s[i] == '-')
            continue;
        if (m == sizeof c)
            return 0;
        c[m++] = s[i];
    }
    if (m < 15 || m > 34)
        return 0;
    if (!(c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'))
        return 0;
    if ((size_t)iban_length_for(c) != m)
        return 0;
    /* move the first four characters to the end, letters become 10..35 */
    unsigned rem = 0;
    for (size_t k = 0; k < m; k++) {
        char ch = c[(k + 4) % m];
        if (ch >= '0' && ch <= '9')
            rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
        else if (ch >= 'A' && ch <= 'Z')
            rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
        else
            return 0;
    }
    return rem == 1;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int cf_ipv6_valid(const char *s, size_t n)
{
    char tmp[64];
    if (n < 2 || n >= sizeof tmp)
        return 0;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    unsigned char addr[16];
    if (inet_pton(AF_INET6, tmp, addr) != 1)
        return 0;
    int groups = 0, hex = 0, in_group = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_hex(s[i])) {
            hex++;
            if (!in_group)
                groups++;
            in_group = 1;
        } else {
            in_group = 0;
        }
    }
    return groups >= 2 && hex >= 4;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int word_byte(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* Whether the lowercase word w occurs in s[a..b) as a whole word. */
static int has_word(const char *s, size_t a, size_t b, const char *w, size_t wn)
{
    for (size_t i = a; i + wn <= b; i++) {
        size_t k = 0;
        while (k < wn && lower((unsigned char)s[i + k]) == w[k])
            k++;
        if (k == wn && (i == 0 || !word_byte((unsigned char)s[i - 1]))
            && (i + wn == b || !word_byte((unsigned char)s[i + wn])))
            return 1;
    }
    return 0;
}

int cf_ssn_context(const char *s, size_t n, size_t start, size_t end)
{
    size_t a = start > CF_SSN_CONTEXT_BEFORE ? start - CF_SSN_CONTEXT_BEFORE : 0;
    size_t b = n - end > CF_SSN_CONTEXT_AFTER ? end + CF_SSN_CONTEXT_AFTER : n;
    static const char *const words[] = {"ssn", "ssns", "social security"};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++) {
        size_t wn = strlen(words[k]);
        if (has_word(s, a, start, words[k], wn) || has_word(s, end, b, words[k], wn))
            return 1;
    }
    return 0;
}
