/* addresses.py: street addresses and ZIP codes, US and German (AddressDetector.find). */
#include "core.h"

/* _US_SUFFIXES lower-cased (AddressDetector.triggers), by first letter, each letter's in
   alphabetical order */
#define US_ROW 28          /* the most of one letter ("c": 27) and a NULL */
#define US_SUFFIX_MAX 10   /* the longest: "expressway", "trafficway", ... */
static const char *const US_SUFFIXES[26][US_ROW] = {
    /* a */ {"alley", "ave", "avenue", NULL},
    /* b */ {"blvd", "boulevard", "branch", "bridge", "brook", "brooks", "burg", "burgs",
              "bypass", NULL},
    /* c */ {"camp", "canyon", "cape", "causeway", "center", "centers", "cir", "circle",
              "circles", "cliff", "cliffs", "club", "common", "corner", "corners", "course",
              "court", "courts", "cove", "coves", "creek", "crescent", "crest", "crossing",
              "crossroad", "ct", "curve", NULL},
    /* d */ {"dale", "dam", "divide", "dr", "drive", "drives", NULL},
    /* e */ {"estate", "estates", "expressway", "extension", "extensions", NULL},
    /* f */ {"fall", "falls", "ferry", "field", "fields", "flat", "flats", "ford", "fords",
              "forest", "forge", "forges", "fork", "forks", "fort", "freeway", NULL},
    /* g */ {"garden", "gardens", "gateway", "glen", "glens", "green", "greens", "grove",
              "groves", NULL},
    /* h */ {"harbor", "harbors", "haven", "heights", "highway", "hill", "hills", "hollow",
              "hwy", NULL},
    /* i */ {"inlet", "island", "islands", "isle", NULL},
    /* j */ {"junction", "junctions", NULL},
    /* k */ {"key", "keys", "knoll", "knolls", NULL},
    /* l */ {"lake", "lakes", "land", "landing", "lane", "light", "lights", "ln", "loaf",
              "lock", "locks", "lodge", "loop", NULL},
    /* m */ {"mall", "manor", "manors", "meadow", "meadows", "mews", "mill", "mills",
              "mission", "motorway", "mount", "mountain", "mountains", NULL},
    /* n */ {"neck", NULL},
    /* o */ {"orchard", "oval", "overpass", NULL},
    /* p */ {"park", "parks", "parkway", "parkways", "pass", "passage", "path", "pike",
              "pine", "pines", "pkwy", "pl", "place", "plain", "plains", "plaza", "point",
              "points", "port", "ports", "prairie", NULL},
    /* q */ {NULL},
    /* r */ {"radial", "ramp", "ranch", "rapid", "rapids", "rd", "rest", "ridge", "ridges",
              "river", "road", "roads", "route", "row", "rue", "run", NULL},
    /* s */ {"shoal", "shoals", "shore", "shores", "skyway", "spring", "springs", "spur",
              "spurs", "sq", "square", "squares", "st", "station", "stravenue", "stream",
              "street", "streets", "summit", NULL},
    /* t */ {"ter", "terrace", "throughway", "trace", "track", "trafficway", "trail",
              "tunnel", "turnpike", NULL},
    /* u */ {"underpass", "union", "unions", NULL},
    /* v */ {"valley", "valleys", "via", "viaduct", "view", "views", "village", "villages",
              "ville", "vista", NULL},
    /* w */ {"walk", "walks", "wall", "way", "ways", "well", "wells", NULL},
    /* x */ {NULL},
    /* y */ {NULL},
    /* z */ {NULL},
};

/* _US_STATES */
static const char US_STATES[] =
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP FM MH PW AA "
    "AE AP";

/* _DE_SUFFIXES' alternatives in order, "stra(?:ß|ss)e" split in two (none ends another
   one). _DE_ANCHOR has the same, matched in the lowered text; _de_street's group is
   case-insensitive (de_fold_eq). */
