/* people.py: names (NameDetector), personal dates (PersonDateDetector) and ages over 89
 * (AgeDetector). Each pattern is emulated with its exact backtracking order; where a
 * pattern's choices can only succeed one way (a greedy run of spaces before a letter, an
 * optional dot before a required space), the comments say why one try suffices. */
#include "core.h"

static int is_sp(U c) { return c == ' ' || c == '\t'; }

/* The length of the run of [0-9] at t[i:end]. */
static Z digit_run(const U *t, Z i, Z end) {
    Z k = i;
    while (k < end && is_d(t[k])) k++;
    return k - i;
}

/* [ \t]+ (greedy) at t[i:end]: its end, or -1 when no space or tab stands there. */
static Z spaces(const U *t, Z i, Z end) {
    if (i >= end || !is_sp(t[i])) return -1;
    while (i < end && is_sp(t[i])) i++;
    return i;
}

/* A literal with a few pattern pieces, matched at t[i:end]; returns the end or -1.
 * '+' is [ \t]+ and '?' is [ \t]? (both greedy; in every use what follows cannot begin
 * with a space, so giving spaces back cannot help); a leading '*' lets the first letter
 * (given in lower case) also be its ASCII capital ("[Pp]atient"). Latin-1 bytes otherwise
 * stand for themselves. */
static Z lit(const U *t, Z i, Z end, const char *pat) {
    const unsigned char *p = (const unsigned char *)pat;
    if (*p == '*') {
        p++;
        if (i >= end || (t[i] != *p && t[i] != (U)(*p - 32))) return -1;
        p++;
        i++;
    }
    for (; *p; p++) {
        if (*p == '+') {
            if (i >= end || !is_sp(t[i])) return -1;
            while (i < end && is_sp(t[i])) i++;
        } else if (*p == '?') {
            if (i < end && is_sp(t[i])) i++;
        } else {
            if (i >= end || t[i] != (U)*p) return -1;
            i++;
        }
    }
    return i;
}

/* Whether t[i] (i < end) can begin lit(t, i, end, pat): a cheap test before the call. */
static inline int lit_first(const U *t, Z i, const char *pat) {
    const unsigned char *p = (const unsigned char *)pat;
    if (*p == '*') return t[i] == p[1] || t[i] == (U)(p[1] - 32);
    return t[i] == *p;
}

/* Whether a token of the text is one of `words` (sorted by their bytes, NULL-terminated):
   ct_any_word by a binary search per token, which costs less than a lookup per word when
   the text has few tokens (each ct_word hashes its word). */
static int any_token_of(const CText *ct, const char *const *words, Z count) {
    for (Z k = 0; k < ct->ntokens; k++) {
        const unsigned char *b = ct->wb + ct->tokens[k].start;
        Z len = ct->tokens[k].len, lo = 0, hi = count;
        while (lo < hi) {
            Z mid = (lo + hi) / 2;
            const unsigned char *w = (const unsigned char *)words[mid];
            Z i = 0;
            while (i < len && w[i] && b[i] == w[i]) i++;
            if (i == len && !w[i]) return 1;
            if (i == len || (w[i] && b[i] < w[i])) hi = mid;
            else lo = mid + 1;
        }
    }
    return 0;
}

/* Whether scan.words holds none of `words` (sorted, `count` of them, NULL-terminated);
   only decided when the text has few tokens, else 0 (ct_windows then asks each word). */
static int surely_absent(const CText *ct, const char *const *words, Z count) {
    return ct->ntokens < count / 2 && !any_token_of(ct, words, count);
}

/* ================================================================== AgeDetector */

static const char *const AGE_TRIGGERS[] = {
    "age", "ages", "aged", "alter", "old", "yo", "jahre", "j\xe4hrige", "j\xe4hriger",
    "j\xe4hrigen", "j\xe4hriges", "j\xe4hrigem", NULL,
};
static const char *const AGE_NEEDLES[] = {"y/o", "y.o.", "j.", NULL};

/* One try of AgeDetector's pattern at t[p:end] (the lowered text, a window):
 *   (?<![\w])(?:(?:age[ds]?|alter|aged)[ \t]*:?[ \t]*(?:of[ \t]+|von[ \t]+)?(?P<a>\d{2,3})
 *   (?!\d|[.,]\d)|(?P<b>\d{2,3})[ \t-]?(?:years?|yrs?|y)[ \t-]?old
 *   |(?P<c>\d{2,3})[ \t]?(?:y/o|yo|y\.o\.|j\.)(?!\w)|(?P<d>\d{2,3})[ \t]jahre[ \t]alt
 *   |(?P<e>\d{2,3})-?jährige[rnms]?)
 * Sets the number's span and the match's end; returns 1 on a match.
 * Every branch needs its \d{2,3} followed by a non-digit, so the run of digits must be 2
 * or 3 long (within the window), and all of it is taken. */
