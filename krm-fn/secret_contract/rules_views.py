"""The rules about what a contract makes in Kubernetes: its ExternalSecrets (names, targets,
the keys each delivers, template references) and their templates' Secret metadata and type.

Written like `rules_contract`'s rules, whose field walkers they use; `rules` registers them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from secret_contract.results import Result, error
from secret_contract.rules_contract import DNS_SUBDOMAIN, contract_secrets, data_entries, secret_key_problem

QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
SECRET_TYPE = re.compile(r"^[\x21-\x7e]{1,253}$")
MAX_ANNOTATIONS_SIZE = 256 * 1024  # Kubernetes' limit on all annotations of an object, in bytes
# Keys a Secret of a built-in type must carry, or the API server refuses it (ValidateSecret).
SECRET_TYPE_KEYS = {
    "kubernetes.io/basic-auth": ({"username", "password"}, "any"),
    "kubernetes.io/ssh-auth": ({"ssh-privatekey"}, "all"),
    "kubernetes.io/tls": ({"tls.crt", "tls.key"}, "all"),
    "kubernetes.io/dockercfg": ({".dockercfg"}, "all"),
    "kubernetes.io/dockerconfigjson": ({".dockerconfigjson"}, "all"),
}

# Secret types, not credentials.
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"  # noqa: S105
BOOTSTRAP_TOKEN = "bootstrap.kubernetes.io/token"  # noqa: S105
SERVICE_ACCOUNT_NAME = "kubernetes.io/service-account.name"


def qualified_name_problem(key: str) -> str | None:
    """Why `key` is not a Kubernetes qualified name (label and annotation keys), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= 253 and DNS_SUBDOMAIN.fullmatch(prefix)):
        return "its prefix must be a DNS subdomain of at most 253 characters"
    if not name or len(name) > 63 or not QUALIFIED_NAME_PART.fullmatch(name):
        return "its name must be 1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric"
    return None


def _views(secret: dict[str, Any], at: str) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """A secret's ExternalSecrets: (field path, settings, name), its own first."""
    own = secret.get("externalSecret")
    yield f"{at}.externalSecret", own if isinstance(own, dict) else {}, secret.get("name")
    views = secret.get("externalSecrets")
    for j, view in enumerate(views if isinstance(views, list) else []):
        if isinstance(view, dict):
            yield f"{at}.externalSecrets[{j}]", view, view.get("name")


