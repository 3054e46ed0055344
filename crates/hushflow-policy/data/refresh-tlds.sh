#!/usr/bin/env bash
# Refreshes the top-level domains email detection accepts from IANA's list of the root zone,
# then regenerates src/pii/tlds.rs from it. Review the diff (new and removed TLDs) and commit both.
set -euo pipefail
cd "$(dirname "$0")/.."
curl --fail --silent --show-error --location \
  https://data.iana.org/TLD/tlds-alpha-by-domain.txt -o data/tlds-alpha-by-domain.txt.new
mv data/tlds-alpha-by-domain.txt.new data/tlds-alpha-by-domain.txt
HUSHFLOW_WRITE_TLDS=1 cargo test -p hushflow-policy --lib tlds_match_the_iana_list
