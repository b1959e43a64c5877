/* network.py: e-mail addresses, URLs, IP and MAC addresses. */
#include "core.h"

/* ------------------------------------------------------------------ fast skipping */

/* The searches below skip on Scan.raw (ct->raw: Latin-1, '?' above 0xFF) with glibc's
   vectorised memchr, one byte per character instead of four. For an ASCII character c
   other than '?', raw[i] == c exactly where s[i] == c, so the positions are the same. */

/* The first i in [from, n) where raw[i] == c, or -1. */
static inline Z find_byte(const unsigned char *raw, Z from, Z n, int c) {
    if (from >= n) return -1;
    const unsigned char *at = memchr(raw + from, c, (size_t)(n - from));
    return at ? at - raw : -1;
}

/* The first i >= from where raw[i] is a or b (n when none), for increasing `from`: each
   byte's next position is remembered (next[0], next[1]; start them at -1) and searched
   again only once passed, so the text is scanned once per byte however many hits. */
static Z next_of2(const unsigned char *raw, Z from, Z n, int a, int b, Z next[2]) {
    if (next[0] < from) { next[0] = find_byte(raw, from, n, a); if (next[0] < 0) next[0] = n; }
    if (next[1] < from) { next[1] = find_byte(raw, from, n, b); if (next[1] < 0) next[1] = n; }
    return next[0] < next[1] ? next[0] : next[1];
}

/* The first "://" starting at or after `from`, or -1: skips to its '/'s (rarer in prose than
   ':'), the first of which lies at from + 1 or later. */
static Z find_sep(const unsigned char *raw, Z from, Z n) {
    for (Z p = find_byte(raw, from + 1, n, '/'); p >= 0; p = find_byte(raw, p + 1, n, '/'))
        if (raw[p - 1] == ':' && p + 1 < n && raw[p + 1] == '/') return p - 1;
    return -1;
}

/* The first "www." starting at or after `from`, or -1 ('w' is rarer than '.'). */
static Z find_www(const unsigned char *raw, Z from, Z n) {
    for (Z p = find_byte(raw, from, n, 'w'); p >= 0; p = find_byte(raw, p + 1, n, 'w'))
        if (p + 3 < n && raw[p + 1] == 'w' && raw[p + 2] == 'w' && raw[p + 3] == '.') return p;
    return -1;
}

/* ------------------------------------------------------------------ e-mail addresses */

static int email_local(U c) {
    return (c < 128) && (is_ascii_lower(c) || is_ascii_upper(c) || is_d(c) || c == '.' ||
                         c == '_' || c == '%' || c == '+' || c == '-');
}
static int ascii_alnum(U c) { return c < 128 && (is_ascii_lower(c) || is_ascii_upper(c) || is_d(c)); }
static int ascii_alpha(U c) { return c < 128 && (is_ascii_lower(c) || is_ascii_upper(c)); }

/* @[A-Za-z0-9](?:[A-Za-z0-9-]*\.)+[A-Za-z]{2,24}\b at `at` (an '@'); returns the end or -1.
   Backtracking: the labels take as many "label." as possible, then [A-Za-z]{2,24} must
   follow and end at a word boundary; fewer labels are tried when that fails. */
static Z email_domain(const U *s, Z n, Z at) {
    Z i = at + 1;
    if (i >= n || !ascii_alnum(s[i])) return -1;
    /* the greedy chain (?:[A-Za-z0-9-]*\.)+ from i + 1 (the first label's first character
       is the [A-Za-z0-9] already taken): the class does not match ".", so each repetition
       ends at the next "." and the chain at the last "." reachable; `last` is just after it */
    Z last = -1;
    for (Z k = i + 1;; k++) {
        while (k < n && (ascii_alnum(s[k]) || s[k] == '-')) k++;
        if (k >= n || s[k] != '.') break;
        last = k + 1;
    }
    /* backtracking gives back one repetition at a time: every "." in s[i+1:last] ends one,
       so they are tried from the last; after each, [A-Za-z]{2,24} (greedy) then \b */
    for (Z d = last - 1; d > i; d--) {
        if (s[d] != '.') continue;
        Z t = d + 1;
        Z m = 0;
        while (t + m < n && m < 24 && ascii_alpha(s[t + m])) m++;
        for (Z c = m; c >= 2; c--) {
            if (at_boundary(s, t + c, n)) return t + c;
        }
    }
    return -1;
}

