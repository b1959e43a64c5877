/* secrets.py: SecretDetector.find for the default config (site patterns, `extra_patterns`,
 * run in Python and are merged by the core). */
#include "core.h"

static int ascii_alnum(U c) { return is_d(c) || is_ascii_upper(c) || is_ascii_lower(c); }

/* ------------------------------------------------------------------ vendor tokens */

/* The length of the run of [A-Za-z0-9] (extra: also the characters of `more`) from i. */
static Z run_of(const U *s, Z n, Z i, const char *more) {
    Z j = i;
    while (j < n && (ascii_alnum(s[j]) || (s[j] < 128 && s[j] && strchr(more, (int)s[j]))))
        j++;
    return j - i;
}

/* (?:live|test)_ at i: the position after it, or -1 */
static Z live_or_test(const U *s, Z n, Z i) {
    if (starts_with(s, i, n, "live_") || starts_with(s, i, n, "test_")) return i + 5;
    return -1;
}

/* eyJ[A-Za-z0-9_-]{8,} at i (the class has no "."): the end of the greedy run, or -1 */
static Z jwt_part(const U *s, Z n, Z i, int prefixed) {
    if (prefixed) {
        if (!starts_with(s, i, n, "eyJ")) return -1;
        i += 3;
    }
    Z r = run_of(s, n, i, "_-");
    return r >= 8 ? i + r : -1;
}

/* The end of the token pattern (_TOKENS joined by "|") matched at i, or -1; *type gets the
   finding type of the alternative that matched (the first that does, as `re` tries them).
   Each alternative ends in a greedy class run that nothing follows, so it takes the whole
   run (up to its maximum); the optional prefixes of "sk-" are all in the class that follows
   them, so every way through them ends at the end of the same run: the run after "sk-"
   needs 20 characters. */
static Z token_at(const U *s, Z n, Z i, int *type) {
    Z r;
    *type = T_API_KEY;
    switch (s[i]) {
    case 'A':
        /* (?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[A-Z0-9]{16} */
        if (starts_with(s, i, n, "AKIA") || starts_with(s, i, n, "ASIA") ||
            starts_with(s, i, n, "AGPA") || starts_with(s, i, n, "AIDA") ||
            starts_with(s, i, n, "AROA") || starts_with(s, i, n, "ANPA") ||
            starts_with(s, i, n, "AIPA")) {
            Z k = 0;
            while (k < 16 && i + 4 + k < n && (is_d(s[i + 4 + k]) || is_ascii_upper(s[i + 4 + k])))
                k++;
            if (k == 16) { *type = T_CLOUD_ACCESS_KEY; return i + 20; }
        }
        /* AccountKey=[A-Za-z0-9+/]{40,}={0,2} */
        if (starts_with(s, i, n, "AccountKey=")) {
            r = run_of(s, n, i + 11, "+/");
            if (r >= 40) {
                Z e = i + 11 + r;
                if (e < n && s[e] == '=') e++;
                if (e < n && s[e] == '=') e++;
                *type = T_CLOUD_ACCESS_KEY;
                return e;
            }
        }
        /* AIza[0-9A-Za-z_-]{35} */
        if (starts_with(s, i, n, "AIza") && run_of(s, n, i + 4, "_-") >= 35) return i + 39;
        return -1;
    case 'g':
        /* gh[pousr]_[A-Za-z0-9]{36,255} */
        if (i + 3 < n && s[i + 1] == 'h' && s[i + 3] == '_' && s[i + 2] < 128 && s[i + 2] &&
            strchr("pousr", (int)s[i + 2])) {
            r = run_of(s, n, i + 4, "");
            if (r >= 36) return i + 4 + (r < 255 ? r : 255);
        }
        /* github_pat_[A-Za-z0-9_]{22,255} */
        if (starts_with(s, i, n, "github_pat_")) {
            r = run_of(s, n, i + 11, "_");
            if (r >= 22) return i + 11 + (r < 255 ? r : 255);
        }
        /* glpat-[A-Za-z0-9_-]{20,} */
        if (starts_with(s, i, n, "glpat-")) {
            r = run_of(s, n, i + 6, "_-");
            if (r >= 20) return i + 6 + r;
        }
        return -1;
    case 's':
        /* sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_-]{20,} */
        if (starts_with(s, i, n, "sk-")) {
            r = run_of(s, n, i + 3, "_-");
            if (r >= 20) return i + 3 + r;
        }
        /* sk_(?:live|test)_[A-Za-z0-9]{16,} */
        if (starts_with(s, i, n, "sk_")) {
            Z at = live_or_test(s, n, i + 3);
            if (at >= 0 && (r = run_of(s, n, at, "")) >= 16) return at + r;
        }
        return -1;
    case 'x':
        /* xox[abposr]-[A-Za-z0-9-]{10,} */
        if (starts_with(s, i, n, "xox") && i + 4 < n && s[i + 3] < 128 && s[i + 3] &&
            strchr("abposr", (int)s[i + 3]) && s[i + 4] == '-') {
            r = run_of(s, n, i + 5, "-");
            if (r >= 10) return i + 5 + r;
        }
        return -1;
    case 'r':
    case 'p':
        /* rk_(?:live|test)_[A-Za-z0-9]{16,}, pk_(?:live|test)_[A-Za-z0-9]{16,} */
        if (i + 2 < n && s[i + 1] == 'k' && s[i + 2] == '_') {
            Z at = live_or_test(s, n, i + 3);
            if (at >= 0 && (r = run_of(s, n, at, "")) >= 16) return at + r;
        }
        return -1;
    case 'h':
        /* hf_[A-Za-z0-9]{30,} */
        if (starts_with(s, i, n, "hf_") && (r = run_of(s, n, i + 3, "")) >= 30) return i + 3 + r;
        return -1;
    case 'n':
        /* npm_[A-Za-z0-9]{36} */
        if (starts_with(s, i, n, "npm_") && run_of(s, n, i + 4, "") >= 36) return i + 40;
        return -1;
    case 'e': {
        /* eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,} */
        Z e = jwt_part(s, n, i, 1);
        if (e < 0 || e >= n || s[e] != '.') return -1;
        e = jwt_part(s, n, e + 1, 1);
        if (e < 0 || e >= n || s[e] != '.') return -1;
        return jwt_part(s, n, e + 1, 0);
    }
    }
    return -1;
}

