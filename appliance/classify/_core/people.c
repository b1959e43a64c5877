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

/* The patterns of a list (lit() form) that can begin with each byte, in the list's order:
   pats[idx[off[c]]], ..., pats[idx[off[c + 1] - 1]]. The loops over a list try only those
   for the character at hand: the others' first character differs, and none begins with a
   code point above 0xFF. A '*' pattern is listed under both cases. Made by name_init. */
typedef struct {
    const char *const *pats;
    unsigned short off[257];
    unsigned char idx[256];
} FirstIndex;

/* the bytes pattern `pat` can begin with, into b (1 or 2 of them); returns how many */
static int fi_firsts(const char *pat, unsigned char *b) {
    const unsigned char *p = (const unsigned char *)pat;
    if (*p != '*') { b[0] = *p; return 1; }
    b[0] = p[1];
    b[1] = (unsigned char)(p[1] - 32);
    return 2;
}

static void fi_init(FirstIndex *fi) {
    unsigned short at[256] = {0};  /* a counting sort by first byte, stable */
    unsigned char b[2];
    for (unsigned k = 0; fi->pats[k]; k++)
        for (int j = fi_firsts(fi->pats[k], b) - 1; j >= 0; j--) at[b[j]]++;
    unsigned n = 0;
    for (unsigned c = 0; c < 256; c++) {
        fi->off[c] = (unsigned short)n;
        n += at[c];
        at[c] = fi->off[c];
    }
    fi->off[256] = (unsigned short)n;
    for (unsigned k = 0; fi->pats[k]; k++)
        for (int j = fi_firsts(fi->pats[k], b) - 1; j >= 0; j--) fi->idx[at[b[j]]++] = (unsigned char)k;
}

/* The range of fi->idx for the patterns that can begin with c. */
static inline void fi_range(const FirstIndex *fi, U c, Z *from, Z *to) {
    if (c > 0xFF) { *from = *to = 0; return; }
    *from = fi->off[c];
    *to = fi->off[c + 1];
}

/* ---- which of a list's words the text holds (scan.words & words), in one pass ----
 * A WordSet is a static open-addressed hash of a NULL-terminated word list (Latin-1, lower
 * case), keyed by first byte, last byte and length, made on first use. ws_present lists
 * the words that are tokens of the text: on a text with few tokens for the list's size, by
 * one lookup per token (most miss at an empty slot); on a longer one by ct_word per word
 * (each usually ruled out by ct->heads). Both answer `word in scan.words`. */
#define WS_SLOTS 512
#define WS_MAX 128
typedef struct {
    const char *const *words;
    Z count;
    unsigned char len[WS_MAX];
    unsigned char slot[WS_SLOTS];  /* index + 1; 0 empty */
    unsigned char bloom[4096];     /* 1 at word_hash & 4095 of each word (as Token.hash) */
    int ready;
} WordSet;

static inline unsigned ws_key(unsigned first, unsigned last, Z len) {
    return (first ^ (last << 2) ^ ((unsigned)len << 5)) & (WS_SLOTS - 1);
}

static void ws_init(WordSet *ws) {
    Z k = 0;
    for (; ws->words[k]; k++) {
        const unsigned char *w = (const unsigned char *)ws->words[k];
        Z len = (Z)strlen(ws->words[k]);
        ws->len[k] = (unsigned char)len;
        unsigned at = ws_key(w[0], w[len - 1], len);
        while (ws->slot[at]) at = (at + 1) & (WS_SLOTS - 1);
        ws->slot[at] = (unsigned char)(k + 1);
        ws->bloom[word_hash(w, len) & 4095u] = 1;
    }
    ws->count = k;
    ws->ready = 1;
}

/* The index of the word b[0:len] in `ws`, or -1. */
static inline Z ws_find(const WordSet *ws, const unsigned char *b, Z len) {
    for (unsigned at = ws_key(b[0], b[len - 1], len);; at = (at + 1) & (WS_SLOTS - 1)) {
        unsigned e = ws->slot[at];
        if (!e) return -1;
        if (ws->len[e - 1] == len && memcmp(ws->words[e - 1], b, (size_t)len) == 0)
            return (Z)e - 1;
    }
}