static int age_at(const U *t, Z p, Z end, Z *gs, Z *ge, Z *mend) {
    if (p > 0 && is_w(t[p - 1])) return 0;
    if (t[p] == 'a') {
        /* age[ds]? (the d or s when there: without it the next character is a letter,
           which nothing after accepts), alter; "aged" is age + d again */
        Z k = -1;
        if (lit(t, p, end, "age") >= 0) {
            k = p + 3;
            if (k < end && (t[k] == 'd' || t[k] == 's')) k++;
        } else if (lit(t, p, end, "alter") >= 0) {
            k = p + 5;
        }
        if (k < 0) return 0;
        /* [ \t]*:?[ \t]*: what follows begins with o, v or a digit, so only the end after
           every space and the colon can do */
        while (k < end && is_sp(t[k])) k++;
        if (k < end && t[k] == ':') k++;
        while (k < end && is_sp(t[k])) k++;
        Z m = lit(t, k, end, "of+");
        if (m < 0) m = lit(t, k, end, "von+");
        if (m >= 0) k = m;  /* without it, "o"/"v" is no digit */
        Z r = digit_run(t, k, end);
        if (r < 2 || r > 3) return 0;
        Z d = k + r;
        if (d + 1 < end && (t[d] == '.' || t[d] == ',') && is_d(t[d + 1])) return 0;
        *gs = k;
        *ge = *mend = d;
        return 1;
    }
    Z r = digit_run(t, p, end);
    if (r < 2 || r > 3) return 0;
    Z d = p + r;
    *gs = p;
    *ge = d;
    /* b: [ \t-]?(?:years?|yrs?|y)[ \t-]?old, in the order of the choices */
    static const char *const UNITS[] = {"years", "year", "yrs", "yr", "y", NULL};
    int sep1 = d < end && (is_sp(t[d]) || t[d] == '-');
    for (int a = sep1; a >= 0; a--) {
        for (const char *const *u = UNITS; *u; u++) {
            Z k = lit(t, d + a, end, *u);
            if (k < 0) continue;
            int sep2 = k < end && (is_sp(t[k]) || t[k] == '-');
            for (int b = sep2; b >= 0; b--) {
                Z o = lit(t, k + b, end, "old");
                if (o >= 0) { *mend = o; return 1; }
            }
        }
    }
    /* c: [ \t]?(?:y/o|yo|y\.o\.|j\.)(?!\w) */
    static const char *const SHORT[] = {"y/o", "yo", "y.o.", "j.", NULL};
    int sep = d < end && is_sp(t[d]);
    for (int a = sep; a >= 0; a--) {
        for (const char *const *u = SHORT; *u; u++) {
            Z k = lit(t, d + a, end, *u);
            if (k >= 0 && (k >= end || !is_w(t[k]))) { *mend = k; return 1; }
        }
    }
    /* d: [ \t]jahre[ \t]alt */
    if (d < end && is_sp(t[d])) {
        Z k = lit(t, d + 1, end, "jahre");
        if (k >= 0 && k < end && is_sp(t[k])) {
            Z o = lit(t, k + 1, end, "alt");
            if (o >= 0) { *mend = o; return 1; }
        }
    }
    /* e: -?jährige[rnms]? (without the "-" the next character would be "-") */
    Z k = d < end && t[d] == '-' ? d + 1 : d;
    k = lit(t, k, end, "j\xe4hrige");
    if (k >= 0) {
        if (k < end && (t[k] == 'r' || t[k] == 'n' || t[k] == 'm' || t[k] == 's')) k++;
        *mend = k;
        return 1;
    }
    return 0;
}

/* AgeDetector.find: finditer over the lowered text in windows(triggers, 12, 12, needles),
   ages 90 to 125. */
int det_age(CText *ct, Out *out) {
    if (!ct->has_digit) return 0;
    Spans windows = {0};
    if (ct_windows(ct, AGE_TRIGGERS, 12, 12, AGE_NEEDLES, &windows) < 0) return -1;
    const U *t = ct->low;
    int rc = 0;
    for (Z w = 0; w < windows.n && rc == 0; w++) {
        Z end = windows.v[w].end < ct->n ? windows.v[w].end : ct->n;
        Z p = windows.v[w].start;
        while (p < end) {
            Z gs, ge, mend;
            if (!age_at(t, p, end, &gs, &ge, &mend)) { p++; continue; }
            int value = 0;
            for (Z k = gs; k < ge; k++) value = value * 10 + (int)(t[k] - '0');
            if (value >= 90 && value <= 125 && out_add(out, T_AGE_OVER_89, gs, ge, 0.85) < 0) {
                rc = -1;
                break;
            }
            p = mend;
        }
    }
    spans_free(&windows);
    return rc;
}

