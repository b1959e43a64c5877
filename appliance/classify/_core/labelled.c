/* labelled.py: values announced by a label ("MRN: 00123456", "NPI 1234567893"), without the
 * site MRN patterns (those run in Python and are merged by the core).
 *
 * Each kind's pattern is
 *     (?:at_word_start(labels, [\w-]))_SEP(?P<v>value)(?![\w-]*[\w])
 * run with finditer over the lowered text inside scan.windows(triggers, 40, 80, needles).
 * The labels are kept here as the Python regexes (with _NUMBER and _PLAN_NUMBER spelled out
 * by the macros below) and matched by a small backtracking interpreter that tries the
 * alternatives in re's order; _SEP and the values are matched by hand (see sep_value and
 * value_end). */
#include "core.h"

/* ------------------------------------------------------------------ the kinds */

#define NUMBER "(?:[ \t]*(?:number|numbers|no\\.?|nr\\.?|num\\.?|#|id|code))?"
#define PLAN_NUMBER "[ \t]*(?:id|number|no\\.?|nr\\.?|#)"

/* the value patterns */
enum { V_VALUE, V_KVNR, V_SSN, V_NPI, V_DEA, V_VIN, V_ZIP };
/* the checks of the value as written */
enum { C_NONE, C_KVNR, C_MBI, C_SSN, C_NPI, C_DEA };

typedef struct {
    int type;
    const char *const *triggers;
    const char *const *labels;   /* the regexes, in the order tried; each starts with a letter */
    int value;
    int check;
    int fallback;                /* reported when the check fails; -1: dropped */
    const char *const *needles;  /* NULL: none */
} Kind;

static const char *const MRN_TRIGGERS[] = {
    "mrn", "medical", "chart", "patient", "patienten", "patientennummer", "fallnummer", "fall",
    "record", "aktenzeichen", "pid", "krankenblattnummer", NULL};
static const char *const MRN_LABELS[] = {
    "mrn", "medical[ \t]+record(?:s)?" NUMBER, "med\\.?[ \t]*rec\\.?" NUMBER, "chart" NUMBER,
    "patient(?:en)?[ \t-]*(?:id|nummer|nr\\.?|identifier)", "patient[ \t]+record" NUMBER,
    "fallnummer", "fall-?nr\\.?", "aktenzeichen", "pid", "krankenblattnummer", NULL};

static const char *const KVNR_TRIGGERS[] = {
    "versichertennummer", "krankenversichertennummer", "kvnr", "kv", "versicherten", NULL};
static const char *const KVNR_LABELS[] = {
    "krankenversichertennummer", "versichertennummer", "kvnr", "kv-nr\\.?",
    "versicherten-?nr\\.?", NULL};

static const char *const MBI_TRIGGERS[] = {"mbi", "medicare", NULL};
static const char *const MBI_LABELS[] = {
    "mbi", "medicare(?:[ \t]+beneficiary)?(?:[ \t]+identifier)?" NUMBER, NULL};

static const char *const PLAN_TRIGGERS[] = {
    "member", "membership", "subscriber", "policy", "group", "insurance", "beneficiary", "plan",
    "medicaid", "versicherungsnummer", "mitgliedsnummer", "insured", "coverage", NULL};
static const char *const PLAN_LABELS[] = {
    "member(?:ship)?" PLAN_NUMBER, "subscriber" PLAN_NUMBER, "policy" PLAN_NUMBER,
    "group" PLAN_NUMBER, "insurance" PLAN_NUMBER, "insured" PLAN_NUMBER,
    "beneficiary" PLAN_NUMBER, "health[ \t]+plan" PLAN_NUMBER, "plan" PLAN_NUMBER,
    "medicaid" PLAN_NUMBER, "coverage" PLAN_NUMBER,
    "versicherungsnummer", "mitgliedsnummer", "versicherungs-?nr\\.?", NULL};

