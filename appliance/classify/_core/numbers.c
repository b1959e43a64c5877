/* numbers.py: SSN, payment cards, phone and fax numbers (with checksums.py's checks). */
#include "core.h"

/* s[i] inside a search that ends at `end` (re's `endpos`), else 0, which no class here
   matches (not \d, \s, \w, nor any literal), so it reads as "the string ends here". */
static inline U at(const U *s, Z i, Z end) { return i < end ? s[i] : 0; }


/* [+(0-9]: where a phone candidate can begin ('(' 0x28, '+' 0x2B, '0'-'9' 0x30-0x39) */
static inline int phone_anchor(U c) {
    return c - 0x28 < 18 && ((0x3FF09u >> (c - 0x28)) & 1);
}

/* the separator classes of the patterns */
static inline int in_sdd(U c) { return c == ' ' || c == '.' || c == '-'; }               /* [ .-] */
static inline int in_sd(U c) { return c == ' ' || c == '-'; }                            /* [ -] */
static inline int in_ssd(U c) { return c == ' ' || c == '/' || c == '-'; }               /* [ /-] */
static inline int in_sdsd(U c) { return c == ' ' || c == '.' || c == '/' || c == '-'; }  /* [ ./-] */
/* [\d ().+/-] looked up in the bytes: 2 for a digit, 1 for the rest, 0 for none (all
   ASCII: raw has them where the text does; raw[n] == 0 is none, so runs stop at the end) */
static const unsigned char CANDIDATE[256] = {
    [' '] = 1, ['('] = 1, [')'] = 1, ['.'] = 1, ['+'] = 1, ['/'] = 1, ['-'] = 1,
    ['0'] = 2, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2,
    ['8'] = 2, ['9'] = 2,
};

/* [\d ().+/-]: the phone candidate's class */
static inline int in_candidate(U c) {
    switch (c) {
    case ' ': case '(': case ')': case '.': case '+': case '/': case '-': return 1;
    default: return is_d(c);
    }
}

/* Number of [0-9] at s[i:end], at most `most`. */
static Z digits_at(const U *s, Z i, Z end, Z most) {
    Z k = 0;
    while (k < most && i + k < end && is_d(s[i + k])) k++;
    return k;
}

/* numbers._boundary_before: start == 0 or not (text[start-1].isalnum() or in "._-/") */
static int boundary_before(const U *s, Z start) {
    if (start == 0) return 1;
    U c = s[start - 1];
    return !(is_alnum(c) || c == '.' || c == '_' || c == '-' || c == '/');
}

/* checksums.payment_card_valid */
static int payment_card_valid(const U *s, Z start, Z end) {
    U d[19];
    int all;
    Z len = ck_digits(s, start, end, d, 19, &all);
    if (len < 12 || !all) return 0;
    static const char *const maestro[] = {"5018", "5020", "5038", "5893", "6304", "6759",
                                          "676", NULL};
    int is_maestro = 0;
    for (const char *const *p = maestro; *p; p++) if (ck_prefix(d, len, *p)) is_maestro = 1;
    if (len < 13 && !is_maestro) return 0;
    if (len == 15 && (ck_prefix(d, len, "1800") || ck_prefix(d, len, "2131")))
        return ck_luhn(d, len);
    if (!(d[0] == '3' || d[0] == '4' || d[0] == '5' || d[0] == '6') &&
        !(d[0] == '2' && d[1] >= '2' && d[1] <= '7'))
        return 0;
    return ck_luhn(d, len);
}

/* ------------------------------------------------------------------ SSN */

/* SsnDetector: [0-9]\d\d-\d\d-\d{4}(?![\w-]) tried where the shape holds "000-00-0000"
   (match_at), then _boundary_before and ssn_valid. Two such places closer than a match's
   length cannot both match (the lookahead forbids the digit or "-" the second needs), so
   match_at's skipping of starts inside a match never applies. */