typedef struct { const char *text; Z len; } Literal;
#define LITERAL(s) {s, sizeof(s) - 1}
static const Literal DE_SUFFIXES[] = {
    LITERAL("stra\xdf" "e"), LITERAL("strasse"), LITERAL("str."), LITERAL("weg"),
    LITERAL("gasse"), LITERAL("platz"), LITERAL("allee"), LITERAL("ring"), LITERAL("damm"),
    LITERAL("ufer"), LITERAL("chaussee"), LITERAL("pfad"), LITERAL("steig"),
    LITERAL("promenade"), {NULL, 0},
};
#define DE_SUFFIX_RING 7
#define DE_SUFFIX_MAX 9    /* "promenade" */

static inline int is_sp(U c) { return c == ' ' || c == '\t'; }
static inline int is_ascii_letter(U c) { return is_ascii_lower(c) || is_ascii_upper(c); }
/* [A-ZÄÖÜ] */
static inline int de_upper(U c) { return is_ascii_upper(c) || c == 0xC4 || c == 0xD6 || c == 0xDC; }
/* [\wäöüß.-] (the umlauts and ß are \w already) */
static inline int de_class(U c) { return is_w(c) || c == '.' || c == '-'; }

/* Whether s[i:i+len] for some len in lo..hi is one of _US_SUFFIXES: [A-Z] then [a-z]s, in
   the list once lowered. One pass over the row of s[i]'s letter: a suffix of such a length
   whose letters after the first are the text's (the suffixes are lower-case letters, so
   equal characters are [a-z]). */
static int us_suffix_word(const U *s, Z i, Z lo, Z hi) {
    if (!is_ascii_upper(s[i])) return 0;
    for (const char *const *suffix = US_SUFFIXES[s[i] - 'A']; *suffix; suffix++) {
        const char *w = *suffix;
        Z k = 1;
        while (w[k] && k < hi && s[i + k] == (U)(unsigned char)w[k]) k++;
        if (!w[k] && k >= lo) return 1;
    }
    return 0;
}

/* (?:Alley|Avenue|...|Wells)\b at i in s[:e]: every alternative is a word, so the one that
   matches followed by \b is the whole \w-run at i (cut at e). Returns its end or -1.
   With `cut`: whether some prefix of the run is a suffix (i, else -1), which is what a
   window ending inside the run can leave of it. */
static Z us_suffix(const U *s, Z i, Z e, int cut) {
    Z j = i;
    while (j < e && is_w(s[j])) j++;
    if (!cut) return j - i <= US_SUFFIX_MAX && us_suffix_word(s, i, j - i, j - i) ? j : -1;
    return us_suffix_word(s, i, 2, j - i < US_SUFFIX_MAX ? j - i : US_SUFFIX_MAX) ? i : -1;
}

/* \.?(?:,?[ \t]+(?:Apt\.|Suite|Ste\.?|Unit|#)[ \t]*[\w-]+)? at i in s[:e]: its end (the
   optional parts never make the match fail, so the first way through is taken) */
static Z us_tail(const U *s, Z i, Z e) {
    if (i < e && s[i] == '.') i++;
    Z j = i;
    if (j < e && s[j] == ',') j++;
    if (j >= e || !is_sp(s[j])) return i;
    while (j < e && is_sp(s[j])) j++;
    if (starts_with(s, j, e, "Apt.")) j += 4;
    else if (starts_with(s, j, e, "Suite")) j += 5;
    else if (starts_with(s, j, e, "Ste")) {
        j += 3;
        if (j < e && s[j] == '.') j++;   /* without it, [\w-]+ would have to match "." */
    }
    else if (starts_with(s, j, e, "Unit")) j += 4;
    else if (j < e && s[j] == '#') j += 1;
    else return i;
    while (j < e && is_sp(s[j])) j++;
    if (j >= e || !(is_w(s[j]) || s[j] == '-')) return i;
    while (j < e && (is_w(s[j]) || s[j] == '-')) j++;
    return j;
}

