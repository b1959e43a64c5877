/* context.py: whether a text speaks of health (a cue word, or an ICD-10 code). */
#include "core.h"

/* context.HEALTH_WORDS as word-byte tokens (Latin-1). "hba1c" is left out: its vocabulary key ("hba c", the digit being a
   separator) can never be one token, so Python never finds it either. */
static const char *const HEALTH_WORDS[] = {
    "admission", "admitted", "aids", "alcohol", "allergic", "allergie", "allergies", "allergy",
    "alzheimer", "alzheimers", "anamnese", "antibiotic", "antibiotics", "anxiety",
    "arbeitsunf\xe4higkeit", "arzt", "arztbrief", "asthma", "atorvastatin", "aufgenommen",
    "aufnahme", "befund", "befunde", "behandelt", "behandlung", "beschwerden", "biopsy",
    "bipolar", "blood", "blutdruck", "bp", "cancer", "carcinoma", "cardiac", "cardiology",
    "chemotherapie", "chemotherapy", "cholesterol", "clinic", "clinical", "copay", "copd",
    "covid", "cpt", "ct", "dementia", "demenz", "depression", "depressionen", "depressive",
    "diabetes", "diabetic", "diagnose", "diagnosed", "diagnoses", "diagnosis", "diagnostic",
    "diagnostik", "dialysis", "disability", "discharge", "discharged", "dosage", "dose",
    "dosis", "dx", "ehr", "emr", "entlassbrief", "entlassen", "entlassung", "epilepsy",
    "fracture", "gesundheit", "glucose", "health", "healthcare", "hepatitis", "hiv",
    "hospital", "hospitalized", "hypertension", "hypertonie", "icd", "icu", "infarction",
    "infection", "infektion", "injuries", "injury", "inpatient", "insulin", "intensivstation",
    "karzinom", "kidney", "klinik", "klinikum", "krankenhaus", "krankenkasse",
    "krankenversicherung", "krankschreibung", "krebs", "labs", "leukemia", "lisinopril",
    "liver", "lymphoma", "mcg", "medicaid", "medical", "medicare", "medication", "medications",
    "medikament", "medikamente", "medikation", "medizinisch", "meds", "metastatic", "metformin",
    "mg", "migraine", "mri", "mrn", "mrt", "notaufnahme", "nurse", "nursing", "oncology", "op",
    "operation", "operiert", "opioid", "outpatient", "overdose", "pain", "pathology", "patient",
    "patienten", "patientin", "patients", "pflege", "pflegegrad", "physician", "pneumonia",
    "pregnancy", "pregnant", "prescribed", "prescription", "pressure", "prognosis",
    "psychiatric", "psychiatrie", "psychiatry", "psychotherapie", "psychotherapy", "pt",
    "radiology", "radiotherapy", "reha", "rehab", "rehabilitation", "renal", "rezept", "rx",
    "r\xf6ntgen", "schizophrenia", "schmerzen", "schwanger", "schwangerschaft", "seizure",
    "sepsis", "sono", "sonographie", "stroke", "substance", "surgery", "surgical", "symptom",
    "symptome", "symptoms", "tablet", "tablets", "tabletten", "therapie", "therapy",
    "transplant", "treated", "treatment", "tumor", "tumour", "ultrasound", "unfall",
    "vaccination", "vaccine", "verletzung", "versicherte", "versicherter", "vitals", "ward",
    "warfarin", "wound", "wunde", "\xe4rztin", "\xfc" "berweisung",
    NULL,
};

/* _ICD10.search: [A-TV-Z]\d\d\.\d{1,2}(?![\d.]) anywhere. Tried at each ".", three
   characters in: \d{1,2} gives back its second digit only to meet the lookahead, and then
   the lookahead sees that digit, so a match needs its digits followed by neither a digit
   nor a ".". */
static int has_icd10(const CText *ct) {
    const U *s = ct->s;
    Z n = ct->n;
    /* the dots found with memchr in the bytes: raw holds "." exactly where the text does */
    for (const unsigned char *d = n > 3 ? memchr(ct->raw + 3, '.', (size_t)(n - 3)) : NULL; d;
         d = memchr(d + 1, '.', (size_t)(n - (d + 1 - ct->raw)))) {
        Z dot = d - ct->raw;
        U c = s[dot - 3];
        if (!(c >= 'A' && c <= 'Z' && c != 'U' && is_d(s[dot - 2]) && is_d(s[dot - 1]) &&
              is_d(s[dot + 1]))) continue;
        Z after = is_d(s[dot + 2]) ? dot + 3 : dot + 2;
        if (!is_d(s[after]) && s[after] != '.') return 1;
    }
    return 0;
}

#define NWORDS ((Z)(sizeof HEALTH_WORDS / sizeof HEALTH_WORDS[0]) - 1)

/* HEALTH_WORDS as an open-addressed hash table keyed by the tokens' own hash (Token.hash:
   FNV-1a over the word bytes, core.h's word_hash), so that a token is
   looked up with one probe or two instead of a binary search of eight comparisons. A hit
   on the hash is confirmed on the bytes, so a collision never answers wrongly. Built on
   first use (under the GIL). */
#define HEALTH_SLOTS 512   /* a power of two, more than twice NWORDS */
static const char *health_word[HEALTH_SLOTS];
static uint32_t health_hash[HEALTH_SLOTS];
static unsigned char health_len[HEALTH_SLOTS];
static int health_ready;

static void health_init(void) {
    for (Z k = 0; k < NWORDS; k++) {
        Z len = (Z)strlen(HEALTH_WORDS[k]);
        uint32_t h = word_hash((const unsigned char *)HEALTH_WORDS[k], len);
        Z at = (Z)(h & (HEALTH_SLOTS - 1));
        while (health_word[at]) at = (at + 1) & (HEALTH_SLOTS - 1);
        health_word[at] = HEALTH_WORDS[k];
        health_hash[at] = h;
        health_len[at] = (unsigned char)len;
    }
    health_ready = 1;
}

/* Whether a token of the text is one of HEALTH_WORDS (`not scan.words.isdisjoint(...)`):
   one hash probe per token, tokens of one letter (no cue word is one) skipped. Above
   TOKENS_ABOVE tokens ct_any_word is cheaper (a look-up per cue word, most of them ruled
   out by the token heads). */
#define TOKENS_ABOVE 256
static int health_token(const CText *ct) {
    if (!health_ready) health_init();
    const Token *tokens = ct->tokens;
    for (Z k = 0; k < ct->ntokens; k++) {
        Z len = tokens[k].len;
        if (len < 2) continue;
        uint32_t h = tokens[k].hash;
        for (Z at = (Z)(h & (HEALTH_SLOTS - 1)); health_word[at]; at = (at + 1) & (HEALTH_SLOTS - 1)) {
            if (health_hash[at] == h && health_len[at] == len &&
                memcmp(ct->wb + tokens[k].start, health_word[at], (size_t)len) == 0)
                return 1;
        }
    }
    return 0;
}

/* context.has_health_context: a cue word, or (with a digit) an ICD-10 code */
int health_context(const CText *ct) {
    if (ct->ntokens <= TOKENS_ABOVE ? health_token(ct) : ct_any_word(ct, HEALTH_WORDS)) return 1;
    return ct->has_digit && has_icd10(ct);
}