int det_ssn(CText *ct, Out *out) {
    const U *s = ct->s;
    Z n = ct->n;
    if (!ct->has_digit) return 0;
    const unsigned char *raw = ct->raw;   /* "-" where the text has one: memchr finds it */
    for (const unsigned char *d = n > 3 ? memchr(raw + 3, '-', (size_t)(n - 3)) : NULL;
         d && d - raw + 8 <= n; d = memchr(d + 1, '-', (size_t)(n - (d + 1 - raw)))) {
        Z dash = d - raw;
        Z i = dash - 3;
        if (s[dash + 3] != '-' || !is_d(s[i]) || !is_d(s[i + 1]) || !is_d(s[i + 2]) ||
            !is_d(s[i + 4]) || !is_d(s[i + 5]) || digits_at(s, i + 7, n, 4) != 4)
            continue;
        U next = s[i + 11];  /* s[n] == 0 ends the text */
        if (is_w(next) || next == '-') continue;
        if (boundary_before(s, i) && ck_ssn(s, i, i + 11))
            if (out_add(out, T_SSN, i, i + 11, 0.95) < 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ payment cards */

/* (?:[ -]?\d{2,6}){1,4}(?![\w-]) from `pos` after `count` repetitions, in re's order: one
   more repetition first (the separator is taken when there is one, as without it \d fails;
   the longest digit count first), then the tail. Returns the end or -1; `failed` remembers
   (pos - base, count) pairs known to fail (a pair's outcome does not depend on the path). */
static Z card_groups(const U *s, Z end, Z base, Z pos, int count, uint64_t *failed) {
    if ((failed[count] >> (pos - base)) & 1) return -1;
    if (count < 4) {
        Z q = pos + (in_sd(at(s, pos, end)) ? 1 : 0);
        for (Z k = digits_at(s, q, end, 6); k >= 2; k--) {
            Z r = card_groups(s, end, base, q + k, count + 1, failed);
            if (r >= 0) return r;
        }
    }
    if (count >= 1) {
        U c = at(s, pos, end);
        if (!(is_w(c) || c == '-')) return pos;
    }
    failed[count] |= (uint64_t)1 << (pos - base);
    return -1;
}

/* [0-9](?=[0-9 -]{3,31}(?![\w-]))\d{3}(?:[ -]?\d{2,6}){1,4}(?![\w-]) matched at p in
   s[:end]; returns the end or -1. */
static Z card_match(const U *s, Z end, Z p) {
    if (digits_at(s, p, end, 4) != 4) return -1;
    /* the lookahead: some k in 3..31 with s[p+1:p+1+k] card characters and no [\w-] after */
    int ahead = 0;
    for (Z x = p + 4; x <= p + 32; x++) {
        if (x == end) { ahead = 1; break; }
        U c = s[x];
        if (c == ' ') { ahead = 1; break; }
        if (is_d(c) || c == '-') continue;
        ahead = !is_w(c);
        break;
    }
    if (!ahead) return -1;
    uint64_t failed[5] = {0};
    return card_groups(s, end, p, p + 4, 0, failed);
}

/* PaymentCardDetector._iban_head: [A-Z]{2}\d\d ?$ searched in s[lo:hi] ($ also before a
   final "\n") */
static int iban_head(const U *s, Z lo, Z hi) {
    for (Z i = lo; i + 4 <= hi; i++) {
        if (!is_ascii_upper(s[i]) || !is_ascii_upper(s[i + 1]) || !is_d(s[i + 2]) ||
            !is_d(s[i + 3]))
            continue;
        Z ends[2];
        int ne = 0;
        if (i + 4 < hi && s[i + 4] == ' ') ends[ne++] = i + 5;
        ends[ne++] = i + 4;
        for (int k = 0; k < ne; k++) {
            Z e = ends[k];
            if (e == hi || (e == hi - 1 && s[e] == '\n')) return 1;
        }
    }
    return 0;
}

/* [0-9 -] (_CARD_CHARACTERS) looked up in the bytes: 2 for a digit, 1 for " " and "-"
   (ASCII: raw has them where the text does; raw[n] == 0 is none) */
static const unsigned char CARD[256] = {
    [' '] = 1, ['-'] = 1, ['0'] = 2, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2,
    ['6'] = 2, ['7'] = 2, ['8'] = 2, ['9'] = 2,
};

/* PaymentCardDetector.find: the pattern's finditer in each of scan.runs("0123456789 -",
   12, 1); no value with both " " and "-"; not after an IBAN head; _boundary_before and
   payment_card_valid.
   A match is made of [0-9 -] only, so it lies in one maximal run of them, and the matches
   in a run are those of finditer from the run's start (the one before ended before it);
   what the window's end lets the lookaheads see, they see up to the character after the
   run. payment_card_valid wants 12 or more digits, so only runs with 12 digits are
   searched: they are found by probing every twelfth byte (none of a shorter run's). For
   texts under 256 characters, which Python searches whole, the same holds. */
int det_card(CText *ct, Out *out) {
    const U *s = ct->s;
    const unsigned char *raw = ct->raw;
    Z n = ct->n;
    if (!ct->has_digit) return 0;
    Z i = 0;   /* raw[i - 1] is no member */
    while (i + 12 <= n) {
        Z probe = i + 11;
        if (!CARD[raw[probe]]) { i = probe + 1; continue; }
        Z b = probe, r = probe + 1;
        while (b > i && CARD[raw[b - 1]]) b--;
        while (CARD[raw[r]]) r++;
        i = r + 1;
        Z digits = 0;
        for (Z k = b; k < r; k++) digits += CARD[raw[k]] == 2;
        if (digits < 12) continue;
        Z p = b;
        while (p < r) {
            if (!is_d(s[p])) { p++; continue; }
            Z m = card_match(s, n, p);
            if (m < 0) { p++; continue; }
            int space = 0, dash = 0;
            for (Z k = p; k < m; k++) {
                if (s[k] == ' ') space = 1;
                else if (s[k] == '-') dash = 1;
            }
            if (!(space && dash) && !iban_head(s, p > 5 ? p - 5 : 0, p) &&
                boundary_before(s, p) && payment_card_valid(s, p, m)) {
                if (out_add(out, T_PAYMENT_CARD, p, m, 0.97) < 0) return -1;
            }
            p = m;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ phone and fax */

static const char *const PHONE_TRIGGERS[] = {
    "tel", "telefon", "phone", "fax", "telefax", "mobile", "mobil", "cell", "handy", "call",
    "rufnummer", "telefonnummer", "contact", "kontakt", "erreichbar", "reach", "ph", NULL,
};

static const char *const PHONE_CUES[] = {
    "tel", "phone", "fax", "mobil", "cell", "handy", "call", "ruf", "kontakt", "contact",
    "erreichbar", "reach", "ph.", "ph:", "nummer", "number", "#", NULL,
};

/* any(c in scan.before(start, 30) for c in _PHONE_CUES): one pass over the 30 characters,
   trying the cues that begin with each one */
static int cue_before(const CText *ct, Z start) {
    const U *low = ct->low;
    for (Z i = start > 30 ? start - 30 : 0; i < start; i++) {
        U c = low[i];
        if (c == 0 || c > 127 || !strchr("tpfmchrken#", (int)c)) continue;
        for (const char *const *cue = PHONE_CUES; *cue; cue++)
            if ((U)(*cue)[0] == c && starts_with(low, i, start, *cue)) return 1;
    }
    return 0;
}

/* (?:\s?(?:x|ext\.?)\s?\d{1,5})? at q in s[:end]: the end (q when it does not match). Each
   optional part is taken when its character is there (without it the next one fails). */
static Z extension(const U *s, Z end, Z q) {
    Z a = q;
    if (is_s(at(s, a, end))) a++;
    Z b;
    if (at(s, a, end) == 'x') {
        b = a + 1;
    } else if (at(s, a, end) == 'e' && at(s, a + 1, end) == 'x' && at(s, a + 2, end) == 't') {
        b = a + 3;
        if (at(s, b, end) == '.') b++;
    } else {
        return q;
    }
    if (is_s(at(s, b, end))) b++;
    Z k = digits_at(s, b, end, 5);
    return k ? b + k : q;
}

/* \d[\dSEPS]{lo,hi}\d at a in s[:end] (`sep` tests SEPS): greedy, so the longest repeat
   that a digit follows. Returns the end or -1. */
static Z digit_run(const U *s, Z end, Z a, Z lo, Z hi, int (*sep)(U)) {
    if (!is_d(at(s, a, end))) return -1;
    Z m = 0;
    while (m < hi && (is_d(at(s, a + 1 + m, end)) || sep(at(s, a + 1 + m, end)))) m++;
    for (Z k = m; k >= lo; k--)
        if (is_d(at(s, a + 1 + k, end))) return a + 2 + k;
    return -1;
}

/* PhoneDetector._candidate: [+(0-9][\d ().+/-]{6,26}\d(?:\s?(?:x|ext\.?)\s?\d{1,5})? at p
   (s[p] one of "+(0-9"). Returns the end, or -1 with *skip the next start worth trying:
   when the class run after p ends within the repeat's reach, a start inside it sees a part
   of the same run, with no digit where this one found none. */
static Z phone_candidate(const CText *ct, Z p, Z *skip) {
    const unsigned char *raw = ct->raw + p + 1;
    Z m = 0;
    while (m < 26 && CANDIDATE[raw[m]]) m++;
    for (Z k = m; k >= 6; k--)
        if (CANDIDATE[raw[k]] == 2) return extension(ct->s, ct->n, p + 2 + k);
    *skip = m < 26 ? p + 1 + m : p + 1;
    return -1;
}

/* _north_american after its prefix, at j: (?:\([2-9]\d\d\)\s?|[2-9]\d\d[ .-])\d{3}[ .-]\d{4}
   (?!\d|-\d) and the extension. Returns the end or -1. */
static Z north_american_rest(const U *s, Z end, Z j) {
    Z k;
    if (at(s, j, end) == '(') {
        U a = at(s, j + 1, end);
        if (!(a >= '2' && a <= '9') || digits_at(s, j + 2, end, 2) != 2 || at(s, j + 4, end) != ')')
            return -1;
        k = j + 5;
        if (is_s(at(s, k, end))) k++;
    } else {
        U a = at(s, j, end);
        if (!(a >= '2' && a <= '9') || digits_at(s, j + 1, end, 2) != 2 ||
            !in_sdd(at(s, j + 3, end)))
            return -1;
        k = j + 4;
    }
    if (digits_at(s, k, end, 3) != 3 || !in_sdd(at(s, k + 3, end)) ||
        digits_at(s, k + 4, end, 4) != 4)
        return -1;
    Z q = k + 8;
    if (is_d(at(s, q, end)) || (at(s, q, end) == '-' && is_d(at(s, q + 1, end)))) return -1;
    return extension(s, end, q);
}

/* PhoneDetector._north_american at i in s[:end]:
   (?<![\w.+-])(?:\+?1[ .-]?|001[ .-])?(area)\d{3}[ .-]\d{4}(?!\d|-\d)(extension)?
   The prefix's choices in re's order: "+1"/"1" with its separator, without it, "001 ",
   none. */
static Z north_american(const U *s, Z end, Z i) {
    U c = at(s, i, end);
    if (!(is_d(c) || c == '+' || c == '(')) return -1;  /* no start without one of these */
    if (i > 0 && (is_w(s[i - 1]) || s[i - 1] == '.' || s[i - 1] == '+' || s[i - 1] == '-'))
        return -1;
    Z opts[4];
    int no = 0;
    Z a = i + (at(s, i, end) == '+' ? 1 : 0);
    if (at(s, a, end) == '1') {
        if (in_sdd(at(s, a + 1, end))) opts[no++] = a + 2;
        opts[no++] = a + 1;
    }
    if (at(s, i, end) == '0' && at(s, i + 1, end) == '0' && at(s, i + 2, end) == '1' &&
        in_sdd(at(s, i + 3, end)))
        opts[no++] = i + 4;
    opts[no++] = i;
    for (int k = 0; k < no; k++) {
        Z r = north_american_rest(s, end, opts[k]);
        if (r >= 0) return r;
    }
    return -1;
}

/* PhoneDetector._international at i in s[:end]:
   (?<![\w.])\+\d{1,3}[ .-]?(?:\(0\)\s?)?\(?\d{1,5}\)?[ ./-]?\d[\d ./-]{3,14}\d
   Backtracking over the two digit counts (longest first) and the optional "(0)" (taken
   first); every other optional part is taken when its character is there. */
static Z international(const U *s, Z end, Z i) {
    if (at(s, i, end) != '+') return -1;
    if (i > 0 && (is_w(s[i - 1]) || s[i - 1] == '.')) return -1;
    for (Z c1 = digits_at(s, i + 1, end, 3); c1 >= 1; c1--) {
        Z p1 = i + 1 + c1;
        if (in_sdd(at(s, p1, end))) p1++;
        Z opts[2];
        int no = 0;
        if (at(s, p1, end) == '(' && at(s, p1 + 1, end) == '0' && at(s, p1 + 2, end) == ')') {
            Z t = p1 + 3;
            if (is_s(at(s, t, end))) t++;
            opts[no++] = t;
        }
        opts[no++] = p1;
        for (int o = 0; o < no; o++) {
            Z p3 = opts[o] + (at(s, opts[o], end) == '(' ? 1 : 0);
            for (Z c2 = digits_at(s, p3, end, 5); c2 >= 1; c2--) {
                Z p4 = p3 + c2;
                if (at(s, p4, end) == ')') p4++;
                if (in_sdsd(at(s, p4, end))) p4++;
                Z r = digit_run(s, end, p4, 3, 14, in_sdsd);
                if (r >= 0) return r;
            }
        }
    }
    return -1;
}

/* PhoneDetector._bare at i in s[:end]: (?<![\w.])[2-9]\d{9}(?!\d) */
static Z bare(const U *s, Z end, Z i) {
    U a = at(s, i, end);
    if (!(a >= '2' && a <= '9') || digits_at(s, i + 1, end, 9) != 9 || is_d(at(s, i + 10, end)))
        return -1;
    if (i > 0 && (is_w(s[i - 1]) || s[i - 1] == '.')) return -1;
    return i + 10;
}

/* PhoneDetector._national at i in s[:end]:
   (?<![\w.])(?:\(0\d{2,5}\)|0\d{2,5})[ /-]?\d[\d -]{2,10}\d
   In parentheses only the whole digit run can reach the ")"; bare, the area code's length
   is tried from the longest. */
static Z national(const U *s, Z end, Z i) {
    U first = at(s, i, end);
    if (first != '(' && first != '0') return -1;
    if (i > 0 && (is_w(s[i - 1]) || s[i - 1] == '.')) return -1;
    Z opts[4];
    int no = 0;
    if (first == '(') {
        if (at(s, i + 1, end) != '0') return -1;
        Z r = digits_at(s, i + 2, end, 6);
        if (r < 2 || r > 5 || at(s, i + 2 + r, end) != ')') return -1;
        opts[no++] = i + 3 + r;
    } else {
        for (Z c = digits_at(s, i + 1, end, 5); c >= 2; c--) opts[no++] = i + 1 + c;
    }
    for (int k = 0; k < no; k++) {
        Z p = opts[k];
        if (in_ssd(at(s, p, end))) p++;
        Z r = digit_run(s, end, p, 2, 10, in_sd);
        if (r >= 0) return r;
    }
    return -1;
}

typedef Z (*phone_pattern)(const U *s, Z end, Z i);

/* pattern.search(text, start, end) over the starts that pass (?<![\w.]), with which every
   pattern here begins (North American's lookbehind forbids more): the first that matches */
static Z search(phone_pattern pattern, const U *s, const Z *starts, int nstarts, Z end,
                Z *found) {
    for (int k = 0; k < nstarts; k++) {
        Z r = pattern(s, end, starts[k]);
        if (r >= 0) { *found = starts[k]; return r; }
    }
    return -1;
}

/* PhoneDetector.find: each candidate, searched for a North American then an international
   number, else (with a trigger word in the text) a bare ten-digit or a national number with
   a cue within 30 characters before it; 7 to 17 digits before any "x"; "fax" within 25
   characters before makes it a fax. */
int det_phone(CText *ct, Out *out) {
    const U *s = ct->s;
    Z n = ct->n;
    if (!ct->has_digit) return 0;
    int cued = -1;  /* scan.any_word(self.triggers), looked up when first needed */
    const unsigned char *raw = ct->raw;
    /* A candidate is an anchor and at least seven more characters of its class, so only
       runs of eight or more class characters can hold one: they are found by probing every
       eighth byte (prose is passed over eight bytes a probe), and finditer's search is
       done inside each from its start. */
    Z i = 0;
    while (i + 8 <= n) {
        Z probe = i + 7;
        if (!CANDIDATE[raw[probe]]) { i = probe + 1; continue; }
        Z b = probe, r = probe + 1;
        while (b > i && CANDIDATE[raw[b - 1]]) b--;
        while (CANDIDATE[raw[r]]) r++;
        Z p = b;
        while (p + 8 <= r) {
            if (!phone_anchor(raw[p])) { p++; continue; }
            Z skip = p + 1;
            Z e = phone_candidate(ct, p, &skip);
            if (e < 0) { p = skip; continue; }
            /* the starts in s[p:e] after no \w or "." (candidates have at most 39
               characters), and what the patterns need: North American and bare numbers
               have ten digits, an international one a "+", a national one a "0" */
            Z starts[40];
            int nstarts = 0, ndigits = 0, plus = 0, zero = 0;
            for (Z j = p; j < e; j++) {
                U c = s[j];
                ndigits += is_d(c);
                if (j > 0 && (is_w(s[j - 1]) || s[j - 1] == '.')) continue;
                starts[nstarts++] = j;
                plus |= c == '+';
                zero |= c == '0' || c == '(';
            }
            Z start = -1;
            Z end = -1;
            if (ndigits >= 10) end = search(north_american, s, starts, nstarts, e, &start);
            if (end < 0 && plus) end = search(international, s, starts, nstarts, e, &start);
            /* "if cued: bare, then national", with the trigger words looked up only once a
               bare or national number is found (the same outcome: neither is kept uncued) */
            if (end < 0 && ndigits >= 10) {
                end = search(bare, s, starts, nstarts, e, &start);
                if (end >= 0 && cued < 0) cued = ct_any_word(ct, PHONE_TRIGGERS);
                if (end >= 0 && !(cued && cue_before(ct, start))) end = -1;
            }
            if (end < 0 && zero) {
                end = search(national, s, starts, nstarts, e, &start);
                if (end >= 0 && cued < 0) cued = ct_any_word(ct, PHONE_TRIGGERS);
                if (end >= 0 && !(cued && cue_before(ct, start))) end = -1;
            }
            if (end >= 0) {
                Z digits = 0;
                for (Z k = start; k < end && s[k] != 'x'; k++) digits += is_digit(s[k]);
                if (digits >= 7 && digits <= 17) {
                    Z lo = start > 25 ? start - 25 : 0;
                    int type = find_in(ct->low, lo, start, "fax") >= 0 ? T_FAX : T_PHONE;
                    if (out_add(out, type, start, end, 0.85) < 0) return -1;
                }
            }
            p = e;
        }
        i = p > r + 1 ? p : r + 1;   /* raw[r] is no class character */
    }
    return 0;
}