/* _us_street.match at p in s[:e] (p: a digit):
   [0-9]\d{0,5}[ \t]+(?:[NSEW]\.?[ \t]+)?(?:[A-Z][a-z]+[ \t]+){1,3}?(?:SUFFIXES)\b + tail.
   Each repeat is followed by something it cannot match, so none gives back; the
   direction, when it matches, leaves no way without it ("N" + "." or space is no word);
   the lazy words are taken one at a time until a suffix follows. Returns the end or -1.
   With `cut` (the digits are not checked then): whether a window ending anywhere after
   the digits could hold a match starting there (p, else -1). */
static Z us_street_at(const U *s, Z p, Z e, int cut) {
    Z i = p;
    while (i < e && is_d(s[i])) {
        if (i - p == 6 && !cut) return -1;
        i++;
    }
    if (i >= e || !is_sp(s[i])) return -1;
    while (i < e && is_sp(s[i])) i++;
    if (i < e && (s[i] == 'N' || s[i] == 'S' || s[i] == 'E' || s[i] == 'W')) {
        Z j = i + 1;
        if (j < e && s[j] == '.') j++;
        if (j < e && is_sp(s[j])) {
            while (j < e && is_sp(s[j])) j++;
            i = j;
        }
    }
    for (int words = 0; words < 3; words++) {
        if (i + 1 >= e || !is_ascii_upper(s[i]) || !is_ascii_lower(s[i + 1])) return -1;
        i += 2;
        while (i < e && is_ascii_lower(s[i])) i++;
        if (i >= e || !is_sp(s[i])) return -1;
        while (i < e && is_sp(s[i])) i++;
        Z end = us_suffix(s, i, e, cut);
        if (end >= 0) return cut ? p : us_tail(s, end, e);
    }
    return -1;
}

/* Scan.windows(triggers, 70, 30), asked about one place at a time: the windows are
   (t - 70, t + len + 30) around every occurrence t in the lowered text of a trigger that is
   a word of the text, merged where they touch or overlap. Only the places where a street
   can start are asked about, so the occurrences are looked for around them only. */
typedef struct {
    const CText *ct;
    signed char word[26][US_ROW];  /* ct_word of each trigger: 0 not asked yet, 1, -1 */
    uint32_t letters;              /* bit per first letter of a trigger that may be a word */
    Z start, end;                  /* the last answer: s[start:end] is in one window */
} UsWindows;

/* The end (cut at the text's end) of the merged window that holds p, or -1 if none does.
   An occurrence t reaches p only if t > p - 40 (the longest trigger has 10 characters);
   from there on the occurrences come in the order of their windows' starts, so the windows
   that hold p come first and then those that extend it, until one starts after the end. */
static Z us_window_end(UsWindows *w, Z p) {
    if (w->start <= p && p < w->end) return w->end;
    const U *low = w->ct->low;
    Z n = w->ct->n;
    Z end = -1;
    for (Z t = p > 39 ? p - 39 : 0; t < n; t++) {
        if (t > 70 && t - 70 > (end < 0 ? p : end)) break;
        if (low[t] < 'a' || low[t] > 'z') continue;
        int c = (int)(low[t] - 'a');
        if (!((w->letters >> c) & 1)) continue;   /* no trigger of this letter is a word */
        for (int k = 0; US_SUFFIXES[c][k]; k++) {
            const char *trigger = US_SUFFIXES[c][k];
            if ((U)(unsigned char)trigger[1] != low[t + 1]) {
                if ((U)(unsigned char)trigger[1] > low[t + 1]) break;   /* in order */
                continue;
            }
            if (!starts_with(low, t + 2, n, trigger + 2)) continue;
            if (w->word[c][k] == 0) w->word[c][k] = ct_word(w->ct, trigger) ? 1 : -1;
            if (w->word[c][k] < 0) continue;
            Z start = t > 70 ? t - 70 : 0, stop = t + lit_len(trigger) + 30;
            if (end < 0 ? start <= p && p < stop : stop > end) end = stop;
        }
    }
    if (end < 0) return -1;
    w->start = p;
    w->end = end < n ? end : n;
    return w->end;
}

