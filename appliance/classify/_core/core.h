/* The classifier's compiled core: shared types and helpers.
 *
 * Each detector of appliance/classify/detectors/ has a C twin here that must give exactly
 * what the Python one gives (same findings, same order): tests/appliance/classify/
 * test_core_parity.py compares them on the corpus and on mutated and random texts. The
 * Python detectors stay the readable specification; this is the fast path.
 *
 * The core runs with the GIL held (it never releases it): the tables some detectors build on
 * their first call are made once under it, and the calls share no other state.
 *
 * Text is handled as UCS4 (one Py_UCS4 per code point, so indices are Python's str indices).
 * Character classes follow Python's re for str patterns: \w is Py_UNICODE_ISALNUM or '_',
 * \d is Py_UNICODE_ISDECIMAL, \s is Py_UNICODE_ISSPACE. Texts holding a non-ASCII decimal
 * digit never reach the core (the Python path handles them), so \d is [0-9] here.
 */
#ifndef APPLIANCE_CORE_H
#define APPLIANCE_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef Py_UCS4 U;
typedef Py_ssize_t Z;

/* Finding types: the order of appliance.classify.findings.FindingType (checked at import). */
enum {
    T_PERSON_NAME, T_STREET_ADDRESS, T_ZIP_CODE, T_DATE_OF_BIRTH, T_PERSON_DATE, T_AGE_OVER_89,
    T_PHONE, T_FAX, T_EMAIL, T_SSN, T_MRN, T_HEALTH_PLAN_ID, T_MEDICARE_MBI, T_DE_KVNR,
    T_ACCOUNT_NUMBER, T_IBAN, T_PAYMENT_CARD, T_LICENSE_NUMBER, T_NPI, T_DEA_NUMBER, T_VIN,
    T_DEVICE_ID, T_URL, T_INTERNAL_URL, T_IP_ADDRESS, T_CLOUD_ACCESS_KEY, T_API_KEY,
    T_PRIVATE_KEY, T_PASSWORD, T_SECRET, T_COUNT
};

typedef struct { Z start, end; } Span;

typedef struct {
    Span *v;
    Z n, cap;
} Spans;

typedef struct {
    int type;
    Z start, end;
    double confidence;
    int slot;   /* the detector's place in the order (set by the core, not by detectors) */
    Z seq;      /* order of report (set by the core) */
} Found;

typedef struct {
    Found *v;
    Z n, cap;
    int slot;   /* set by the core before each detector runs */
    const unsigned int *enabled;  /* the enabled types (CText.enabled): others are dropped */
} Out;

/* A vocabulary token: a maximal run of word bytes (see Vocabulary in base.py); `hash` is
   word_hash of its bytes, so a detector can look tokens up in a table of its own words. */
typedef struct { Z start, len; uint32_t hash; } Token;

/* FNV-1a over a word's bytes (Token.hash) */
static inline uint32_t word_hash(const unsigned char *p, Z len) {
    uint32_t h = 2166136261u;
    for (Z i = 0; i < len; i++) { h ^= p[i]; h *= 16777619u; }
    return h;
}

typedef struct {
    PyObject *text;      /* the str (borrowed) */
    Z n;                 /* its length in code points */
    U *s;                /* the text, n + 1 code points, 0-terminated */
    U *low;              /* Scan.lowered: text.lower() when that keeps the length, else the
                            ASCII + umlaut lowering; n + 1, 0-terminated */
    unsigned char *raw;  /* Scan.raw: Latin-1, '?' for code points above 0xFF */
    unsigned char *wb;   /* raw translated to word bytes: lower-case letter or ' ' */
    int has_digit;       /* an ASCII digit occurs (Scan.has_digit) */
    Token *tokens;
    Z ntokens;
    Z *table;            /* open-addressed hash of tokens: index + 1, 0 empty */
    Z table_size;        /* a power of two */
    uint32_t heads[32];  /* bit per hash of a token's first two bytes: most words asked
                            about are absent, and this rules them out without hashing */
    unsigned int enabled[(T_COUNT + 31) / 32];  /* enabled finding types (bit per type) */
} CText;

/* ---- character classes (Python's re, str patterns) ---- */
/* (ASCII is answered without CPython's Unicode tables, which cost more than the rest of a
   detector's work; the answers are the same.) */