/* The characters a token can begin with (the first characters of _TOKENS). */
static const unsigned char TOKEN_FIRST[128] = {
    ['A'] = 1, ['g'] = 1, ['s'] = 1, ['x'] = 1, ['r'] = 1, ['p'] = 1, ['h'] = 1, ['n'] = 1,
    ['e'] = 1,
};
/* Every token holds one of these 0 to 6 characters after its start: "A" (AKIA..., AIza...,
   AccountKey=) at 0, "_" at 2, 3 or 6 (sk_, ghp_, github_), "-" at 2, 4 or 5 (sk-, xoxb-,
   glpat-), "J" at 2 (eyJ). */
#define TOKEN_ANCHORS "A_-J"
#define TOKEN_REACH 6

/* The first loop of find: self._tokens.finditer(text), each match reported unless a letter,
   digit or "_" precedes it (a match that is not reported is still passed over). finditer
   tries every position in turn; only those up to TOKEN_REACH before an anchor can match, so
   only they are tried (in order, each once, none inside the last match). find runs this
   only when _may_hold_token holds (may_hold_token below). */
static int tokens(const CText *ct, Out *out) {
    const U *s = ct->s;
    const char *raw = (const char *)ct->raw;   /* 0-terminated; anchors are ASCII */
    Z n = ct->n;
    Z pos = 0;   /* finditer's position: everything before it is tried or passed over */
    for (Z j = (Z)strcspn(raw, TOKEN_ANCHORS); j < n; j += 1 + (Z)strcspn(raw + j + 1, TOKEN_ANCHORS)) {
        if (!raw[j]) continue;   /* a NUL in the text, not an anchor */
        if (j < pos) continue;
        if (pos < j - TOKEN_REACH) pos = j - TOKEN_REACH;
        while (pos <= j) {
            Z i = pos;
            int type;
            Z end = s[i] < 128 && TOKEN_FIRST[s[i]] ? token_at(s, n, i, &type) : -1;
            if (end < 0) { pos++; continue; }
            if (!(i && (is_alnum(s[i - 1]) || s[i - 1] == '_')))
                if (out_add(out, type, i, end, 0.97) < 0) return -1;
            pos = end;
        }
    }
    return 0;
}