def _template_metadata(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every `target.template` of the contract, with its field path."""
    spec = obj.get("spec")
    places: list[tuple[str, Any]] = []
    if isinstance(spec, dict):
        places.append(("spec.externalSecret", spec.get("externalSecret")))
    places.extend((where, view) for at, secret in contract_secrets(obj) for where, view, _ in _views(secret, at))
    for at, settings in places:
        target = settings.get("target") if isinstance(settings, dict) else None
        template = target.get("template") if isinstance(target, dict) else None
        if isinstance(template, dict):
            yield f"{at}.target.template", template


def kubernetes_metadata(obj: dict[str, Any]) -> Iterator[Result]:
    """Template labels and annotations follow Kubernetes' rules (qualified-name keys, label values
    of at most 63 characters, at most 256 KiB of annotations), and a template `type` is a Secret
    type: a built-in one needs the keys the API server requires.

    PASS::

        spec:
          externalSecret:
            target: {template: {metadata: {labels: {app.kubernetes.io/part-of: search}}}}

    FAIL at spec.externalSecret.target.template.metadata.labels['tier']::

        spec:
          externalSecret:
            target: {template: {metadata: {labels: {tier: "a b"}}}}

    FAIL at spec.secrets[0].externalSecret.target.template.type::

        spec:
          secrets:
          - data: [{key: tls.crt, provided: true}]
            externalSecret: {target: {template: {type: kubernetes.io/tls}}}
    """
    for at, template in _template_metadata(obj):
        meta = template.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        for kind in ("labels", "annotations"):
            entries = meta.get(kind)
            if not isinstance(entries, dict):
                continue
            for key, value in entries.items():
                where = f"{at}.metadata.{kind}[{key[:64]!r}]" if isinstance(key, str) else f"{at}.metadata.{kind}"
                problem = qualified_name_problem(key) if isinstance(key, str) else "keys must be strings"
                if problem:
                    yield error(f"not a valid {kind[:-1]} key: {problem}", where)
                if (
                    kind == "labels"
                    and isinstance(value, str)
                    and not (len(value) <= 63 and LABEL_VALUE.fullmatch(value))
                ):
                    yield error("not a valid label value: at most 63 letters, digits, '-', '_' or '.'", where)
            size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in entries.items())
            if kind == "annotations" and size > MAX_ANNOTATIONS_SIZE:
                yield error(
                    f"annotations total {size:,} bytes; Kubernetes allows {MAX_ANNOTATIONS_SIZE:,}",
                    f"{at}.metadata.annotations",
                )
    yield from _secret_types(obj)


def _view_types(obj: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any], Any, str]]:
    """Every ExternalSecret of the contract with its effective template type: (secret, view,
    type, field path where that type is set). A view's own type wins over its secret's, then the
    contract's."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    contract_type = _template_type(spec.get("externalSecret"))
    for at, secret in contract_secrets(obj):
        secret_type = _template_type(secret.get("externalSecret"))
        inherited = (
            (secret_type, f"{at}.externalSecret.target.template.type")
            if secret_type
            else (contract_type, "spec.externalSecret.target.template.type")
        )
        for where, view, _ in _views(secret, at):
            own = _template_type(view)
            view_type, path = (own, f"{where}.target.template.type") if own else inherited
            yield secret, view, view_type, path


def _secret_types(obj: dict[str, Any]) -> Iterator[Result]:
    for secret, view, secret_type, path in _view_types(obj):
        if not isinstance(secret_type, str):
            continue
        if not SECRET_TYPE.fullmatch(secret_type):
            yield error("a Secret type is 1-253 visible characters, e.g. kubernetes.io/basic-auth", path)
            continue
        required = SECRET_TYPE_KEYS.get(secret_type)
        if required is None:
            continue
        declared = {e.get("key") for _, e in data_entries(secret) if isinstance(e.get("key"), str)}
        keys = _delivered(view, declared)
        template = (view.get("target") or {}).get("template") if isinstance(view.get("target"), dict) else None
        if isinstance(template, dict) and isinstance(template.get("data"), dict) and template["data"]:
            keys = set(template["data"])  # a template with data makes exactly those keys
        names, how = required
        if (how == "all" and not names <= keys) or (how == "any" and not names & keys):
            need = " and ".join(sorted(names)) if how == "all" else " or ".join(sorted(names))
            yield error(
                f"a Secret of type {secret_type} needs the key {need}; the API server refuses it otherwise", path
            )


def eso_template(obj: dict[str, Any]) -> Iterator[Result]:
    """No template ESO refuses: since v2.4.1 (and in v2.9.0) its validation rejects a template
    of type `bootstrap.kubernetes.io/token`, and one of type `kubernetes.io/service-account-token`
    that carries the annotation `kubernetes.io/service-account.name`, which the API server
    requires on such a Secret: neither type can be delivered (the ExternalSecret itself is
    refused, so a build would fail only at apply time).

    PASS::

        spec:
          externalSecret:
            target: {template: {type: Opaque}}

    FAIL at spec.secrets[0].externalSecret.target.template.type::

        spec:
          secrets:
          - data: [{key: token-id, provided: true}]
            externalSecret: {target: {template: {type: bootstrap.kubernetes.io/token}}}
    """
    for _, _, secret_type, path in _view_types(obj):
        if secret_type == BOOTSTRAP_TOKEN:
            yield error(
                "ESO v2.4.1 and later (v2.9.0 included) refuse an ExternalSecret whose template has type "
                "bootstrap.kubernetes.io/token: deliver the keys in an Opaque Secret",
                path,
            )
        elif secret_type == SERVICE_ACCOUNT_TOKEN:
            yield error(
                f"a Secret of type {SERVICE_ACCOUNT_TOKEN} needs the annotation {SERVICE_ACCOUNT_NAME} (the API "
                "server refuses it otherwise), and ESO v2.4.1 and later (v2.9.0 included) refuse an "
                "ExternalSecret whose template has both: deliver the keys in an Opaque Secret",
                path,
            )