static const char *const SSN_TRIGGERS[] = {"ssn", "social", "ss", NULL};
static const char *const SSN_LABELS[] = {"ssn", "social[ \t]+security" NUMBER, "ss#", NULL};

static const char *const NPI_TRIGGERS[] = {"npi", NULL};
static const char *const NPI_LABELS[] = {"npi" NUMBER, NULL};

static const char *const DEA_TRIGGERS[] = {"dea", NULL};
static const char *const DEA_LABELS[] = {"dea" NUMBER, "dea[ \t]+registration" NUMBER, NULL};

static const char *const ACCOUNT_TRIGGERS[] = {
    "account", "acct", "kontonummer", "konto", "kundennummer", "customer", "routing", "aba",
    "billing", "guarantor", NULL};
static const char *const ACCOUNT_LABELS[] = {
    "account" NUMBER, "acct\\.?" NUMBER, "a/c", "kontonummer", "konto-?nr\\.?", "kundennummer",
    "kunden-?nr\\.?", "customer[ \t]*(?:id|number|no\\.?|#)", "routing" NUMBER, "aba" NUMBER,
    "billing[ \t]+(?:id|account)", "guarantor[ \t]+(?:id|number)", NULL};

static const char *const LICENSE_TRIGGERS[] = {
    "license", "licence", "lic", "certificate", "cert", "f\xfc" "hrerschein", "lanr", "permit",
    "passport", "reisepass", "personalausweis", "ausweisnummer", "approbation", "registration",
    "steuer", "steuernummer", "plate", "kennzeichen", "identifikationsnummer", "ausweis", NULL};
static const char *const LICENSE_LABELS[] = {
    "driver'?s?[ \t]+licen[cs]e" NUMBER, "licen[cs]e" NUMBER, "lic\\.?[ \t]*(?:no\\.?|#)",
    "certificate" NUMBER, "cert\\.?[ \t]*(?:no\\.?|#)", "f\xfc" "hrerschein(?:nummer)?", "lanr",
    "permit" NUMBER, "passport" NUMBER, "reisepass(?:nummer)?", "personalausweis(?:nummer)?",
    "ausweisnummer", "approbationsnummer", "steuer-?id", "steuernummer",
    "steuerliche[ \t]+identifikationsnummer", "licen[cs]e[ \t]+plate", "kennzeichen",
    "registration" NUMBER, NULL};

static const char *const VIN_TRIGGERS[] = {"vin", "fahrgestellnummer", "fin", NULL};
static const char *const VIN_LABELS[] = {"vin", "fahrgestellnummer", "fin", NULL};

static const char *const DEVICE_TRIGGERS[] = {
    "serial", "sn", "seriennummer", "serien", "device", "imei", "udi", "asset",
    "inventarnummer", "ger\xe4" "te", "ger\xe4" "tenummer", "ger\xe4" "teid", "hostname", "tag",
    "machine", "maschine", NULL};
static const char *const DEVICE_LABELS[] = {
    "serial" NUMBER, "s/n", "sn", "seriennummer", "serien-?nr\\.?", "device[ \t]*(?:id|serial)",
    "imei", "udi", "asset[ \t]*(?:tag|id|number|no\\.?)", "inventarnummer", "inventar-?nr\\.?",
    "ger\xe4" "te-?(?:id|nummer|nr\\.?)", "machine[ \t]+id", "maschinen-?(?:id|nummer|nr\\.?)",
    NULL};
static const char *const DEVICE_NEEDLES[] = {"s/n", NULL};

static const char *const ZIP_TRIGGERS[] = {"zip", "plz", "postleitzahl", "postal", NULL};
static const char *const ZIP_LABELS[] = {
    "zip(?:[ \t]*code)?", "postleitzahl", "plz", "postal[ \t]+code", NULL};