/* The searches below skip on Scan.raw (Latin-1, "?" above 0xFF) with glibc's vectorised
   memchr: an ASCII character other than "?" stands in raw exactly where it does in the
   text. */

/* The first i in [from, n) where raw[i] == c, or -1. */
static inline Z find_byte(const unsigned char *raw, Z from, Z n, int c) {
    if (from >= n) return -1;
    const unsigned char *at = memchr(raw + from, c, (size_t)(n - from));
    return at ? at - raw : -1;
}

/* Where the ASCII `needle` (no "?") first occurs at or after `from`, or -1: skips to its
   character at `key` (one that is rare in prose). */
static inline Z find_raw(const CText *ct, Z from, const char *needle, Z key) {
    const unsigned char *raw = ct->raw;
    Z n = ct->n, len = lit_len(needle);
    for (Z p = find_byte(raw, from + key, n, needle[key]); p >= 0;
         p = find_byte(raw, p + 1, n, needle[key])) {
        if (p - key + len > n) return -1;
        Z q = 0;
        while (q < len && raw[p - key + q] == (unsigned char)needle[q]) q++;
        if (q == len) return p - key;
    }
    return -1;
}

/* What find's gates look for in the text, found in one pass over Scan.raw that stops only at
   "J", "A", "B" and "/" (rare in prose; found 16 bytes at a time): whether it holds "eyJ" or a
   _TOKEN_NEEDLES ("AKIA", "AIza"...; _may_hold_token's `"A" in text and any(...)`), and the
   first "-----BEGIN " and "://" (-1 when none). A character stops being looked for once
   what it stands for is known. */
typedef struct { int token_needle; Z begin, sep; } Marks;

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Bit k set where raw[k] (k < len <= 16) is "J", "A", "B" or "/" */
static inline unsigned stops16(const unsigned char *raw, Z len) {
#if defined(__SSE2__)
    __m128i x;
    if (len == 16) {
        x = _mm_loadu_si128((const __m128i *)raw);
    } else {
        unsigned char tail[16] = {0};
        memcpy(tail, raw, (size_t)len);
        x = _mm_loadu_si128((const __m128i *)tail);
    }
    __m128i hit = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('J')), _mm_cmpeq_epi8(x, _mm_set1_epi8('A'))),
        _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('B')), _mm_cmpeq_epi8(x, _mm_set1_epi8('/'))));
    return (unsigned)_mm_movemask_epi8(hit);
#else
    unsigned bits = 0;
    for (Z k = 0; k < len; k++)
        bits |= (unsigned)(raw[k] == 'J' || raw[k] == 'A' || raw[k] == 'B' || raw[k] == '/') << k;
    return bits;
#endif
}

static void prescan(const CText *ct, int token_word, Marks *m) {
    const unsigned char *raw = ct->raw;
    Z n = ct->n;
    m->token_needle = token_word;   /* with a token word the needles need not be looked for */
    m->begin = m->sep = -1;
    /* the stops, 16 bytes at a time, in order */
    for (Z base = 0; base < n; base += 16) {
        if (m->token_needle && m->begin >= 0 && m->sep >= 0) break;
        for (unsigned bits = stops16(raw + base, n - base < 16 ? n - base : 16); bits;
             bits &= bits - 1) {
            Z p = base + __builtin_ctz(bits);
            const unsigned char *r = raw + p;
            switch (r[0]) {
            case 'J':   /* "eyJ" */
                if (p >= 2 && r[-2] == 'e' && r[-1] == 'y') m->token_needle = 1;
                break;
            case 'A':   /* AKIA ASIA AGPA AIDA AROA ANPA AIPA AIza */
                if (m->token_needle || p + 3 >= n) break;
                switch (r[1]) {
                case 'K': case 'S': m->token_needle |= r[2] == 'I' && r[3] == 'A'; break;
                case 'G': case 'N': m->token_needle |= r[2] == 'P' && r[3] == 'A'; break;
                case 'R': m->token_needle |= r[2] == 'O' && r[3] == 'A'; break;
                case 'I': m->token_needle |= ((r[2] == 'D' || r[2] == 'P') && r[3] == 'A') ||
                                             (r[2] == 'z' && r[3] == 'a');
                          break;
                }
                break;
            case 'B':   /* "-----BEGIN " */
                if (m->begin < 0 && p >= 5 && p + 6 <= n && memcmp(r - 5, "-----BEGIN ", 11) == 0)
                    m->begin = p - 5;
                break;
            case '/':   /* "://" */
                if (m->sep < 0 && p >= 1 && p + 1 < n && r[-1] == ':' && r[1] == '/')
                    m->sep = p - 1;
                break;
            }
        }
    }
}

