#!/usr/bin/env python3
"""A labelled corpus of CRM-note-like free text for PII detection.

    python bench/pii/make_corpus.py OUT.jsonl [--texts N] [--seed S]

Writes one JSON object per line:

    {"id": 7, "region": "DE", "style": "note", "lang": "de",
     "text": "...", "spans": [{"start": 12, "end": 27, "kind": "phone"}, ...]}

Offsets are in Unicode code points (Python string indices), `end` exclusive. Kinds: email,
phone, credit_card, iban, us_ssn, ip_address. `region` is the country whose national phone
format the text uses (a pipeline would set `region` to it).

Every text is made from templates in one of seven locales and four styles (note, ticket,
chat, signature). Besides true positives in varied formats it carries hard negatives that
look like PII and are not: order and invoice numbers, dates, times, prices, tracking numbers,
16-digit numbers failing Luhn, IBAN-shaped strings with bad check digits, SSN-shaped numbers
in never-issued ranges, version strings, ZIP+4 codes, short numbers, product codes, MAC
addresses, UUIDs. Standard library only; the same seed gives the same corpus.
"""

import argparse
import json
import random
import string

# ---------------------------------------------------------------------------------------------
# Generators of true positives. Phone number plans follow each country's numbering plan
# (checked with libphonenumber when this corpus was designed: every generated number is valid).


def luhn_complete(payload):
    """Appends the Luhn check digit to a string of digits."""
    total = 0
    for i, c in enumerate(reversed(payload)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return payload + str((10 - total % 10) % 10)


def luhn_ok(number):
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def digits(rng, n):
    return "".join(rng.choice(string.digits) for _ in range(n))


def card(rng):
    kind = rng.choice(["visa", "visa", "visa", "mc", "mc2", "amex", "discover"])
    if kind == "visa":
        number = luhn_complete("4" + digits(rng, 14))
    elif kind == "mc":
        number = luhn_complete("5" + rng.choice("12345") + digits(rng, 13))
    elif kind == "mc2":
        number = luhn_complete(str(rng.randint(2221, 2720)) + digits(rng, 11))
    elif kind == "discover":
        number = luhn_complete("6011" + digits(rng, 11))
    else:
        number = luhn_complete(rng.choice(["34", "37"]) + digits(rng, 12))
    style = rng.choice(["space", "space", "dash", "plain"])
    if kind == "amex":
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i : i + 4] for i in range(0, 16, 4)]
    if style == "plain":
        return number
    return (" " if style == "space" else "-").join(groups)


def non_luhn_16(rng):
    """16 digits with a card-like prefix that fail the Luhn check."""
    while True:
        number = rng.choice("4536") + digits(rng, 15)
        if not luhn_ok(number):
            break
    if rng.random() < 0.5:
        return number
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


# IBAN structure: country -> BBAN parts as (length, alphabet). "n" digits, "a" upper letters,
# "c" upper letters or digits.
IBAN_FORMATS = {
    "DE": [(8, "n"), (10, "n")],
    "GB": [(4, "a"), (6, "n"), (8, "n")],
    "FR": [(5, "n"), (5, "n"), (11, "n"), (2, "n")],
    "ES": [(4, "n"), (4, "n"), (2, "n"), (10, "n")],
    "NL": [(4, "a"), (10, "n")],
    "IT": [(1, "a"), (5, "n"), (5, "n"), (12, "n")],
    "AT": [(5, "n"), (11, "n")],
    "CH": [(5, "n"), (12, "n")],
    "BE": [(3, "n"), (7, "n"), (2, "n")],
    "PL": [(8, "n"), (16, "n")],
}
ALPHABETS = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}


def iban_check(country, bban):
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return "%02d" % (98 - number % 97)


def iban(rng, country=None, bad=False):
    country = country or rng.choice(list(IBAN_FORMATS))
    bban = "".join(
        "".join(rng.choice(ALPHABETS[kind]) for _ in range(n)) for n, kind in IBAN_FORMATS[country]
    )
    check = iban_check(country, bban)
    if bad:
        check = "%02d" % ((int(check) + rng.randint(1, 96) - 2) % 97 + 2)
        if check == iban_check(country, bban):
            check = "%02d" % ((int(check) + 1 - 2) % 97 + 2)
    compact = country + check + bban
    if rng.random() < 0.6:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def ssn(rng, sep="-"):
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}"