static inline int is_ascii_upper(U c) { return c >= 'A' && c <= 'Z'; }
static inline int is_ascii_lower(U c) { return c >= 'a' && c <= 'z'; }
static inline int is_d(U c) { return c >= '0' && c <= '9'; }
static inline int is_alnum(U c) {                                    /* str.isalnum() */
    if (c < 128) return is_ascii_lower(c) || is_ascii_upper(c) || is_d(c);
    return Py_UNICODE_ISALNUM(c);
}
static inline int is_w(U c) { return c == '_' || is_alnum(c); }
static inline int is_s(U c) {
    if (c < 128) return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
    return Py_UNICODE_ISSPACE(c);
}
static inline int is_alpha(U c) {                                    /* str.isalpha() */
    if (c < 128) return is_ascii_lower(c) || is_ascii_upper(c);
    return Py_UNICODE_ISALPHA(c);
}
static inline int is_digit(U c) { return c < 128 ? is_d(c) : Py_UNICODE_ISDIGIT(c); }
static inline int is_upper(U c) { return c < 128 ? is_ascii_upper(c) : Py_UNICODE_ISUPPER(c); }
static inline int is_lower(U c) { return c < 128 ? is_ascii_lower(c) : Py_UNICODE_ISLOWER(c); }
static inline int is_hex(U c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
/* \b at i in s[0:end] (lookbehind sees before a window's start, nothing after its end) */
static inline int at_boundary(const U *s, Z i, Z end) {
    int before = i > 0 && is_w(s[i - 1]);
    int after = i < end && is_w(s[i]);
    return before != after;
}

/* ---- words, needles, windows: the Scan's helpers, same results as base.py ---- */
/* Whether `word` (Latin-1 bytes, lower case) is a token of the text: `word in scan.words`
   for any word of the vocabulary. */
int ct_word(const CText *ct, const char *word);
/* Whether any of the NULL-terminated `words` is a token. */
int ct_any_word(const CText *ct, const char *const *words);
/* Start of the first occurrence of `needle` (Latin-1) in s[from:to], or -1 (str.find). */
Z find_in(const U *s, Z from, Z to, const char *needle);
/* Same, for a needle given as code points. */
Z find_u(const U *s, Z from, Z to, const U *needle, Z len);
/* `needle in lowered` */
static inline int ct_in_low(const CText *ct, const char *needle) {
    return find_in(ct->low, 0, ct->n, needle) >= 0;
}
/* Scan.windows(triggers, before, after, needles): both lists NULL-terminated (needles may
   be NULL). Appends to `out` (cleared first). Returns -1 on memory error. */
int ct_windows(const CText *ct, const char *const *triggers, Z before, Z after,
               const char *const *needles, Spans *out);

/* ---- output ---- */
/* Reports a finding (dropped when its type is disabled, as the classifier's filter does).
   Returns -1 on memory error (MemoryError set). */
int out_add(Out *out, int type, Z start, Z end, double confidence);
int spans_add(Spans *spans, Z start, Z end);
void spans_free(Spans *spans);
/* Sorts the spans and merges those that overlap or touch, as Scan.windows does. */
void spans_merge(Spans *spans);
static inline void spans_clear(Spans *spans) { spans->n = 0; }

/* ---- helpers for patterns ---- */
/* Whether s[i:] starts with the Latin-1 literal `lit` (within s[:end]). */
static inline int starts_with(const U *s, Z i, Z end, const char *lit) {
    for (Z k = 0; lit[k]; k++) {
        if (i + k >= end || s[i + k] != (U)(unsigned char)lit[k]) return 0;
    }
    return 1;
}
static inline Z lit_len(const char *lit) { return (Z)strlen(lit); }

/* ---- checksums.py (checksums.c) ---- */
/* checksums._digits: s[start:end] without " -./" into `buf` (room for `cap`); the length,
   or -1 when longer. *all_digits: str.isdigit() of the result (False for ""). */
Z ck_digits(const U *s, Z start, Z end, U *buf, Z cap, int *all_digits);
/* luhn_valid on digits known to be str.isdigit() (ord - 48, as the Python does) */
int ck_luhn(const U *d, Z len);
/* whether d[:len] starts with the ASCII `prefix` */
int ck_prefix(const U *d, Z len, const char *prefix);
/* ssn_valid(text[start:end]) */
int ck_ssn(const U *s, Z start, Z end);

/* ---- the detectors (each in its own file; a missing one leaves its slot NULL) ---- */
typedef int (*detector_fn)(CText *ct, Out *out);
#define DETECTOR(name) int name(CText *ct, Out *out) __attribute__((weak))
DETECTOR(det_secret);
DETECTOR(det_email);
DETECTOR(det_url);
DETECTOR(det_ip);
DETECTOR(det_ssn);
DETECTOR(det_card);
DETECTOR(det_phone);
DETECTOR(det_iban);
DETECTOR(det_mbi);
DETECTOR(det_vin);
DETECTOR(det_labelled);
DETECTOR(det_name);
DETECTOR(det_person_date);
DETECTOR(det_age);
DETECTOR(det_address);
/* health context (context.py): a cue word, or an ICD-10 code */
int health_context(const CText *ct) __attribute__((weak));

#endif