/* labelled._KINDS, in order */
static const Kind KINDS[] = {
    {T_MRN, MRN_TRIGGERS, MRN_LABELS, V_VALUE, C_NONE, -1, NULL},
    {T_DE_KVNR, KVNR_TRIGGERS, KVNR_LABELS, V_KVNR, C_KVNR, T_HEALTH_PLAN_ID, NULL},
    {T_MEDICARE_MBI, MBI_TRIGGERS, MBI_LABELS, V_VALUE, C_MBI, T_HEALTH_PLAN_ID, NULL},
    {T_HEALTH_PLAN_ID, PLAN_TRIGGERS, PLAN_LABELS, V_VALUE, C_NONE, -1, NULL},
    {T_SSN, SSN_TRIGGERS, SSN_LABELS, V_SSN, C_SSN, -1, NULL},
    {T_NPI, NPI_TRIGGERS, NPI_LABELS, V_NPI, C_NPI, -1, NULL},
    {T_DEA_NUMBER, DEA_TRIGGERS, DEA_LABELS, V_DEA, C_DEA, -1, NULL},
    {T_ACCOUNT_NUMBER, ACCOUNT_TRIGGERS, ACCOUNT_LABELS, V_VALUE, C_NONE, -1, NULL},
    {T_LICENSE_NUMBER, LICENSE_TRIGGERS, LICENSE_LABELS, V_VALUE, C_NONE, -1, NULL},
    {T_VIN, VIN_TRIGGERS, VIN_LABELS, V_VIN, C_NONE, -1, NULL},
    {T_DEVICE_ID, DEVICE_TRIGGERS, DEVICE_LABELS, V_VALUE, C_NONE, -1, DEVICE_NEEDLES},
    {T_ZIP_CODE, ZIP_TRIGGERS, ZIP_LABELS, V_ZIP, C_NONE, -1, NULL},
};
#define NKINDS ((int)(sizeof(KINDS) / sizeof(KINDS[0])))

/* ------------------------------------------------------------------ one match attempt */

typedef struct {
    const U *low;   /* Scan.lowered */
    Z end;          /* the window's end: the string ends there */
    int value;      /* the kind's V_ */
    Z vstart, vend; /* the value matched */
} Try;

static inline int is_blank(U c) { return c == ' ' || c == '\t'; }
/* \w, without the Unicode tables for ASCII */
static inline int word_char(U c) {
    return c < 128 ? is_ascii_lower(c) || is_ascii_upper(c) || is_d(c) || c == '_' : is_w(c);
}
static inline int is_lower_digit(U c) { return is_ascii_lower(c) || is_d(c); }

/* the end of the run of [ \t] from i */
static Z blanks(const U *low, Z i, Z end) {
    while (i < end && is_blank(low[i])) i++;
    return i;
}

/* (?![\w-]*[\w]) at i: the run of [\w-] from i holds no \w, i.e. the first character that
   is not "-" is not \w (or the string ends) */
static int no_word_after(const U *low, Z i, Z end) {
    while (i < end && low[i] == '-') i++;
    return !(i < end && word_char(low[i]));
}

/* n characters of [0-9] at i */
static int digits_at(const U *low, Z i, Z end, Z n) {
    if (i + n > end) return 0;
    for (Z k = 0; k < n; k++) if (!is_d(low[i + k])) return 0;
    return 1;
}

static int vin_char(U c) {
    return is_d(c) || (is_ascii_lower(c) && c != 'i' && c != 'o' && c != 'q');
}

/* (?P<v>value)(?![\w-]*[\w]) at q: the end of the value, or -1. Only _VALUE and the ZIP
   code can backtrack (greedy {2,28}, optional -\d{4}); the others have one way to match. */