def bad_ssn(rng):
    area = rng.choice(["000", "666", str(rng.randint(900, 999))])
    group = "%02d" % rng.randint(1, 99)
    serial = "%04d" % rng.randint(1, 9999)
    if rng.random() < 0.25:
        area, group = "%03d" % rng.randint(1, 665), "00"
    elif rng.random() < 0.25:
        area, serial = "%03d" % rng.randint(1, 665), "0000"
    return f"{area}-{group}-{serial}"


def ipv4(rng):
    first = rng.choice([10, 172, 192, rng.randint(1, 223)])
    if first == 192:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if first == 172:
        return f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng):
    groups = [rng.choice(["2001", "2a00", "2600", "2a02", "fe80"])] + [
        "%x" % rng.randint(0, 0xFFFF) for _ in range(7)
    ]
    style = rng.random()
    if groups[0] == "fe80" or style < 0.4:
        # Compressed: a run of zero groups as "::".
        keep_left = rng.randint(1, 3)
        keep_right = rng.randint(1, 4)
        return ":".join(groups[:keep_left]) + "::" + ":".join(groups[8 - keep_right :])
    if style < 0.7:
        return ":".join(groups)
    return ":".join("%04x" % int(g, 16) for g in groups)


FIRST = ["jane", "john", "maria", "lukas", "sophie", "pierre", "giulia", "jan", "emma", "noah",
         "ana", "li", "oliver", "amelie", "marco", "lucia", "finn", "chloe", "sven", "ines"]
LAST = ["doe", "smith", "mueller", "schmidt", "dubois", "rossi", "garcia", "de.vries", "jansen",
        "martin", "bernard", "weber", "brown", "wilson", "lopez", "bianchi", "peeters", "wang"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example.de", "example.co.uk",
           "firma-example.de", "example.fr", "example.es", "example.it", "example.nl",
           "sub.example.io", "example-shop.com"]


def email(rng):
    f, l = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice([f"{f}.{l}", f"{f}{l}", f"{f[0]}.{l}", f"{f}_{l}", f"{f}.{l}{rng.randint(1, 99)}",
                        f"{f}+crm", f"{l}.{f}", f"{f}-{l}"])
    if rng.random() < 0.08:
        local = rng.choice(["josé.garcía", "zoë.müller", "françois.dupont", "jürgen.weiß"])
    if rng.random() < 0.15:
        local = local.capitalize()
    return f"{local}@{rng.choice(DOMAINS)}"


def pick_digits(rng, n, first="123456789"):
    return rng.choice(first) + digits(rng, n - 1)


US_AREAS = ["201", "202", "212", "213", "305", "312", "415", "503", "512", "617", "646", "702",
            "713", "718", "206", "303", "404", "480", "602", "619", "650", "773", "818", "917"]


def phone_us(rng):
    area = rng.choice(US_AREAS)
    exchange = rng.choice("23456789") + digits(rng, 2)
    if exchange[1:] == "11":
        exchange = exchange[0] + "21"
    line = digits(rng, 4)
    fmt = rng.choice(["({a}) {e}-{l}", "{a}-{e}-{l}", "{a}.{e}.{l}", "{a} {e} {l}", "1-{a}-{e}-{l}",
                      "+1 {a} {e} {l}", "+1 ({a}) {e}-{l}", "+1-{a}-{e}-{l}", "+1{a}{e}{l}"])
    return fmt.format(a=area, e=exchange, l=line)


def phone_de(rng):
    kind = rng.random()
    if kind < 0.5:
        prefix = rng.choice(["151", "152", "160", "162", "170", "171", "172", "173", "175", "176", "177", "178", "179"])
        rest = digits(rng, 8 if prefix in ("176", "179", "151", "152", "160", "162") else 7)
        rest = rng.choice("123456789") + rest[1:]
        fmts = ["0{p} {r}", "0{p}/{r}", "0{p}-{r}", "+49 {p} {r}", "+49 (0){p} {r}", "0049 {p} {r}", "+49{p}{r}"]
    else:
        prefix = rng.choice(["30", "40", "89", "69", "221", "211", "711"])
        rest = pick_digits(rng, 8 if len(prefix) == 2 else 7, "2345678")
        fmts = ["0{p} {r}", "0{p}/{r}", "0{p}-{r}", "(0{p}) {r}", "+49 {p} {r}", "+49 (0){p} {r}", "0049 {p} {r}"]
    return rng.choice(fmts).format(p=prefix, r=rest)