/* ================================================================== PersonDateDetector */

/* sorted by their bytes (any_token_of) */
static const char *const DATE_TRIGGERS[] = {
    "admission", "admit", "admitted", "appointment", "aufgenommen", "aufnahme",
    "behandlungsdatum", "birth", "birthdate", "birthday", "born", "date", "deceased", "died",
    "discharge", "discharged", "dob", "dos", "entlassen", "entlassung", "expired", "geb",
    "geboren", "geburtsdatum", "geburtstag", "op", "operated", "operiert", "procedure", "seen",
    "sterbedatum", "surgery", "termin", "verstorben", "visit", "vorstellung", NULL,
};
#define DATE_TRIGGERS_COUNT ((Z)(sizeof DATE_TRIGGERS / sizeof DATE_TRIGGERS[0] - 1))
static const char *const DATE_NEEDLES[] = {"d.o.b", NULL};

/* _BIRTH_CUES + _EVENT_CUES in lit() form, in the pattern's order (at_word_start groups
   them by first letter, which keeps the order of those that can match at one place);
   d\.o\.b\.? is "d.o.b." then "d.o.b". birth: whether _BIRTH fullmatches it. */
typedef struct { const char *cue; int birth; } Cue;
static const Cue CUES[] = {
    {"dob", 1}, {"d.o.b.", 1}, {"d.o.b", 1}, {"date+of+birth", 1}, {"birth?date", 1},
    {"birthday", 1}, {"born", 1}, {"geb.", 1}, {"geboren", 1}, {"geburtsdatum", 1},
    {"geburtstag", 1},
    {"admitted", 0}, {"admission", 0}, {"admit", 0}, {"discharged", 0}, {"discharge", 0},
    {"date+of+death", 0}, {"died", 0}, {"deceased", 0}, {"expired", 0},
    {"date+of+service", 0}, {"dos", 0}, {"seen", 0}, {"visit", 0}, {"appointment", 0},
    {"surgery", 0}, {"procedure", 0}, {"operated", 0}, {"aufgenommen", 0}, {"aufnahme", 0},
    {"entlassen", 0}, {"entlassung", 0}, {"verstorben", 0}, {"sterbedatum", 0},
    {"behandlungsdatum", 0}, {"op-datum", 0}, {"operiert", 0}, {"termin", 0},
    {"vorstellung", 0}, {NULL, 0},
};

/* A three-letter month of `months` (space-separated) at t[i:end]. */
static int month_at(const U *t, Z i, Z end, const char *months) {
    if (i + 3 > end) return 0;
    for (const unsigned char *m = (const unsigned char *)months; *m; m += 4) {
        if (t[i] == m[0] && t[i + 1] == m[1] && t[i + 2] == m[2]) return 1;
        if (!m[3]) break;
    }
    return 0;
}

static int is_sep(U c) { return c == '.' || c == '/' || c == '-'; }

/* _DATE at t[i:end]; returns its end or -1. Each branch has one way to succeed: a run of
   digits must fill its \d{m,n} whole when a non-digit must follow, and optional dots,
   commas and letter runs are followed by what they cannot give back to.
   \d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})(?!\d)
   |\d{4}-\d{2}-\d{2}
   |\d{1,2}\.?[ \t]+(?:jan|...|dec)[a-zä]*\.?,?[ \t]+\d{4}
   |(?:jan|...|dec)[a-z]*\.?[ \t]+\d{1,2}(?:st|nd|rd|th)?,?[ \t]+\d{4} */
static Z date_at(const U *t, Z i, Z end) {
    if (i >= end) return -1;
    if (is_d(t[i])) {
        Z r1 = digit_run(t, i, end);
        if (r1 <= 2) {
            Z x = i + r1;
            if (x < end && is_sep(t[x])) {
                Z r2 = digit_run(t, x + 1, end);
                Z y = x + 1 + r2;
                if (r2 >= 1 && r2 <= 2 && y < end && is_sep(t[y])) {
                    Z r3 = digit_run(t, y + 1, end);
                    if (r3 == 4 || r3 == 2) return y + 1 + r3;
                }
            }
        }
        if (r1 == 4 && i + 4 < end && t[i + 4] == '-' && digit_run(t, i + 5, end) == 2 &&
            i + 7 < end && t[i + 7] == '-' && digit_run(t, i + 8, end) >= 2)
            return i + 10;
        if (r1 <= 2) {
            Z x = i + r1;
            if (x < end && t[x] == '.') x++;
            x = spaces(t, x, end);
            if (x < 0 || !month_at(t, x, end, "jan feb m\xe4r mar apr mai may jun jul aug sep "
                                              "okt oct nov dez dec")) return -1;
            x += 3;
            while (x < end && (is_ascii_lower(t[x]) || t[x] == 0xE4)) x++;
            if (x < end && t[x] == '.') x++;
            if (x < end && t[x] == ',') x++;
            x = spaces(t, x, end);
            if (x < 0 || digit_run(t, x, end) < 4) return -1;
            return x + 4;
        }
        return -1;
    }
    if (!month_at(t, i, end, "jan feb mar apr may jun jul aug sep oct nov dec")) return -1;
    Z x = i + 3;
    while (x < end && is_ascii_lower(t[x])) x++;
    if (x < end && t[x] == '.') x++;
    x = spaces(t, x, end);
    if (x < 0) return -1;
    Z r = digit_run(t, x, end);
    if (r < 1 || r > 2) return -1;
    x += r;
    if (x + 1 < end && ((t[x] == 's' && t[x + 1] == 't') || (t[x] == 'n' && t[x + 1] == 'd') ||
                        (t[x] == 'r' && t[x + 1] == 'd') || (t[x] == 't' && t[x + 1] == 'h')))
        x += 2;
    if (x < end && t[x] == ',') x++;
    x = spaces(t, x, end);
    if (x < 0 || digit_run(t, x, end) < 4) return -1;
    return x + 4;
}

