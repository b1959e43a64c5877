/* context.py: whether a text speaks of health (a cue word, or an ICD-10 code). */
#include "core.h"

/* context.HEALTH_WORDS as word-byte tokens (Latin-1), sorted by byte for health_token's
   binary search. "hba1c" is left out: its vocabulary key ("hba c", the digit being a
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
static int has_icd10(const U *s, Z n) {
    for (Z dot = find_in(s, 3, n, "."); dot >= 0; dot = find_in(s, dot + 1, n, ".")) {
        U c = s[dot - 3];
        if (!(c >= 'A' && c <= 'Z' && c != 'U' && is_d(s[dot - 2]) && is_d(s[dot - 1]) &&
              is_d(s[dot + 1]))) continue;
        Z after = is_d(s[dot + 2]) ? dot + 3 : dot + 2;
        if (!is_d(s[after]) && s[after] != '.') return 1;
    }
    return 0;
}

#define NWORDS ((Z)(sizeof HEALTH_WORDS / sizeof HEALTH_WORDS[0]) - 1)

/* The order of HEALTH_WORDS: a token's word bytes against a word */
static int compare(const unsigned char *token, Z len, const char *word) {
    for (Z k = 0; k < len; k++) {
        unsigned char w = (unsigned char)word[k];
        if (w == 0) return 1;
        if (token[k] != w) return token[k] < w ? -1 : 1;
    }
    return word[len] ? -1 : 0;
}

/* Whether a token of the text is one of HEALTH_WORDS, by binary search per token (tokens of
   one letter, which no cue word is, skipped): below TOKENS_BELOW tokens cheaper than
   ct_any_word, which costs about as much for every text (a look-up per cue word). */
#define TOKENS_BELOW 64
static int health_token(const CText *ct) {
    for (Z k = 0; k < ct->ntokens; k++) {
        Z len = ct->tokens[k].len;
        if (len < 2) continue;
        const unsigned char *token = ct->wb + ct->tokens[k].start;
        Z lo = 0, hi = NWORDS;
        while (lo < hi) {
            Z mid = (lo + hi) / 2;
            int c = compare(token, len, HEALTH_WORDS[mid]);
            if (c == 0) return 1;
            if (c < 0) hi = mid; else lo = mid + 1;
        }
    }
    return 0;
}

/* context.has_health_context: a cue word, or (with a digit) an ICD-10 code */
int health_context(const CText *ct) {
    if (ct->ntokens < TOKENS_BELOW ? health_token(ct) : ct_any_word(ct, HEALTH_WORDS)) return 1;
    return ct->has_digit && has_icd10(ct->s, ct->n);
}