def phone_gb(rng):
    if rng.random() < 0.5:
        number = "7" + rng.choice(["400", "500", "800", "900", "956", "123", "432"]) + digits(rng, 6)
        fmts = [("0{a} {b}", 4), ("+44 {a} {b}", 4), ("+44 (0){a} {b}", 4), ("0{a}{b}", 4)]
    else:
        number = "20" + rng.choice("378") + digits(rng, 7)
        fmts = [("0{a} {b} {c}", 2), ("+44 {a} {b} {c}", 2), ("({0}{a}) {b} {c}", 2), ("+44 (0){a} {b} {c}", 2)]
    fmt, cut = rng.choice(fmts)
    a, rest = number[:cut], number[cut:]
    if "{c}" in fmt:
        return fmt.replace("({0}", "(0").format(a=a, b=rest[:4], c=rest[4:])
    return fmt.format(a=a, b=rest)


def phone_fr(rng):
    first = rng.choice(["1", "2", "3", "4", "5", "6", "7"])
    rest = rng.choice("345678" if first == "7" else "12345678") + digits(rng, 7)
    if (first, rest[:1]) == ("2", "6") or (first, rest[:2]) == ("6", "39"):
        rest = "1" + rest[1:]  # 0262 and 0639 are Réunion and Mayotte, not metropolitan France
    pairs = [first] + [rest[i : i + 2] for i in range(0, 8, 2)]
    fmt = rng.choice(["0{} {} {} {} {}", "0{}.{}.{}.{}.{}", "0{}{}{}{}{}", "+33 {} {} {} {} {}",
                      "+33 (0){} {} {} {} {}", "0033 {} {} {} {} {}"])
    return fmt.format(*pairs)


def phone_es(rng):
    if rng.random() < 0.6:
        number = rng.choice("67") + rng.choice("1234") + digits(rng, 7)
    else:
        number = rng.choice(["91", "93", "96", "95"]) + rng.choice("2345") + digits(rng, 6)
    fmt = rng.choice(["{a} {b} {c}", "{a} {b2} {c2} {d2}", "+34 {a} {b} {c}", "+34{n}", "0034 {a} {b} {c}"])
    return fmt.format(a=number[:3], b=number[3:6], c=number[6:], b2=number[3:5], c2=number[5:7],
                      d2=number[7:], n=number)


def phone_it(rng):
    if rng.random() < 0.6:
        number = "3" + rng.choice(["20", "27", "28", "33", "35", "38", "39", "40", "45", "47", "48", "49"]) + digits(rng, 7)
        fmt = rng.choice(["{a} {b}", "{a} {b3} {c4}", "+39 {a} {b}", "+39 {a} {b3} {c4}", "0039 {a} {b}"])
        return fmt.format(a=number[:3], b=number[3:], b3=number[3:6], c4=number[6:])
    number = rng.choice(["02", "06"]) + pick_digits(rng, 8, "2345678")
    fmt = rng.choice(["{a} {b}", "{a}/{b}", "+39 {a} {b}", "{a}-{b}"])
    return fmt.format(a=number[:2], b=number[2:])


def phone_nl(rng):
    if rng.random() < 0.6:
        number = "6" + rng.choice("12345") + digits(rng, 7)
        fmt = rng.choice(["0{a}-{b}", "0{a} {b}", "+31 {a} {b}", "+31 (0){a} {b}", "0031 {a} {b}"])
        return fmt.format(a=number[:1], b=number[1:])
    number = rng.choice(["20", "10", "70", "30"]) + pick_digits(rng, 7, "2345678")
    fmt = rng.choice(["0{a}-{b}", "0{a} {b}", "+31 {a} {b}", "(0{a}) {b}"])
    return fmt.format(a=number[:2], b=number[2:])


def phone_in(rng):
    number = rng.choice("6789") + digits(rng, 9)
    return rng.choice(["+91 {a} {b}", "+91-{n}", "{a} {b}"]).format(a=number[:5], b=number[5:], n=number)