/* What follows the cue, from c: [\w]*[^\n;]{0,40}?(?<!\d)(?:[ \t:,(]|am[ \t]|on[ \t])DATE.
   Sets the date's span; returns 1 on a match. [\w]* is tried at its longest only: a
   shorter run reaches no place the longest does not (a connector inside the word would be
   "am "/"on " at its end, whose space the longest run reaches too). */
static int after_cue(const U *t, Z c, Z end, Z *ds, Z *de) {
    Z w = c;
    while (w < end && is_w(t[w])) w++;
    for (Z q = w; q <= w + 40 && q < end; q++) {
        if (q > w && (t[q - 1] == '\n' || t[q - 1] == ';')) break;
        if (q > 0 && is_d(t[q - 1])) continue;
        Z d = -1;
        U c0 = t[q];
        if (is_sp(c0) || c0 == ':' || c0 == ',' || c0 == '(') d = q + 1;
        else if (q + 2 < end && is_sp(t[q + 2]) &&
                 ((c0 == 'a' && t[q + 1] == 'm') || (c0 == 'o' && t[q + 1] == 'n'))) d = q + 3;
        if (d < 0) continue;
        Z e = date_at(t, d, end);
        if (e >= 0) { *ds = d; *de = e; return 1; }
    }
    return 0;
}

/* PersonDateDetector.find: finditer of
   (?P<cue>CUES)[\w]*[^\n;]{0,40}?(?<!\d)(?:[ \t:,(]|am[ \t]|on[ \t])(?P<date>_DATE)
   over the lowered text in windows(triggers, 12, 80, ("d.o.b",)); a birth cue gives a date
   of birth unless a four-digit year in it is before 1900. */
int det_person_date(CText *ct, Out *out) {
    if (!ct->has_digit) return 0;
    if (surely_absent(ct, DATE_TRIGGERS, DATE_TRIGGERS_COUNT) && !ct_in_low(ct, "d.o.b")) return 0;
    Spans windows = {0};
    if (ct_windows(ct, DATE_TRIGGERS, 12, 80, DATE_NEEDLES, &windows) < 0) return -1;
    const U *t = ct->low;
    int rc = 0;
    for (Z w = 0; w < windows.n && rc == 0; w++) {
        Z end = windows.v[w].end < ct->n ? windows.v[w].end : ct->n;
        Z p = windows.v[w].start;
        while (p < end) {
            if (p > 0 && is_w(t[p - 1])) { p++; continue; }
            const Cue *hit = NULL;
            Z ds = 0, de = 0;
            for (const Cue *cue = CUES; cue->cue; cue++) {
                if ((U)(unsigned char)cue->cue[0] != t[p]) continue;
                Z c = lit(t, p, end, cue->cue);
                if (c >= 0 && after_cue(t, c, end, &ds, &de)) { hit = cue; break; }
            }
            if (!hit) { p++; continue; }
            p = de;
            if (hit->birth) {
                Z k = ds;  /* re.search(r"\d{4}", date) */
                while (k < de && digit_run(t, k, de) < 4) k++;
                if (k < de) {
                    int year = 0;
                    for (Z j = k; j < k + 4; j++) year = year * 10 + (int)(t[j] - '0');
                    if (year < 1900) continue;
                }
                if (out_add(out, T_DATE_OF_BIRTH, ds, de, 0.85) < 0) { rc = -1; break; }
            } else if (out_add(out, T_PERSON_DATE, ds, de, 0.8) < 0) {
                rc = -1;
                break;
            }
        }
    }
    spans_free(&windows);
    return rc;
}

/* ================================================================== NameDetector */

/* NameDetector._window_words: windows(…, 2, 120) are around these (sorted by their bytes,
   for any_token_of) */