/* The indices of the words of `ws` that are tokens of the text, each once, into `idx`
   (room for ws->count); returns how many. */
static Z ws_present(const CText *ct, WordSet *ws, unsigned char *idx) {
    if (!ws->ready) ws_init(ws);
    Z n = 0;
    if (ct->ntokens < 2 * ws->count) {
        /* (locals: the stores into idx are char stores, which the compiler must assume
           may change ct's fields) */
        const Token *tk = ct->tokens, *te = ct->tokens + ct->ntokens;
        const unsigned char *wb = ct->wb;
        const unsigned char *bloom = ws->bloom;
        uint64_t seen[WS_MAX / 64] = {0};
        for (; tk < te; tk++) {
            if (!bloom[tk->hash & 4095u]) continue;  /* the token's word_hash: most miss */
            Z i = ws_find(ws, wb + tk->start, tk->len);
            if (i >= 0 && !((seen[i / 64] >> (i % 64)) & 1)) {
                seen[i / 64] |= 1ull << (i % 64);
                idx[n++] = (unsigned char)i;
            }
        }
    } else {
        for (Z i = 0; i < ws->count; i++)
            if (ct_word(ct, ws->words[i])) idx[n++] = (unsigned char)i;
    }
    return n;
}

/* Whether some needle of those whose second character is `mark` ('.' or '/') and whose
   first is one of the letters `lasts` can occur: the letter (or its capital, the only
   characters lowering to it) just before a `mark` in raw. Where not, token_end_spans and
   punct_spans find nothing for these needles. */
static int mark_after(const CText *ct, unsigned char mark, const char *lasts) {
    const unsigned char *raw = ct->raw;
    Z n = ct->n;
    for (const unsigned char *r = raw + 1;
         r < raw + n && (r = memchr(r, mark, (size_t)(raw + n - r))) != NULL; r++) {
        unsigned char c = r[-1] | 0x20;  /* lasts are ASCII lower-case letters */
        if ((c >= 'a' && c <= 'z') && strchr(lasts, c)) return 1;
    }
    return 0;
}

/* ---- Scan.windows, from words already known to be present ---- */
/* The spans of Scan.windows around every occurrence of `word` in the lowered text
   (Scan.positions: overlapping ones too), appended unsorted. */
static int word_spans(const CText *ct, const char *word, Z before, Z after, Spans *out) {
    Z size = (Z)strlen(word) + after;  /* Latin-1: one byte per code point */
    for (Z at = find_in(ct->low, 0, ct->n, word); at >= 0;
         at = find_in(ct->low, at + 1, ct->n, word)) {
        if (spans_add(out, at > before ? at - before : 0, at + size) < 0) return -1;
    }
    return 0;
}

/* The same for needles whose second character is a punctuation mark, '.' or '/'
   (NULL-terminated list): every occurrence of a needle at `at` has its mark at at + 1,
   which nothing but the mark itself lowers to and which raw holds exactly there; so memchr
   finds each mark on raw and the needles with it are compared around them. */
static int punct_spans(const CText *ct, const char *const *needles, Z before, Z after,
                       Spans *out) {
    const U *low = ct->low;
    Z n = ct->n;
    for (const char *mk = "./"; *mk; mk++) {
        unsigned char mark = (unsigned char)*mk;
        int any = 0;
        for (const char *const *nd = needles; *nd; nd++) any |= (unsigned char)(*nd)[1] == mark;
        if (!any) continue;
        const unsigned char *r = ct->raw + 1, *stop = ct->raw + n;
        while (r < stop && (r = memchr(r, mark, (size_t)(stop - r))) != NULL) {
            Z at = (Z)(r - ct->raw) - 1;
            for (const char *const *nd = needles; *nd; nd++) {
                const unsigned char *w = (const unsigned char *)*nd;
                if (w[1] != mark || low[at] != w[0]) continue;
                Z k = 2;
                while (w[k] && at + k < n && low[at + k] == w[k]) k++;
                if (w[k]) continue;
                if (spans_add(out, at > before ? at - before : 0, at + k + after) < 0) return -1;
            }
            r++;
        }
    }
    return 0;
}