static Z value_end(const Try *t, Z q) {
    const U *low = t->low;
    Z end = t->end, e = -1;
    if (q >= end) return -1;
    switch (t->value) {
    case V_VALUE: {  /* [a-z0-9][a-z0-9/.-]{2,28}[a-z0-9] */
        if (!is_lower_digit(low[q])) return -1;
        Z m = 0;
        while (m < 28 && q + 1 + m < end &&
               (is_lower_digit(low[q + 1 + m]) || low[q + 1 + m] == '/' ||
                low[q + 1 + m] == '.' || low[q + 1 + m] == '-'))
            m++;
        for (; m >= 2; m--) {
            Z last = q + 1 + m;
            if (last < end && is_lower_digit(low[last]) && no_word_after(low, last + 1, end))
                return last + 1;
        }
        return -1;
    }
    case V_KVNR:  /* [a-z]\d{9} */
        if (is_ascii_lower(low[q]) && digits_at(low, q + 1, end, 9)) e = q + 10;
        break;
    case V_SSN: {  /* \d{3}[ -]?\d{2}[ -]?\d{4} */
        Z i = q;
        if (!digits_at(low, i, end, 3)) return -1;
        i += 3;
        if (i < end && (low[i] == ' ' || low[i] == '-')) i++;
        if (!digits_at(low, i, end, 2)) return -1;
        i += 2;
        if (i < end && (low[i] == ' ' || low[i] == '-')) i++;
        if (digits_at(low, i, end, 4)) e = i + 4;
        break;
    }
    case V_NPI:  /* \d{10} */
        if (digits_at(low, q, end, 10)) e = q + 10;
        break;
    case V_DEA:  /* [a-z][a-z9]\d{7} */
        if (q + 1 < end && is_ascii_lower(low[q]) && (is_ascii_lower(low[q + 1]) || low[q + 1] == '9')
            && digits_at(low, q + 2, end, 7))
            e = q + 9;
        break;
    case V_VIN: {  /* [a-hj-npr-z0-9]{17} */
        Z k = 0;
        while (k < 17 && q + k < end && vin_char(low[q + k])) k++;
        if (k == 17) e = q + 17;
        break;
    }
    case V_ZIP:  /* \d{5}(?:-\d{4})? */
        if (!digits_at(low, q, end, 5)) return -1;
        if (q + 5 < end && low[q + 5] == '-' && digits_at(low, q + 6, end, 4) &&
            no_word_after(low, q + 10, end))
            return q + 10;
        e = q + 5;
        break;
    }
    return e >= 0 && no_word_after(low, e, end) ? e : -1;
}

static int value_at(Try *t, Z q) {
    Z e = value_end(t, q);
    if (e < 0) return 0;
    t->vstart = q;
    t->vend = e;
    return 1;
}

/* _SEP then the value, after a label ending at e:
       [ \t]*(?:[:#=]|is|lautet)?[ \t]*(?:[:#][ \t]*)?(?P<v>...)
   Every value begins with [a-z0-9], never [ \t:#=], so where a [ \t]* gives back a blank
   the value (or "is", "lautet", [:#]) cannot follow, or the state is one already tried:
   the runs are taken whole, and only the optional parts are tried both ways, in order. */