static const char *const NAME_TRIGGERS[] = {
    "ansprechpartner", "ansprechpartnerin", "antragsteller", "antragstellerin", "arzt",
    "attending", "bediener", "bedienerin", "bewohner", "bewohnerin", "client", "dr",
    "empf\xe4nger", "empf\xe4ngerin", "employee", "familienname", "fr", "frau", "geburtsname",
    "gemeldet", "guarantor", "herr", "herrn", "hr", "insured", "klient", "klientin",
    "kontaktperson", "manager", "miss", "mitarbeiter", "mitarbeiterin", "mlle", "mme", "mr",
    "mrs", "ms", "mx", "nachname", "name", "nurse", "operator", "patient", "patientin",
    "pflegekraft", "physician", "prof", "pt", "reported", "resident", "signed", "sr", "sra",
    "subscriber", "supervisor", "techniker", "technikerin", "unterschrift", "versicherte",
    "versicherten", "versicherter", "vorgesetzte", "vorgesetzter", "vorname", "\xe4rztin", NULL,
};
#define NAME_TRIGGERS_COUNT ((Z)(sizeof NAME_TRIGGERS / sizeof NAME_TRIGGERS[0] - 1))
/* _STARTS: a match is tried only where one of these (present as a word) begins; sorted by
   their bytes, so that those with one first letter stand together */
static const char *const NAME_STARTS[] = {
    "ansprechpartner", "ansprechpartnerin", "antragsteller", "antragstellerin", "arzt",
    "attending", "bediener", "bedienerin", "bewohner", "bewohnerin", "client", "contact",
    "customer", "dr", "empf\xe4nger", "empf\xe4ngerin", "employee", "familienname", "first",
    "fr", "frau", "full", "geburtsname", "gemeldet", "guarantor", "herr", "herrn", "hr",
    "insured", "klient", "klientin", "kontaktperson", "last", "manager", "member", "miss",
    "mitarbeiter", "mitarbeiterin", "mlle", "mme", "mr", "mrs", "ms", "mx", "nachname", "name",
    "nurse", "operator", "patient", "patientin", "pflegekraft", "physician", "prof", "pt",
    "reported", "resident", "signed", "sr", "sra", "subscriber", "supervisor", "techniker",
    "technikerin", "unterschrift", "versicherte", "versicherten", "versicherter", "vorgesetzte",
    "vorgesetzten", "vorgesetzter", "vorname", "\xe4rztin", NULL,
};
#define NAME_STARTS_COUNT ((Z)(sizeof NAME_STARTS / sizeof NAME_STARTS[0] - 1))

/* Whether a _STARTS word that is in scan.words begins at low[p:end] (match_in_windows'
   needles); `present` caches ct_word per word. */
static int starts_here(const CText *ct, Z p, Z end, signed char *present) {
    U c = ct->low[p];
    if (c > 0xFF) return 0;
    Z lo = 0, hi = NAME_STARTS_COUNT;  /* the first word whose first byte is >= c */
    while (lo < hi) {
        Z mid = (lo + hi) / 2;
        if ((unsigned char)NAME_STARTS[mid][0] < c) lo = mid + 1;
        else hi = mid;
    }
    for (Z k = lo; k < NAME_STARTS_COUNT && (unsigned char)NAME_STARTS[k][0] == c; k++) {
        if (!starts_with(ct->low, p, end, NAME_STARTS[k])) continue;
        if (present[k] < 0) present[k] = (signed char)ct_word(ct, NAME_STARTS[k]);
        if (present[k]) return 1;
    }
    return 0;
}

/* _TITLES = (?:Mr|Mrs|...)\.? in lit() form, in the order of the choices: each title with
   its dot, then without. */
