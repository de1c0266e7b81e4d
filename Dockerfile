# secret-contract as a containerized KRM function.
#
#   make image                                  # wheelhouse + build, tag secret-contract:dev
#   make image BASE_IMAGE=... IMAGE=registry.example/secret-contract:0.1.0
#
# Dependencies install from build/wheelhouse (made beforehand by `make wheelhouse` for the
# base's Python), so the build needs no network and is reproducible.
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
# The same title on the build stage: `make image` prunes this stage's image once the final one
# is tagged, so repeated builds leave no untagged images behind.
LABEL org.opencontainers.image.title="secret-contract"
COPY build/wheelhouse /wheels
RUN python3 -m venv /opt/secret-contract \
 && /opt/secret-contract/bin/python -m pip install --quiet --no-index --find-links /wheels --no-compile secret-contract \
 && /opt/secret-contract/bin/python -m pip uninstall --quiet -y pip setuptools \
 && rm -rf /opt/secret-contract/share \
 && find /opt/secret-contract -depth \( -name __pycache__ -o -name tests \) -exec rm -rf {} + \
 && /opt/secret-contract/bin/python -m compileall -q -j 0 /opt/secret-contract/lib

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/hostk8s/secret-contract
LABEL org.opencontainers.image.title="secret-contract" \
      org.opencontainers.image.description="KRM function: SecretContract to Vault KV v2 and ExternalSecrets" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/secret-contract /opt/secret-contract
# Bytecode was compiled at build time: nothing is written at run time, so the function
# works with a read-only root filesystem, as `nobody`, without a home directory.
ENV PATH=/opt/secret-contract/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/nonexistent
USER 65534:65534
ENTRYPOINT ["/opt/secret-contract/bin/secret-contract"]
