#!/usr/bin/env python3
"""A second labelled corpus: multilingual CRM notes, written apart from the detector.

    python bench/pii/make_notes.py OUT.jsonl [--notes N] [--seed S]

Needs `phonenumbers` (Google's libphonenumber, the reference the detector is measured
against); everything else is the standard library. Each line is

    {"id": 7, "lang": "de", "region": "DE", "country": "Deutschland",
     "text": "...", "spans": [{"start": 12, "end": 27, "kind": "phone"}, ...]}

with offsets in Unicode code points. `region` is the record's country as an ISO code and
`country` the record's country field as a CRM would hold it (a code, an alpha-3 code, a name in
the note's language or in English, or blank), for `region_from`.

Why a second generator: `make_corpus.py` was written together with the detector, so its
phone numbers and hard negatives share the detector authors' idea of what a phone number looks
like. This one does not look at the detector's rules. Phone numbers come from libphonenumber's
own example numbers per country and type with their digits re-drawn until libphonenumber calls
them valid, and are written in the ways people write them in each country (libphonenumber's
national and international formats, and hand-written variants: dots in France, a slash or a
dash after the area code in Germany, no grouping, `(0)` after the country code, `00` instead of
`+`). Sentences are written per language (English, German, French, Spanish), and the hard
negatives are the numbers CRM notes in those languages are full of: order, invoice, customer,
ticket and tracking numbers, dates, times, prices, postcodes, SKUs and EANs, version strings,
file names with `@2x`, local host names.
"""

import argparse
import json
import random
import string

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

LANGS = {
    # lang: (weight, regions)
    "en": (3, ["US", "GB"]),
    "de": (2, ["DE"]),
    "fr": (2, ["FR"]),
    "es": (2, ["ES"]),
}

COUNTRY_FIELD = {
    "US": ["US", "USA", "United States", "united states", "US"],
    "GB": ["GB", "GBR", "United Kingdom", "UK"],
    "DE": ["DE", "DEU", "Deutschland", "Germany"],
    "FR": ["FR", "FRA", "France", "france"],
    "ES": ["ES", "ESP", "España", "Spain"],
}

FOREIGN = ["IT", "NL", "CH", "AT", "BE", "PT", "IE", "PL", "SE", "IN", "BR", "AU", "JP", "MX", "CA"]

# ------------------------------------------------------------------------------------------
# Phone numbers, judged by libphonenumber.

TYPES = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE]


def valid_number(rng, region):
    """A random valid number of `region`: an example number with its tail re-drawn."""
    for _ in range(200):
        kind = rng.choice(TYPES)
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        nsn = str(example.national_number)
        keep = rng.randint(2, 4)
        drawn = nsn[:keep] + "".join(rng.choice(string.digits) for _ in nsn[keep:])
        number = phonenumbers.parse("+%d%s" % (example.country_code, drawn))
        if phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == region:
            return number
    raise RuntimeError("no valid number for " + region)


def regroup(national, sep):
    return sep.join(national.split())


def written(rng, number, region, national_ok=True):
    """How a person in `region` might write this number."""
    nat = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    cc = str(number.country_code)
    forms = [intl, intl, e164, "00" + intl[1:]]
    ntl = phonenumbers.national_significant_number(number)
    if region in ("DE", "GB", "FR", "AT", "CH", "IT", "NL", "BE"):
        rest = intl[len(cc) + 2 :]
        if region != "IT":
            forms.append("+%s (0)%s" % (cc, rest))
    if national_ok:
        forms += [nat, nat, nat]
        if region == "FR":
            forms += [regroup(nat, "."), regroup(nat, "-"), nat.replace(" ", "")]
        elif region == "DE":
            groups = nat.split()
            if len(groups) >= 2:
                forms += [groups[0] + "/" + "".join(groups[1:]), groups[0] + "-" + "".join(groups[1:]),
                          groups[0] + " / " + " ".join(groups[1:])]
            forms.append(nat.replace(" ", ""))
        elif region == "ES":
            digits = ntl
            forms += [digits, "%s %s %s" % (digits[:3], digits[3:6], digits[6:]),
                      "%s %s %s %s" % (digits[:3], digits[3:5], digits[5:7], digits[7:])]
        elif region == "GB":
            forms += [nat.replace(" ", ""), regroup(nat, "-")]
        elif region == "US":
            d = ntl
            forms += ["%s-%s-%s" % (d[:3], d[3:6], d[6:]), "%s.%s.%s" % (d[:3], d[3:6], d[6:]),
                      "1-%s-%s-%s" % (d[:3], d[3:6], d[6:]), "(%s)%s-%s" % (d[:3], d[3:6], d[6:])]
    return rng.choice(forms)


