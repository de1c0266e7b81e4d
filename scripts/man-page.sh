#!/usr/bin/env bash
# The man page, generated from the command line's parser: scripts/man-page.sh OUT_DIR.
# `make man` and the release workflow both run this, so a released page is the one `make man`
# makes. Runs the `python` and `argparse-manpage` found first on PATH (the virtualenv's for
# `make man`, the released wheel's environment in the workflow).
set -euo pipefail
out=${1:?usage: scripts/man-page.sh OUT_DIR}
version=$(python -c 'import secret_contract; print(secret_contract.__version__)')
mkdir -p "$out"
argparse-manpage --module secret_contract.cli.parser --function build --prog secret-contract \
  --project-name secret-contract --version "$version" \
  --description "SecretContracts to Vault KV v2 secrets and ExternalSecrets" \
  --url https://github.com/hostk8s/secret-contract --manual-title "secret-contract manual" \
  --output "$out/secret-contract.1"
