#!/bin/sh
# Run inside an image build: /opt/secret-contract from the wheelhouse in /wheels, every
# dependency checked against the hashes in LOCK (pip refuses a wheel whose hash differs), then
# the package's own wheel built from this commit, then `pip check` (a dependency the lock lacks).
#   image-venv.sh /locks/function.lock
set -eu
lock=$1
venv=/opt/secret-contract
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-index --find-links /wheels --no-deps --no-compile --require-hashes -r "$lock"
"$venv/bin/python" -m pip install --quiet --no-index --no-deps --no-compile /wheels/secret_contract-*.whl
# --no-deps installs only what the lock names: a dependency it lacks fails here, not at run time.
"$venv/bin/python" -m pip check
"$venv/bin/python" -m pip uninstall --quiet -y pip setuptools
rm -rf "$venv/share"
find "$venv" -depth \( -name __pycache__ -o -name tests \) -exec rm -rf {} +
# Hash-checked bytecode: a timestamped .pyc records its source's mtime, which differs per build
# (and from the layer's, once the engine resets mtimes), so the image would not be reproducible.
"$venv/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$venv/lib"
