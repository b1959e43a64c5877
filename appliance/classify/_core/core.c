/* The classifier's compiled core: text preparation, the Scan's helpers, the order of the
 * detectors, deduplication and the level (see core.h and appliance/classify/native.py). */
#include "core.h"

#include <structmember.h>
#include <wchar.h>

static const char *const TYPE_NAMES[T_COUNT] = {
    "person_name", "street_address", "zip_code", "date_of_birth", "person_date",
    "age_over_89", "phone", "fax", "email", "ssn", "mrn", "health_plan_id", "medicare_mbi",
    "de_kvnr", "account_number", "iban", "payment_card", "license_number", "npi",
    "dea_number", "vin", "device_id", "url", "internal_url", "ip_address",
    "cloud_access_key", "api_key", "private_key", "password", "secret",
};

/* findings.BASE_LEVEL: 1 internal, 2 confidential, 3 restricted */
static const int BASE_LEVEL[T_COUNT] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 2, 2, 3, 2, 1, 2, 2, 1, 1, 2, 2, 2, 2, 2, 2, 2,
};

static int is_personal(int t) {
    return !(t == T_NPI || t == T_DEA_NUMBER || t == T_CLOUD_ACCESS_KEY || t == T_API_KEY ||
             t == T_PRIVATE_KEY || t == T_PASSWORD || t == T_SECRET || t == T_URL);
}

static int is_health_type(int t) {
    return t == T_MRN || t == T_HEALTH_PLAN_ID || t == T_MEDICARE_MBI || t == T_DE_KVNR;
}


/* build_detectors' order; the classifier's deduplication breaks ties by it */
#define NSLOTS 15
static const char *const SLOT_NAMES[NSLOTS] = {
    "secret", "email", "url", "ip", "ssn", "card", "phone", "iban", "mbi", "vin", "labelled",
    "name", "person_date", "age", "address",
};

static detector_fn slot_fn(int i) {
    switch (i) {
    case 0: return det_secret;
    case 1: return det_email;
    case 2: return det_url;
    case 3: return det_ip;
    case 4: return det_ssn;
    case 5: return det_card;
    case 6: return det_phone;
    case 7: return det_iban;
    case 8: return det_mbi;
    case 9: return det_vin;
    case 10: return det_labelled;
    case 11: return det_name;
    case 12: return det_person_date;
    case 13: return det_age;
    case 14: return det_address;
    }
    return NULL;
}

/* ------------------------------------------------------------------ output */

int out_add(Out *out, int type, Z start, Z end, double confidence) {
    if (out->enabled && !((out->enabled[type / 32] >> (type % 32)) & 1)) return 0;
    if (out->n == out->cap) {
        Z cap = out->cap ? out->cap * 2 : 16;
        Found *v = PyMem_Realloc(out->v, (size_t)cap * sizeof(Found));
        if (!v) { PyErr_NoMemory(); return -1; }
        out->v = v;
        out->cap = cap;
    }
    Found *f = &out->v[out->n];
    f->type = type;
    f->start = start;
    f->end = end;
    f->confidence = confidence;
    f->slot = out->slot;
    f->seq = out->n;
    out->n++;
    return 0;
}

int spans_add(Spans *spans, Z start, Z end) {
    if (spans->n == spans->cap) {
        Z cap = spans->cap ? spans->cap * 2 : 16;
        Span *v = PyMem_Realloc(spans->v, (size_t)cap * sizeof(Span));
        if (!v) { PyErr_NoMemory(); return -1; }
        spans->v = v;
        spans->cap = cap;
    }
    spans->v[spans->n].start = start;
    spans->v[spans->n].end = end;
    spans->n++;
    return 0;
}

void spans_free(Spans *spans) {
    PyMem_Free(spans->v);
    spans->v = NULL;
    spans->n = spans->cap = 0;
}

/* ------------------------------------------------------------------ text preparation */

/* base.py's _WORD_BYTES: a Latin-1 byte -> lower-case word byte, or ' ' */
static unsigned char WORD_BYTES[256];