/* US streets: _us_street.finditer in each of scan.windows(triggers, 70, 30), skipping
   matches right after a letter, digit, ".", "-" or "/". `starts`: (first digit that may
   start a match, last digit) for each number that ends before a [ \t] and may start one in
   some window (number_at); finditer tries their digits in order, in the window that
   holds each, and goes on after a match. */
static int us_streets(CText *ct, const Spans *starts, UsWindows *windows, Out *out) {
    const U *s = ct->s;
    if (starts->n == 0) return 0;   /* else us_trigger_word has set up `windows` */
    /* When us_trigger_word has found every trigger that is a word (a short text), the
       windows are Scan.windows of those alone (the others add none), made once with
       ct_windows; else us_window_end finds them around each place asked about. */
    const char *present[US_ROW * 26 + 1];
    Spans merged = {0};
    int listed = windows->letters != ~0u;
    if (listed) {
        int np = 0;
        for (int c = 0; c < 26; c++) {
            if (!((windows->letters >> c) & 1)) continue;
            for (int k = 0; US_SUFFIXES[c][k]; k++)
                if (windows->word[c][k] > 0) present[np++] = US_SUFFIXES[c][k];
        }
        present[np] = NULL;
        if (ct_windows(ct, present, 70, 30, NULL, &merged) < 0) goto fail;
    }
    Z last_end = 0;
    for (Z k = 0; k < starts->n; k++) {
        for (Z p = starts->v[k].start; p <= starts->v[k].end; p++) {
            if (p < last_end) continue;
            Z e = -1;
            if (!listed) {
                e = us_window_end(windows, p);
            } else {
                for (Z w = 0; w < merged.n; w++) {
                    if (merged.v[w].start <= p && p < merged.v[w].end) {
                        e = merged.v[w].end < ct->n ? merged.v[w].end : ct->n;
                        break;
                    }
                }
            }
            Z end = e < 0 ? -1 : us_street_at(s, p, e, 0);
            if (end < 0) continue;
            last_end = end;
            U before = p ? s[p - 1] : 0;
            if (!(p && (is_alnum(before) || before == '.' || before == '-' || before == '/'))
                && out_add(out, T_STREET_ADDRESS, p, end, 0.8) < 0)
                goto fail;
            break;
        }
    }
    spans_free(&merged);
    return 0;
fail:
    spans_free(&merged);
    return -1;
}

/* _us_zip at the digits q (after a [ \t]):
   [A-Z][A-Z][ \t]+(?P<zip>\d{5}(?:-\d{4})?)(?![\w-]), kept after a state code not right after
   a letter or digit, with "," or "\n" in the two characters before it or "APO " / "FPO " /
   "DPO " before it. `p`: the start of the [ \t] run before q. Returns the ZIP's end or -1.
   finditer's matches all have their digits after a [ \t], and none starts inside another,
   so these are all of them. */
static Z us_zip_at(const U *s, Z n, Z p, Z q) {
    p -= 2;
    if (p < 0 || !is_ascii_upper(s[p]) || !is_ascii_upper(s[p + 1])) return -1;
    Z z = q;
    while (z < n && z - q < 5 && is_d(s[z])) z++;
    if (z - q < 5) return -1;
    Z end = z;
    if (s[z] == '-' && is_d(s[z + 1]) && is_d(s[z + 2]) && is_d(s[z + 3]) && is_d(s[z + 4]))
        end = z + 5;   /* if the lookahead fails after it, it fails at the "-" too */
    if (end < n && (is_w(s[end]) || s[end] == '-')) return -1;
    int known = 0;
    for (const char *st = US_STATES; *st && !known; st += st[2] ? 3 : 2)
        known = st[0] == (char)s[p] && st[1] == (char)s[p + 1];
    if (!known || (p && is_alnum(s[p - 1]))) return -1;
    for (Z i = p >= 2 ? p - 2 : 0; i < p; i++)
        if (s[i] == ',' || s[i] == '\n') return end;
    if (p >= 4 && (starts_with(s, p - 4, p, "APO ") || starts_with(s, p - 4, p, "FPO ") ||
                   starts_with(s, p - 4, p, "DPO ")))
        return end;
    return -1;
}

