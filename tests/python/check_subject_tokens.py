"""Recompute hushflow's per-subject tokens (crypto-shredding) with Python's `cryptography` and
`hmac`, independently of hushflow's code, following the construction in
crates/hushflow-crypto/src/subject.rs (also in docs/pipeline.md, "Erasure"):
handle = HMAC-SHA256(HKDF(root, "hushflow subject handle v1", 32), subject)[:16];
subject key = AES-SIV-256 decryption of the wrapped key under HKDF(root, "hushflow subject wrap
v1", 64) with the handle as associated data; token = tok1 token under the subject key, key id
`<root id>s<handle hex>`.

usage: check_subject_tokens.py ROOT_MATERIAL_BASE64 ROOT_ID CASES.jsonl
CASES.jsonl: one {"subject", "wrapped_b64", "token", "plaintext_b64"} per line.
"""
import base64
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def hkdf(material: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)


def main() -> int:
    root = base64.b64decode(sys.argv[1])
    root_id = sys.argv[2]
    handle_key = hkdf(root, b"hushflow subject handle v1", 32)
    wrap = AESSIV(hkdf(root, b"hushflow subject wrap v1", 64))
    checked, handles = 0, set()
    for n, line in enumerate(open(sys.argv[3], encoding="utf-8"), 1):
        case = json.loads(line)
        handle = hmac.new(handle_key, case["subject"].encode(), hashlib.sha256).digest()[:16]
        handles.add(handle)
        subject_key = wrap.decrypt(base64.b64decode(case["wrapped_b64"]), [handle])
        prefix, tid, body = case["token"].split(".")
        if prefix != "tok1" or tid != f"{root_id}s{handle.hex()}":
            print(f"case {n}: unexpected prefix or key id")
            return 1
        siv = AESSIV(hkdf(subject_key, b"hushflow tokenize aes-siv v1", 64))
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plain = siv.decrypt(sealed, [b"hushflow-token-v1"])
        if plain != base64.b64decode(case["plaintext_b64"]):
            print(f"case {n}: plaintext differs")
            return 1
        checked += 1
    print(f"checked {checked} subject tokens of {len(handles)} subjects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