def phone_cn(rng):
    number = "1" + rng.choice(["38", "39", "58", "86", "36", "50"]) + digits(rng, 8)
    return rng.choice(["+86 {a} {b} {c}", "+86{n}"]).format(a=number[:3], b=number[3:7], c=number[7:], n=number)


PHONES = {"US": phone_us, "DE": phone_de, "GB": phone_gb, "FR": phone_fr, "ES": phone_es,
          "IT": phone_it, "NL": phone_nl}


def foreign_phone(rng):
    """An international number from elsewhere, as any locale's notes may carry."""
    region = rng.choice(list(PHONES))
    for _ in range(20):
        number = PHONES[region](rng)
        if number.startswith("+"):
            return number
    return rng.choice([phone_in, phone_cn])(rng)


# ---------------------------------------------------------------------------------------------
# Hard negatives: values that look like PII and are not.


def order_number(rng):
    return rng.choice([
        f"ORD-{rng.randint(2019, 2026)}-{rng.randint(0, 999999):06d}",
        f"INV-{rng.randint(2019, 2026)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}-{rng.randint(1, 9999):04d}",
        f"#{rng.randint(100000, 99999999)}",
        f"{rng.randint(2019, 2026)}/{rng.randint(1, 9999):04d}",
        f"SO{rng.randint(10000000, 99999999)}",
        f"PO {rng.randint(4500000000, 4599999999)}",
        f"Kd.-Nr. {rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
        f"RE-{rng.randint(10000, 99999)}",
        f"{rng.randint(10000000, 99999999)}",
    ])


def date(rng):
    y, m, d = rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y}", f"{m:02d}/{d:02d}/{y}",
                       f"{d}/{m}/{y}", f"{y}{m:02d}{d:02d}", f"{d:02d}-{m:02d}-{y}"])


def time(rng):
    return rng.choice([f"{rng.randint(7, 19)}:{rng.choice(['00', '15', '30', '45'])}",
                       f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
                       f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} {rng.choice(['am', 'pm'])}"])


def price(rng):
    amount = rng.randint(5, 250000)
    cents = rng.randint(0, 99)
    return rng.choice([f"${amount:,}.{cents:02d}", f"{amount:,}.{cents:02d} USD".replace(",", " "),
                       f"{amount:,}".replace(",", ".") + f",{cents:02d} €", f"EUR {amount}",
                       f"£{amount:,}", f"{amount * 1000:,} {rng.choice(['EUR', 'USD', 'GBP'])}"])


def tracking(rng):
    return rng.choice([
        "1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        " ".join(["9400", digits(rng, 4), digits(rng, 4), digits(rng, 4), digits(rng, 4), digits(rng, 2)]),
        digits(rng, 12),
        "JJD" + digits(rng, 18),
        digits(rng, 10),
        rng.choice("CLRV") + rng.choice(string.ascii_uppercase) + digits(rng, 9) + rng.choice(["DE", "US", "GB", "FR"]),
    ])


def version(rng):
    return rng.choice([f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}",
                       f"{rng.randint(1, 12)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}",
                       f"10.0.{rng.randint(17000, 22631)}.{rng.randint(1, 3000)}",
                       f"build {rng.randint(2019, 2026)}.{rng.randint(1, 12)}.{rng.randint(1, 28)}",
                       f"v{rng.randint(1, 4)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(1000, 9999)}"])


def zip4(rng):
    return f"{rng.randint(10000, 99999)}-{rng.randint(1, 9999):04d}"


def short_number(rng):
    return rng.choice([f"room {rng.randint(100, 999)}", f"ext. {rng.randint(10, 9999)}",
                       f"{rng.randint(2, 500)} seats", f"Q{rng.randint(1, 4)}", f"{rng.randint(1, 99)}%",
                       f"Halle {rng.randint(1, 27)}", f"{rng.randint(1, 48)} months",
                       f"Stand {rng.choice('ABCDEFG')}{rng.randint(10, 99)}", f"{rng.randint(10000, 99999)}"])