static const char *const TITLES[] = {
    "Mr.", "Mr", "Mrs.", "Mrs", "Ms.", "Ms", "Mx.", "Mx", "Miss.", "Miss", "Dr.", "Dr",
    "Prof.", "Prof", "Herrn.", "Herrn", "Herr.", "Herr", "Frau.", "Frau", "Hr.", "Hr", "Fr.",
    "Fr", "Sr.", "Sr", "Sra.", "Sra", "Mme.", "Mme", "Mlle.", "Mlle", NULL,
};
/* _LABELS, optional endings taken first */
static const char *const LABELS[] = {
    "*patientin", "*patient", "*pt.", "*pt", "*resident", "*client", "*insured",
    "*subscriber", "*guarantor", "*employee", "*mitarbeiterin", "*mitarbeiter",
    "*versicherter", "*versicherten", "*versicherte", "*bewohnerin", "*bewohner", "*klientin",
    "*klient", "*empf\xe4ngerin", "*empf\xe4nger", "*antragstellerin", "*antragsteller", NULL,
};
/* _NAME_LABELS: the qualified [Nn]ame (each qualifier, then none), then the others */
static const char *const NAME_LABELS[] = {
    "*full+*name", "*last+*name", "*first+*name", "*patient+*name", "*employee+*name",
    "*member+*name", "*customer+*name", "*contact+*name", "*subscriber+*name",
    "*guarantor+*name", "*name", "Nachname", "Vorname", "Familienname", "Geburtsname",
    "Ansprechpartnerin", "Ansprechpartner", "Kontaktperson", "Unterschrift", "Signed",
    "*signed+by", "Attending", "Physician", "Arzt", "\xc4rztin", "Pflegekraft", "Nurse",
    "Supervisor", "Manager", "Vorgesetzter", "Vorgesetzten", "Vorgesetzte", "Reported+by",
    "Gemeldet+von", "Operator", "Bedienerin", "Bediener", "Technikerin", "Techniker", NULL,
};
static const char *const PARTICLES[] = {
    "von+", "van+", "de+", "der+", "den+", "zu+", "da+", "di+", "le+", "la+", NULL,
};
static const char *const NOT_NAMES[] = {
    "Care", "Safety", "Portal", "Services", "Service", "Information", "Record", "Records",
    "Name", "Education", "Satisfaction", "Experience", "Advocate", "Handbook", "Data", "Room",
    "Zero", "Access", "Transport", "Flow", "Centered", "Engagement", "Rights", "Identifier",
    "Id", "ID", "Number", "No", "Intake", "Summary", "History", "Status", "Consent", "Of",
    "The", "A", "An", "And", "Or", "In", "On", "At", "For", "To", "With", "Is", "Was", "Has",
    "Die", "Der", "Das", "Ein", "Eine", "Und", "Mit", "Ist", "War", "Hat", "Wurde", "Nach",
    "Bei", "Am", "Im", "Vom", "Zur", "Zum", "Seit", "Mai", "Unknown", "Anonymous", "None",
    "Strangelove", "Seuss", "Who", "House", "Jekyll", "Watson", "No.", "Nr", "Nummer", NULL,
};

/* [A-ZÄÖÜ] */
static int name_upper(U c) { return is_ascii_upper(c) || c == 0xC4 || c == 0xD6 || c == 0xDC; }
/* [a-zäöüßéèáàóòíìúùñç] */
static int name_lower(U c) {
    if (is_ascii_lower(c)) return 1;
    switch (c) {
    case 0xE4: case 0xF6: case 0xFC: case 0xDF: case 0xE9: case 0xE8: case 0xE1: case 0xE0:
    case 0xF3: case 0xF2: case 0xED: case 0xEC: case 0xFA: case 0xF9: case 0xF1: case 0xE7:
        return 1;
    }
    return 0;
}

/* _NAME_WORD = [UP](?:'[UP])?[LOW]+(?:[UP][LOW]+)? at t[i:end]: its end or -1. Greedy
   throughout: what follows a name word is optional, so its longest form is the one taken. */
static Z name_word(const U *t, Z i, Z end) {
    if (i >= end || !name_upper(t[i])) return -1;
    Z j = i + 1;
    if (j + 1 < end && t[j] == '\'' && name_upper(t[j + 1])) j += 2;  /* else [LOW]+ fails */
    if (j >= end || !name_lower(t[j])) return -1;
    while (j < end && name_lower(t[j])) j++;
    if (j + 1 < end && name_upper(t[j]) && name_lower(t[j + 1])) {
        j += 2;
        while (j < end && name_lower(t[j])) j++;
    }
    return j;
}

/* _NAME_WORD(?:-_NAME_WORD)* */
static Z name_hyphenated(const U *t, Z i, Z end) {
    Z j = name_word(t, i, end);
    while (j >= 0 && j < end && t[j] == '-') {
        Z k = name_word(t, j + 1, end);
        if (k < 0) break;
        j = k;
    }
    return j;
}

/* _NAME: a hyphenated name word, then up to two more, each after [ \t]+ and an optional
   particle ("von", "de", ...) with its [ \t]+. Each repetition is taken when it can be
   (nothing after _NAME can fail). */
static Z name_at(const U *t, Z i, Z end) {
    Z j = name_hyphenated(t, i, end);
    for (int rep = 0; rep < 2 && j >= 0; rep++) {
        Z k = spaces(t, j, end);
        if (k < 0) break;
        Z x = -1;
        for (const char *const *pa = PARTICLES; *pa && x < 0; pa++) {
            Z m = lit(t, k, end, *pa);
            if (m >= 0) x = name_hyphenated(t, m, end);
        }
        if (x < 0) x = name_hyphenated(t, k, end);
        if (x < 0) break;
        j = x;
    }
    return j;
}

