/* Checks that turn a pattern match into a real entity: the Luhn checksum
 * of card numbers, the ISO 13616 mod-97 checksum and country length of
 * IBANs, and address parsing for IPv6. Pure functions on bytes. */
#ifndef CRUCIBLE_CF_PII_CHECK_H
#define CRUCIBLE_CF_PII_CHECK_H

#include <stddef.h>

/* 1 when the digits of s (spaces and dashes ignored) are 13..19 digits
 * that pass the Luhn checksum. Any other character: 0. */
int cf_luhn_valid(const char *s, size_t n);

/* 1 when s (spaces and dashes ignored) is an IBAN: a known country code, the length
 * that country uses, and a remainder of 1 modulo 97. */
int cf_iban_valid(const char *s, size_t n);

/* 1 when s is an IPv6 address (inet_pton) with at least two non-empty
 * groups and four hex digits, so "::", "::1", "a::b" and "std::x" are not. */
int cf_ipv6_valid(const char *s, size_t n);

/* 1 when a context word for a US social security number ("SSN", "SSNs",
 * "social security", any case, as whole words) occurs in the
 * CF_SSN_CONTEXT_BEFORE bytes of s[0..n) before start or the
 * CF_SSN_CONTEXT_AFTER bytes after end. Numbers written with dots or
 * spaces ("078.05.1123") count as SSNs only then. */
#define CF_SSN_CONTEXT_BEFORE 48
#define CF_SSN_CONTEXT_AFTER 24
int cf_ssn_context(const char *s, size_t n, size_t start, size_t end);

#endif
