/* detectors/codes.py: IBAN, Medicare MBI and VIN, found by layout and check digits.
 *
 * Each pattern is made of characters of its Scan.runs set only and has no lookaround or \b,
 * so every match lies inside one maximal run of them and finditer over the text finds the
 * same matches there as over the run. Runs shorter than the runs() threshold hold no
 * reportable match (IBAN values under 15 characters are dropped; MBI and VIN matches are
 * never shorter), so the runs are searched for texts of every length, also those under
 * 256 characters that Python searches whole.
 */
#include "core.h"

static int is_AZ(U c) { return c >= 'A' && c <= 'Z'; }
static int is_AZ09(U c) { return is_AZ(c) || is_d(c); }

/* codes._isolated: no letter or digit (str.isalnum) right before start or at end */
static int isolated(const U *s, Z n, Z start, Z end) {
    return (start == 0 || !is_alnum(s[start - 1])) && (end == n || !is_alnum(s[end]));
}

/* The next maximal run of at least `length` characters of `member` (a table over Latin-1
   bytes; code points above 0xFF are '?' in raw, never a member) at or after `from`, where
   raw[from - 1] is not a member: its bounds in *start, *end, or 0 when there is none. Looks
   at the last character a run starting at `from` would need first, so that prose is passed
   over `length` characters at a time. */
static int next_run(const unsigned char *raw, Z n, const unsigned char *member, Z length,
                    Z from, Z *start, Z *end) {
    Z i = from;
    while (i + length <= n) {
        Z probe = i + length - 1;
        if (!member[raw[probe]]) { i = probe + 1; continue; }
        Z b = probe;
        while (b > i && member[raw[b - 1]]) b--;
        Z e = probe + 1;
        while (e < n && member[raw[e]]) e++;
        if (e - b >= length) { *start = b; *end = e; return 1; }
        i = e + 1;
    }
    return 0;
}

/* codes._IBAN_CHARACTERS, _MBI_CHARACTERS, _VIN_CHARACTERS as member tables for next_run
   (built by the compiler: filling one per call cost as much as the search) */
static const unsigned char IBAN_MEMBER[256] = {['A' ... 'Z'] = 1, ['0' ... '9'] = 1, [' '] = 1};
static const unsigned char MBI_MEMBER[256] = {['A' ... 'Z'] = 1, ['0' ... '9'] = 1, ['-'] = 1};
static const unsigned char VIN_MEMBER[256] = {
    ['0' ... '9'] = 1, ['A' ... 'H'] = 1, ['J' ... 'N'] = 1, ['P'] = 1, ['R' ... 'Z'] = 1,
};

/* ------------------------------------------------------------------ IBAN */