/* Whether c matches the Latin-1 letter `want` case-insensitively, as re does: simple case
   mapping plus its equivalences (i: İ ı; s: ſ; ß: ẞ) */
static int de_fold_eq(U c, unsigned char want) {
    if (c == want) return 1;
    switch (want) {
    case 'i': return c == 'I' || c == 0x130 || c == 0x131;
    case 's': return c == 'S' || c == 0x17F;
    case 0xDF: return c == 0x1E9E;
    case '.': return 0;
    default: return c == (U)(want - 32);
    }
}

/* _de_anchors at the [ \t] run q before some digits: the start of a _DE_ANCHOR match
   (a suffix, in the lowered text, then [ \t]+\d) ending there, or -1. match_at's matches
   all end so, and cannot overlap, so these are all of them. */
static Z de_anchor_at(const U *low, Z q) {
    /* the suffixes by their last character (most numbers follow none of them) */
    static const Literal E[] = {
        LITERAL("stra\xdf" "e"), LITERAL("strasse"), LITERAL("gasse"), LITERAL("allee"),
        LITERAL("chaussee"), LITERAL("promenade"), {NULL, 0}};
    static const Literal DOT[] = {LITERAL("str."), {NULL, 0}};
    static const Literal G[] = {LITERAL("weg"), LITERAL("ring"), LITERAL("steig"), {NULL, 0}};
    static const Literal Z_[] = {LITERAL("platz"), {NULL, 0}};
    static const Literal M[] = {LITERAL("damm"), {NULL, 0}};
    static const Literal R[] = {LITERAL("ufer"), {NULL, 0}};
    static const Literal D[] = {LITERAL("pfad"), {NULL, 0}};
    if (q == 0) return -1;
    const Literal *suffix;
    switch (low[q - 1]) {
    case 'e': suffix = E; break;
    case '.': suffix = DOT; break;
    case 'g': suffix = G; break;
    case 'z': suffix = Z_; break;
    case 'm': suffix = M; break;
    case 'r': suffix = R; break;
    case 'd': suffix = D; break;
    default: return -1;
    }
    for (; suffix->text; suffix++)
        if (q >= suffix->len && starts_with(low, q - suffix->len, q, suffix->text))
            return q - suffix->len;
    return -1;
}

typedef struct { Z end, suffix, plz; int ring; } DeMatch;   /* plz: its start or -1 */

/* _de_street.match at p in s[:e]:
   [A-ZÄÖÜ](?<![\w-].)[\wäöüß.-]{0,40}?(?P<suffix>(?i:...))[ \t]+\d{1,4}
   (?:[ \t]?[a-zA-Z](?!\w)|[/-]\d{1,4})?(?:(?:,[ \t]*|[ \t]*\n[ \t]*)(?P<plz>\d{5})
   (?=[ \t]+[A-ZÄÖÜ]))?
   The suffix's characters are in the lazy class and the [ \t] after it is not, so the
   suffix ends where the run of class characters after the capital ends; at most one
   alternative ends there. After the house number everything is optional: the first way
   through is the match. */