/* One repetition of _EXTRA_TITLES at t[i:end]: the end of the first choice that gets to
   its [ \t]+, or -1. (?:_TITLES|Dipl\.-\w+\.?|Dr\.[ \t]?med\.|med\.|Univ\.[ \t]?Prof\.)
   [ \t]+: the choices begin differently except _TITLES' "Dr" and "Dr. med."; when both can
   be taken, "Dr." + space leads on to "med." + space, the very end of "Dr. med.", so the
   second choice would only repeat what the first tried. */
static Z extra_title(const U *t, Z i, Z end) {
    if (i >= end) return -1;
    for (const char *const *ti = TITLES; *ti; ti++) {
        if (!lit_first(t, i, *ti)) continue;
        Z e = lit(t, i, end, *ti);
        if (e >= 0 && (e = spaces(t, e, end)) >= 0) return e;
    }
    Z e = lit(t, i, end, "Dipl.-");
    if (e >= 0) {
        Z w = e;
        while (w < end && is_w(t[w])) w++;
        if (w > e) {
            if (w < end && t[w] == '.') w++;
            if ((w = spaces(t, w, end)) >= 0) return w;
        }
    }
    static const char *const OTHERS[] = {"Dr.?med.", "med.", "Univ.?Prof.", NULL};
    for (const char *const *o = OTHERS; *o; o++) {
        e = lit(t, i, end, *o);
        if (e >= 0 && (e = spaces(t, e, end)) >= 0) return e;
    }
    return -1;
}

/* _EXTRA_TITLES(?P<name>_NAME) from c: the star takes titles as long as it can (one way at
   each step, see extra_title), then _NAME must follow; when it cannot, the star gives back
   one title at a time and _NAME is tried where that title stood ("Herr Dr. 123" names
   "Dr"). Sets the name's span; returns 1 on a match. */
static int titled_name(const U *t, Z c, Z end, Z *ns, Z *ne) {
    Z fallback = -1;  /* the latest title at which _NAME can begin */
    for (;;) {
        Z next = extra_title(t, c, end);
        if (next < 0) break;
        if (name_word(t, c, end) >= 0) fallback = c;
        c = next;
    }
    Z e = name_at(t, c, end);
    if (e < 0 && fallback >= 0) e = name_at(t, c = fallback, end);
    if (e < 0) return 0;
    *ns = c;
    *ne = e;
    return 1;
}

/* NameDetector's pattern tried at t[p:end] (pattern.match):
   (?<![\w.])(?:_TITLES[ \t]+|_LABELS[ \t]*:?[ \t]+|(?:_NAME_LABELS)[ \t]*:[ \t]*)
   _EXTRA_TITLES(?P<name>_NAME)
   The prefixes are tried in order; each has one end that can be followed by a title or a
   name (after every space and the colon), so a prefix is taken there or not at all. */
static int name_match(const U *t, Z p, Z end, Z *ns, Z *ne) {
    if (p > 0 && (is_w(t[p - 1]) || t[p - 1] == '.')) return 0;
    for (const char *const *ti = TITLES; *ti; ti++) {
        if (!lit_first(t, p, *ti)) continue;
        Z e = lit(t, p, end, *ti);
        if (e >= 0 && (e = spaces(t, e, end)) >= 0 && titled_name(t, e, end, ns, ne)) return 1;
    }
    for (const char *const *la = LABELS; *la; la++) {
        if (!lit_first(t, p, *la)) continue;
        Z e = lit(t, p, end, *la);
        if (e < 0) continue;
        /* [ \t]*:?[ \t]+ */
        Z b = e;
        while (b < end && is_sp(t[b])) b++;
        if (b < end && t[b] == ':') b = spaces(t, b + 1, end);
        else if (b == e) b = -1;
        if (b >= 0 && titled_name(t, b, end, ns, ne)) return 1;
    }
    for (const char *const *la = NAME_LABELS; *la; la++) {
        if (!lit_first(t, p, *la)) continue;
        Z e = lit(t, p, end, *la);
        if (e < 0) continue;
        /* [ \t]*:[ \t]* */
        while (e < end && is_sp(t[e])) e++;
        if (e >= end || t[e] != ':') continue;
        e++;
        while (e < end && is_sp(t[e])) e++;
        if (titled_name(t, e, end, ns, ne)) return 1;
    }
    return 0;
}

/* Whether t[start:end] is one of _NOT_NAMES. */
static int not_name(const U *t, Z start, Z end) {
    for (const char *const *w = NOT_NAMES; *w; w++) {
        if ((U)(unsigned char)(*w)[0] == t[start] && starts_with(t, start, end, *w) &&
            lit_len(*w) == end - start) return 1;
    }
    return 0;
}

/* Whether t[a:a+len] and t[b:b+len] are the same. */
static int same_text(const U *t, Z a, Z b, Z len) {
    return memcmp(t + a, t + b, (size_t)len * sizeof(U)) == 0;
}