def product_code(rng):
    return rng.choice([f"SKU {rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}-{digits(rng, 4)}-{digits(rng, 4)}-{digits(rng, 2)}",
                       f"ART-{digits(rng, 6)}", f"EAN {ean13(rng.choice(['40', '50', '76', '80', '30']) + digits(rng, 10))}",
                       f"P/N {digits(rng, 3)}-{digits(rng, 3)}-{digits(rng, 3)}",
                       f"Serial {rng.choice(string.ascii_uppercase)}{digits(rng, 9)}",
                       "ISBN 978-" + digits(rng, 1) + "-" + digits(rng, 3) + "-" + digits(rng, 5) + "-" + digits(rng, 1)])


def ean13(payload):
    """Appends the EAN-13 check digit (weights 1 and 3) to 12 digits."""
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(payload))
    return payload + str((10 - total % 10) % 10)


def mac(rng):
    return ":".join("%02X" % rng.randint(0, 255) for _ in range(6))


def uuid(rng):
    h = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


NEGATIVES = {
    "order": order_number, "date": date, "time": time, "price": price, "tracking": tracking,
    "non_luhn": non_luhn_16, "bad_iban": lambda rng: iban(rng, bad=True), "bad_ssn": bad_ssn,
    "version": version, "zip4": zip4, "short": short_number, "product": product_code,
    "mac": mac, "uuid": uuid,
}

# ---------------------------------------------------------------------------------------------
# Locales: sentence templates with slots {email}, {phone}, {foreign_phone}, {card}, {iban},
# {ssn}, {ip}, {ip6} (labelled) and {neg:NAME} (hard negatives, unlabelled).

