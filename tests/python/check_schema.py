"""Validates pipeline files against the JSON Schema `hushflow schema pipeline` prints, with the
`jsonschema` package (an implementation independent of the Rust one that generated it).

usage: check_schema.py SCHEMA --valid FILE... [--invalid FILE...]

Every --valid file must validate and every --invalid file must not; exits 1 naming the file
and the first error otherwise.
"""

import json
import sys
import tomllib

import jsonschema


def main() -> int:
    schema_path, *rest = sys.argv[1:]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    expect, checked = None, 0
    for arg in rest:
        if arg in ("--valid", "--invalid"):
            expect = arg == "--valid"
            continue
        with open(arg, "rb") as f:
            document = tomllib.load(f)
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        if expect and errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            print(f"{arg}: does not validate at `{where}`: {errors[0].message}")
            return 1
        if not expect and not errors:
            print(f"{arg}: validates, but should not")
            return 1
        checked += 1
    print(f"checked {checked} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