/* ------------------------------------------------------------------ private key blocks */

/* "-----BEGIN " or "-----END " (`opening`, at i) then (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----:
   the end, or -1. Each [A-Z0-9]+ takes its whole run (a space must follow), so the words
   are fixed; after a word sequence that fits, the words run out within two more, so at most
   one number of words fits and trying them in order finds the one `re` finds. */
static Z key_line(const U *s, Z n, Z i, const char *opening) {
    if (!starts_with(s, i, n, opening)) return -1;
    Z p = i + lit_len(opening);
    for (;;) {
        if (starts_with(s, p, n, "PRIVATE KEY")) {
            Z q = p + 11;
            if (starts_with(s, q, n, " BLOCK-----")) return q + 11;
            if (starts_with(s, q, n, "-----")) return q + 5;
        }
        Z r = p;
        while (r < n && (is_d(s[r]) || is_ascii_upper(s[r]))) r++;
        if (r == p || r >= n || s[r] != ' ') return -1;
        p = r + 1;
    }
}

/* self._private_key.finditer(text): a BEGIN line, then (DOTALL) lazily up to the end of the
   first END line after it, or else to the end of the text. */
static int private_keys(const CText *ct, Z first, Out *out) {
    const U *s = ct->s;
    Z n = ct->n;
    for (Z at = first; at >= 0;) {   /* first: the first "-----BEGIN " (prescan) */
        Z head = key_line(s, n, at, "-----BEGIN ");
        if (head < 0) { at = find_raw(ct, at + 1, "-----BEGIN ", 5); continue; }
        Z end = n;
        for (Z q = find_raw(ct, head, "-----END ", 5); q >= 0;
             q = find_raw(ct, q + 1, "-----END ", 5)) {
            Z e = key_line(s, n, q, "-----END ");
            if (e >= 0) { end = e; break; }
        }
        if (out_add(out, T_PRIVATE_KEY, at, end, 0.99) < 0) return -1;
        if (end >= n) return 0;
        at = find_raw(ct, end, "-----BEGIN ", 5);
    }
    return 0;
}

/* ------------------------------------------------------------------ passwords */

static int quote(U c) { return c == '"' || c == '\''; }
static int blank(U c) { return c == ' ' || c == '\t'; }
/* [^\s"',;] */
static int value_char(U c) { return !(is_s(c) || c == '"' || c == '\'' || c == ',' || c == ';'); }

/* [\"']?[ \t]*(?:is|lautet|ist|[:=]|=>)[ \t]*[\"']?(?P<v>[^\s\"',;]{4,128}) at j in
   lowered[:e], with re's backtracking order; the value's span in *vs, *ve, or 0. */
static int password_tail(const U *s, Z e, Z j, Z *vs, Z *ve) {
    static const char *const connectors[] = {"is", "lautet", "ist", ":", "=", "=>", NULL};
    for (int with_quote = 1; with_quote >= 0; with_quote--) {
        Z a = j;
        if (with_quote) {
            if (!(a < e && quote(s[a]))) continue;
            a++;
        }
        Z w = a;
        while (w < e && blank(s[w])) w++;
        /* a [ \t]* that gives back a blank leaves a blank where a connector or value must
           start, so only its longest count can match (same for the one after) */
        for (const char *const *c = connectors; *c; c++) {
            if (!starts_with(s, w, e, *c)) continue;
            Z x = w + lit_len(*c);
            while (x < e && blank(s[x])) x++;
            for (int q2 = 1; q2 >= 0; q2--) {
                Z y = x;
                if (q2) {
                    if (!(y < e && quote(s[y]))) continue;
                    y++;
                }
                Z z = y;
                while (z < e && z - y < 128 && value_char(s[z])) z++;
                if (z - y >= 4) { *vs = y; *ve = z; return 1; }
            }
        }
    }
    return 0;
}

/* The ends of the label (_PASSWORD_LABELS) that can start at i, in re's order, in ends[];
   returns how many. The lookbehind (?<![\w-].) looks before the window too. */