LOCALES = {
    "US": ("en", [
        "Spoke with the customer, please call back at {phone} after {neg:time}.",
        "New email address: {email}. Old one bounced.",
        "Card on file: {card}, expires {neg:date}.",
        "Customer disputes charge on order {neg:order} ({neg:price}).",
        "SSN {ssn} provided for the credit check.",
        "Verified identity: SSN {ssn}, DOB {neg:date}.",
        "Tax form lists SSN {ssn}; call {phone} if questions.",
        "W-9 received, social security number {ssn}.",
        "Login from {ip} flagged by fraud team.",
        "Shipping to ZIP {neg:zip4}, tracking {neg:tracking}.",
        "Renewal due {neg:date}; quote {neg:order} for {neg:price}.",
        "Reference number {neg:non_luhn} is not a card, just the legacy account id.",
        "Asked about plan v2; currently on {neg:version}.",
        "Met at the booth, {neg:short}. Follow up by {neg:date}.",
        "Cell {phone}, office {phone}.",
        "Reached via {foreign_phone} while travelling.",
        "Wire refund to {iban} please.",
        "Paid with card {card} on {neg:date} at {neg:time}.",
        "Device {neg:mac} last seen at {ip6}.",
        "Invalid SSN on form: {neg:bad_ssn}, asked customer to resend.",
        "Ticket {neg:uuid} escalated.",
        "Ordered {neg:product} x3, total {neg:price}.",
        "Email {email} or text {phone}.",
        "Account number {neg:bad_iban} was rejected by the bank.",
    ]),
    "GB": ("en", [
        "Rang the client on {phone}, no answer. Try again {neg:date}.",
        "Please use {email} for invoices from now on.",
        "Direct debit from {iban}, mandate ref {neg:order}.",
        "Card ending {card} declined twice.",
        "Office {phone}, mobile {phone}.",
        "Logged in from {ip}, two-factor enabled.",
        "Parcel {neg:tracking} delivered {neg:date} at {neg:time}.",
        "Renewal {neg:price} for {neg:short}.",
        "Account {neg:bad_iban} closed, new details to follow.",
        "Firmware {neg:version} on device {neg:mac}.",
        "Call back on {foreign_phone} (abroad until {neg:date}).",
        "Contact {email}, phone {phone}.",
    ]),
    "DE": ("de", [
        "Rückruf erbeten unter {phone}, am besten vor {neg:time} Uhr.",
        "Neue E-Mail: {email}.",
        "Bankverbindung: IBAN {iban}.",
        "Rechnung {neg:order} vom {neg:date} über {neg:price} offen.",
        "Kreditkarte {card} hinterlegt.",
        "Mobil {phone}, Festnetz {phone}.",
        "Sendungsnummer {neg:tracking}, Zustellung am {neg:date}.",
        "Kundennummer {neg:order}, Vertrag bis {neg:date}.",
        "IBAN {neg:bad_iban} ist laut Bank ungültig.",
        "Zugriff von {ip} um {neg:time}.",
        "Termin am {neg:date} um {neg:time}, {neg:short}.",
        "Artikel {neg:product}, Preis {neg:price}.",
        "Erreichbar auch unter {foreign_phone}.",
        "Alte Referenz {neg:non_luhn}, keine Kartennummer.",
        "Software {neg:version} installiert.",
        "Kontakt: {email}, Tel. {phone}.",
    ]),
    "FR": ("fr", [
        "Rappeler le client au {phone} avant le {neg:date}.",
        "Nouvelle adresse e-mail : {email}.",
        "Virement sur {iban}.",
        "Facture {neg:order} du {neg:date}, montant {neg:price}.",
        "Carte bancaire {card} enregistrée.",
        "Portable {phone}, bureau {phone}.",
        "Connexion depuis {ip} à {neg:time}.",
        "Colis {neg:tracking} livré le {neg:date}.",
        "Le RIB {neg:bad_iban} est refusé par la banque.",
        "Version {neg:version}, {neg:short}.",
        "Joignable aussi au {foreign_phone}.",
    ]),
    "ES": ("es", [
        "Llamar al cliente al {phone} por la tarde.",
        "Correo nuevo: {email}.",
        "Transferencia a la cuenta {iban}.",
        "Pedido {neg:order} del {neg:date}, importe {neg:price}.",
        "Tarjeta {card} registrada.",
        "Móvil {phone}.",
        "Acceso desde {ip} a las {neg:time}.",
        "Envío {neg:tracking}, entrega {neg:date}.",
        "Referencia {neg:non_luhn} (no es tarjeta).",
        "Contacto en el extranjero: {foreign_phone}.",
    ]),
    "IT": ("it", [
        "Richiamare il cliente al {phone} entro il {neg:date}.",
        "Nuova email: {email}.",
        "Bonifico su {iban}.",
        "Ordine {neg:order} del {neg:date}, importo {neg:price}.",
        "Carta {card} registrata.",
        "Cellulare {phone}, ufficio {phone}.",
        "Accesso da {ip} alle {neg:time}.",
        "Spedizione {neg:tracking} consegnata il {neg:date}.",
        "IBAN {neg:bad_iban} non valido.",
    ]),
    "NL": ("nl", [
        "Klant terugbellen op {phone} na {neg:time}.",
        "Nieuw e-mailadres: {email}.",
        "Terugbetaling naar {iban}.",
        "Factuur {neg:order} van {neg:date}, bedrag {neg:price}.",
        "Creditcard {card} geregistreerd.",
        "Mobiel {phone}, kantoor {phone}.",
        "Ingelogd vanaf {ip} om {neg:time}.",
        "Pakket {neg:tracking} bezorgd op {neg:date}.",
        "Bereikbaar via {foreign_phone}.",
    ]),
}

# Locale weights: more US and DE, as in a typical European/US CRM.
LOCALE_WEIGHTS = {"US": 5, "GB": 2, "DE": 4, "FR": 2, "ES": 1, "IT": 1, "NL": 1}

FILLERS = {
    "en": ["Prefers email over phone.", "VIP, handle with care.", "Budget approved, decision in Q2.",
           "Do not contact before 10am.", "Interested in the enterprise plan.", "Left a voicemail.",
           "Duplicate record? Check.", "Asked about GDPR / data deletion."],
    "de": ["Bitte nur vormittags anrufen.", "Interesse an der Premium-Version.", "Kontakt über Messe Hannover, Halle 4.",
           "Entscheidung im dritten Quartal.", "Datenschutzauskunft angefragt."],
    "fr": ["Intéressé par l'offre « Premium ».", "Préfère être contacté par e-mail.", "Rappeler en janvier."],
    "es": ["Habla inglés.", "Interesado en la versión empresarial.", "Prefiere correo electrónico."],
    "it": ["Preferisce essere contattato via email.", "Interessato alla versione Premium."],
    "nl": ["Voorkeur voor e-mail.", "Interesse in het premium pakket."],
}


