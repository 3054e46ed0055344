"""Decrypt hushflow tokens with Python's `cryptography` (AES-SIV and HKDF), independently of
hushflow's code, following the construction in docs/pipeline.md ("Tokens").

usage: check_tokens.py KEY_MATERIAL_BASE64 PAIRS.jsonl
PAIRS.jsonl: one {"token": ..., "plaintext_b64": ...} per line.
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def main() -> int:
    material = base64.b64decode(sys.argv[1])
    key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"hushflow tokenize aes-siv v1").derive(material)
    siv = AESSIV(key)
    key_id = hashlib.sha256(material).hexdigest()[:16]
    checked = 0
    for n, line in enumerate(open(sys.argv[2], encoding="utf-8"), 1):
        pair = json.loads(line)
        prefix, tid, body = pair["token"].split(".")
        if prefix != "tok1" or tid != key_id:
            print(f"pair {n}: unexpected prefix or key id")
            return 1
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plain = siv.decrypt(sealed, [b"hushflow-token-v1"])
        if plain != base64.b64decode(pair["plaintext_b64"]):
            print(f"pair {n}: plaintext differs")
            return 1
        # Determinism: encrypting again gives the very same token.
        if siv.encrypt(plain, [b"hushflow-token-v1"]) != sealed:
            print(f"pair {n}: not deterministic")
            return 1
        checked += 1
    print(f"checked {checked} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