# ------------------------------------------------------------------------------------------
# Other kinds, each with its own checksum written here from the public definitions.


def luhn_digit(payload):
    total = 0
    for i, ch in enumerate(reversed(payload)):
        v = int(ch) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


def card(rng):
    prefix, length = rng.choice([("4", 16), ("4", 16), ("51", 16), ("55", 16), ("2221", 16),
                                 ("2720", 16), ("34", 15), ("37", 15), ("6011", 16), ("65", 16)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = body + luhn_digit(body)
    style = rng.random()
    if style < 0.35:
        return number
    sep = " " if style < 0.8 else "-"
    if length == 15:
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


IBAN_SHAPES = {"DE": "8n10n", "FR": "5n5n11c2n", "ES": "4n4n2n10n", "GB": "4a6n8n", "IT": "1a5n5n12c",
               "NL": "4a10n", "BE": "3n7n2n", "AT": "5n11n", "CH": "5n12c", "PT": "4n4n11n2n"}


def iban(rng, country, valid=True):
    shape, bban, i = IBAN_SHAPES[country], "", 0
    while i < len(shape):
        j = i
        while shape[j].isdigit():
            j += 1
        n, kind = int(shape[i:j]), shape[j]
        pool = string.digits if kind == "n" else string.ascii_uppercase if kind == "a" else string.digits + string.ascii_uppercase
        bban += "".join(rng.choice(pool) for _ in range(n))
        i = j + 1
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + rng.randint(1, 90)) % 97 + 2 if check != 0 else 55
        if check == 98 - int(numeric) % 97:
            check = check % 97 + 1
    compact = "%s%02d%s" % (country, check, bban)
    return " ".join(compact[k : k + 4] for k in range(0, len(compact), 4)) if rng.random() < 0.6 else compact


def ssn(rng):
    area = rng.choice([a for a in range(1, 900) if a != 666][:: rng.randint(1, 7)])
    return "%03d-%02d-%04d" % (area, rng.randint(1, 99), rng.randint(1, 9999))


def ipv4(rng):
    return rng.choice(["%d.%d.%d.%d" % (rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)),
                       "10.%d.%d.%d" % (rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)),
                       "192.168.%d.%d" % (rng.randint(0, 255), rng.randint(1, 254))])


def ipv6(rng):
    groups = ["%x" % rng.randint(0, 0xFFFF) for _ in range(8)]
    if rng.random() < 0.5:
        return "2001:db8:" + ":".join(groups[2:])
    return "2001:db8::" + ":".join(groups[5:])


FIRST = {"en": ["james", "mary", "olivia", "noah", "emma", "liam", "sophie", "jack"],
         "de": ["jürgen", "anna", "lukas", "müller", "sören", "katrin", "felix", "björn"],
         "fr": ["françois", "élodie", "camille", "léa", "jérôme", "hélène", "théo", "chloé"],
         "es": ["josé", "maría", "lucía", "íñigo", "nuria", "sergio", "begoña", "raúl"]}
LAST = ["smith", "jones", "schmidt", "weber", "dubois", "martin", "garcía", "lópez", "nguyen", "o'neil"]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "web.de", "gmx.de", "t-online.de", "orange.fr",
           "laposte.net", "free.fr", "telefonica.es", "correo.es", "acme-corp.com", "example.co.uk",
           "firma.berlin", "studio.photography", "louvre.museum", "startup.io", "shop.app",
           "mail.example.xn--p1ai", "beratung.xn--vermgensberatung-pwb", "uni-hamburg.de",
           "sub.dept.example.org", "agency.paris", "tienda.madrid", "consulting.london"]


def email(rng, lang):
    first, last = rng.choice(FIRST[lang]), rng.choice(LAST)
    if "'" in last:
        last = last.replace("'", "")
    local = rng.choice([first + "." + last, first[0] + last, first + "_" + last, first + "+crm",
                        last + str(rng.randint(1, 99)), first + "." + last + "+newsletter",
                        "info", "contact", "ventas", "vertrieb"])
    address = local + "@" + rng.choice(DOMAINS)
    if rng.random() < 0.15:
        address = address.upper() if rng.random() < 0.3 else address.capitalize()
    return address


# ------------------------------------------------------------------------------------------
# Hard negatives: numbers notes hold that are no personal data.