def generate(rng, template, region, labelled):
    """Fills a template; returns text and spans (code-point offsets)."""
    out = []
    spans = []
    pos = 0
    i = 0
    while i < len(template):
        if template[i] == "{":
            j = template.index("}", i)
            slot = template[i + 1 : j]
            i = j + 1
            if slot.startswith("neg:"):
                value, kind = NEGATIVES[slot[4:]](rng), None
            elif slot == "phone":
                value, kind = PHONES[region](rng), "phone"
            elif slot == "foreign_phone":
                value, kind = foreign_phone(rng), "phone"
            elif slot == "email":
                value, kind = email(rng), "email"
            elif slot == "card":
                value, kind = card(rng), "credit_card"
            elif slot == "iban":
                value, kind = iban(rng, region if region in IBAN_FORMATS and rng.random() < 0.7 else None), "iban"
            elif slot == "ssn":
                value, kind = ssn(rng, "-" if rng.random() < 0.85 else " "), "us_ssn"
            elif slot == "ip":
                value, kind = (ipv4(rng), "ip_address") if rng.random() < 0.7 else (ipv6(rng), "ip_address")
            elif slot == "ip6":
                value, kind = ipv6(rng), "ip_address"
            else:
                raise ValueError(slot)
            if kind and labelled:
                spans.append({"start": pos, "end": pos + len(value), "kind": kind})
            out.append(value)
            pos += len(value)
        else:
            out.append(template[i])
            pos += 1
            i += 1
    return "".join(out), spans


def join(pieces, sep):
    text, spans, pos = [], [], 0
    for k, (t, s) in enumerate(pieces):
        if k:
            text.append(sep)
            pos += len(sep)
        text.append(t)
        spans.extend({"start": x["start"] + pos, "end": x["end"] + pos, "kind": x["kind"]} for x in s)
        pos += len(t)
    return "".join(text), spans


def make_text(rng, region):
    lang, templates = LOCALES[region]
    style = rng.choices(["note", "ticket", "chat", "signature"], weights=[6, 2, 2, 1])[0]
    n = rng.choice([1, 1, 2, 2, 3])
    pieces = [generate(rng, rng.choice(templates), region, True) for _ in range(n)]
    if rng.random() < 0.5:
        pieces.insert(rng.randint(0, len(pieces)), (rng.choice(FILLERS[lang]), []))
    if style == "note":
        return style, lang, *join(pieces, " ")
    if style == "ticket":
        header = (f"Ticket {rng.randint(10000, 99999)} | opened {date(rng)} {time(rng)} | priority {rng.randint(1, 4)}", [])
        return style, lang, *join([header] + pieces, "\n")
    if style == "chat":
        lines = []
        for t, s in pieces:
            stamp = f"[{rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}] {rng.choice(['agent', 'customer', 'bot'])}: "
            lines.append((stamp + t, [{**x, "start": x["start"] + len(stamp), "end": x["end"] + len(stamp)} for x in s]))
        return style, lang, *join(lines, "\n")
    # A signature block under a short note.
    name = f"{rng.choice(FIRST).capitalize()} {rng.choice(LAST).replace('.', ' ').title()}"
    sig_lines = [(f"-- \n{name}", [])]
    for label, gen, kind in [("T", PHONES[region], "phone"), ("M", PHONES[region], "phone"), ("E", email, "email")]:
        if rng.random() < 0.8:
            value = gen(rng)
            prefix = f"{label}: "
            sig_lines.append((prefix + value, [{"start": len(prefix), "end": len(prefix) + len(value), "kind": kind}]))
    return style, lang, *join(pieces[:1] + [join(sig_lines, "\n")], "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--texts", type=int, default=800)
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    regions = [r for r, w in LOCALE_WEIGHTS.items() for _ in range(w)]
    counts = {}
    with open(args.out, "w", encoding="utf-8") as f:
        for i in range(args.texts):
            region = rng.choice(regions)
            style, lang, text, spans = make_text(rng, region)
            for s in spans:
                counts[s["kind"]] = counts.get(s["kind"], 0) + 1
            record = {"id": i, "region": region, "style": style, "lang": lang, "text": text, "spans": spans}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{args.texts} texts written to {args.out} ({summary})")


if __name__ == "__main__":
    main()