static void init_tables(void) {
    for (int b = 0; b < 256; b++) {
        unsigned char w = ' ';
        if ((b >= 65 && b <= 90) || b == 0xC4 || b == 0xD6 || b == 0xDC) w = (unsigned char)(b + 32);
        else if ((b >= 97 && b <= 122) || b == 0xE4 || b == 0xF6 || b == 0xFC || b == 0xDF) w = (unsigned char)b;
        WORD_BYTES[b] = w;
    }
}

/* the bit in CText.heads for a word starting with bytes a, b (b = 0 for a 1-byte word) */
static inline unsigned head_bit(unsigned char a, unsigned char b) {
    return ((unsigned)a * 31u + (unsigned)b) & 1023u;
}


static void ct_free(CText *ct) {
    PyMem_Free(ct->s);  /* with low, raw and wb */
    PyMem_Free(ct->tokens);
    PyMem_Free(ct->table);
    memset(ct, 0, sizeof(*ct));
}

/* Scan.lowered for a text holding U+0130 or U+03A3: str.lower() when it keeps the length,
   else the ASCII + umlaut lowering (base.py's _ASCII_LOWER). */
static int lower_by_python(CText *ct, PyObject *text) {
    Z n = ct->n;
    PyObject *lowered = PyObject_CallMethod(text, "lower", NULL);
    if (!lowered) return -1;
    if (PyUnicode_GET_LENGTH(lowered) == n) {
        int lk = PyUnicode_KIND(lowered);
        const void *ld = PyUnicode_DATA(lowered);
        for (Z i = 0; i < n; i++) ct->low[i] = PyUnicode_READ(lk, ld, i);
    } else {
        for (Z i = 0; i < n; i++) {
            U c = ct->s[i];
            if ((c >= 'A' && c <= 'Z') || c == 0xC4 || c == 0xD6 || c == 0xDC) c += 32;
            ct->low[i] = c;
        }
    }
    Py_DECREF(lowered);
    return 0;
}