def _delivered(view: dict[str, Any], declared: set[Any]) -> set[Any]:
    """The Secret keys an ExternalSecret delivers: its `data` pairs, else every declared key."""
    pairs = view.get("data")
    if isinstance(pairs, list) and pairs:
        return {p.get("secretKey") for p in pairs if isinstance(p, dict) and isinstance(p.get("secretKey"), str)}
    return set(declared)


TEMPLATE_ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)
# `.name` and `$.name` (`$` is the data, as `.` is outside range and with); not `$var.name`
# or `.a.name`, which are fields of something else.
TEMPLATE_FIELD = re.compile(r"(?<![\w$)\].])\$?\.([A-Za-z_][A-Za-z0-9_]*)")
# A key of the data looked up by name: `index . "name"`, `get $ `name``.
TEMPLATE_INDEX = re.compile(r"\b(?:index|get)\s+[.$]\s+(?:\"([^\"]+)\"|`([^`]+)`)")
# The data looked up by a key the check cannot read (`index . $k`), or handed to a variable
# (`$all := .`; `range` over it visits only delivered keys), after which any key can be
# reached without naming it.
TEMPLATE_DYNAMIC = re.compile(r"\b(?:index|get)\s+[.$]\s+(?![\"`])\S")
TEMPLATE_ALIAS = re.compile(r"\$\w*\s*:?=\s*[.$](?![\w.$])")


