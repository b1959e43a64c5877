"""Health context: the words that make identifiers of a person into health information.

A name with an SSN is ``restricted`` anyway; a name, a date of birth or an e-mail address is
``confidential`` on its own and becomes ``restricted`` (protected health information) when
the same conversation speaks of diagnoses, medication, treatment or a hospital stay. The cue
list is deliberately generous, English and German: it can only raise texts that already
carry an identifier of a person, so a health word in benign text costs nothing.
"""

from __future__ import annotations

import re

from appliance.classify.detectors.base import Scan

HEALTH_WORDS: frozenset[str] = frozenset("""
patient patients pt diagnosis diagnoses diagnosed dx prognosis symptom symptoms medication
medications meds prescribed prescription rx dose dosage mg mcg tablet tablets surgery
surgical therapy treatment treated chemotherapy radiotherapy oncology tumor tumour cancer
carcinoma lymphoma leukemia metastatic diabetes diabetic hypertension asthma copd hiv aids
hepatitis pregnancy pregnant depression depressive anxiety schizophrenia bipolar dementia
alzheimer alzheimers stroke infarction fracture clinic clinical hospital hospitalized admitted
admission discharged discharge icu ward mri ct biopsy allergy allergies allergic insulin
metformin lisinopril atorvastatin warfarin opioid vaccine vaccination covid medicare medicaid
physician nurse nursing mrn ehr emr icd cpt diagnostic labs blood pressure bp cholesterol
cardiology cardiac psychiatric psychiatry psychotherapy rehab rehabilitation pathology
radiology ultrasound sepsis pneumonia infection antibiotics antibiotic overdose substance
alcohol hba1c glucose renal kidney liver transplant dialysis seizure epilepsy migraine
disability injury injuries wound pain vitals medical health healthcare
copay inpatient outpatient
patientin patienten diagnose befund befunde anamnese therapie behandlung behandelt
krankenhaus klinik klinikum aufnahme aufgenommen entlassung entlassen entlassbrief
arztbrief arzt ärztin medikament medikamente medikation dosis tabletten krankenkasse
krankenversicherung versicherte versicherter op operation operiert hypertonie schwanger
schwangerschaft krebs karzinom chemotherapie blutdruck allergie rezept überweisung
krankschreibung arbeitsunfähigkeit pflege pflegegrad reha notaufnahme intensivstation
röntgen mrt sono sonographie symptome beschwerden schmerzen psychotherapie psychiatrie
demenz depressionen infektion wunde verletzung unfall diagnostik medizinisch gesundheit
""".split())

_ICD10 = re.compile(r"[A-TV-Z]\d\d\.\d{1,2}(?![\d.])")


def has_health_context(scan: Scan) -> bool:
    """Whether ``scan`` mentions health: a cue word or an ICD-10 code such as ``E11.9``."""
    if not scan.words.isdisjoint(HEALTH_WORDS):
        return True
    return scan.has_digit and _ICD10.search(scan.text) is not None