/* The re-mentions of one surname t[at:at+len]: if it occurs twice (text.count), each
   occurrence as a whole word (_whole_words) that is not inside a found name. */
static int surname_mentions(CText *ct, Z at, Z len, const Spans *found, Out *out) {
    const U *t = ct->s;
    Z n = ct->n;
    const U *word = t + at;
    Z first = find_u(t, 0, n, word, len);
    if (first < 0 || find_u(t, first + len, n, word, len) < 0) return 0;
    Z k = first;
    while (k >= 0) {
        Z e = k + len;
        if ((k == 0 || !is_w(t[k - 1])) && (e == n || !is_w(t[e]))) {
            /* bisect_right(starts, k) - 1 */
            Z lo = 0, hi = found->n;
            while (lo < hi) {
                Z mid = (lo + hi) / 2;
                if (found->v[mid].start <= k) lo = mid + 1;
                else hi = mid;
            }
            if (lo == 0 || k >= found->v[lo - 1].end) {
                if (out_add(out, T_PERSON_NAME, k, e, 0.6) < 0) return -1;
            }
            k = find_u(t, e, n, word, len);
        } else {
            k = find_u(t, k + 1, n, word, len);
        }
    }
    return 0;
}

/* The names that NameDetector's pattern finds in `windows` (match_in_windows with
   whole_below = 0: tried only where a present _STARTS word begins, in the lowered text),
   with trailing _NOT_NAMES words dropped and a name that begins with one skipped, into
   `found`; their surnames (the last word, unless a lone word after "Dr"/"Prof") into
   `surnames` as (start, length), each once, in the order found. */
static int find_names(CText *ct, const Spans *windows, Spans *found, Spans *surnames) {
    signed char present[NAME_STARTS_COUNT];  /* each _STARTS word in scan.words; -1 unknown */
    memset(present, -1, sizeof(present));
    const U *t = ct->s;
    for (Z w = 0; w < windows->n; w++) {
        Z start = windows->v[w].start;
        Z end = windows->v[w].end < ct->n ? windows->v[w].end : ct->n;
        Z last_end = 0;
        for (Z p = start; p < end; p++) {
            /* the lookbehind first: where it fails, whether a needle starts there does
               not matter */
            if (p < last_end || (p > 0 && (is_w(t[p - 1]) || t[p - 1] == '.'))) continue;
            Z ns, ne;
            if (!starts_here(ct, p, end, present) || !name_match(t, p, end, &ns, &ne)) continue;
            last_end = ne;
            /* the \S+ parts of the name (its only spaces are spaces and tabs) */
            Z last = ne;  /* end of the last kept part */
            Z last_start;
            for (;;) {
                last_start = last;
                while (last_start > ns && !is_sp(t[last_start - 1])) last_start--;
                if (!not_name(t, last_start, last)) break;
                if (last_start == ns) { last = -1; break; }
                last = last_start;
                while (is_sp(t[last - 1])) last--;
            }
            if (last < 0) continue;
            Z first_end = ns;
            while (first_end < last && !is_sp(t[first_end])) first_end++;
            if (not_name(t, ns, first_end)) continue;
            if (spans_add(found, ns, last) < 0) return -1;
            if (first_end == last && (starts_with(t, p, ne, "Dr") || starts_with(t, p, ne, "Prof")))
                continue;
            Z len = last - last_start;
            int seen = 0;
            for (Z k = 0; k < surnames->n && !seen; k++)
                seen = surnames->v[k].end == len &&
                       same_text(t, surnames->v[k].start, last_start, len);
            if (!seen && spans_add(surnames, last_start, len) < 0) return -1;
        }
    }
    return 0;
}

/* NameDetector.find: the names found in windows(_window_words, 2, 120) at 0.75, then the
   whole-word re-mentions of each surname of 3 characters or more at 0.6. Python iterates
   the surnames as a set (an order that changes with the hash seed); here they are taken in
   the order found. */
int det_name(CText *ct, Out *out) {
    if (surely_absent(ct, NAME_TRIGGERS, NAME_TRIGGERS_COUNT)) return 0;
    Spans windows = {0}, found = {0}, surnames = {0};
    int rc = ct_windows(ct, NAME_TRIGGERS, 2, 120, NULL, &windows);
    if (rc == 0) rc = find_names(ct, &windows, &found, &surnames);
    for (Z k = 0; rc == 0 && k < found.n; k++)
        rc = out_add(out, T_PERSON_NAME, found.v[k].start, found.v[k].end, 0.75);
    for (Z k = 0; rc == 0 && k < surnames.n; k++) {
        if (surnames.v[k].end >= 3)
            rc = surname_mentions(ct, surnames.v[k].start, surnames.v[k].end, &found, out);
    }
    spans_free(&windows);
    spans_free(&found);
    spans_free(&surnames);
    return rc;
}