static const unsigned char LABEL_FIRST[128] = {   /* the labels' first letters */
    ['p'] = 1, ['k'] = 1, ['s'] = 1, ['c'] = 1, ['a'] = 1, ['b'] = 1, ['t'] = 1, ['z'] = 1,
};
static inline int label_first(U c) { return c < 128 && LABEL_FIRST[c]; }

static int label_ends(const U *s, Z e, Z i, Z *ends) {
    int k = 0;
    if (!label_first(s[i])) return 0;   /* no label starts here */
    if (i > 0 && (is_w(s[i - 1]) || s[i - 1] == '-')) return 0;
    switch (s[i]) {
    case 'p':
        /* ass(?:word|wort|wd|phrase)?|wd */
        if (starts_with(s, i + 1, e, "ass")) {
            static const char *const rests[] = {"word", "wort", "wd", "phrase", NULL};
            for (const char *const *r = rests; *r; r++)
                if (starts_with(s, i + 4, e, *r)) ends[k++] = i + 4 + lit_len(*r);
            ends[k++] = i + 4;
        }
        if (starts_with(s, i + 1, e, "wd")) ends[k++] = i + 3;
        break;
    case 'k':
        if (starts_with(s, i + 1, e, "ennwort")) ends[k++] = i + 8;
        break;
    case 's':
        if (starts_with(s, i + 1, e, "ecret")) ends[k++] = i + 6;
        break;
    case 'c':
        /* lient_secret|redentials? */
        if (starts_with(s, i + 1, e, "lient_secret")) ends[k++] = i + 13;
        if (starts_with(s, i + 1, e, "redential")) {
            if (starts_with(s, i + 10, e, "s")) ends[k++] = i + 11;
            ends[k++] = i + 10;
        }
        break;
    case 'a': {
        /* pi[_ -]?key|ccess[_ -]?token|uth[_ -]?token */
        static const char *const heads[] = {"pi", "ccess", "uth", NULL};
        static const char *const tails[] = {"key", "token", "token", NULL};
        for (int h = 0; heads[h]; h++) {
            if (!starts_with(s, i + 1, e, heads[h])) continue;
            Z p = i + 1 + lit_len(heads[h]);
            if (p < e && (s[p] == '_' || s[p] == ' ' || s[p] == '-') &&
                starts_with(s, p + 1, e, tails[h]))
                ends[k++] = p + 1 + lit_len(tails[h]);
            if (starts_with(s, p, e, tails[h])) ends[k++] = p + lit_len(tails[h]);
        }
        break;
    }
    case 'b':
        if (starts_with(s, i + 1, e, "earer")) ends[k++] = i + 6;
        break;
    case 't':
        if (starts_with(s, i + 1, e, "oken")) ends[k++] = i + 5;
        break;
    case 'z':
        if (starts_with(s, i + 1, e, "ugangsdaten")) ends[k++] = i + 12;
        break;
    }
    return k;
}

/* _looks_like_password(value) on the text as written */
static int looks_like_password(const U *v, Z len) {
    int masked = 1;
    for (Z k = 0; k < len; k++) {
        U c = v[k];   /* c.lower() in _MASKED: "*", "x", "•", ".", "#" (only "X" lowers to one) */
        if (!(c == '*' || c == 'x' || c == 'X' || c == 0x2022 || c == '.' || c == '#')) {
            masked = 0;
            break;
        }
    }
    if (masked || v[0] == '<' || v[0] == '{' || v[0] == '$' || v[0] == '%') return 0;
    int upper = 0, lower = 0;
    for (Z k = 0; k < len; k++) {
        U c = v[k];
        if (is_digit(c) || !is_alnum(c)) return 1;
        upper |= is_upper(c);
        lower |= is_lower(c);
    }
    return upper && lower && len >= 8;
}

/* Whether any of _API_LABELS ("api", "token", "bearer") is in lowered[from:to]. */
static int api_label(const U *low, Z from, Z to) {
    return find_in(low, from, to, "api") >= 0 || find_in(low, from, to, "token") >= 0 ||
           find_in(low, from, to, "bearer") >= 0;
}

static const char *const PASSWORD_WORDS[] = {
    "password", "passwort", "passwd", "pass", "pwd", "kennwort", "secret", "passphrase", "key",
    "token", "bearer", "zugangsdaten", "credentials", "credential", "client", NULL,
};
#define N_PASSWORD_WORDS 15
/* _TOKEN_WORDS */
static const char *const TOKEN_WORDS[] = {
    "accountkey", "ghp", "gho", "ghu", "ghs", "ghr", "github", "glpat", "sk", "rk", "pk",
    "xoxa", "xoxb", "xoxp", "xoxo", "xoxs", "xoxr", "hf", "npm", NULL,
};