int det_email(CText *ct, Out *out) {
    const U *s = ct->s;
    Z n = ct->n;
    Z pos = 0;
    while (pos < n) {
        Z at = find_byte(ct->raw, pos, n, '@');   /* the pattern's finditer: each "@" */
        if (at < 0) break;
        Z end = email_domain(s, n, at);
        if (end < 0) { pos = at + 1; continue; }
        Z start = at;
        while (start > 0 && email_local(s[start - 1])) start--;
        if (start < at && s[start] != '.') {
            if (out_add(out, T_EMAIL, start, end, 0.97) < 0) return -1;
        }
        pos = end;
    }
    return 0;
}

/* ------------------------------------------------------------------ URLs */

/* \s of a re.ASCII pattern: [ \t\n\r\f\v] */
static int ascii_space(U c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
/* [a-z0-9+.-] */
static int scheme_char(U c) { return is_ascii_lower(c) || is_d(c) || c == '+' || c == '.' || c == '-'; }
/* [^\s/@<>"'] (re.ASCII) */
static int userinfo_char(U c) {
    return !ascii_space(c) && c != '/' && c != '@' && c != '<' && c != '>' && c != '"' && c != '\'';
}
/* [\w.-] (re.ASCII) */
static int host_char(U c) { return ascii_alnum(c) || c == '_' || c == '.' || c == '-'; }
/* [^\s<>"'] (re.ASCII) */
static int path_char(U c) {
    return !ascii_space(c) && c != '<' && c != '>' && c != '"' && c != '\'';
}
/* ".,;:)!?": trimmed off a URL's end */
static int url_trailing(U c) {
    return c == '.' || c == ',' || c == ';' || c == ':' || c == ')' || c == '!' || c == '?';
}
static U ascii_lower(U c) { return is_ascii_upper(c) ? c + 32 : c; }

/* The end of the run of userinfo characters from `from`. `memo` remembers the last run
   ([memo[0], memo[1]) all userinfo characters, memo[1] the run's end): many "www." starts
   inside one long run would otherwise scan it again each time. */
static Z userinfo_end(const U *s, Z n, Z from, Z memo[2]) {
    if (from >= memo[0] && from <= memo[1]) return memo[1];
    Z k = from;
    while (k < n && userinfo_char(s[k])) k++;
    memo[0] = from;
    memo[1] = k;
    return k;
}

/* (?P<host>\[[0-9a-fA-F:]+\]|[\w.-]+) at h (re.ASCII): the host's end, or -1 */
static Z url_host(const U *s, Z n, Z h) {
    if (h >= n) return -1;
    if (s[h] == '[') {
        Z k = h + 1;
        while (k < n && (is_hex(s[k]) || s[k] == ':')) k++;
        return k > h + 1 && k < n && s[k] == ']' ? k + 1 : -1;
    }
    Z k = h;
    while (k < n && host_char(s[k])) k++;
    return k > h ? k : -1;
}

/* UrlDetector's pattern (re.ASCII), matched at i (pattern.match(text, i)):
     (?:[a-z][a-z0-9+.-]{1,15}://|www\.)(?:[^\s/@<>"']+@)?(?P<host>\[[0-9a-fA-F:]+\]|[\w.-]+)
     (?::\d{1,5})?(?:[/?#][^\s<>"']*)?
   The scheme can end only where its run of characters ends, and the userinfo only at the
   '@' that ends its run, so each has one way to match; the alternatives are tried in the
   pattern's order (scheme, then "www."; with userinfo, then without), and the first that
   finds a host wins, since port and path are optional and greedy. Returns the match's end
   (host in host[0..1]) or -1. */
static Z url_match(const U *s, Z n, Z i, Z memo[2], Z host[2]) {
    Z prefix[2];
    int np = 0;
    if (is_ascii_lower(s[i])) {
        Z k = i + 1;
        while (k < n && k - i < 16 && scheme_char(s[k])) k++;
        if (k - i >= 2 && starts_with(s, k, n, "://")) prefix[np++] = k + 3;
    }
    if (starts_with(s, i, n, "www.")) prefix[np++] = i + 4;
    for (int a = 0; a < np; a++) {
        Z p = prefix[a];
        Z at = userinfo_end(s, n, p, memo);
        Z tries[2];
        int nt = 0;
        if (at > p && at < n && s[at] == '@') tries[nt++] = at + 1;
        tries[nt++] = p;
        for (int t = 0; t < nt; t++) {
            Z e = url_host(s, n, tries[t]);
            if (e < 0) continue;
            host[0] = tries[t];
            host[1] = e;
            if (e + 1 < n && s[e] == ':' && is_d(s[e + 1])) {
                Z k = e + 1;
                while (k < n && k - (e + 1) < 5 && is_d(s[k])) k++;
                e = k;
            }
            if (e < n && (s[e] == '/' || s[e] == '?' || s[e] == '#')) {
                e++;
                while (e < n && path_char(s[e])) e++;
            }
            return e;
        }
    }
    return -1;
}

/* Whether ipaddress.IPv4Address(a).is_private holds for the integer a; is_loopback
   (127.0.0.0/8) and is_link_local (169.254.0.0/16) lie inside its networks. The networks
   changed with CVE-2024-4032 (Python 3.11.10, 3.12.4, 3.13): 192.0.0.0/29 became
   192.0.0.0/24 less 192.0.0.9 and 192.0.0.10. */
static int ipv4_private(uint32_t a) {
    static const struct { uint32_t net; int bits; } NETS[] = {
        {0x00000000u, 8}, {0x0A000000u, 8}, {0x7F000000u, 8}, {0xA9FE0000u, 16},
        {0xAC100000u, 12}, {0xC00000AAu, 31}, {0xC0000200u, 24}, {0xC0A80000u, 16},
        {0xC6120000u, 15}, {0xC6336400u, 24}, {0xCB007100u, 24}, {0xF0000000u, 4},
        {0xFFFFFFFFu, 32},
    };
    for (size_t k = 0; k < sizeof NETS / sizeof NETS[0]; k++) {
        uint32_t mask = 0xFFFFFFFFu << (32 - NETS[k].bits);
        if ((a & mask) == NETS[k].net) return 1;
    }
    unsigned long v = Py_Version;
    int fixed = v >= 0x030D0000 || (v >= 0x030C04F0 && v < 0x030D0000) ||
                (v >= 0x030B0AF0 && v < 0x030C0000);
    if (fixed) return (a & 0xFFFFFF00u) == 0xC0000000u && a != 0xC0000009u && a != 0xC000000Au;
    return (a & 0xFFFFFFF8u) == 0xC0000000u;
}

/* ipaddress.IPv4Address(s[from:to]) (a lowered host, ASCII): 1 and the address in *a when
   it parses: four '.'-separated octets of 1-3 digits, no leading zero, at most 255. */
static int ipv4_parse(const U *s, Z from, Z to, uint32_t *a) {
    uint32_t value = 0;
    int octets = 0;
    Z k = from;
    for (;;) {
        Z j = k;
        while (j < to && s[j] != '.') j++;
        Z len = j - k;
        if (len == 0 || len > 3) return 0;
        unsigned int o = 0;
        for (Z q = k; q < j; q++) {
            if (!is_d(s[q])) return 0;
            o = o * 10 + (s[q] - '0');
        }
        if (len > 1 && s[k] == '0') return 0;
        if (o > 255) return 0;
        value = value << 8 | o;
        octets++;
        if (j == to) break;
        if (octets == 4) return 0;
        k = j + 1;
    }
    if (octets != 4) return 0;
    *a = value;
    return 1;
}

/* Whether s[from:to] (after case folding, ASCII) ends with the lower-case `suffix` */
static int ends_with_lower(const U *s, Z from, Z to, const char *suffix) {
    Z len = lit_len(suffix);
    if (to - from < len) return 0;
    for (Z k = 0; k < len; k++)
        if (ascii_lower(s[to - len + k]) != (U)(unsigned char)suffix[k]) return 0;
    return 1;
}

static const char *const INTERNAL_SUFFIXES[] = {
    ".local", ".internal", ".lan", ".corp", ".intranet", ".intra", ".home", ".localdomain",
    ".private", ".test", ".example", ".invalid", NULL,
};

/* _is_internal_host(host.rstrip(".")) for the host s[from:to] that the URL pattern matched.
   A bracketed host holds no '.', so it is internal; a [\w.-]+ host holds no ':', so of
   ipaddress.ip_address only the IPv4 parse can succeed. */
static int internal_host(const U *s, Z from, Z to) {
    while (to > from && s[to - 1] == '.') to--;              /* rstrip(".") */
    if (from < to && s[from] == '[') return 1;
    if (to - from == 9 && ends_with_lower(s, from, to, "localhost")) return 1;
    if (find_in(s, from, to, ".") < 0) return 1;
    for (const char *const *suffix = INTERNAL_SUFFIXES; *suffix; suffix++)
        if (ends_with_lower(s, from, to, *suffix)) return 1;
    uint32_t a;
    return ipv4_parse(s, from, to, &a) && ipv4_private(a);
}

/* UrlDetector.find: the pattern matched at each start a match can have (a "www.", or 2-16
   characters before a "://"), in order, skipping starts inside the last match (match_at);
   trailing ".,;:)!?" trimmed off the finding. */
int det_url(CText *ct, Out *out) {
    const U *s = ct->s;
    Z n = ct->n;
    const unsigned char *raw = ct->raw;
    Z sep = find_sep(raw, 2, n);   /* a "://" at sep gives starts sep-16 .. sep-2 */
    Z www = find_www(raw, 0, n);
    Z memo[2] = {-1, -1};
    Z pos = 0;
    for (;;) {
        if (sep >= 0 && sep < pos + 2) sep = find_sep(raw, pos + 2, n);
        if (www >= 0 && www < pos) www = find_www(raw, pos, n);
        Z i = -1;
        if (sep >= 0) i = sep - 16 > pos ? sep - 16 : pos;
        if (www >= 0 && (i < 0 || www < i)) i = www;
        if (i < 0) break;
        Z host[2];
        Z end = url_match(s, n, i, memo, host);
        if (end < 0) { pos = i + 1; continue; }
        pos = end;
        while (end > i && url_trailing(s[end - 1])) end--;
        int type = internal_host(s, host[0], host[1]) ? T_INTERNAL_URL : T_URL;
        if (out_add(out, type, i, end, 0.95) < 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ IP and MAC addresses */

/* \b(?:v|version|ver\.?|release|build|firmware|fw)\s*$ searched in low[from:to] (a string
   of its own: \b at `from` sees nothing before it). The word must end where the trailing
   whitespace begins (words hold no whitespace). */
static int version_before(const U *low, Z from, Z to) {
    static const char *const WORDS[] = {
        "v", "version", "ver", "ver.", "release", "build", "firmware", "fw", NULL,
    };
    while (to > from && is_s(low[to - 1])) to--;
    for (const char *const *w = WORDS; *w; w++) {
        Z p = to - lit_len(*w);
        if (p < from || !starts_with(low, p, to, *w)) continue;
        if (p == from || !is_w(low[p - 1])) return 1;
    }
    return 0;
}

/* [0-9]\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w-]|\.\d)(?:/\d{1,2}\b)? at i. Every digit
   group must be its whole run of digits (a shorter one is followed by a digit, which neither
   '.' nor the lookahead accepts). Returns the end or -1; the end of the dotted quad in
   *quad. */
static Z ipv4_match(const U *s, Z n, Z i, Z *quad) {
    Z k = i;
    for (int octet = 0; octet < 4; octet++) {
        if (octet > 0) {
            if (k >= n || s[k] != '.') return -1;
            k++;
        }
        Z j = k;
        while (k < n && k - j < 3 && is_d(s[k])) k++;
        if (k == j) return -1;
    }
    if (k < n && (is_w(s[k]) || s[k] == '-')) return -1;
    if (k + 1 < n && s[k] == '.' && is_d(s[k + 1])) return -1;
    *quad = k;
    if (k + 1 < n && s[k] == '/' && is_d(s[k + 1])) {
        Z d = k + 2 < n && is_d(s[k + 2]) ? 2 : 1;
        for (; d >= 1; d--) {
            Z r = k + 1 + d;
            if (r >= n || !is_w(s[r])) return r;   /* \b after a digit */
        }
    }
    return k;
}

/* Whether every octet of the dotted quad s[i:quad] is at most 255 without a leading zero */
static int ipv4_octets_ok(const U *s, Z i, Z quad) {
    Z k = i;
    while (k < quad) {
        Z j = k;
        unsigned int o = 0;
        while (j < quad && s[j] != '.') o = o * 10 + (s[j++] - '0');
        if (o > 255 || (j - k > 1 && s[k] == '0')) return 0;
        k = j + 1;
    }
    return 1;
}

/* IpAddressDetector's IPv4 part: the pattern's finditer, less matches after a letter,
   digit, '.' or '-', with a bad octet, or after a version word. Python searches the windows
   of Scan.runs(digits and '.', 7, 4); a match lies in such a run and looks at most 3
   characters past it (the lookahead, "/\d{1,2}\b"), which its window still shows, so a scan
   of the whole text finds the same matches, at less cost than finding the runs. A match
   begins 1-3 digits before a '.': the starts that share that '.' share the rest of the
   match, so only the first of them (finditer's) is tried. */
static int find_ipv4(CText *ct, Out *out) {
    const U *s = ct->s;
    Z n = ct->n;
    Z pos = 0;
    for (Z dot = find_byte(ct->raw, 1, n, '.'); dot >= 0; dot = find_byte(ct->raw, dot + 1, n, '.')) {
        if (!is_d(s[dot - 1])) continue;
        Z start = dot - 1;
        while (start > pos && start > dot - 3 && is_d(s[start - 1])) start--;
        if (start < pos) continue;
        Z quad;
        Z end = ipv4_match(s, n, start, &quad);
        if (end < 0) continue;
        pos = end;
        if (start > 0 && (is_alnum(s[start - 1]) || s[start - 1] == '.' || s[start - 1] == '-'))
            continue;
        if (!ipv4_octets_ok(s, start, quad)) continue;
        if (version_before(ct->low, start > 12 ? start - 12 : 0, start)) continue;
        if (out_add(out, T_IP_ADDRESS, start, end, 0.9) < 0) return -1;
    }
    return 0;
}

/* [0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7} at i in s[:e] (a window): greedy, and nothing follows, so
   the first way is the match: the leading group must be its whole run of hex digits before
   a ':' (else a hex digit stands where ':' must); then up to 7 groups of ':' and at most 4
   hex digits, at least 2. Returns the end or -1. */
static Z ipv6_match(const U *s, Z e, Z i) {
    Z k = i;
    while (k < e && k - i < 4 && is_hex(s[k])) k++;
    int groups = 0;
    while (groups < 7 && k < e && s[k] == ':') {
        Z j = ++k;
        while (k < e && k - j < 4 && is_hex(s[k])) k++;
        groups++;
    }
    return groups >= 2 ? k : -1;
}

/* ipaddress.IPv6Address(s[i:end]) for a string of hex groups (at most 4 digits) and 2-7
   colons (the pattern's {2,7}, so 3-8 parts, which Python's part counts allow):
   _BaseV6._ip_int_from_string's checks on the empty parts. */
static int ipv6_valid(const U *s, Z i, Z end) {
    Z starts[8], ends[8];
    int parts = 0;
    Z k = i;
    for (;;) {
        Z j = k;
        while (j < end && s[j] != ':') j++;
        starts[parts] = k;
        ends[parts] = j;
        parts++;
        if (j == end) break;
        k = j + 1;
    }
    int skip = -1;
    for (int p = 1; p < parts - 1; p++) {
        if (starts[p] == ends[p]) {
            if (skip >= 0) return 0;     /* more than one "::" */
            skip = p;
        }
    }
    int first_empty = starts[0] == ends[0], last_empty = starts[parts - 1] == ends[parts - 1];
    if (skip >= 0) {
        int hi = skip, lo = parts - skip - 1;
        if (first_empty && --hi) return 0;
        if (last_empty && --lo) return 0;
        return 8 - (hi + lo) >= 1;
    }
    return parts == 8 && !first_empty && !last_empty;
}

/* One window of IpAddressDetector._ipv6_matches: the IPv6 pattern's finditer in s[ws:we],
   less values without "::" or 8 groups, with fewer than 3 hex digits (every match has 2
   colons), after a letter, digit or ':', or that ipaddress rejects. */
static int ipv6_window(const U *s, Z ws, Z we, Out *out) {
    Z pos = ws;
    while (pos < we) {
        if (!is_hex(s[pos]) && s[pos] != ':') { pos++; continue; }
        Z end = ipv6_match(s, we, pos);
        if (end < 0) { pos++; continue; }
        Z start = pos;
        pos = end;
        int colons = 0, double_colon = 0;
        for (Z k = start; k < end; k++) {
            if (s[k] != ':') continue;
            colons++;
            if (k + 1 < end && s[k + 1] == ':') double_colon = 1;
        }
        if (!double_colon && colons != 7) continue;
        if ((end - start) - colons < 3) continue;
        if (start > 0 && (is_alnum(s[start - 1]) || s[start - 1] == ':')) continue;
        if (!ipv6_valid(s, start, end)) continue;
        if (out_add(out, T_IP_ADDRESS, start, end, 0.85) < 0) return -1;
    }
    return 0;
}

/* IpAddressDetector._ipv6_matches and its filters: windows from 5 before to 45 after each
   match of :[0-9a-fA-F]{0,4}: (finditer over the whole text, so hints do not overlap),
   merged, each searched as its own finditer. */
static int find_ipv6(CText *ct, Out *out) {
    const U *s = ct->s;
    Z n = ct->n;
    Z ws = -1, we = -1;
    Z pos = 0;
    for (;;) {
        Z p = find_byte(ct->raw, pos, n, ':');
        Z hint = -1;
        if (p >= 0) {
            Z k = p + 1;
            while (k < n && k - (p + 1) < 4 && is_hex(s[k])) k++;
            if (k < n && s[k] == ':') { hint = p; pos = k + 1; }
            else pos = p + 1;
            if (hint < 0) continue;
            Z start = hint > 5 ? hint - 5 : 0, end = hint + 45;
            if (ws >= 0 && start <= we) { we = end; continue; }
        }
        if (ws >= 0 && ipv6_window(s, ws, we < n ? we : n, out) < 0) return -1;
        if (p < 0) return 0;
        ws = hint > 5 ? hint - 5 : 0;
        we = hint + 45;
    }
}

/* [0-9A-Fa-f][0-9A-Fa-f]([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![\w:-]) at i: 17
   characters; returns 1 when it matches. */
static int mac_match(const U *s, Z n, Z i) {
    if (i + 17 > n) return 0;
    U sep = s[i + 2];
    if (sep != ':' && sep != '-') return 0;
    for (int g = 0; g < 6; g++) {
        Z k = i + 3 * g;
        if (!is_hex(s[k]) || !is_hex(s[k + 1])) return 0;
        if (g > 0 && s[k - 1] != sep) return 0;
    }
    Z k = i + 17;
    return !(k < n && (is_w(s[k]) || s[k] == ':' || s[k] == '-'));
}

/* IpAddressDetector's MAC part: the pattern's finditer, less matches after a letter or
   digit. Python searches the windows of Scan.runs(hex digits, ':' and '-', 17, 1); a match
   is 17 characters of such a run and its lookahead sees one past it, as the window does, so
   the whole text gives the same matches. A match has a separator at its third character:
   only those places are tried. */
static int find_mac(CText *ct, Out *out) {
    const U *s = ct->s;
    Z n = ct->n;
    Z pos = 0;
    Z next[2] = {-1, -1};
    for (Z p = next_of2(ct->raw, 2, n, ':', '-', next); p < n;
         p = next_of2(ct->raw, p + 1, n, ':', '-', next)) {
        Z start = p - 2;
        if (start < pos || !mac_match(s, n, start)) continue;
        pos = start + 17;
        if (start > 0 && is_alnum(s[start - 1])) continue;
        if (out_add(out, T_DEVICE_ID, start, pos, 0.9) < 0) return -1;
    }
    return 0;
}

/* IpAddressDetector.find: IPv4, IPv6, then MAC addresses. Python tries IPv4 only when the
   text has 3 dots, IPv6 only with a "::" or 7 colons, MAC only with 5 colons or dashes; each
   match holds those, so the searches below, which skip to dots, colons and dashes, find
   nothing without them and need no counting pass. */
int det_ip(CText *ct, Out *out) {
    if (!ct->has_digit) return 0;
    if (find_ipv4(ct, out) < 0 || find_ipv6(ct, out) < 0 || find_mac(ct, out) < 0) return -1;
    return 0;
}