def d(rng, n):
    """An id of n digits; ids handed out by a system do not start with 0."""
    return rng.choice("123456789") + "".join(rng.choice(string.digits) for _ in range(n - 1))


def negatives(rng, lang):
    y, m, day = rng.randint(2019, 2027), rng.randint(1, 12), rng.randint(1, 28)
    common = [
        "%04d-%02d-%02d" % (y, m, day),
        "v%d.%d.%d" % (rng.randint(1, 12), rng.randint(0, 30), rng.randint(0, 99)),
        "%d.%d.%d.%d" % (rng.randint(10, 11), 0, rng.randint(10000, 22631), rng.randint(1, 3000)),
        "1Z%s%s" % ("".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6)), d(rng, 10)),
        "SKU-%s-%s" % (d(rng, 4), d(rng, 3)),
        "logo@2x.png", "icon@3x.jpg", "banner@2x.webp", "admin@host.local", "backup@nas.lan",
        "ticket #%s" % d(rng, 6),
        "%02d:%02d" % (rng.randint(7, 19), rng.choice([0, 15, 30, 45])),
        "EAN 40%s" % d(rng, 11),
        "PO-%s" % d(rng, 8),
        "ORD-%d-%s" % (y, d(rng, 6)),
        "%s-%s-%s-%s" % (d(rng, 8), d(rng, 4), d(rng, 4), d(rng, 4)),
    ]
    per_lang = {
        "en": ["%02d/%02d/%04d" % (m, day, y), "$%s,%s.%s" % (rng.randint(1, 99), d(rng, 3), d(rng, 2)),
               "£%d.%s" % (rng.randint(5, 999), d(rng, 2)), "invoice INV-%s" % d(rng, 6), "order #%s" % d(rng, 7),
               "customer no. %s" % d(rng, 6), "zip %s-%s" % (d(rng, 5), d(rng, 4)), "case %s" % d(rng, 8)],
        "de": ["%02d.%02d.%04d" % (day, m, y), "%d.%s,%s €" % (rng.randint(1, 99), d(rng, 3), d(rng, 2)),
               "Rechnung RE-%d-%s" % (y, d(rng, 5)), "Kd.-Nr. %s" % d(rng, 6), "Bestellnr. %s" % d(rng, 10),
               "Art.-Nr. %s-%s" % (d(rng, 3), d(rng, 4)), "%s Berlin" % ("1" + d(rng, 4)), "Vorgang %s" % d(rng, 8),
               "Sendungsnr. %s" % d(rng, 12), "USt-IdNr. DE%s" % d(rng, 9)],
        "fr": ["%02d/%02d/%04d" % (day, m, y), "%d %s,%s €" % (rng.randint(1, 99), d(rng, 3), d(rng, 2)),
               "facture F%d-%s" % (y, d(rng, 4)), "commande n° %s" % d(rng, 9), "client n° %s" % d(rng, 6),
               "SIRET %s %s %s %s" % (d(rng, 3), d(rng, 3), d(rng, 3), d(rng, 5)), "75%s Paris" % d(rng, 3),
               "dossier %s" % d(rng, 8), "réf. %s/%s" % (d(rng, 4), d(rng, 4))],
        "es": ["%02d/%02d/%04d" % (day, m, y), "%d.%s,%s €" % (rng.randint(1, 99), d(rng, 3), d(rng, 2)),
               "factura FAC-%d-%s" % (y, d(rng, 5)), "pedido nº %s" % d(rng, 8), "cliente %s" % d(rng, 6),
               "NIF B%s" % d(rng, 8), "28%s Madrid" % d(rng, 3), "expediente %s/%d" % (d(rng, 5), y),
               "albarán %s" % d(rng, 7)],
    }
    return rng.choice(common + per_lang[lang] * 2)


# ------------------------------------------------------------------------------------------
# Sentences. `{X}` slots: P phone, E email, C card, I iban, S ssn, A ip, N a hard negative.