/* punct_spans for a text whose tokens are listed: a needle's first character is an ASCII
   letter (y, j, d), which only itself and its capital lower to (Python's str.lower; the
   Kelvin sign, the one other character lowering to an ASCII letter, gives k), and both
   are word bytes; the mark after it is not. So each occurrence begins at the last byte of
   a token followed by the mark, and only token ends need looking at. */
static int token_end_spans(const CText *ct, const char *const *needles, Z before, Z after,
                           Spans *out) {
    const U *low = ct->low;
    const unsigned char *raw = ct->raw;
    Z n = ct->n;
    for (const Token *tk = ct->tokens, *te = ct->tokens + ct->ntokens; tk < te; tk++) {
        Z e = tk->start + tk->len;  /* the mark's place */
        if (e >= n || (raw[e] != '.' && raw[e] != '/')) continue;
        Z at = e - 1;
        for (const char *const *nd = needles; *nd; nd++) {
            const unsigned char *w = (const unsigned char *)*nd;
            if (low[at] != w[0] || raw[e] != w[1]) continue;
            Z k = 2;
            while (w[k] && at + k < n && low[at + k] == w[k]) k++;
            if (w[k]) continue;
            if (spans_add(out, at > before ? at - before : 0, at + k + after) < 0) return -1;
        }
    }
    return 0;
}

/* Scan.windows(ws->words, before, after, needles) given the present words (`idx`, `count`
   of them) and needles with a punctuation mark second (or NULL); the marks are looked for
   after the tokens on a text with few of them, else by memchr. */
static int windows_of(const CText *ct, const WordSet *ws, const unsigned char *idx, Z count,
                      const char *const *needles, Z before, Z after, Spans *out) {
    spans_clear(out);
    for (Z k = 0; k < count; k++)
        if (word_spans(ct, ws->words[idx[k]], before, after, out) < 0) return -1;
    if (needles && (ct->ntokens < 64 ? token_end_spans(ct, needles, before, after, out)
                                     : punct_spans(ct, needles, before, after, out)) < 0)
        return -1;
    spans_merge(out);
    return 0;
}

/* ================================================================== AgeDetector */

static const char *const AGE_TRIGGERS[] = {
    "age", "ages", "aged", "alter", "old", "yo", "jahre", "j\xe4hrige", "j\xe4hriger",
    "j\xe4hrigen", "j\xe4hriges", "j\xe4hrigem", NULL,
};
static WordSet AGE_WORDS = {AGE_TRIGGERS};

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

/* Whether the text holds a run of digits that can give an age of 90 to 125: every match's
   number is a run of 2 or 3 digits with no digit before it (a non-word character, or the
   trigger's letters, spaces, colon, "of "/"von " stand there), and its value is 90 to 125
   only when it begins "9d", "09d", "10d", "11d" or "12d". The lowered text has its digits
   where raw has (nothing else lowers to a digit), so memchr on raw finds the 9s and 1s. */
static int age_digits(const CText *ct) {
    const unsigned char *raw = ct->raw;
    Z n = ct->n;
    for (const unsigned char *r = raw; r < raw + n && (r = memchr(r, '9', (size_t)(raw + n - r)));
         r++) {
        Z i = r - raw;  /* "9d" from i, or "09d" from i - 1 */
        if (i + 1 >= n || !is_d(raw[i + 1])) continue;
        if (i == 0 || !is_d(raw[i - 1])) return 1;
        if (raw[i - 1] == '0' && (i == 1 || !is_d(raw[i - 2]))) return 1;
    }
    for (const unsigned char *r = raw; r < raw + n && (r = memchr(r, '1', (size_t)(raw + n - r)));
         r++) {
        Z i = r - raw;  /* "1[0-2]d" from i */
        if (i + 2 < n && raw[i + 1] >= '0' && raw[i + 1] <= '2' && is_d(raw[i + 2]) &&
            (i == 0 || !is_d(raw[i - 1])))
            return 1;
    }
    return 0;
}

/* AgeDetector.find: finditer over the lowered text in windows(triggers, 12, 12, needles),
   ages 90 to 125 (none without such digits: age_digits). */