/* checksums.IBAN_LENGTHS */
static const struct { char code[3]; int length; } IBAN_LENGTHS[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BR", 29}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24},
    {"DE", 22}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27},
    {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IS", 26}, {"IT", 27},
    {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LI", 21}, {"LT", 20}, {"LU", 20},
    {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31},
    {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25},
    {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24},
    {"SM", 27}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VG", 24}, {"XK", 20},
};

/* IBAN_LENGTHS.get(country), 0 when absent (country: two capitals) */
static int iban_length(U a, U b) {
    for (size_t k = 0; k < sizeof IBAN_LENGTHS / sizeof IBAN_LENGTHS[0]; k++)
        if ((U)IBAN_LENGTHS[k].code[0] == a && (U)IBAN_LENGTHS[k].code[1] == b)
            return IBAN_LENGTHS[k].length;
    return 0;
}

/* checksums.iban_valid on s[start:end], a value made of [A-Z0-9 ] that begins with
   [A-Z][A-Z]\d\d (as every IBAN match does): without its spaces, the country's length, and
   the digits of each character in base 36, rotated by four, mod 97 == 1. */
static int iban_valid(const U *s, Z start, Z end) {
    U v[64];
    Z len = 0;
    for (Z i = start; i < end; i++) {
        if (s[i] == ' ') continue;
        if (len == 64) return 0;
        v[len++] = s[i];
    }
    if (len < 4 || iban_length(v[0], v[1]) != len) return 0;
    int mod = 0;
    for (Z k = 0; k < len; k++) {
        U c = v[(k + 4) % len];
        int d = is_d(c) ? (int)(c - '0') : (int)(c - 'A') + 10;
        mod = (d < 10 ? mod * 10 + d : mod * 100 + d) % 97;
    }
    return mod == 1;
}

/* [A-Z][A-Z]\d\d(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})? matched at i: the end, or -1.
   A group's optional space is taken only when four characters follow it (without it the
   group would have to begin at the space), so the greedy groups and tail never backtrack:
   at least two groups, or no match. */
static Z iban_match(const U *s, Z i) {
    if (!(is_AZ(s[i]) && is_AZ(s[i + 1]) && is_d(s[i + 2]) && is_d(s[i + 3]))) return -1;
    Z j = i + 4;
    int groups = 0;
    while (groups < 7) {
        Z k = s[j] == ' ' ? j + 1 : j;
        if (!(is_AZ09(s[k]) && is_AZ09(s[k + 1]) && is_AZ09(s[k + 2]) && is_AZ09(s[k + 3])))
            break;
        j = k + 4;
        groups++;
    }
    if (groups < 2) return -1;
    Z k = s[j] == ' ' ? j + 1 : j;
    if (is_AZ09(s[k])) {
        Z m = 1;
        while (m < 4 && is_AZ09(s[k + m])) m++;
        j = k + m;
    }
    return j;
}

/* IbanDetector.find: finditer in each run of 15+ IBAN characters; each match shrunk
   (value[:-1].rstrip()) until iban_valid or under 15 characters, reported when isolated. */
int det_iban(CText *ct, Out *out) {
    if (!ct->has_digit) return 0;
    const U *s = ct->s;
    Z n = ct->n;
    const unsigned char *member = IBAN_MEMBER;
    Z from = 0, start, stop;
    while (next_run(ct->raw, n, member, 15, from, &start, &stop)) {
        Z i = start;
        while (i + 4 <= stop) {
            Z end = iban_match(s, i);
            if (end < 0) { i++; continue; }
            Z keep = end;
            while (keep > i && !iban_valid(s, i, keep)) {
                keep--;
                while (keep > i && s[keep - 1] == ' ') keep--;
                if (keep - i < 15) keep = i;
            }
            if (keep > i && isolated(s, n, i, keep)) {
                if (out_add(out, T_IBAN, i, keep, 0.98) < 0) return -1;
            }
            i = end;
        }
        from = stop + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ MBI */

/* [AC-HJKMNP-RT-Y]: a capital but B, I, L, O, S, Z */
static int mbi_letter(U c) {
    return is_AZ(c) && c != 'B' && c != 'I' && c != 'L' && c != 'O' && c != 'S' && c != 'Z';
}
static int mbi_either(U c) { return mbi_letter(c) || is_d(c); }

/* [1-9][A][A0-9]\d(?P<d1>-?)[A][A0-9]\d(?P=d1)[A][A]\d\d matched at i: the end, or -1.
   With a dash after the fourth character the next must be a letter, so the optional dash
   never backtracks; the same dash (or none) must stand after the seventh. */
static Z mbi_match(const U *s, Z i) {
    if (!(s[i] >= '1' && s[i] <= '9' && mbi_letter(s[i + 1]) && mbi_either(s[i + 2]) &&
          is_d(s[i + 3]))) return -1;
    Z j = i + 4;
    int dash = s[j] == '-';
    j += dash;
    if (!(mbi_letter(s[j]) && mbi_either(s[j + 1]) && is_d(s[j + 2]))) return -1;
    j += 3;
    if (dash) {
        if (s[j] != '-') return -1;
        j++;
    }
    if (!(mbi_letter(s[j]) && mbi_letter(s[j + 1]) && is_d(s[j + 2]) && is_d(s[j + 3])))
        return -1;
    return j + 4;
}

/* MbiDetector.find: finditer in each run of 11+ MBI characters; each match reported when
   isolated. */
int det_mbi(CText *ct, Out *out) {
    if (!ct->has_digit) return 0;
    const U *s = ct->s;
    Z n = ct->n;
    const unsigned char *member = MBI_MEMBER;
    Z from = 0, start, stop;
    while (next_run(ct->raw, n, member, 11, from, &start, &stop)) {
        Z i = start;
        while (i + 11 <= stop) {
            Z end = mbi_match(s, i);
            if (end < 0) { i++; continue; }
            if (isolated(s, n, i, end)) {
                if (out_add(out, T_MEDICARE_MBI, i, end, 0.9) < 0) return -1;
            }
            i = end;
        }
        from = stop + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ VIN */

/* checksums.vin_valid on 17 characters of [A-HJ-NPR-Z0-9]: the weighted sum of the
   transliterated characters mod 11 is the ninth ("X" for 10). */
static int vin_valid(const U *v) {
    /* checksums._VIN_VALUES for A..Z (I, O, Q never occur) */
    static const int LETTERS[26] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 0, 7, 0, 9,
                                    2, 3, 4, 5, 6, 7, 8, 9};
    static const int WEIGHTS[17] = {8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2};
    int total = 0;
    for (int k = 0; k < 17; k++)
        total += (is_d(v[k]) ? (int)(v[k] - '0') : LETTERS[v[k] - 'A']) * WEIGHTS[k];
    int check = total % 11;
    return v[8] == (check == 10 ? (U)'X' : (U)('0' + check));
}

/* VinDetector.find: [A-HJ-NPR-Z0-9][A-HJ-NPR-Z0-9]{16} takes each run of those characters
   in 17-character pieces from its start; a piece is reported when isolated, neither all
   digits nor all letters, and vin_valid. */
int det_vin(CText *ct, Out *out) {
    if (!ct->has_digit) return 0;
    const U *s = ct->s;
    Z n = ct->n;
    const unsigned char *member = VIN_MEMBER;
    Z from = 0, start, stop;
    while (next_run(ct->raw, n, member, 17, from, &start, &stop)) {
        for (Z at = start; at + 17 <= stop; at += 17) {
            int digits = 0;
            for (Z k = at; k < at + 17; k++) digits += is_d(s[k]);
            if (digits == 0 || digits == 17 || !isolated(s, n, at, at + 17) ||
                !vin_valid(s + at)) continue;
            if (out_add(out, T_VIN, at, at + 17, 0.95) < 0) return -1;
        }
        from = stop + 1;
    }
    return 0;
}