/* The words of PASSWORD_WORDS (kind 0) and TOKEN_WORDS (kind 1) in an open-addressed table
   keyed by their word_hash (Token.hash), with WORD_HEAD: most tokens' hashes have low bits
   that no word's has, and the rest are confirmed on hash, length and bytes. */
typedef struct { const char *word; Z len; uint32_t hash; int kind, index; } Entry;
#define WORD_SLOTS 128   /* a power of two, more than three times the words */
static Entry WORD_TABLE[WORD_SLOTS];
/* by the low 12 bits of a hash: 0 no word has them, else 1 + the slot of the only word
   that has them, or WORD_SLOTS + 1 when several have (then the table is probed) */
static unsigned char WORD_HEAD[4096];

static void init_words(void) {
    static int done = 0;
    if (done) return;
    for (int kind = 0; kind < 2; kind++) {
        const char *const *list = kind ? TOKEN_WORDS : PASSWORD_WORDS;
        for (int m = 0; list[m]; m++) {
            Z len = lit_len(list[m]);
            uint32_t h = word_hash((const unsigned char *)list[m], len);
            unsigned at = h & (WORD_SLOTS - 1);
            while (WORD_TABLE[at].word) at = (at + 1) & (WORD_SLOTS - 1);
            WORD_TABLE[at] = (Entry){list[m], len, h, kind, m};
            unsigned char *head = &WORD_HEAD[h & 4095];
            *head = *head ? WORD_SLOTS + 1 : (unsigned char)(at + 1);
        }
    }
    done = 1;
}

/* What one pass over the text's tokens (Scan.words) finds: whether a word of TOKEN_WORDS is
   one (`not scan.words.isdisjoint(_TOKEN_WORDS)`), and which words of PASSWORD_WORDS are
   (`words & self._password_words`, NULL-terminated in `present`, each once). */
typedef struct {
    int token_word;
    const char *present[N_PASSWORD_WORDS + 1];
    int npresent;
} Words;

static void find_words(const CText *ct, Words *found) {
    init_words();
    int token_word = 0, npresent = 0;
    unsigned int seen = 0;   /* bit per PASSWORD_WORDS entry already in `present` */
    for (const Token *tok = ct->tokens, *end = tok + ct->ntokens; tok < end; tok++) {
        uint32_t h = tok->hash;
        unsigned head = WORD_HEAD[h & 4095];
        if (!head) continue;
        for (unsigned at = head <= WORD_SLOTS ? head - 1 : (h & (WORD_SLOTS - 1));
             WORD_TABLE[at].word; at = (at + 1) & (WORD_SLOTS - 1)) {
            const Entry *e = &WORD_TABLE[at];
            if (e->hash != h || e->len != tok->len ||
                memcmp(ct->wb + tok->start, e->word, (size_t)e->len) != 0)
                continue;
            if (e->kind) {
                token_word = 1;
            } else if (!((seen >> e->index) & 1)) {
                seen |= 1u << e->index;
                found->present[npresent++] = e->word;
            }
            break;
        }
    }
    found->present[npresent] = NULL;
    found->npresent = npresent;
    found->token_word = token_word;
}

/* self._password.finditer(lowered, s, e) in each of scan.windows(self._password_words, 20,
   150), each value kept if _looks_like_password (API_KEY after an API label). */
/* Whether _password matches at i in lowered[:n] (a label, then its tail) */
static int password_at(const U *low, Z n, Z i) {
    Z ends[8], vs, ve;
    int k = label_ends(low, n, i, ends);
    for (int m = 0; m < k; m++) if (password_tail(low, n, ends[m], &vs, &ve)) return 1;
    return 0;
}

/* The first place where _password matches in the whole lowered text, or -1. A match in a
   window s[:e] is one in s[:n] too (a longer text only adds ways), so no window holds one
   before it. A label starts where lowered has one of LABEL_FIRST's letters with no
   [\w-] before it: in a word byte run that starts there (a token: ASCII letters are word
   bytes, and a character that is not \w is no word byte), or at a KELVIN SIGN, which
   lowers to "k" (the only character above 0xFF that lowers to an ASCII letter; raw has
   "?" for it). */
