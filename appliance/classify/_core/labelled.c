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

/* group_split's answer for every group of the labels, made once (group_at) and found by
   the address of the group's "(" (the labels are static strings): splitting a group again at
   each attempt cost more than the rest of the matching. */
typedef struct {
    const char *open;
    const char *alts[MOST_ALTERNATIVES];
    int nalts;
    const char *close;
} Group;
#define MOST_GROUPS 128   /* more than the labels' groups (70) */
#define GROUP_SLOTS 512
static Group GROUPS[MOST_GROUPS];
static int ngroups;
static short group_slot[GROUP_SLOTS];  /* 1 + an index into GROUPS, 0 for none */

static inline unsigned group_slot_of(const char *open) {
    return (unsigned)(((uint64_t)(uintptr_t)open * 0x9E3779B97F4A7C15ull) >> 55);  /* 9 bits */
}

/* the group opening at `open`, split on its first use and remembered (while GROUPS has
   room: the labels have 70 groups) */
static const Group *group_at(const char *open, Group *made) {
    unsigned slot = group_slot_of(open);
    for (; group_slot[slot]; slot = (slot + 1) % GROUP_SLOTS)
        if (GROUPS[group_slot[slot] - 1].open == open) return &GROUPS[group_slot[slot] - 1];
    Group *g = ngroups < MOST_GROUPS ? &GROUPS[ngroups] : made;
    g->open = open;
    g->close = group_split(open + 3, g->alts, &g->nalts);
    if (g != made) group_slot[slot] = (short)++ngroups;
    return g;
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
            Group made;
            const Group *g = group_at(re, &made);
            const char *const *alts = g->alts;
            int nalts = g->nalts;
            const char *after = g->close + 1;
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

/* ------------------------------------------------------------------ tables made once */

/* Every trigger word once, with the kinds it triggers (a bit per index into KINDS), in a
   table by its word_hash (trigger_slot): one pass over the tokens, each looked up by its
   Token.hash, finds `scan.words & kind.triggers` for every kind. */
typedef struct {
    const char *word;
    Z len;
    unsigned kinds;
    uint32_t hash;               /* word_hash of the word (Token.hash of a token equal to it) */
    unsigned char raw_first[2];  /* the Latin-1 bytes that lower to its first letter */
    unsigned char raw_second[2]; /* ... and to its second (a 1-letter word's: 0) */
} Trigger;
#define MOST_TRIGGERS 128    /* more than all the kinds' triggers together (90) */
#define MOST_LABELS 24       /* more than any kind's labels (the licence's 19) */
static Trigger TRIGGERS[MOST_TRIGGERS];
static int ntriggers;
/* The triggers by their word_hash, open-addressed (1 + an index into TRIGGERS, 0 empty):
   a token is looked up by its Token.hash, and most tokens (no trigger) end at an empty
   slot or a slot holding another hash. */
#define TRIGGER_SLOTS 1024
static unsigned char trigger_slot[TRIGGER_SLOTS];
static uint32_t label_firsts[NKINDS];      /* the kind's labels' first letters, a bit per a-z */
static uint32_t labels_of[NKINDS][26];     /* the kind's labels by first letter, a bit each */
static unsigned char label_literal[NKINDS][MOST_LABELS];  /* see literal_prefix */
static unsigned needle_kinds;              /* the kinds that have needles */
static int tables_ready;

/* How many characters a label regex begins with that must be there as written: plain
   characters up to the first \, [, (, ?, *, + or one made optional by a ? or * after it.
   A label can only match at p where low[p:p + that] is those characters. */
static int literal_prefix(const char *re) {
    int n = 0;
    for (;; n++) {
        switch (re[n]) {
        case '\0': case '\\': case '[': case '(': case '|': case ')': case '?': case '*':
        case '+': case '.':
            return n;
        }
        if (re[n + 1] == '?' || re[n + 1] == '*') return n;
    }
}

/* A lower-case Latin-1 letter and its upper case, when that is Latin-1 too: the Latin-1
   bytes that lower to it (for the triggers' letters, a-z and ü, exactly those two). */
static void raw_forms(unsigned char letter, unsigned char forms[2]) {
    U upper = Py_UNICODE_TOUPPER((U)letter);
    forms[0] = letter;
    forms[1] = (unsigned char)(upper <= 0xFF && Py_UNICODE_TOLOWER(upper) == letter ? upper : letter);
}

static void make_tables(void) {
    for (int k = 0; k < NKINDS; k++) {
        const Kind *kind = &KINDS[k];
        for (const char *const *w = kind->triggers; *w; w++) {
            Z len = lit_len(*w);
            uint32_t h = word_hash((const unsigned char *)*w, len);
            unsigned slot = h & (TRIGGER_SLOTS - 1);
            int j;
            while ((j = trigger_slot[slot]) && strcmp(TRIGGERS[j - 1].word, *w) != 0)
                slot = (slot + 1) & (TRIGGER_SLOTS - 1);
            if (!j) {  /* a new word */
                Trigger *tr = &TRIGGERS[ntriggers];
                *tr = (Trigger){*w, len, 0, h, {0, 0}, {0, 0}};
                raw_forms((unsigned char)(*w)[0], tr->raw_first);
                raw_forms((unsigned char)(*w)[1], tr->raw_second);
                trigger_slot[slot] = (unsigned char)(j = ++ntriggers);
            }
            TRIGGERS[j - 1].kinds |= 1u << k;
        }
        for (int l = 0; kind->labels[l]; l++) {
            label_firsts[k] |= 1u << (kind->labels[l][0] - 'a');
            labels_of[k][kind->labels[l][0] - 'a'] |= 1u << l;
            label_literal[k][l] = (unsigned char)literal_prefix(kind->labels[l]);
        }
        if (kind->needles) needle_kinds |= 1u << k;
    }
    tables_ready = 1;
}

/* ------------------------------------------------------------------ one kind's windows */

/* Whether one of kind k's labels, tried in order, matches at p (with _SEP and the value:
   then in t). p holds a label's first letter c, after (?<![\w-].)'s look back. */
static int labels_at(Try *t, int k, Z p, U c) {
    const char *const *labels = KINDS[k].labels;
    for (uint32_t ls = labels_of[k][c - 'a']; ls; ls &= ls - 1) {
        /* the labels that begin with c, in order; one whose leading literal is not at p
           cannot match there */
        int l = __builtin_ctz(ls);
        const char *re = labels[l];
        Z n = label_literal[k][l], i = 1;
        if (p + n > t->end) continue;
        while (i < n && t->low[p + i] == (U)(unsigned char)re[i]) i++;
        /* (the n characters are plain literals, none optional: label goes on after them) */
        if (i >= n && label(t, re + n, p + n, NULL)) return 1;
    }
    return 0;
}

/* A match's findings, as LabelledDetector.find reports them */
static int report(const CText *ct, int k, const Try *t, Out *out) {
    const Kind *kind = &KINDS[k];
    const U *v = ct->s + t->vstart;
    Z len = t->vend - t->vstart;
    int digit = 0;
    for (Z i = 0; i < len && !digit; i++) digit = is_digit(v[i]);
    if (!digit) return 0;
    if (check_value(kind->check, v, len)) return out_add(out, kind->type, t->vstart, t->vend, 0.9);
    if (kind->fallback >= 0) return out_add(out, kind->fallback, t->vstart, t->vend, 0.7);
    return 0;
}

/* whether a label may start at p: a label's first letter (one of `firsts`, a bit per a-z),
   after which (?<![\w-].) looks back */
static inline int label_start(const U *low, Z p, uint32_t firsts) {
    U c = low[p];
    return is_ascii_lower(c) && (firsts >> (c - 'a') & 1) &&
           !(p > 0 && (word_char(low[p - 1]) || low[p - 1] == '-'));
}

/* finditer of the kind's pattern over low[ws:we]; the findings as LabelledDetector.find.
   A label starts at p only where low[p] is an ASCII letter and low[p - 1] neither \w nor
   "-". In a text of Latin-1 code points (PyUnicode 1-byte kind) such a p is the start of a
   token: low[p] is then s[p] lowered, an ASCII letter only for s[p] in A-Za-z, which are
   word bytes, and every word byte (A-Za-z, the umlauts, ß) is \w, so wb[p - 1] is ' '.
   There the tokens in the window are the only places tried; in other texts (where e.g. the
   Kelvin sign lowers to "k" but is no word byte) every character is. */
static int find_in_window(const CText *ct, int k, Z ws, Z we, Out *out) {
    const U *low = ct->low;
    Try t = {low, we, KINDS[k].value, 0, 0};
    uint32_t firsts = label_firsts[k];
    if (PyUnicode_KIND(ct->text) == PyUnicode_1BYTE_KIND) {
        const Token *tok = ct->tokens, *last = tok + ct->ntokens;
        Z lo = 0, hi = ct->ntokens;  /* the first token starting at ws or after */
        while (lo < hi) {
            Z mid = (lo + hi) / 2;
            if (tok[mid].start < ws) lo = mid + 1; else hi = mid;
        }
        Z from = ws;  /* finditer goes on after a match's end */
        for (tok += lo; tok < last && tok->start < we; tok++) {
            Z p = tok->start;
            if (p < from || !label_start(low, p, firsts) || !labels_at(&t, k, p, low[p]))
                continue;
            from = t.vend;
            if (report(ct, k, &t, out) < 0) return -1;
        }
        return 0;
    }
    for (Z p = ws; p < we;) {
        if (!label_start(low, p, firsts) || !labels_at(&t, k, p, low[p])) {
            p++;
            continue;
        }
        p = t.vend;
        if (report(ct, k, &t, out) < 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the windows */

/* An occurrence's window, (at - 40, at + len + 80) as in Scan.windows, for a kind. */
typedef struct { int kind; Z start, end; } Place;

/* The places found, in a buffer on the stack while they fit (short texts have a few). */
typedef struct { Place *v; Z n, cap; Place local[32]; } Places;

static int places_add(Places *ps, int kind, Z at, Z len) {
    if (ps->n == ps->cap) {
        Z cap = ps->cap * 2;
        Place *grown = ps->v == ps->local ? PyMem_Malloc((size_t)cap * sizeof(Place))
                                          : PyMem_Realloc(ps->v, (size_t)cap * sizeof(Place));
        if (!grown) { PyErr_NoMemory(); return -1; }
        if (ps->v == ps->local) memcpy(grown, ps->local, sizeof(ps->local));
        ps->v = grown;
        ps->cap = cap;
    }
    ps->v[ps->n++] = (Place){kind, at > 40 ? at - 40 : 0, at + len + 80};
    return 0;
}

/* A place for each kind in `kinds` at every occurrence of `word` in the lowered text,
   overlapping ones too (Scan.positions: str.find from at + 1). In a text of Latin-1 code
   points the word (a trigger: letters a-z, ä, ü) is sought in the word bytes of the tokens
   instead: there low[i] is such a letter exactly where wb[i] is it (both lower A-Z, Ä, Ü
   alike; every other Latin-1 character is ' ' in wb and no such letter in low), so the
   word occurs only inside a token. */
static int add_positions(const CText *ct, Places *ps, const char *word, Z len, unsigned kinds) {
    if (PyUnicode_KIND(ct->text) == PyUnicode_1BYTE_KIND) {
        const unsigned char *wb = ct->wb, first = (unsigned char)word[0];
        for (const Token *tok = ct->tokens, *last = tok + ct->ntokens; tok < last; tok++) {
            for (Z at = tok->start, stop = at + tok->len - len; at <= stop; at++) {
                Z i = 1;
                if (wb[at] != first) continue;
                while (i < len && wb[at + i] == (unsigned char)word[i]) i++;
                if (i < len) continue;
                for (int k = 0; k < NKINDS; k++)
                    if (kinds >> k & 1 && places_add(ps, k, at, len) < 0) return -1;
            }
        }
        return 0;
    }
    for (Z at = find_in(ct->low, 0, ct->n, word); at >= 0;
         at = find_in(ct->low, at + 1, ct->n, word))
        for (int k = 0; k < NKINDS; k++)
            if (kinds >> k & 1 && places_add(ps, k, at, len) < 0) return -1;
    return 0;
}

/* add_positions for several words in one pass over the text. A word occurs at i only where
   low[i] is its first letter, i.e. where Scan.raw has a Latin-1 byte that lowers to it
   (raw_first) or '?' (which stands for every code point above 0xFF: of those only U+212A,
   the Kelvin sign, and U+1E9E lower to a letter of the triggers), and low[i + 1] its second:
   the pass skips the other places through two tables of bytes, and compares the words
   there in the lowered text. (raw[n] is 0, in neither table.) */
#define FEW_WORDS 2  /* up to this many words, add_positions (wmemchr) per word costs less */
static int all_positions(const CText *ct, Places *ps, const int *sought, int nsought,
                         unsigned enabled) {
    unsigned char may_begin[256] = {0}, may_follow[256] = {0};
    int head[256] = {0}, chain[MOST_TRIGGERS];  /* 1 + an index into sought, 0 none */
    for (int s = nsought - 1; s >= 0; s--) {
        const Trigger *tr = &TRIGGERS[sought[s]];
        unsigned char c = (unsigned char)tr->word[0];
        chain[s] = head[c];
        head[c] = s + 1;
        may_begin[tr->raw_first[0]] = may_begin[tr->raw_first[1]] = 1;
        may_follow[tr->raw_second[0]] = may_follow[tr->raw_second[1]] = 1;
        if (tr->len < 2) memset(may_follow, 1, sizeof(may_follow));  /* none now: all have 2+ */
    }
    may_begin['?'] = may_follow['?'] = 1;
    const unsigned char *raw = ct->raw;
    const U *low = ct->low;
    Z n = ct->n;
    for (Z i = 0; i < n; i++) {
        if (!may_begin[raw[i]] || !may_follow[raw[i + 1]] || low[i] > 0xFF) continue;
        for (int s = head[low[i]]; s; s = chain[s - 1]) {
            const Trigger *tr = &TRIGGERS[sought[s - 1]];
            if (!starts_with(low, i, n, tr->word)) continue;
            unsigned kinds = tr->kinds & enabled;
            for (int k = 0; k < NKINDS; k++)
                if (kinds >> k & 1 && places_add(ps, k, i, tr->len) < 0) return -1;
        }
    }
    return 0;
}

/* The same for a needle, such as "s/n": its first character that is ASCII but not a letter
   (no other character lowers to it, so it stands in the lowered text exactly where Scan.raw
   has it) is sought with memchr in Scan.raw, and the rest compared there; a needle of
   letters only is sought with find_in. */
static int add_needle(const CText *ct, Places *ps, const char *needle, unsigned kinds) {
    Z len = lit_len(needle), j = 0;
    while (j < len && ((unsigned char)needle[j] >= 128 || is_alpha((U)(unsigned char)needle[j])))
        j++;
    if (j == len) return add_positions(ct, ps, needle, len, kinds);
    const unsigned char *raw = ct->raw;
    Z n = ct->n;
    for (Z i = j; i < n;) {
        const unsigned char *hit = memchr(raw + i, needle[j], (size_t)(n - i));
        if (!hit) break;
        i = hit - raw;
        Z at = i - j;
        if (at >= 0 && starts_with(ct->low, at, n, needle))
            for (int k = 0; k < NKINDS; k++)
                if (kinds >> k & 1 && places_add(ps, k, at, len) < 0) return -1;
        i++;
    }
    return 0;
}

static inline int place_before(const Place *x, const Place *y) {
    if (x->kind != y->kind) return x->kind < y->kind;
    if (x->start != y->start) return x->start < y->start;
    return x->end < y->end;
}

static int cmp_place(const void *a, const void *b) {
    return place_before(a, b) ? -1 : place_before(b, a);
}

/* The kinds whose type is enabled (CText.enabled), a bit per kind. Calls mostly come with the
   same enabled types, so the answer for the last ones is kept (the GIL is held). */
_Static_assert(T_COUNT <= 32, "the enabled types are one word");
static unsigned enabled_kinds(const CText *ct) {
    static unsigned for_types, kinds;
    static int known;
    unsigned types = ct->enabled[0];
    if (!known || types != for_types) {
        kinds = 0;
        for (int k = 0; k < NKINDS; k++)
            if (types >> KINDS[k].type & 1) kinds |= 1u << k;
        for_types = types;
        known = 1;
    }
    return kinds;
}

/* Scan.windows(kind.triggers, 40, 80, kind.needles) for every enabled kind at once, the
   places sorted by kind then as Scan.windows sorts them. The kinds are those whose trigger
   words are words of the text (`scan.words & self.triggers`: one pass over the tokens, each
   looked up among the triggers) or whose needles occur; each word present is sought once
   in the lowered text. -1 on memory error. */
static int all_places(const CText *ct, Places *ps) {
    /* which triggers are tokens (a bit per TRIGGERS index), and the kinds they trigger */
    uint64_t present[(MOST_TRIGGERS + 63) / 64] = {0};
    int found[MOST_TRIGGERS], nfound = 0;  /* the triggers that are tokens, each once */
    unsigned kinds = 0;
    for (const Token *tok = ct->tokens, *last = tok + ct->ntokens; tok < last; tok++) {
        uint32_t h = tok->hash;
        for (unsigned slot = h & (TRIGGER_SLOTS - 1); trigger_slot[slot];
             slot = (slot + 1) & (TRIGGER_SLOTS - 1)) {
            int j = trigger_slot[slot];
            const Trigger *tr = &TRIGGERS[j - 1];
            if (tr->hash != h || tr->len != tok->len ||
                memcmp(tr->word, ct->wb + tok->start, (size_t)tok->len) != 0)
                continue;
            if (!(present[(j - 1) / 64] >> ((j - 1) % 64) & 1)) {
                present[(j - 1) / 64] |= 1ull << ((j - 1) % 64);
                found[nfound++] = j - 1;
                kinds |= tr->kinds;
            }
            break;
        }
    }
    /* only kinds with an enabled type (CText.enabled) */
    unsigned enabled = enabled_kinds(ct) & (kinds | needle_kinds);
    if (kinds & enabled) {
        int sought[MOST_TRIGGERS], nsought = 0;  /* the present words of enabled kinds */
        for (int f = 0; f < nfound; f++)
            if (TRIGGERS[found[f]].kinds & enabled) sought[nsought++] = found[f];
        if (nsought <= FEW_WORDS) {
            for (int s = 0; s < nsought; s++) {
                const Trigger *tr = &TRIGGERS[sought[s]];
                if (add_positions(ct, ps, tr->word, tr->len, tr->kinds & enabled) < 0) return -1;
            }
        } else if (all_positions(ct, ps, sought, nsought, enabled) < 0) {
            return -1;
        }
    }
    for (unsigned ks = needle_kinds & enabled; ks; ks &= ks - 1) {
        int k = __builtin_ctz(ks);
        for (const char *const *w = KINDS[k].needles; *w; w++)
            if (add_needle(ct, ps, *w, 1u << k) < 0) return -1;
    }
    if (ps->n > 16) {
        qsort(ps->v, (size_t)ps->n, sizeof(Place), cmp_place);
    } else {  /* insertion sort: most texts have a few places */
        for (Z i = 1; i < ps->n; i++) {
            Place x = ps->v[i];
            Z j = i;
            for (; j > 0 && place_before(&x, &ps->v[j - 1]); j--) ps->v[j] = ps->v[j - 1];
            ps->v[j] = x;
        }
    }
    return 0;
}

/* LabelledDetector.find: the kinds (those with an enabled type) whose trigger words or
   needles occur, in order, each searched in its merged windows */
int det_labelled(CText *ct, Out *out) {
    if (!ct->has_digit) return 0;
    if (!tables_ready) make_tables();
    Places ps;
    ps.v = ps.local;
    ps.n = 0;
    ps.cap = (Z)(sizeof(ps.local) / sizeof(ps.local[0]));
    int rc = all_places(ct, &ps);
    Place *places = ps.v;
    Z count = ps.n;
    for (Z i = 0; i < count && rc == 0;) {
        /* merge the kind's overlapping windows (Scan.windows), search each */
        Z start = places[i].start, end = places[i].end;
        Z j = i + 1;
        while (j < count && places[j].kind == places[i].kind && places[j].start <= end) {
            if (places[j].end > end) end = places[j].end;
            j++;
        }
        rc = find_in_window(ct, places[i].kind, start, end < ct->n ? end : ct->n, out);
        i = j;
    }
    if (ps.v != ps.local) PyMem_Free(ps.v);
    return rc;
}