/* 1 prepared, 0 not for the core (a non-ASCII decimal digit), -1 error */
static int ct_prepare(CText *ct, PyObject *text) {
    memset(ct, 0, sizeof(*ct));
    ct->text = text;
    Z n = PyUnicode_GET_LENGTH(text);
    ct->n = n;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (kind != PyUnicode_1BYTE_KIND) {
        for (Z i = 0; i < n; i++) {
            U c = PyUnicode_READ(kind, data, i);
            if (c > 127 && Py_UNICODE_ISDECIMAL(c)) return 0;
        }
    }
    /* one allocation for s, low (2 x (n+1) U) and raw, wb (2 x (n+1) bytes) */
    ct->s = PyMem_Malloc((size_t)(n + 1) * (2 * sizeof(U) + 2));
    if (!ct->s) { PyErr_NoMemory(); return -1; }
    ct->low = ct->s + n + 1;
    ct->raw = (unsigned char *)(ct->low + n + 1);
    ct->wb = ct->raw + n + 1;
    int digit = 0;
    if (PyUnicode_IS_ASCII(text)) {
        /* ASCII (most prompts): branch-free, one pass per array */
        const Py_UCS1 *restrict p = data;
        U *restrict s = ct->s, *restrict low = ct->low;
        unsigned char *restrict wb = ct->wb;
        for (Z i = 0; i < n; i++) {
            U c = p[i];
            s[i] = c;
            low[i] = c + ((U)(c - 'A' < 26u) << 5);
            digit |= c - '0' < 10u;
        }
        memcpy(ct->raw, p, (size_t)n);
        for (Z i = 0; i < n; i++) wb[i] = WORD_BYTES[p[i]];
    } else if (kind == PyUnicode_1BYTE_KIND) {
        /* Latin-1 (most texts): str.lower() maps each of these to one code point, the
           simple lower case, so the lowered text is made here */
        const Py_UCS1 *p = data;
        for (Z i = 0; i < n; i++) {
            U c = p[i];
            ct->s[i] = c;
            ct->raw[i] = (unsigned char)c;
            ct->wb[i] = WORD_BYTES[c];
            digit |= c >= '0' && c <= '9';
            ct->low[i] = c < 128 ? ((c >= 'A' && c <= 'Z') ? c + 32 : c) : Py_UNICODE_TOLOWER(c);
        }
    } else {
        /* str.lower() maps every code point to its simple lower case but two: U+0130 (two
           code points) and U+03A3 (final sigma, by context). Without them the lowered text
           is made here; with them str.lower() is asked (test_core_parity checks every code
           point against str.lower()). */
        int special = 0;
        for (Z i = 0; i < n; i++) {
            U c = PyUnicode_READ(kind, data, i);
            ct->s[i] = c;
            unsigned char r = c <= 0xFF ? (unsigned char)c : '?';
            ct->raw[i] = r;
            ct->wb[i] = WORD_BYTES[r];
            digit |= c >= '0' && c <= '9';
            ct->low[i] = c < 128 ? ((c >= 'A' && c <= 'Z') ? c + 32 : c) : Py_UNICODE_TOLOWER(c);
            special |= c == 0x130 || c == 0x3A3;
        }
        if (special && lower_by_python(ct, text) < 0) return -1;
    }
    ct->s[n] = 0;
    ct->raw[n] = 0;
    ct->wb[n] = 0;
    ct->has_digit = digit;
    ct->low[n] = 0;
    /* tokens */
    Z cap = 0;
    for (Z i = 0; i < n;) {
        if (ct->wb[i] == ' ') { i++; continue; }
        Z j = i;
        while (j < n && ct->wb[j] != ' ') j++;
        if (ct->ntokens == cap) {
            cap = cap ? cap * 2 : 32;
            Token *t = PyMem_Realloc(ct->tokens, (size_t)cap * sizeof(Token));
            if (!t) { PyErr_NoMemory(); return -1; }
            ct->tokens = t;
        }
        ct->tokens[ct->ntokens].start = i;
        ct->tokens[ct->ntokens].len = j - i;
        ct->tokens[ct->ntokens].hash = word_hash(ct->wb + i, j - i);
        unsigned bit = head_bit(ct->wb[i], j - i > 1 ? ct->wb[i + 1] : 0);
        ct->heads[bit / 32] |= 1u << (bit % 32);
        ct->ntokens++;
        i = j;
    }
    Z size = 16;
    while (size < ct->ntokens * 2) size *= 2;
    ct->table = PyMem_Calloc((size_t)size, sizeof(Z));
    if (!ct->table) { PyErr_NoMemory(); return -1; }
    ct->table_size = size;
    for (Z k = 0; k < ct->ntokens; k++) {
        Token *t = &ct->tokens[k];
        Z at = (Z)(t->hash & (uint32_t)(size - 1));
        for (;;) {
            Z e = ct->table[at];
            if (e == 0) { ct->table[at] = k + 1; break; }
            Token *o = &ct->tokens[e - 1];
            if (o->hash == t->hash && o->len == t->len &&
                memcmp(ct->wb + o->start, ct->wb + t->start, (size_t)t->len) == 0) break;
            at = (at + 1) & (size - 1);
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ Scan helpers */

int ct_word(const CText *ct, const char *word) {
    const unsigned char *w = (const unsigned char *)word;
    if (!w[0]) return 0;
    unsigned bit = head_bit(w[0], w[1]);
    if (!((ct->heads[bit / 32] >> (bit % 32)) & 1)) return 0;
    Z len = (Z)strlen(word);
    uint32_t h = word_hash((const unsigned char *)word, len);
    Z size = ct->table_size;
    Z at = (Z)(h & (uint32_t)(size - 1));
    for (;;) {
        Z e = ct->table[at];
        if (e == 0) return 0;
        const Token *t = &ct->tokens[e - 1];
        if (t->hash == h && t->len == len && memcmp(ct->wb + t->start, word, (size_t)len) == 0)
            return 1;
        at = (at + 1) & (size - 1);
    }
}

int ct_any_word(const CText *ct, const char *const *words) {
    for (; *words; words++) if (ct_word(ct, *words)) return 1;
    return 0;
}

/* The first `c` in s[from:to] or -1: glibc's wmemchr is vectorised, and Py_UCS4 has
   wchar_t's size on the platforms this builds on (checked at compile time). */
_Static_assert(sizeof(wchar_t) == sizeof(U), "wchar_t is not 32 bits");
static inline Z find_char(const U *s, Z from, Z to, U c) {
    if (from >= to) return -1;
    const wchar_t *at = wmemchr((const wchar_t *)(s + from), (wchar_t)c, (size_t)(to - from));
    return at ? (Z)((const U *)at - s) : -1;
}

Z find_in(const U *s, Z from, Z to, const char *needle) {
    Z len = (Z)strlen(needle);
    if (from < 0) from = 0;
    if (len == 0) return from <= to ? from : -1;
    U first = (unsigned char)needle[0];
    for (Z i = find_char(s, from, to - len + 1, first); i >= 0;
         i = find_char(s, i + 1, to - len + 1, first)) {
        Z k = 1;
        while (k < len && s[i + k] == (U)(unsigned char)needle[k]) k++;
        if (k == len) return i;
    }
    return -1;
}

Z find_u(const U *s, Z from, Z to, const U *needle, Z len) {
    if (from < 0) from = 0;
    if (len == 0) return from <= to ? from : -1;
    for (Z i = find_char(s, from, to - len + 1, needle[0]); i >= 0;
         i = find_char(s, i + 1, to - len + 1, needle[0])) {
        Z k = 1;
        while (k < len && s[i + k] == needle[k]) k++;
        if (k == len) return i;
    }
    return -1;
}

static int cmp_span(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

void spans_merge(Spans *out) {
    if (out->n <= 1) return;
    if (out->n <= 16) {  /* most texts: a few windows, where qsort's calls cost more */
        for (Z i = 1; i < out->n; i++) {
            Span sp = out->v[i];
            Z j = i;
            while (j > 0 && cmp_span(&out->v[j - 1], &sp) > 0) { out->v[j] = out->v[j - 1]; j--; }
            out->v[j] = sp;
        }
    } else {
        qsort(out->v, (size_t)out->n, sizeof(Span), cmp_span);
    }
    Z m = 0;
    for (Z i = 1; i < out->n; i++) {
        Span sp = out->v[i];
        if (sp.start <= out->v[m].end) {
            if (sp.end > out->v[m].end) out->v[m].end = sp.end;
        } else {
            out->v[++m] = sp;
        }
    }
    out->n = m + 1;
}

/* base.py Scan.windows */
int ct_windows(const CText *ct, const char *const *triggers, Z before, Z after,
               const char *const *needles, Spans *out) {
    spans_clear(out);
    /* Python iterates a set, so a word listed twice counts once; duplicates in the list
       would only add equal spans, which merging removes. */
    for (int pass = 0; pass < 2; pass++) {
        const char *const *list = pass == 0 ? triggers : needles;
        if (!list) continue;
        for (; *list; list++) {
            const char *word = *list;
            if (pass == 0 ? !ct_word(ct, word) : !ct_in_low(ct, word)) continue;
            Z size = (Z)strlen(word) + after;  /* Latin-1: one byte per code point */
            Z at = find_in(ct->low, 0, ct->n, word);
            while (at >= 0) {
                if (spans_add(out, at > before ? at - before : 0, at + size) < 0) return -1;
                at = find_in(ct->low, at + 1, ct->n, word);
            }
        }
    }
    spans_merge(out);
    return 0;
}

/* ------------------------------------------------------------------ dedupe and level */

typedef struct { Z start, neg_end; int neg_level; double neg_conf; Z index; } Key;

static int cmp_key(const void *a, const void *b) {
    const Key *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->neg_end != y->neg_end) return x->neg_end < y->neg_end ? -1 : 1;
    if (x->neg_level != y->neg_level) return x->neg_level < y->neg_level ? -1 : 1;
    if (x->neg_conf != y->neg_conf) return x->neg_conf < y->neg_conf ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int cmp_order(const void *a, const void *b) {
    const Found *x = a, *y = b;
    if (x->slot != y->slot) return x->slot < y->slot ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* classifier._dedupe: keeps the findings of `all` (in the detectors' order) that are not
   inside a stronger one; writes their indices to `kept`, returns how many (-1 memory). */
static Z dedupe(Found *all, Z n, Z *kept) {
    if (n == 0) return 0;
    if (n > 16) {
        qsort(all, (size_t)n, sizeof(Found), cmp_order);
    } else {  /* most texts: a few findings, already in order unless Python added some */
        for (Z i = 1; i < n; i++) {
            Found f = all[i];
            Z j = i;
            while (j > 0 && cmp_order(&all[j - 1], &f) > 0) { all[j] = all[j - 1]; j--; }
            all[j] = f;
        }
    }
    Key *keys = PyMem_Malloc((size_t)n * sizeof(Key));
    Z *ks = PyMem_Malloc((size_t)n * sizeof(Z) * 3);
    if (!keys || !ks) { PyMem_Free(keys); PyMem_Free(ks); PyErr_NoMemory(); return -1; }
    for (Z i = 0; i < n; i++) {
        keys[i].start = all[i].start;
        keys[i].neg_end = -all[i].end;
        keys[i].neg_level = -BASE_LEVEL[all[i].type];
        keys[i].neg_conf = -all[i].confidence;
        keys[i].index = i;
    }
    if (n > 16) {
        qsort(keys, (size_t)n, sizeof(Key), cmp_key);
    } else {
        for (Z i = 1; i < n; i++) {
            Key k = keys[i];
            Z j = i;
            while (j > 0 && cmp_key(&keys[j - 1], &k) > 0) { keys[j] = keys[j - 1]; j--; }
            keys[j] = k;
        }
    }
    Z m = 0;  /* kept spans: (start, end, level) in ks[3k..3k+2] */
    for (Z i = 0; i < n; i++) {
        Z start = keys[i].start, end = -keys[i].neg_end, level = -keys[i].neg_level;
        if (m && end <= ks[3 * (m - 1) + 1] && level <= ks[3 * (m - 1) + 2]) continue;
        int inside = 0;
        for (Z k = m > 4 ? m - 4 : 0; k < m; k++) {
            if (ks[3 * k] <= start && end <= ks[3 * k + 1] && level <= ks[3 * k + 2]) {
                inside = 1;
                break;
            }
        }
        if (inside) continue;
        kept[m] = keys[i].index;
        ks[3 * m] = start;
        ks[3 * m + 1] = end;
        ks[3 * m + 2] = level;
        m++;
    }
    PyMem_Free(keys);
    PyMem_Free(ks);
    return m;
}

/* ------------------------------------------------------------------ Python interface */

static PyObject *FindingClass = NULL;   /* set by setup(): scan() refuses to run before */
static PyObject *TypeNames[T_COUNT];    /* what Finding.type holds: FindingType's members */

static void parse_enabled(CText *ct, unsigned long long bits) {
    _Static_assert(T_COUNT <= 32, "CText.enabled holds one word");
    ct->enabled[0] = (unsigned int)(bits & ((1ULL << T_COUNT) - 1));
}

static int run_slot(CText *ct, Out *out, int i) {
    detector_fn fn = slot_fn(i);
    if (!fn) return 0;
    out->slot = 2 * i;
    Z before = out->n;
    int rc = fn(ct, out);
    /* seq restarts per detector: order within a slot is order of report */
    for (Z k = before; k < out->n; k++) out->v[k].seq = k - before;
    return rc;
}

/* Prepares `text` for the detectors, `bits` the enabled types: 1 ready, 0 a text the core
   does not take, -1 error (with 0 and -1, nothing is left to free). */
static int begin(CText *ct, Out *out, PyObject *text, unsigned long long bits) {
    int ok = ct_prepare(ct, text);
    if (ok <= 0) {
        ct_free(ct);
        return ok;
    }
    parse_enabled(ct, bits);
    memset(out, 0, sizeof(*out));
    out->enabled = ct->enabled;
    return 1;
}

static PyObject *found_tuple(const Found *f) {
    return Py_BuildValue("(innd)", f->type, f->start, f->end, f->confidence);
}

/* detect(text, name, enabled) -> list of (type index, start, end, confidence), or None for
   a text the core does not take; for the parity tests. */
static PyObject *core_detect(PyObject *self, PyObject *args) {
    PyObject *text;
    const char *name;
    unsigned long long bits;
    if (!PyArg_ParseTuple(args, "UsK", &text, &name, &bits)) return NULL;
    int slot = -1;
    for (int i = 0; i < NSLOTS; i++) if (strcmp(SLOT_NAMES[i], name) == 0) slot = i;
    if (slot < 0 || !slot_fn(slot)) {
        PyErr_Format(PyExc_ValueError, "no detector %s in the core", name);
        return NULL;
    }
    CText ct;
    Out out;
    int ok = begin(&ct, &out, text, bits);
    if (ok <= 0) { if (ok < 0) return NULL; Py_RETURN_NONE; }
    PyObject *result = NULL;
    if (run_slot(&ct, &out, slot) == 0) {
        result = PyList_New(out.n);
        for (Z k = 0; result && k < out.n; k++) {
            PyObject *t = found_tuple(&out.v[k]);
            if (!t) { Py_CLEAR(result); break; }
            PyList_SET_ITEM(result, k, t);
        }
    }
    PyMem_Free(out.v);
    ct_free(&ct);
    return result;
}

/* lowered(text) -> Scan.lowered as the core makes it (for the tests), or None */
static PyObject *core_lowered(PyObject *self, PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    CText ct;
    int ok = ct_prepare(&ct, text);
    PyObject *result = ok > 0 ? PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, ct.low, ct.n)
                              : ok == 0 ? Py_NewRef(Py_None) : NULL;
    ct_free(&ct);
    return result;
}

/* health(text) -> bool or None: context.has_health_context */
static PyObject *core_health(PyObject *self, PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    if (!health_context) { PyErr_SetString(PyExc_ValueError, "no health context in the core"); return NULL; }
    CText ct;
    int ok = ct_prepare(&ct, text);
    if (ok <= 0) { ct_free(&ct); if (ok < 0) return NULL; Py_RETURN_NONE; }
    int h = health_context(&ct);
    ct_free(&ct);
    return PyBool_FromLong(h);
}

/* Objects of the frozen slotted dataclasses Finding and Classification, made without their
   __init__ (which sets each slot with object.__setattr__ and does nothing else, and would
   cost most of the time of a short text with a few findings): the values are written at the
   slots' offsets, read from the classes' slot descriptors by setup(). */
typedef struct {
    PyTypeObject *cls;
    int n;
    PyObject *names[4];
    Py_ssize_t offsets[4];  /* 0: not a plain slot, set with object.__setattr__ instead */
} Slotted;

static Slotted FindingMaker, ResultMaker;
static PyObject *Levels = NULL;   /* tuple: Sensitivity for each value of the flags */
static PyObject *Nothing = NULL;  /* the Classification of a text without findings */

static int slotted_setup(Slotted *m, PyObject *cls, const char *const *names, int n) {
    Py_XSETREF(m->cls, (PyTypeObject *)Py_NewRef(cls));
    m->n = n;
    PyObject *members = m->cls->tp_dict;
    for (int k = 0; k < n; k++) {
        Py_XSETREF(m->names[k], PyUnicode_InternFromString(names[k]));
        if (!m->names[k]) return -1;
        PyObject *descr = members ? PyDict_GetItemWithError(members, m->names[k]) : NULL;
        if (!descr && PyErr_Occurred()) return -1;
        m->offsets[k] = 0;
        if (descr && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            PyMemberDef *def = ((PyMemberDescrObject *)descr)->d_member;
            if (def->type == T_OBJECT_EX && !(def->flags & READONLY) && def->offset > 0)
                m->offsets[k] = def->offset;
        }
    }
    return 0;
}

/* A new object of m->cls holding `values` (references taken, also on failure; a NULL value
   is a failure whose exception is already set). */
static PyObject *slotted_new(const Slotted *m, PyObject **values) {
    PyObject *obj = m->cls->tp_alloc(m->cls, 0);
    int rc = obj ? 0 : -1;
    for (int k = 0; k < m->n; k++) {
        if (rc == 0 && values[k] && m->offsets[k]) {
            *(PyObject **)((char *)obj + m->offsets[k]) = values[k];
            continue;
        }
        if (rc == 0 && (!values[k] || PyObject_GenericSetAttr(obj, m->names[k], values[k]) < 0))
            rc = -1;
        Py_XDECREF(values[k]);
    }
    if (rc < 0) { Py_XDECREF(obj); return NULL; }
    return obj;
}

static PyObject *make_finding(const Found *f) {
    PyObject *values[4] = {Py_NewRef(TypeNames[f->type]), PyLong_FromSsize_t(f->start),
                           PyLong_FromSsize_t(f->end), PyFloat_FromDouble(f->confidence)};
    return slotted_new(&FindingMaker, values);
}

/* scan(enabled, skip, extras, text) -> (Classification, flags) or None for a text the core
   does not take (the text comes last, so that functools.partial can bind the rest).
   `enabled`: bit per finding type; `skip`: bit per detector not to run here; `extras`: None
   or a list of (slot, type index, start, end, confidence) found in Python (site patterns at
   2 * detector + 1; whole detectors the core lacks at 2 * detector). The Classification
   holds the deduplicated findings and the level (setup()'s levels[flags]), or is setup()'s
   `nothing`; flags: level | personal << 2 | health finding << 3 | health context << 4. */
static PyObject *core_scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyUnicode_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "scan(enabled, skip, extras, text: str)");
        return NULL;
    }
    PyObject *extras = args[2], *text = args[3];
    unsigned long long bits = PyLong_AsUnsignedLongLong(args[0]);
    unsigned long skip = PyLong_AsUnsignedLong(args[1]);
    if (PyErr_Occurred()) return NULL;
    if (!FindingClass) {
        PyErr_SetString(PyExc_RuntimeError, "scan before setup(Finding, types)");
        return NULL;
    }
    CText ct;
    Out out;
    int ok = begin(&ct, &out, text, bits);
    if (ok <= 0) { if (ok < 0) return NULL; Py_RETURN_NONE; }
    PyObject *result = NULL;
    Z *kept = NULL, few[32];  /* the kept findings' indices (most texts: a few) */
    for (int i = 0; i < NSLOTS; i++) {
        if ((skip >> i) & 1ul) continue;
        if (run_slot(&ct, &out, i) < 0) goto done;
    }
    if (extras != Py_None) {
        if (!PyList_Check(extras)) { PyErr_SetString(PyExc_TypeError, "extras: a list"); goto done; }
        for (Z k = 0; k < PyList_GET_SIZE(extras); k++) {
            int slot, type;
            Z start, end;
            double conf;
            if (!PyArg_ParseTuple(PyList_GET_ITEM(extras, k), "iinnd", &slot, &type, &start,
                                  &end, &conf)) goto done;
            if (type < 0 || type >= T_COUNT) { PyErr_SetString(PyExc_ValueError, "type"); goto done; }
            out.slot = slot;
            Z before = out.n;
            if (out_add(&out, type, start, end, conf) < 0) goto done;
            if (out.n > before) out.v[before].seq = k;
        }
    }
    int health = health_context ? health_context(&ct) : 0;
    kept = out.n <= (Z)(sizeof(few) / sizeof(few[0])) ? few
           : PyMem_Malloc((size_t)out.n * sizeof(Z));
    if (!kept) { PyErr_NoMemory(); goto done; }
    Z m = dedupe(out.v, out.n, kept);
    if (m < 0) goto done;
    int level = 0, personal = 0, health_type = 0;
    PyObject *findings = PyTuple_New(m);
    if (!findings) goto done;
    for (Z k = 0; k < m; k++) {
        const Found *f = &out.v[kept[k]];
        if (BASE_LEVEL[f->type] > level) level = BASE_LEVEL[f->type];
        personal |= is_personal(f->type);
        health_type |= is_health_type(f->type);
        PyObject *obj = make_finding(f);
        if (!obj) { Py_DECREF(findings); goto done; }
        PyTuple_SET_ITEM(findings, k, obj);
    }
    long flags = level | personal << 2 | health_type << 3 | health << 4;
    PyObject *number = PyLong_FromLong(flags);  /* a small int: no allocation */
    result = number ? PyTuple_New(2) : NULL;
    if (!result) { Py_DECREF(findings); Py_XDECREF(number); goto done; }
    PyObject *values[2] = {Py_NewRef(PyTuple_GET_ITEM(Levels, flags)), findings};
    PyObject *classification = m ? slotted_new(&ResultMaker, values) : Py_NewRef(Nothing);
    if (!m) { Py_DECREF(values[0]); Py_DECREF(findings); }
    if (!classification) { Py_DECREF(result); Py_DECREF(number); goto done; }
    PyTuple_SET_ITEM(result, 0, classification);
    PyTuple_SET_ITEM(result, 1, number);
done:
    if (kept != few) PyMem_Free(kept);
    PyMem_Free(out.v);
    ct_free(&ct);
    return result;
}

/* setup(Finding, types, Classification, levels, nothing): the classes to report with, the
   objects standing for the types (FindingType's members, in TYPES' order), the Sensitivity
   for each value of the flags, and the result for a text without findings. */
static PyObject *core_setup(PyObject *self, PyObject *args) {
    PyObject *finding, *types, *classification, *levels, *nothing;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O", &PyType_Type, &finding, &PyTuple_Type, &types,
                          &PyType_Type, &classification, &PyTuple_Type, &levels, &nothing))
        return NULL;
    if (PyTuple_GET_SIZE(types) != T_COUNT || PyTuple_GET_SIZE(levels) != 32) {
        PyErr_SetString(PyExc_ValueError, "setup: one object per finding type, 32 levels");
        return NULL;
    }
    static const char *const finding_fields[] = {"type", "start", "end", "confidence"};
    static const char *const result_fields[] = {"sensitivity", "findings"};
    if (slotted_setup(&FindingMaker, finding, finding_fields, 4) < 0 ||
        slotted_setup(&ResultMaker, classification, result_fields, 2) < 0)
        return NULL;
    for (int t = 0; t < T_COUNT; t++)
        Py_XSETREF(TypeNames[t], Py_NewRef(PyTuple_GET_ITEM(types, t)));
    Py_XSETREF(Levels, Py_NewRef(levels));
    Py_XSETREF(Nothing, Py_NewRef(nothing));
    Py_XSETREF(FindingClass, Py_NewRef(finding));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"detect", core_detect, METH_VARARGS, "One detector's findings (for tests)."},
    {"health", core_health, METH_VARARGS, "Whether the text speaks of health."},
    {"lowered", core_lowered, METH_VARARGS, "The lowered text (for tests)."},
    {"scan", (PyCFunction)(void (*)(void))core_scan, METH_FASTCALL,
     "Deduplicated findings and level flags."},
    {"setup", core_setup, METH_VARARGS, "Set the Finding class."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_core", "The classifier's compiled core (see core.h).", -1, methods,
};