static int de_street_at(const U *s, Z p, Z e, DeMatch *m) {
    if (!de_upper(s[p]) || (p > 0 && (is_w(s[p - 1]) || s[p - 1] == '-'))) return 0;
    Z limit = p + 1 + 40 + DE_SUFFIX_MAX;
    Z r = p + 1;
    while (r < e && de_class(s[r])) {
        if (r == limit) return 0;
        r++;
    }
    if (r >= e || !is_sp(s[r])) return 0;
    int found = -1;
    for (int k = 0; DE_SUFFIXES[k].text && found < 0; k++) {
        const char *suffix = DE_SUFFIXES[k].text;
        Z len = DE_SUFFIXES[k].len, q = r - len;
        if (q < p + 1 || q - (p + 1) > 40) continue;
        Z t = 0;
        while (t < len && de_fold_eq(s[q + t], (unsigned char)suffix[t])) t++;
        if (t == len) { found = k; m->suffix = q; }
    }
    if (found < 0) return 0;
    /* "ring" only if its .lower() is "ring": an "İ" or "ı" lowers to something else */
    m->ring = found == DE_SUFFIX_RING && (s[m->suffix + 1] == 'i' || s[m->suffix + 1] == 'I');
    Z j = r;
    while (j < e && is_sp(s[j])) j++;
    if (j >= e || !is_d(s[j])) return 0;
    Z h = j;
    while (h < e && h - j < 4 && is_d(s[h])) h++;
    Z t = h < e && is_sp(s[h]) ? h + 1 : h;
    if (t < e && is_ascii_letter(s[t]) && (t + 1 >= e || !is_w(s[t + 1]))) {
        h = t + 1;
    } else if (h + 1 < e && (s[h] == '/' || s[h] == '-') && is_d(s[h + 1])) {
        Z d = h + 1;
        while (d < e && d - (h + 1) < 4 && is_d(s[d])) d++;
        h = d;
    }
    m->end = h;
    m->plz = -1;
    t = h;
    if (t < e && s[t] == ',') {
        t++;
        while (t < e && is_sp(s[t])) t++;
    } else {
        while (t < e && is_sp(s[t])) t++;
        if (t >= e || s[t] != '\n') return 1;
        t++;
        while (t < e && is_sp(s[t])) t++;
    }
    Z z = t;
    while (z < e && z - t < 5 && is_d(s[z])) z++;
    if (z - t < 5) return 1;
    Z u = z;
    while (u < e && is_sp(s[u])) u++;
    if (u == z || u >= e || !de_upper(s[u])) return 1;
    m->plz = t;
    m->end = z;
    return 1;
}

/* German streets: _de_street.finditer in (a - 45, a + 40) for each anchor a (overlapping
   windows, not merged: a street can be reported twice); "-ring" only with a PLZ; the street
   ends before the PLZ, at the last newline before it, without trailing " ,\t" */
static int de_streets(CText *ct, const Spans *anchors, Out *out) {
    const U *s = ct->s;
    Z n = ct->n;
    for (Z a = 0; a < anchors->n; a++) {
        Z at = anchors->v[a].start;
        Z p = at > 45 ? at - 45 : 0;
        Z e = at + 40 < n ? at + 40 : n;
        while (p < e) {
            DeMatch m;
            if (!de_street_at(s, p, e, &m)) { p++; continue; }
            Z start = p;
            p = m.end;
            if (m.ring && m.plz < 0) continue;
            Z end = m.plz >= 0 ? m.plz : m.end;
            Z street_end = end;
            for (Z k = end - 1; k >= start; k--) {
                if (s[k] == '\n') { street_end = k; break; }
            }
            while (street_end > start && (s[street_end - 1] == ' ' || s[street_end - 1] == ','
                                          || s[street_end - 1] == '\t'))
                street_end--;
            if (out_add(out, T_STREET_ADDRESS, start, street_end, 0.8) < 0 ||
                (m.plz >= 0 && out_add(out, T_ZIP_CODE, m.plz, m.plz + 5, 0.8) < 0))
                return -1;
        }
    }
    return 0;
}

/* Whether a trigger (one of US_SUFFIXES) is a word of the text: without one there are no
   windows, and no US street. The suffixes are kept in a hash table keyed by the tokens'
   own hash (Token.hash: FNV-1a over the word bytes, core.h's word_hash),
   so that each token is looked up with a probe or two; a hit on the hash is confirmed on
   the bytes. Texts of many tokens ask ct_word about each suffix instead, as that costs
   less there. */
#define US_SLOTS 512   /* a power of two, more than twice the suffixes */
static const char *us_slot_word[US_SLOTS];
static uint32_t us_slot_hash[US_SLOTS];
static unsigned char us_slot_len[US_SLOTS];
static unsigned char us_slot_index[US_SLOTS];   /* the word's place in its US_SUFFIXES row */
static uint64_t us_hash_bits[16];   /* bit (hash >> 22) of each suffix: most tokens miss it */
static int us_slots_ready;

