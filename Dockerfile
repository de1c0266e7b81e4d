# secret-contract's images, two targets of one build:
#   function   (default) the KRM function, for kustomize and kpt:   make image
#   publisher  the function with kustomize (kubectl), a git client and the OCI client, for
#              `secret-contract publish` in a cluster and the Argo CD plugin sidecar:
#                                                                    make image TARGET=publisher
# Dependencies install from build/wheelhouse (made beforehand by `make wheelhouse` for the
# base's Python) against the hashes in requirements/*.lock, so the build needs no network and
# two builds of one commit carry the same packages. `make image` with podman or buildah also
# makes them bit for bit the same image (same digest; Docker needs buildx's rewrite-timestamp): the wheel is built with SOURCE_DATE_EPOCH (the commit's time),
# bytecode records source hashes rather than mtimes, and podman/buildah's --timestamp sets
# every file's mtime and the image's creation time to that commit time.
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
# A label unique to one `make image` run on the build stages: it prunes their images once the
# final one is tagged, and no other checkout's or run's images.
ARG BUILD_ID=unset
LABEL io.github.hostk8s.secret-contract.build="${BUILD_ID}"
COPY build/wheelhouse /wheels
COPY requirements/*.lock /locks/
COPY scripts/image-venv.sh /usr/local/bin/image-venv

FROM build AS function-venv
RUN image-venv /locks/function.lock

FROM build AS publisher-venv
RUN image-venv /locks/publisher.lock \
 && /opt/secret-contract/bin/secret-contract install-plugin --dir /opt/kustomize-plugins > /dev/null

FROM ${BASE_IMAGE} AS base
# `make image` passes secret_contract.__version__, the one place the version is written.
ARG VERSION=dev
ARG SOURCE=https://github.com/hostk8s/secret-contract
LABEL org.opencontainers.image.title="secret-contract" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Bytecode was compiled at build time: nothing is written at run time, so the images work
# with a read-only root filesystem, as `nobody`, without a home directory.
ENV PATH=/opt/secret-contract/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/nonexistent
USER 65534:65534
ENTRYPOINT ["/opt/secret-contract/bin/secret-contract"]

FROM base AS publisher
LABEL org.opencontainers.image.description="secret-contract publish: build with the function, push a Flux OCI artifact"
COPY --from=publisher-venv /opt/secret-contract /opt/secret-contract
COPY --from=publisher-venv /opt/kustomize-plugins /opt/kustomize-plugins
ENV KUSTOMIZE_PLUGIN_HOME=/opt/kustomize-plugins

FROM base AS function
LABEL org.opencontainers.image.description="KRM function: SecretContract to Vault KV v2 and ExternalSecrets"
COPY --from=function-venv /opt/secret-contract /opt/secret-contract