static Z first_password(const CText *ct) {
    const U *low = ct->low;
    Z n = ct->n, first = -1;
    for (const Token *tok = ct->tokens, *end = tok + ct->ntokens; tok < end; tok++) {
        if (label_first(low[tok->start]) && password_at(low, n, tok->start)) {
            first = tok->start;
            break;
        }
    }
    for (Z q = find_byte(ct->raw, 0, n, '?'); q >= 0 && (first < 0 || q < first);
         q = find_byte(ct->raw, q + 1, n, '?')) {
        if (ct->s[q] == 0x212A && password_at(low, n, q)) { first = q; break; }
    }
    return first;
}

static int passwords(const CText *ct, const Words *found, Out *out) {
    if (!found->npresent) return 0;
    Z first = first_password(ct);   /* most texts have a password word but no password */
    if (first < 0) return 0;
    Spans windows = {0};
    /* the words present stand for the whole list: ct_windows skips the absent ones */
    if (ct_windows(ct, found->present, 20, 150, NULL, &windows) < 0) return -1;
    const U *low = ct->low;
    int rc = 0;
    for (Z w = 0; w < windows.n && rc == 0; w++) {
        Z e = windows.v[w].end < ct->n ? windows.v[w].end : ct->n;
        Z i = windows.v[w].start > first ? windows.v[w].start : first;
        while (i < e) {
            if (!label_first(low[i])) { i++; continue; }   /* (label_ends: no label) */
            Z ends[8];
            int k = label_ends(low, e, i, ends);
            Z vs = 0, ve = 0;
            int found = 0;
            for (int m = 0; m < k && !found; m++) found = password_tail(low, e, ends[m], &vs, &ve);
            if (!found) { i++; continue; }
            if (looks_like_password(ct->s + vs, ve - vs)) {
                int type = api_label(low, i, vs) ? T_API_KEY : T_PASSWORD;
                if (out_add(out, type, vs, ve, 0.8) < 0) { rc = -1; break; }
            }
            i = ve;
        }
    }
    spans_free(&windows);
    return rc;
}

/* ------------------------------------------------------------------ connection strings */

static int scheme_char(U c) { return is_ascii_lower(c) || is_d(c) || c == '+'; }

/* SecretDetector._connections: before each "://" (not inside the last match), the first
   start of [a-z][a-z0-9+]{1,15}://\Z in lowered[max(last_end, at - 16):at + 3], then
   [^\s:/@]+:(?P<v>[^\s@/]+)@ after the "://". Neither run can give back characters (the
   ":" and "@" that must follow are outside them), so each takes its whole run. */
static int connections(const CText *ct, Z first, Out *out) {
    const U *low = ct->low;
    Z n = ct->n;
    Z last_end = 0;
    for (Z at = first; at >= 0; at = find_raw(ct, at + 1, "://", 1)) {
        if (at < last_end) continue;
        Z lo = at - 16 > last_end ? at - 16 : last_end;
        Z r = at;   /* the scheme's characters run back to r */
        while (r > lo && scheme_char(low[r - 1])) r--;
        Z p = r;
        while (p < at - 1 && !is_ascii_lower(low[p])) p++;
        if (p >= at - 1) continue;
        Z h = at + 3;
        while (h < n && !(is_s(low[h]) || low[h] == ':' || low[h] == '/' || low[h] == '@')) h++;
        if (h == at + 3 || h >= n || low[h] != ':') continue;
        Z v = h + 1;
        while (v < n && !(is_s(low[v]) || low[v] == '@' || low[v] == '/')) v++;
        if (v == h + 1 || v >= n || low[v] != '@') continue;
        last_end = v + 1;
        if (out_add(out, T_PASSWORD, h + 1, v, 0.9) < 0) return -1;
    }
    return 0;
}

/* SecretDetector.find */
int det_secret(CText *ct, Out *out) {
    Words found;
    find_words(ct, &found);
    Marks marks;
    prescan(ct, found.token_word, &marks);
    if (marks.token_needle && tokens(ct, out) < 0) return -1;   /* _may_hold_token */
    if (private_keys(ct, marks.begin, out) < 0 || passwords(ct, &found, out) < 0 ||
        connections(ct, marks.sep, out) < 0)
        return -1;
    return 0;
}