static void us_slots_init(void) {
    for (int c = 0; c < 26; c++) {
        for (const char *const *word = US_SUFFIXES[c]; *word; word++) {
            Z len = (Z)strlen(*word);
            uint32_t h = word_hash((const unsigned char *)*word, len);
            Z at = (Z)(h & (US_SLOTS - 1));
            while (us_slot_word[at]) at = (at + 1) & (US_SLOTS - 1);
            us_slot_word[at] = *word;
            us_slot_hash[at] = h;
            us_slot_len[at] = (unsigned char)len;
            us_slot_index[at] = (unsigned char)(word - US_SUFFIXES[c]);
            us_hash_bits[h >> 28] |= 1ULL << ((h >> 22) & 63);
        }
    }
    us_slots_ready = 1;
}

static int us_trigger_word(const CText *ct, UsWindows *w) {
    w->ct = ct;
    w->start = w->end = 0;
    if (ct->ntokens > 256) {   /* us_window_end asks ct_word about each trigger it meets */
        memset(w->word, 0, sizeof w->word);
        w->letters = ~0u;
        for (int c = 0; c < 26; c++) if (ct_any_word(ct, US_SUFFIXES[c])) return 1;
        return 0;
    }
    /* every trigger that is a token is marked, the others are not words */
    memset(w->word, -1, sizeof w->word);
    w->letters = 0;
    if (!us_slots_ready) us_slots_init();
    const Token *tokens = ct->tokens;
    for (Z k = 0; k < ct->ntokens; k++) {
        Z len = tokens[k].len;
        if (len < 2 || len > US_SUFFIX_MAX) continue;
        uint32_t h = tokens[k].hash;
        if (!((us_hash_bits[h >> 28] >> ((h >> 22) & 63)) & 1)) continue;
        for (Z at = (Z)(h & (US_SLOTS - 1)); us_slot_word[at]; at = (at + 1) & (US_SLOTS - 1)) {
            if (us_slot_hash[at] == h && us_slot_len[at] == len &&
                memcmp(ct->wb + tokens[k].start, us_slot_word[at], (size_t)len) == 0) {
                int c = us_slot_word[at][0] - 'a';
                w->word[c][us_slot_index[at]] = 1;
                w->letters |= 1u << c;
                break;
            }
        }
    }
    return w->letters != 0;
}

/* What the three parts start from, at the digit i. Before a [ \t]: the numbers that may
   start a US street in some window (us_street_at with `cut`) go to `us` as (first digit
   that may start it: at most six before the [ \t], last digit). After a [ \t]: the ZIPs
   to report (us_zip_at) go to `zips`, the anchors of German streets (de_anchor_at) to
   `anchors`. */
static int number_at(const CText *ct, Z i, Spans *us, Spans *zips, Spans *anchors,
                     int *triggered, UsWindows *windows) {
    const unsigned char *raw = ct->raw;   /* digits, spaces and tabs as in the text */
    if (i > 0 && is_sp(raw[i - 1])) {
        Z q = i - 1;
        while (q > 0 && is_sp(raw[q - 1])) q--;
        Z end = us_zip_at(ct->s, ct->n, q, i), at = de_anchor_at(ct->low, q);
        if ((end >= 0 && spans_add(zips, i, end) < 0) ||
            (at >= 0 && spans_add(anchors, at, at) < 0))
            return -1;
    }
    if (!is_sp(raw[i + 1])) return 0;
    /* us_street_at needs [A-Z] after the [ \t] run (a direction or a word starts so): most
       numbers fail that, and it is checked before the triggers are asked about */
    Z a = i + 2;
    while (is_sp(raw[a])) a++;
    if (!is_ascii_upper(raw[a]) || us_street_at(ct->s, i, ct->n, 1) < 0) return 0;
    if (*triggered < 0) *triggered = us_trigger_word(ct, windows);   /* asked once, when first needed */
    if (*triggered) {
        Z first = i;
        while (first > 0 && first > i - 5 && is_d(raw[first - 1])) first--;
        if (spans_add(us, first, i) < 0) return -1;
    }
    return 0;
}

