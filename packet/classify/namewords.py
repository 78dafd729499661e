"""Words that tell a field's value is not a person's name, and the words around a name that are not
part of it, for the identity check (packet.classify.identity).

Owns: the word lists. Must not: read text or decide anything.
"""

NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "md", "phd"})
NAME_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "sr", "sra", "srta", "don", "dona", "jr", "ii", "iii", "iv"})
# Words that follow "Patient:" or "Name:" but are not names.
NOT_NAMES = frozenset({
    "information", "info", "name", "names", "signature", "portal", "copy", "instructions", "education", "consent",
    "label", "sticker", "unknown", "declined", "refused", "male", "female", "yes", "no", "not", "none", "applicable",
    "same", "self", "see", "above", "below", "plan", "member", "patient", "date", "of", "birth", "the", "and", "is",
    "was", "has", "reports", "states", "denies", "seen", "presents", "arrived", "doing", "well", "tolerated",
    "tolerating", "new", "established", "inpatient", "outpatient", "status", "type", "services", "service", "care",
    "record", "records", "summary", "history", "notes", "note", "to", "for", "with", "on", "in", "at", "by", "a",
    "an", "or", "paciente", "nombre", "afiliado", "miembro", "si", "masculino", "femenino", "ninguno", "desconocido",
    "el", "la", "los", "las", "de", "del", "y", "en", "con", "por", "para", "se", "refiere", "niega", "presenta",
    "anonymous", "anon", "test", "sample", "demo", "doe", "address", "phone", "id", "number", "account", "group",
    "complaint", "chief", "current", "medications", "allergies", "diagnosis", "procedure", "identification",
    "dob", "mrn", "age", "sex", "gender", "male", "acct", "room", "bed", "visit", "encounter", "fecha", "edad", "sexo",
    # words of a program's or a form's title ("Patient Safety Event", "Member Satisfaction Survey")
    "safety", "satisfaction", "survey", "assistance", "program", "programs", "event", "events", "experience",
    "access", "advocate", "advocacy", "navigator", "navigation", "rights", "responsibilities", "handbook",
    "protection", "transport", "transportation", "intake", "registration", "billing", "statement", "update",
    # organisations are not patients ("Name: Valley Imaging Center")
    "center", "centre", "clinic", "hospital", "imaging", "radiology", "associates", "inc", "llc", "laboratory",
    "laboratories", "labs", "lab", "medical", "medicine", "institute", "practice", "rehabilitation", "department",
    "pharmacy", "therapy", "health", "healthcare", "insurance", "company", "corp", "university", "county", "office",
    "unit", "physicians", "partners", "network", "foundation", "permanente", "kaiser", "clinica", "centro", "salud",
    "farmacia", "hospital", "oral", "tablet", "tablets", "capsule", "mg", "injection", "solution",
    # roles a letter greets ("Dear Grievance Coordinator:", "Dear Provider Relations,", "Dear Sir or Madam")
    "coordinator", "coordinators", "team", "committee", "relations", "colleague", "colleagues", "sir", "madam",
    "reviewer", "reviewers", "manager", "appeals", "appeal", "grievance", "grievances", "claims", "claim",
    "customer", "customers", "valued", "applicant", "whom", "concern", "director", "officer", "specialist",
    "supervisor", "staff", "provider", "providers", "doctor", "doctors", "nurse", "nurses", "members", "dmhc",
    "imr", "review", "organization", "agency", "administrator", "representative", "subscriber", "enrollee",
    "enrollees", "participant", "policyholder", "counsel", "attorney", "parents", "guardian", "caregiver",
    "equipo", "departamento", "comité", "comite", "coordinador", "coordinadora", "proveedor", "afiliados",
})
# Particles inside a surname ("De La Cruz, Juan", "van der Berg, Anna", "dos Santos", "García y López"):
# part of a name in any case, though some are also words NOT_NAMES lists ("de", "la", "y").
NAME_PARTICLES = frozenset({"de", "del", "la", "las", "los", "van", "von", "der", "den", "da", "di", "du",
                            "dos", "das", "le", "y", "bin", "ibn", "al", "el", "st", "ter", "ten"})
# Words NOT_NAMES lists that are also given names when they follow another name word ("Nguyen Van An").
LATE_NAMES = frozenset({"an"})