PyMODINIT_FUNC PyInit__core(void) {
    init_tables();
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyObject *types = PyTuple_New(T_COUNT);
    for (int t = 0; t < T_COUNT; t++) {
        TypeNames[t] = PyUnicode_InternFromString(TYPE_NAMES[t]);  /* until setup() */
        PyTuple_SET_ITEM(types, t, Py_NewRef(TypeNames[t]));
    }
    PyModule_AddObject(m, "TYPES", types);
    PyObject *slots = PyTuple_New(NSLOTS);
    PyObject *present = PyList_New(0);
    for (int i = 0; i < NSLOTS; i++) {
        PyTuple_SET_ITEM(slots, i, PyUnicode_FromString(SLOT_NAMES[i]));
        if (slot_fn(i)) {
            PyObject *s = PyUnicode_FromString(SLOT_NAMES[i]);
            PyList_Append(present, s);
            Py_DECREF(s);
        }
    }
    PyModule_AddObject(m, "SLOTS", slots);
    PyModule_AddObject(m, "DETECTORS", PyList_AsTuple(present));
    Py_DECREF(present);
    PyModule_AddObject(m, "HEALTH", PyBool_FromLong(health_context != NULL));
    /* the weights the level is computed with, for a test against findings.py */
    PyObject *levels = PyTuple_New(T_COUNT), *personal = PyTuple_New(T_COUNT),
             *health = PyTuple_New(T_COUNT);
    for (int t = 0; t < T_COUNT; t++) {
        PyTuple_SET_ITEM(levels, t, PyLong_FromLong(BASE_LEVEL[t]));
        PyTuple_SET_ITEM(personal, t, PyBool_FromLong(is_personal(t)));
        PyTuple_SET_ITEM(health, t, PyBool_FromLong(is_health_type(t)));
    }
    PyModule_AddObject(m, "BASE_LEVELS", levels);
    PyModule_AddObject(m, "PERSONAL", personal);
    PyModule_AddObject(m, "HEALTH_TYPES", health);
    return m;
}