int det_age(CText *ct, Out *out) {
    if (!ct->has_digit || !age_digits(ct)) return 0;
    unsigned char idx[WS_MAX];  /* the present triggers, and the needles */
    Z npresent = ws_present(ct, &AGE_WORDS, idx);
    /* the needles, when no trigger gives a window: "y/o" and "j." by their marks, "y.o."
       only with a one-letter token "o" (between its dots; o or O there) */
    int marked = npresent || mark_after(ct, '/', "y") || mark_after(ct, '.', "j") ||
                 (ct_word(ct, "o") && mark_after(ct, '.', "y"));
    static const char *const NEEDLES[] = {"y/o", "y.o.", "j.", NULL};
    if (!npresent && !marked) return 0;  /* no window */
    Spans windows = {0};
    if (windows_of(ct, &AGE_WORDS, idx, npresent, marked ? NEEDLES : NULL, 12, 12,
                   &windows) < 0) {
        spans_free(&windows);
        return -1;
    }
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

/* the words of Scan.windows (a WordSet) */
static const char *const DATE_TRIGGERS[] = {
    "admission", "admit", "admitted", "appointment", "aufgenommen", "aufnahme",
    "behandlungsdatum", "birth", "birthdate", "birthday", "born", "date", "deceased", "died",
    "discharge", "discharged", "dob", "dos", "entlassen", "entlassung", "expired", "geb",
    "geboren", "geburtsdatum", "geburtstag", "op", "operated", "operiert", "procedure", "seen",
    "sterbedatum", "surgery", "termin", "verstorben", "visit", "vorstellung", NULL,
};
static WordSet DATE_WORDS = {DATE_TRIGGERS};

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

/* The cues by first byte, in the pattern's order: CUE_FIRST[c] is the first cue beginning
   with c (index + 1, 0 none), CUE_NEXT[k] the next one after cue k with its first byte. */
#define NCUES ((int)(sizeof CUES / sizeof CUES[0] - 1))
static unsigned char CUE_FIRST[256], CUE_NEXT[NCUES];
static int cues_ready;

static void cues_init(void) {
    for (int k = NCUES - 1; k >= 0; k--) {
        unsigned char c = (unsigned char)CUES[k].cue[0];
        CUE_NEXT[k] = CUE_FIRST[c];
        CUE_FIRST[c] = (unsigned char)(k + 1);
    }
    cues_ready = 1;
}

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
    if (!cues_ready) cues_init();
    unsigned char idx[WS_MAX];  /* the present triggers, and the needle "d.o.b" */
    Z npresent = ws_present(ct, &DATE_WORDS, idx);
    /* "d.o.b" has its "o" between two dots: a one-letter token "o" (o or O there, the
       only characters lowering to it); without one there is no needle to look for */
    int marked = ct_word(ct, "o") && mark_after(ct, '.', "d");
    static const char *const DOB[] = {"d.o.b", NULL};
    if (!npresent && !marked) return 0;  /* no window */
    Spans windows = {0};
    if (windows_of(ct, &DATE_WORDS, idx, npresent, marked ? DOB : NULL, 12, 80, &windows) < 0) {
        spans_free(&windows);
        return -1;
    }
    const U *t = ct->low;
    int rc = 0;
    /* A match begins where a cue's first byte (an ASCII letter other than k) is in the
       lowered text with no \w before it: the text holds that letter or its capital there
       (only the Kelvin sign also lowers to an ASCII letter, to k), a word byte, after a
       character that is no word byte (those are letters, which stay \w lowered). So only
       token starts need trying: the tokens beginning in each window, in order, from the
       place the last match ended (the windows are sorted and disjoint). */
    const Token *tok = ct->tokens, *tok_end = ct->tokens + ct->ntokens;
    for (Z w = 0; w < windows.n && rc == 0; w++) {
        Z end = windows.v[w].end < ct->n ? windows.v[w].end : ct->n;
        Z p = windows.v[w].start;
        for (;;) {
            while (tok < tok_end && tok->start < p) tok++;
            if (tok == tok_end || tok->start >= end) break;
            p = tok->start;
            /* a cue's first byte, then the lookbehind (?<!\w) */
            U c0 = t[p];
            if (c0 > 0xFF || !CUE_FIRST[c0] || (p > 0 && is_w(t[p - 1]))) { p++; continue; }
            const Cue *hit = NULL;
            Z ds = 0, de = 0;
            for (int k = CUE_FIRST[c0] - 1; k >= 0; k = CUE_NEXT[k] - 1) {
                Z c = lit(t, p, end, CUES[k].cue);
                if (c >= 0 && after_cue(t, c, end, &ds, &de)) { hit = &CUES[k]; break; }
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

/* NameDetector._window_words: windows(…, 2, 120) are around these (each is one of
   NAME_STARTS too, which NAME_WORDS looks up) */
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
static WordSet NAME_WORDS = {NAME_STARTS};  /* _STARTS holds every window word too */

/* Per first byte, the range of NAME_STARTS beginning with it (the list is sorted), and
   whether each _STARTS word is a window word (NAME_TRIGGERS); made with NAME_WORDS. */
static unsigned char START_FROM[256], START_TO[256];
static unsigned char START_IS_TRIGGER[WS_MAX];

static FirstIndex TITLE_FI, LABEL_FI, NAME_LABEL_FI, PARTICLE_FI;  /* (defined below) */

static void name_init(void) {
    fi_init(&TITLE_FI);
    fi_init(&LABEL_FI);
    fi_init(&NAME_LABEL_FI);
    fi_init(&PARTICLE_FI);
    ws_init(&NAME_WORDS);
    for (Z k = NAME_STARTS_COUNT - 1; k >= 0; k--) {
        unsigned char c = (unsigned char)NAME_STARTS[k][0];
        if (!START_TO[c]) START_TO[c] = (unsigned char)(k + 1);
        START_FROM[c] = (unsigned char)k;
    }
    for (const char *const *w = NAME_TRIGGERS; *w; w++) {
        Z k = ws_find(&NAME_WORDS, (const unsigned char *)*w, (Z)strlen(*w));
        if (k >= 0) START_IS_TRIGGER[k] = 1;  /* every window word is one of _STARTS */
    }
}

/* Whether a _STARTS word that is in scan.words (`present`) begins at low[p:end]
   (match_in_windows' needles); c = low[p], known to be the first byte of one. */
static inline int starts_here(const CText *ct, Z p, Z end, U c, const unsigned char *present) {
    for (Z k = START_FROM[c]; k < START_TO[c]; k++) {
        if (present[k] && starts_with(ct->low, p, end, NAME_STARTS[k])) return 1;
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
static FirstIndex TITLE_FI = {TITLES}, LABEL_FI = {LABELS}, NAME_LABEL_FI = {NAME_LABELS},
                  PARTICLE_FI = {PARTICLES};

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
        Z from, to;
        fi_range(&PARTICLE_FI, t[k], &from, &to);  /* (t[end] is readable; lit stops there) */
        for (Z q = from; q < to && x < 0; q++) {
            Z m = lit(t, k, end, PARTICLES[PARTICLE_FI.idx[q]]);
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
    Z from, to;
    fi_range(&TITLE_FI, t[i], &from, &to);
    for (Z q = from; q < to; q++) {
        Z e = lit(t, i, end, TITLES[TITLE_FI.idx[q]]);
        if (e >= 0 && (e = spaces(t, e, end)) >= 0) return e;
    }
    if (t[i] != 'D' && t[i] != 'm' && t[i] != 'U') return -1;  /* what the others begin with */
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
    Z from, to;
    fi_range(&TITLE_FI, t[p], &from, &to);
    for (Z q = from; q < to; q++) {
        Z e = lit(t, p, end, TITLES[TITLE_FI.idx[q]]);
        if (e >= 0 && (e = spaces(t, e, end)) >= 0 && titled_name(t, e, end, ns, ne)) return 1;
    }
    fi_range(&LABEL_FI, t[p], &from, &to);
    for (Z q = from; q < to; q++) {
        Z e = lit(t, p, end, LABELS[LABEL_FI.idx[q]]);
        if (e < 0) continue;
        /* [ \t]*:?[ \t]+ */
        Z b = e;
        while (b < end && is_sp(t[b])) b++;
        if (b < end && t[b] == ':') b = spaces(t, b + 1, end);
        else if (b == e) b = -1;
        if (b >= 0 && titled_name(t, b, end, ns, ne)) return 1;
    }
    fi_range(&NAME_LABEL_FI, t[p], &from, &to);
    for (Z q = from; q < to; q++) {
        Z e = lit(t, p, end, NAME_LABELS[NAME_LABEL_FI.idx[q]]);
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

/* Whether t[start:end] is one of _NOT_NAMES (looked up in a WordSet by its first and last
   code points and length; a code point above 0xFF gives some key, and no word matches). */
static WordSet NOT_NAME_WORDS = {NOT_NAMES};

static int not_name(const U *t, Z start, Z end) {
    Z len = end - start;
    if (len <= 0) return 0;
    if (!NOT_NAME_WORDS.ready) ws_init(&NOT_NAME_WORDS);
    const WordSet *ws = &NOT_NAME_WORDS;
    for (unsigned at = ws_key(t[start], t[end - 1], len);; at = (at + 1) & (WS_SLOTS - 1)) {
        unsigned e = ws->slot[at];
        if (!e) return 0;
        if (ws->len[e - 1] != len) continue;
        const unsigned char *w = (const unsigned char *)ws->words[e - 1];
        Z k = 0;
        while (k < len && t[start + k] == (U)w[k]) k++;
        if (k == len) return 1;
    }
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
static int find_names(CText *ct, const Spans *windows, const unsigned char *present,
                      const unsigned char *idx, Z npresent, Spans *found, Spans *surnames) {
    /* The bytes a match can begin with: the pattern's first character is an ASCII
       letter, or "Ä" (Ärztin), in either case, and where a present _STARTS word begins
       its lowering is that word's first byte. So raw (the text's byte there; '?' above
       0xFF) must be one of the first bytes of the present words (idx) or their capitals. */
    unsigned char first_ok[256] = {0};
    for (Z k = 0; k < npresent; k++) {
        unsigned char c = (unsigned char)NAME_STARTS[idx[k]][0];
        first_ok[c] = first_ok[c - 32] = 1;  /* a-z and ä: their capitals are 32 below */
    }
    const U *t = ct->s;
    const unsigned char *raw = ct->raw;
    /* Only token starts can pass the two tests below: such a first byte is a word byte,
       and a character that is not \w nor '.' before it is no word byte (the word bytes
       are letters), so a token begins there. So the tokens that begin in each window are
       visited, in order, instead of every place (the windows are sorted and disjoint). */
    const Token *tok = ct->tokens, *tok_end = ct->tokens + ct->ntokens;
    for (Z w = 0; w < windows->n; w++) {
        Z start = windows->v[w].start;
        Z end = windows->v[w].end < ct->n ? windows->v[w].end : ct->n;
        Z last_end = 0;
        while (tok < tok_end && tok->start < start) tok++;
        for (; tok < tok_end && tok->start < end; tok++) {
            Z p = tok->start;
            /* a needle's first byte, then the lookbehind: where either fails, nothing
               matches at p */
            if (!first_ok[raw[p]]) continue;
            if (p < last_end || (p > 0 && (is_w(t[p - 1]) || t[p - 1] == '.'))) continue;
            Z ns, ne;
            U c = ct->low[p];
            if (c > 0xFF || !starts_here(ct, p, end, c, present) || !name_match(t, p, end, &ns, &ne))
                continue;
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
    if (!NAME_WORDS.ready) name_init();
    unsigned char idx[WS_MAX], win[WS_MAX];  /* the _STARTS words in scan.words */
    Z npresent = ws_present(ct, &NAME_WORDS, idx), nwin = 0;
    for (Z k = 0; k < npresent; k++)  /* those that are window words */
        if (START_IS_TRIGGER[idx[k]]) win[nwin++] = idx[k];
    if (!nwin) return 0;
    unsigned char present[WS_MAX] = {0};
    for (Z k = 0; k < npresent; k++) present[idx[k]] = 1;
    Spans windows = {0}, found = {0}, surnames = {0};
    int rc = windows_of(ct, &NAME_WORDS, win, nwin, NULL, 2, 120, &windows);
    if (rc == 0) rc = find_names(ct, &windows, present, idx, npresent, &found, &surnames);
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