static int sep_value(Try *t, Z e) {
    const U *low = t->low;
    Z end = t->end;
    Z a = blanks(low, e, end);
    Z after[2];
    int n = 0;
    if (a < end) {
        U c = low[a];
        if (c == ':' || c == '#' || c == '=') after[n++] = a + 1;
        else if (starts_with(low, a, end, "is")) after[n++] = a + 2;
        else if (starts_with(low, a, end, "lautet")) after[n++] = a + 6;
    }
    after[n++] = a;
    for (int k = 0; k < n; k++) {
        Z c = blanks(low, after[k], end);
        if (c < end && (low[c] == ':' || low[c] == '#') && value_at(t, blanks(low, c + 1, end)))
            return 1;
        if (value_at(t, c)) return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the label interpreter */

/* What remains to match once a group's alternative has matched: the pattern after the
   group, then the enclosing ones'. */
typedef struct Cont { const char *re; const struct Cont *next; } Cont;

/* Splits the group whose body starts at re into its alternatives (their starts into alts);
   returns the ')' that closes it. */
#define MOST_ALTERNATIVES 8  /* the most in one group of the labels: _NUMBER's */
static const char *group_split(const char *re, const char **alts, int *nalts) {
    int depth = 0;
    alts[0] = re;
    *nalts = 1;
    for (;; re++) {
        if (*re == '\\') re++;
        else if (*re == '[') { while (*re != ']') re++; }
        else if (*re == '(') depth++;
        else if (*re == ')') { if (depth == 0) return re; depth--; }
        else if (*re == '|' && depth == 0) alts[(*nalts)++] = re + 1;
    }
}

/* whether c matches the one-character atom at re: a literal, "\." or a class "[...]" */
static int atom_has(const char *re, U c) {
    if (*re == '\\') return c == (U)(unsigned char)re[1];
    if (*re != '[') return c == (U)(unsigned char)*re;
    for (re++; *re != ']'; re++) {
        if (re[1] == '-' && re[2] != ']') {
            if (c >= (U)(unsigned char)re[0] && c <= (U)(unsigned char)re[2]) return 1;
            re += 2;
        } else if (c == (U)(unsigned char)*re) {
            return 1;
        }
    }
    return 0;
}

static const char *atom_next(const char *re) {
    if (*re == '\\') return re + 2;
    if (*re != '[') return re + 1;
    while (*re != ']') re++;
    return re + 1;
}

/* whether the alternative at re can match at a character c: not when it begins with a
   character that must be there (no ?, *) and c is not it */
static int may_start(const char *re, U c) {
    if (*re == '(' || *re == '|' || *re == ')') return 1;
    const char *after = atom_next(re);
    return *after == '?' || *after == '*' || atom_has(re, c);
}

/* Matches the label regex `re` at pos, then k, then _SEP and the value, backtracking as re
   does: alternatives left to right, an optional group taken before skipped, greedy ?, *, +
   on single characters. The regexes use only those (no repeated groups). 1 on a match
   (the value in t), 0 when none. */
static int label(Try *t, const char *re, Z pos, const Cont *k) {
    const U *low = t->low;
    for (;;) {
        switch (*re) {
        case '\0': case '|': case ')':  /* this sequence is done */
            if (!k) return sep_value(t, pos);
            re = k->re;
            k = k->next;
            continue;
        case '(': {  /* (?:a|b|...) or (?:...)? */
            const char *alts[MOST_ALTERNATIVES];
            int nalts;
            const char *after = group_split(re + 3, alts, &nalts) + 1;
            int optional = *after == '?';
            if (optional) after++;
            Cont then = {after, k};
            U c = pos < t->end ? low[pos] : 0;  /* 0: no literal of the labels */
            for (int a = 0; a < nalts; a++)
                if (may_start(alts[a], c) && label(t, alts[a], pos, &then)) return 1;
            if (!optional) return 0;
            re = after;
            continue;
        }
        default: {  /* a character, maybe repeated: most first, then fewer */
            const char *after = atom_next(re);
            Z least = 1, most = 1;
            if (*after == '?') { least = 0; after++; }
            else if (*after == '*') { least = 0; most = -1; after++; }
            else if (*after == '+') { most = -1; after++; }
            Z count = 0;
            while ((most < 0 || count < most) && pos + count < t->end &&
                   atom_has(re, low[pos + count]))
                count++;
            if (count < least) return 0;
            for (; count > least; count--)
                if (label(t, after, pos + count, k)) return 1;
            re = after;
            pos += least;
            continue;
        }
        }
    }
}

/* ------------------------------------------------------------------ checksums.py */

static inline U ascii_upper(U c) { return is_ascii_lower(c) ? c - 32 : c; }

/* kvnr_valid on a value matched by [a-z]\d{9} (so 10 characters, the last 9 digits) */
static int kvnr_valid(const U *v) {
    U first = ascii_upper(v[0]);
    if (!is_ascii_upper(first)) return 0;  /* e.g. the Kelvin sign, lowered to "k" */
    int code = (int)(first - 64);
    int digits[10] = {code / 10, code % 10};
    for (int i = 0; i < 8; i++) digits[2 + i] = (int)(v[1 + i] - '0');
    int total = 0;
    for (int i = 0; i < 10; i++) {
        int p = digits[i] * (i % 2 ? 2 : 1);
        total += p / 10 + p % 10;
    }
    return total % 10 == (int)(v[9] - '0');
}

/* dea_valid on a value matched by [a-z][a-z9]\d{7} */
static int dea_valid(const U *v) {
    U first = ascii_upper(v[0]);
    if (first >= 128 || !strchr("ABCDEFGHJKLMPRSTUX", (int)first)) return 0;
    if (!(is_alpha(v[1]) || v[1] == '9')) return 0;
    int d[7];
    for (int i = 0; i < 7; i++) d[i] = (int)(v[2 + i] - '0');
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6];
}

/* npi_valid on a value matched by \d{10}: starts with 1 or 2, Luhn over "80840" + it */
static int npi_valid(const U *v) {
    if (v[0] != '1' && v[0] != '2') return 0;
    U d[15] = {'8', '0', '8', '4', '0'};
    for (int i = 0; i < 10; i++) d[5 + i] = v[i];
    return ck_luhn(d, 15);
}

/* the kind's check on the value as written */
static int check_value(int check, const U *v, Z len) {
    switch (check) {
    case C_KVNR: return kvnr_valid(v);
    case C_MBI: {  /* len(v.replace("-", "")) == 11 */
        Z kept = 0;
        for (Z i = 0; i < len; i++) kept += v[i] != '-';
        return kept == 11;
    }
    case C_SSN: return ck_ssn(v, 0, len);
    case C_NPI: return npi_valid(v);
    case C_DEA: return dea_valid(v);
    }
    return 1;
}

/* ------------------------------------------------------------------ the detector */

/* finditer of the kind's pattern over low[ws:we]; the findings as LabelledDetector.find */
static int find_in_window(const CText *ct, const Kind *kind, Z ws, Z we, Out *out) {
    const U *low = ct->low;
    Try t = {low, we, kind->value, 0, 0};
    uint32_t firsts = 0;  /* the labels' first letters (each label begins with one, a-z) */
    for (const char *const *l = kind->labels; *l; l++) firsts |= 1u << ((*l)[0] - 'a');
    Z p = ws;
    while (p < we) {
        U c = low[p];
        /* a label's first letter, after which (?<![\w-].) looks back */
        if (!is_ascii_lower(c) || !(firsts >> (c - 'a') & 1) ||
            (p > 0 && (word_char(low[p - 1]) || low[p - 1] == '-'))) {
            p++;
            continue;
        }
        int matched = 0;
        for (const char *const *l = kind->labels; *l && !matched; l++)
            matched = (U)(unsigned char)(*l)[0] == c && label(&t, *l, p, NULL);
        if (!matched) {
            p++;
            continue;
        }
        p = t.vend;
        const U *v = ct->s + t.vstart;
        Z len = t.vend - t.vstart;
        int digit = 0;
        for (Z i = 0; i < len && !digit; i++) digit = is_digit(v[i]);
        if (!digit) continue;
        if (check_value(kind->check, v, len)) {
            if (out_add(out, kind->type, t.vstart, t.vend, 0.9) < 0) return -1;
        } else if (kind->fallback >= 0) {
            if (out_add(out, kind->fallback, t.vstart, t.vend, 0.7) < 0) return -1;
        }
    }
    return 0;
}

/* Which pairs of first two letters begin a token of the text, the letters folded to 5 bits
   (a-z apart; an umlaut or ß shares a bit with a letter, which only lets more through): a
   cheap test that rules out most triggers before ct_word hashes them. */
typedef struct { uint32_t second[32]; } Pairs;

static void pairs_of(const CText *ct, Pairs *pairs) {
    memset(pairs, 0, sizeof(*pairs));
    for (Z k = 0; k < ct->ntokens; k++) {
        const unsigned char *w = ct->wb + ct->tokens[k].start;
        if (ct->tokens[k].len >= 2) pairs->second[w[0] & 31] |= 1u << (w[1] & 31);
    }
}

static inline int may_be_word(const Pairs *pairs, const char *word) {
    const unsigned char *w = (const unsigned char *)word;
    return pairs->second[w[0] & 31] >> (w[1] & 31) & 1;
}

/* A word to look for in the lowered text for a kind: a trigger that is a word of the text
   (Scan.words & kind.triggers), or a needle. */
typedef struct { const char *word; Z len; int kind; } Sought;
#define MOST_SOUGHT 256  /* more than all the kinds' triggers and needles together */

/* An occurrence's window, (at - 40, at + len + 80) as in Scan.windows, for a kind. */
typedef struct { int kind; Z start, end; } Place;

static int cmp_place(const void *a, const void *b) {
    const Place *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Scan.windows(kind.triggers, 40, 80, kind.needles) for every enabled kind at once: one
   pass over the lowered text finds the occurrences of all the words sought (instead of one
   str.find pass per word), sorted by kind then as Scan.windows sorts them. Returns the
   number of places (-1: memory error); *places is to be freed by the caller either way. */
static Z all_places(const CText *ct, Place **places) {
    Sought sought[MOST_SOUGHT];
    int nsought = 0;
    /* the words by first character: head[c] and chain[j] are 1 + an index, 0 for none */
    short head[256] = {0}, chain[MOST_SOUGHT];
    Pairs pairs;
    pairs_of(ct, &pairs);
    for (int k = 0; k < NKINDS; k++) {
        const Kind *kind = &KINDS[k];
        if (!ct_enabled(ct, kind->type)) continue;
        for (const char *const *w = kind->triggers; *w; w++) {
            if (may_be_word(&pairs, *w) && ct_word(ct, *w))
                sought[nsought++] = (Sought){*w, lit_len(*w), k};
        }
        for (const char *const *w = kind->needles; w && *w; w++)
            sought[nsought++] = (Sought){*w, lit_len(*w), k};
    }
    *places = NULL;
    if (nsought == 0) return 0;
    for (int j = nsought - 1; j >= 0; j--) {
        unsigned char c = (unsigned char)sought[j].word[0];
        chain[j] = head[c];
        head[c] = (short)(j + 1);
    }
    const U *low = ct->low;
    Z n = ct->n, count = 0, cap = 0;
    for (Z i = 0; i < n; i++) {
        if (low[i] > 0xFF || !head[low[i]]) continue;
        for (int j = head[low[i]] - 1; j >= 0; j = chain[j] - 1) {
            if (!starts_with(low, i, n, sought[j].word)) continue;
            if (count == cap) {
                cap = cap ? cap * 2 : 16;
                Place *grown = PyMem_Realloc(*places, (size_t)cap * sizeof(Place));
                if (!grown) { PyErr_NoMemory(); return -1; }
                *places = grown;
            }
            (*places)[count++] = (Place){sought[j].kind, i > 40 ? i - 40 : 0,
                                         i + sought[j].len + 80};
        }
    }
    if (count > 1) qsort(*places, (size_t)count, sizeof(Place), cmp_place);
    return count;
}

/* LabelledDetector.find: the kinds (those with an enabled type) whose trigger words or
   needles occur, in order, each searched in its merged windows */
int det_labelled(CText *ct, Out *out) {
    if (!ct->has_digit) return 0;
    Place *places;
    Z count = all_places(ct, &places);
    int rc = count < 0 ? -1 : 0;
    for (Z i = 0; i < count && rc == 0;) {
        /* merge the kind's overlapping windows (Scan.windows), search each */
        Z start = places[i].start, end = places[i].end;
        Z j = i + 1;
        while (j < count && places[j].kind == places[i].kind && places[j].start <= end) {
            if (places[j].end > end) end = places[j].end;
            j++;
        }
        rc = find_in_window(ct, &KINDS[places[i].kind], start, end < ct->n ? end : ct->n, out);
        i = j;
    }
    PyMem_Free(places);
    return rc;
}