SENTENCES = {
    "en": ["Called back on {P}, left a voicemail.", "Prefers email: {E}.", "New mobile number {P} (since {N}).",
           "Asked us to use {E} instead of the old address.", "Paid by card {C}, receipt for {N}.",
           "Refund to IBAN {I} once {N} is closed.", "SSN {S} on the W-9.", "Login from {A} flagged by security.",
           "Meeting moved, see {N}.", "Follow up after {N}; no answer on {P}.", "Office line {P}, ext. 12.",
           "Re {N}: customer happy with the fix.", "Sent the deck to {E} and cc'd {E}.", "Lead from the webinar, budget approved.",
           "Spoke with procurement about {N} and {N}.", "Reach her at {P} or {P} after 5pm.",
           "Screenshot attached ({N}), user reports a crash in {N}.", "Do not call before 9; mobile {P}."],
    "de": ["Rückruf unter {P} erbeten.", "Bitte nur per E-Mail an {E}.", "Neue Handynummer: {P}.",
           "Termin am {N} bestätigt, Angebot folgt.", "Erstattung auf IBAN {I} nach {N}.",
           "Hat mit Karte {C} bezahlt.", "Zentrale {P}, Durchwahl 12.", "Kunde meldet Fehler in {N}, siehe {N}.",
           "Ansprechpartnerin erreichbar unter {P} oder {E}.", "Zugriff von {A} gesperrt.", "Lieferung zu {N} verspätet.",
           "Bitte {N} und {N} prüfen.", "Frau Weber wünscht Rückruf, Tel. {P}.", "Unterlagen an {E} geschickt.",
           "Fax {P}", "Kein Interesse mehr, {N} storniert."],
    "fr": ["Rappeler au {P} avant midi.", "Préfère le courriel : {E}.", "Nouveau portable : {P}.",
           "Rendez-vous le {N} confirmé.", "Remboursement sur l'IBAN {I} après {N}.", "Payé par carte {C}.",
           "Standard {P}, poste 12.", "Le client signale un bug dans {N}, cf. {N}.", "Joignable au {P} ou par mail {E}.",
           "Connexion depuis {A} bloquée.", "Livraison de {N} en retard.", "Vérifier {N} et {N}.",
           "Mme Dubois souhaite être rappelée au {P}.", "Documents envoyés à {E}.", "Plus intéressé, {N} annulée."],
    "es": ["Llamar al {P} por la mañana.", "Prefiere correo: {E}.", "Nuevo móvil: {P}.", "Cita el {N} confirmada.",
           "Reembolso a la cuenta {I} tras {N}.", "Pagó con tarjeta {C}.", "Centralita {P}, ext. 12.",
           "El cliente reporta un error en {N}, ver {N}.", "Contactar en el {P} o en {E}.", "Acceso desde {A} bloqueado.",
           "Entrega de {N} retrasada.", "Revisar {N} y {N}.", "La Sra. García pide que la llamen al {P}.",
           "Documentación enviada a {E}.", "Ya no le interesa, {N} cancelado."],
}

KINDS = {"P": "phone", "E": "email", "C": "credit_card", "I": "iban", "S": "us_ssn", "A": "ip_address"}


def fill(rng, lang, region, slot):
    if slot == "P":
        if rng.random() < 0.12:
            foreign = rng.choice(FOREIGN)
            return written(rng, valid_number(rng, foreign), foreign, national_ok=False)
        return written(rng, valid_number(rng, region), region)
    if slot == "E":
        return email(rng, lang)
    if slot == "C":
        return card(rng)
    if slot == "I":
        return iban(rng, rng.choice([region if region in IBAN_SHAPES else "DE", rng.choice(list(IBAN_SHAPES))]))
    if slot == "S":
        return ssn(rng)
    if slot == "A":
        return ipv4(rng) if rng.random() < 0.7 else ipv6(rng)
    return negatives(rng, lang)


def note(rng, ident):
    lang = rng.choices(list(LANGS), weights=[w for w, _ in LANGS.values()])[0]
    region = rng.choice(LANGS[lang][1])
    country = rng.choice(COUNTRY_FIELD[region] + [""])
    pool = SENTENCES[lang]
    if region != "US":
        pool = [s for s in pool if "{S}" not in s]
    text, spans = "", []
    for _ in range(rng.randint(1, 4)):
        sentence = rng.choice(pool)
        if text:
            text += rng.choice([" ", " ", "\n", " - ", "; "])
        i = 0
        while i < len(sentence):
            if sentence[i] == "{":
                slot = sentence[i + 1]
                value = fill(rng, lang, region, slot)
                if slot in KINDS:
                    spans.append({"start": len(text), "end": len(text) + len(value), "kind": KINDS[slot]})
                text += value
                i += 3
            else:
                text += sentence[i]
                i += 1
    return {"id": ident, "lang": lang, "region": region, "country": country, "text": text, "spans": spans}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--notes", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with open(args.out, "w", encoding="utf-8") as out:
        for ident in range(args.notes):
            out.write(json.dumps(note(rng, ident), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
