/* Plain numbers from text, exactly as strtoll and strtod read them (see
 * cf_numtext.h). */
#include "crucible/core/cf_numtext.h"

int cf_text_i64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = n > 0 && s[0] == '-';
    i += (size_t)neg;
    if (n - i < 1 || n - i > 18) /* 18 digits cannot overflow */
        return -1;
    int64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return -1;
        v = v * 10 + (int64_t)d;
    }
    *out = neg ? -v : v;
    return 0;
}

static int is_digit(char c)
{
    return (unsigned)((unsigned char)c - '0') <= 9;
}

/* The powers of ten a double holds exactly. */
static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

int cf_text_f64(const char *s, size_t n, double *out)
{
    size_t i = 0;
    int neg = n > 0 && s[0] == '-';
    i += (size_t)neg;
    uint64_t m = 0;
    int digits = 0, frac = 0, any = 0;
    for (; i < n && is_digit(s[i]); i++, any = 1) {
        if (m || s[i] != '0')
            digits++;
        m = m * 10 + (uint64_t)(s[i] - '0');
        if (digits > 16)
            return -1;
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++, any = 1) {
            if (m || s[i] != '0')
                digits++;
            m = m * 10 + (uint64_t)(s[i] - '0');
            frac++;
            if (digits > 16 || frac > 400)
                return -1;
        }
    }
    if (!any)
        return -1;
    int e = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = i < n && s[i] == '-';
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        if (i >= n)
            return -1;
        for (; i < n && is_digit(s[i]); i++) {
            e = e * 10 + (s[i] - '0');
            if (e > 400)
                return -1;
        }
        e = eneg ? -e : e;
    }
    if (i != n || m > ((uint64_t)1 << 53))
        return -1;
    int p = e - frac;
    if (p < -22 || p > 22)
        return -1;
    double v = (double)m;
    v = p < 0 ? v / POW10[-p] : v * POW10[p];
    *out = neg ? -v : v;
    return 0;
}