def views(obj: dict[str, Any]) -> Iterator[Result]:
    """Each ExternalSecret of a secret (its own, and those in `externalSecrets`) has a free name
    and a target Secret of its own in its namespace; its `data` delivers declared keys, each under
    one Secret key; its template refers only to keys it delivers. See [Views](#views).

    PASS::

        spec:
          secrets:
          - name: elastic
            namespace: search
            data: [{key: elastic-password, generate: password}]
            externalSecrets:
            - name: elastic-user
              data: [{secretKey: elastic, property: elastic-password}]

    FAIL at spec.secrets[0].externalSecrets[0].data[0].property::

        spec:
          secrets:
          - name: elastic
            namespace: search
            data: [{key: elastic-password, generate: password}]
            externalSecrets:
            - name: elastic-user
              data: [{secretKey: elastic, property: elastic-pasword}]

    FAIL at spec.secrets[0].externalSecrets[0].name::

        spec:
          secrets:
          - name: elastic
            namespace: search
            data: [{key: elastic-password, generate: password}]
            externalSecrets: [{name: Elastic_User}]

    FAIL at spec.secrets[0].externalSecrets[0].target.template.data['connection']::

        spec:
          secrets:
          - name: airflow
            namespace: airflow
            data: [{key: password, generate: password}]
            externalSecrets:
            - name: airflow-connection
              target: {template: {data: {connection: "postgresql://airflow:{{ .pasword }}@db"}}}
    """
    names: dict[tuple[Any, Any], str] = {}
    targets: dict[tuple[Any, Any], str] = {}
    # Only text is compared: a name of the wrong type is the schema's finding, not a crash here.
    for _, secret in contract_secrets(obj):
        names.setdefault((_text(secret.get("namespace")), _text(secret.get("name"))), "")
    for at, secret in contract_secrets(obj):
        namespace = _text(secret.get("namespace"))
        declared = {e.get("key") for _, e in data_entries(secret) if isinstance(e.get("key"), str)}
        for where, view, name in _views(secret, at):
            if where.endswith("]"):  # a named view: its name must be free in the namespace
                if isinstance(name, str) and not (len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name)):
                    yield error(f"'{name}' is not a DNS-1123 subdomain", f"{where}.name")
                elif isinstance(name, str) and (namespace, name) in names:
                    other = names[(namespace, name)] or "a secret of this contract"
                    yield error(f"ExternalSecret {namespace}/{name} is already {other}", f"{where}.name")
                else:
                    names[(namespace, name)] = f"declared at {where}"
            target = view.get("target") if isinstance(view.get("target"), dict) else {}
            target_name = target.get("name", name)
            if isinstance(target.get("name"), str) and not DNS_SUBDOMAIN.fullmatch(target["name"]):
                yield error(f"'{target['name']}' is not a DNS-1123 subdomain", f"{where}.target.name")
            if isinstance(target_name, str):
                if (namespace, target_name) in targets:
                    yield error(
                        f"Secret {namespace}/{target_name} is also written by the ExternalSecret at "
                        f"{targets[(namespace, target_name)]}: give one of them another target.name",
                        f"{where}.target.name",
                    )
                targets.setdefault((namespace, target_name), where)
            yield from _view_keys(view, where, declared)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _view_keys(view: dict[str, Any], where: str, declared: set[str]) -> Iterator[Result]:
    pairs = view.get("data")
    seen: set[Any] = set()
    for j, pair in enumerate(pairs if isinstance(pairs, list) else []):
        if not isinstance(pair, dict):
            continue
        key, prop = pair.get("secretKey"), pair.get("property")
        if isinstance(key, str):
            problem = secret_key_problem(key)
            if problem:
                yield error(f"secretKey {problem}", f"{where}.data[{j}].secretKey")
            elif key in seen:
                yield error(f"secretKey '{key}' is delivered twice", f"{where}.data[{j}].secretKey")
            seen.add(key)
        if isinstance(prop, str) and prop not in declared:
            known = ", ".join(sorted(declared))
            yield error(
                f"'{prop}' is not a key this secret declares (declared: {known})", f"{where}.data[{j}].property"
            )
    target = view.get("target") if isinstance(view.get("target"), dict) else {}
    template = target.get("template") if isinstance(target.get("template"), dict) else {}
    data = template.get("data")
    if not isinstance(data, dict):
        return
    delivered = _delivered(view, declared)
    for key, text in data.items():
        path = f"{where}.target.template.data[{str(key)[:64]!r}]"
        problem = secret_key_problem(key) if isinstance(key, str) else "must be a string"
        if problem:
            yield error(f"template key {problem}", path)
        if not isinstance(text, str):
            continue
        for action in TEMPLATE_ACTION.findall(text):
            ranging = action.strip().startswith("range")
            if TEMPLATE_DYNAMIC.search(action) or (TEMPLATE_ALIAS.search(action) and not ranging):
                yield error(
                    "the template reaches the data by a key or variable the reference check cannot follow "
                    '(`index . $k`, `$all := .`): name each key, as in `.key` or `index . "key"`',
                    path,
                )
                continue
            named = {a or b for a, b in TEMPLATE_INDEX.findall(action)}
            for ref in {*TEMPLATE_FIELD.findall(action), *named}:
                if ref not in delivered:
                    have = ", ".join(sorted(k for k in delivered if isinstance(k, str)))
                    yield error(
                        f"the template refers to '{ref}', which this ExternalSecret does not deliver (it delivers: "
                        f"{have})",
                        path,
                    )


def _template_type(settings: Any) -> Any:
    target = settings.get("target") if isinstance(settings, dict) else None
    template = target.get("template") if isinstance(target, dict) else None
    return template.get("type") if isinstance(template, dict) else None
