/* checksums.py's checks shared by several detectors (numbers.c, labelled.c). */
#include "core.h"

/* checksums._digits: the value without " -./" into `buf` (room for `cap`); returns the
   length, or -1 when longer than `cap` (no check here takes more than 19 digits). Sets
   *all_digits to str.isdigit() of the result (False for ""). */
Z ck_digits(const U *s, Z start, Z end, U *buf, Z cap, int *all_digits) {
    Z len = 0;
    int digits = 1;
    for (Z i = start; i < end; i++) {
        U c = s[i];
        if (c == ' ' || c == '-' || c == '.' || c == '/') continue;
        if (len == cap) return -1;
        if (!is_digit(c)) digits = 0;
        buf[len++] = c;
    }
    *all_digits = digits && len > 0;
    return len;
}

/* checksums.luhn_valid on digits already stripped and known to be str.isdigit() (ord - 48,
   as the Python does, also for a digit such as '²') */
int ck_luhn(const U *d, Z len) {
    if (len < 2) return 0;
    long total = 0;
    for (Z i = 0; i < len; i++) {
        long v = (long)d[len - 1 - i] - 48;
        if (i % 2) {
            v *= 2;
            if (v > 9) v -= 9;
        }
        total += v;
    }
    return total % 10 == 0;
}

int ck_prefix(const U *d, Z len, const char *prefix) {
    Z k = 0;
    for (; prefix[k]; k++) if (k >= len || d[k] != (U)(unsigned char)prefix[k]) return 0;
    return 1;
}

/* checksums.ssn_valid */
int ck_ssn(const U *s, Z start, Z end) {
    U d[9];
    int all;
    Z len = ck_digits(s, start, end, d, 9, &all);
    if (len != 9 || !all) return 0;
    if ((d[0] == '0' && d[1] == '0' && d[2] == '0') || (d[0] == '6' && d[1] == '6' && d[2] == '6') ||
        d[0] == '9' || (d[3] == '0' && d[4] == '0') ||
        (d[5] == '0' && d[6] == '0' && d[7] == '0' && d[8] == '0'))
        return 0;
    return !ck_prefix(d, 9, "078051120") && !ck_prefix(d, 9, "219099999");
}