#if defined(__SSE2__)
#include <emmintrin.h>
/* Bits of raw[0:16]: ASCII digits (*digits) and [ \t] (*spaces) */
static inline void block16(const unsigned char *raw, uint64_t *digits, uint64_t *spaces) {
    __m128i x = _mm_loadu_si128((const __m128i *)raw);
    __m128i d = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)),
                              _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));  /* signed: bytes
                                                                             over 127 fail */
    __m128i sp = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(' ')),
                              _mm_cmpeq_epi8(x, _mm_set1_epi8('\t')));
    *digits = (uint64_t)(unsigned)_mm_movemask_epi8(d);
    *spaces = (uint64_t)(unsigned)_mm_movemask_epi8(sp);
}
#endif

/* Bits of raw[0:64] (64 readable bytes): ASCII digits and [ \t] */
static inline void block64(const unsigned char *raw, uint64_t *digits, uint64_t *spaces) {
#if defined(__SSE2__)
    uint64_t d = 0, sp = 0;
    for (int k = 0; k < 4; k++) {
        uint64_t dk, sk;
        block16(raw + 16 * k, &dk, &sk);
        d |= dk << (16 * k);
        sp |= sk << (16 * k);
    }
    *digits = d;
    *spaces = sp;
#else
    uint64_t d = 0, sp = 0;
    for (int k = 0; k < 64; k++) {
        d |= (uint64_t)is_d(raw[k]) << k;
        sp |= (uint64_t)is_sp(raw[k]) << k;
    }
    *digits = d;
    *spaces = sp;
#endif
}

/* AddressDetector.find: US streets, US ZIPs, German streets, in that order */
int det_address(CText *ct, Out *out) {
    if (!ct->has_digit) return 0;
    Spans us = {0}, zips = {0}, anchors = {0};
    int rc = 0;
    /* number_at at each digit next to a [ \t] (it does nothing at others), in order: in a
       run of digits only the first can follow one and only the last precede one, so these
       are the digits d with raw[d - 1] or raw[d + 1] in [ \t]. They are found 64 bytes at a
       time as bit masks of raw (digits, spaces and tabs are ASCII: raw has them where the
       text does; raw[n] == 0, and the last block is padded with zeros). */
    const unsigned char *raw = ct->raw;
    Z n = ct->n;
    int triggered = -1;   /* us_trigger_word, not asked yet */
    UsWindows windows;    /* set up by us_trigger_word */
    uint64_t carry = 0;   /* whether the byte before the block is a [ \t] */
    for (Z base = 0; rc == 0 && base < n; base += 64) {
        uint64_t digits, spaces, after;
        if (base + 64 <= n) {
            block64(raw + base, &digits, &spaces);
            after = is_sp(raw[base + 64]);   /* raw[n] is readable */
        } else {
            unsigned char tail[64] = {0};
            memcpy(tail, raw + base, (size_t)(n - base));
            block64(tail, &digits, &spaces);
            after = 0;
        }
        uint64_t hits = digits & ((spaces << 1) | carry | (spaces >> 1) | (after << 63));
        carry = spaces >> 63;
        while (hits && rc == 0) {
            rc = number_at(ct, base + __builtin_ctzll(hits), &us, &zips, &anchors, &triggered,
                           &windows);
            hits &= hits - 1;
        }
    }
    if (rc == 0) rc = us_streets(ct, &us, &windows, out);
    for (Z k = 0; rc == 0 && k < zips.n; k++)
        rc = out_add(out, T_ZIP_CODE, zips.v[k].start, zips.v[k].end, 0.85);
    if (rc == 0) rc = de_streets(ct, &anchors, out);
    if (us.v) spans_free(&us);
    if (zips.v) spans_free(&zips);
    if (anchors.v) spans_free(&anchors);
    return rc;
}
