#!/usr/bin/env bash
# Checks the deployment artifacts without a Docker engine or a cluster:
#
#   1. docker-compose.yml with `docker compose config` (Compose v2), else
#      `docker-compose config` (v1); skipped only when there is no Docker
#      client at all.
#   2. Every YAML file (compose, deployments/**) parses, without duplicate
#      keys; Kubernetes env values and ConfigMap data are strings (an
#      unquoted off/on/yes/no is a boolean in YAML 1.1); every manifest in
#      k8s/ is listed in kustomization.yaml; every Dockerfile compose builds
#      exists and builds its own service.
#   3. `kubectl kustomize deployments/k8s` renders (when kubectl or kustomize
#      is installed).
#   4. The XML files under deployments/ parse.
#   5. kafka/create-topics.sh and README.md list every topic of
#      pkg/topics/topics.go, with cleanup.policy=compact for the compacted ones.
#   6. Rule files placed for deployment lint clean (sgctl rules lint).
#
# Exits non-zero on the first failing check. Needs bash and python3 with
# PyYAML (Debian: apt-get install python3-yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "validate: $*" >&2; exit 1; }

# 1. Compose.
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  docker compose -f docker-compose.yml config --quiet || fail "docker-compose.yml: docker compose config failed"
  echo "docker-compose.yml: valid (docker compose $(docker compose version --short 2>/dev/null || echo v2))"
elif command -v docker-compose >/dev/null 2>&1; then
  docker-compose -f docker-compose.yml config -q || fail "docker-compose.yml: docker-compose config failed"
  echo "docker-compose.yml: valid ($(docker-compose version --short 2>/dev/null || echo docker-compose v1))"
elif command -v docker >/dev/null 2>&1; then
  fail "a docker client is installed but neither 'docker compose' nor 'docker-compose' is: install the compose plugin"
else
  echo "docker-compose.yml: no docker client, compose check skipped"
fi

# 2, 4, 5. YAML, XML and topic checks.
# The first python3 with PyYAML: the one on PATH (pyenv, venv) or Debian's,
# where apt-get install python3-yaml puts it.
PY=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' 2>/dev/null; then PY=$candidate; break; fi
done
[ -n "$PY" ] || fail "python3 with PyYAML is required (apt-get install python3-yaml)"

"$PY" - <<'PY'
import glob, os, re, sys
import xml.dom.minidom
import yaml

errors = []

class StrictLoader(yaml.SafeLoader):
    pass

def no_duplicates(loader, node, deep=False):
    # Own keys only: a key that overrides a merged (<<: *anchor) one is fine.
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)

StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, no_duplicates)

files = ["docker-compose.yml"] + sorted(
    f for pat in ("deployments/**/*.yaml", "deployments/**/*.yml")
    for f in glob.glob(pat, recursive=True))
docs_by_file = {}
for f in files:
    try:
        with open(f) as fh:
            docs_by_file[f] = [d for d in yaml.load_all(fh, Loader=StrictLoader) if d is not None]
    except yaml.YAMLError as e:
        errors.append(f"{f}: {e}")
print(f"yaml: {len(files)} files parsed")

# Kubernetes: string-typed fields, kustomization coverage.
k8s_dir = "deployments/k8s"
kust_path = os.path.join(k8s_dir, "kustomization.yaml")
listed = set()
if kust_path in docs_by_file:
    listed = set(docs_by_file[kust_path][0].get("resources", []))
for f, docs in docs_by_file.items():
    if not f.startswith(k8s_dir + "/") or f == kust_path:
        continue
    base = os.path.relpath(f, k8s_dir)
    if not base.endswith(".example.yaml") and base not in listed:
        errors.append(f"{f}: not listed in {kust_path} resources")
    for d in docs:
        kind = d.get("kind", "?")
        name = d.get("metadata", {}).get("name", "?")
        where = f"{f}: {kind}/{name}"
        if not d.get("apiVersion") or not d.get("kind") or not d.get("metadata", {}).get("name"):
            errors.append(f"{where}: apiVersion, kind and metadata.name are required")
        if kind in ("ConfigMap", "Secret"):
            for section in ("data", "stringData"):
                for k, v in (d.get(section) or {}).items():
                    if not isinstance(v, str):
                        errors.append(f"{where}: {section}.{k} is {type(v).__name__}, must be a string")
        if kind == "Deployment":
            spec = d["spec"]
            if spec["selector"]["matchLabels"].items() - spec["template"]["metadata"]["labels"].items():
                errors.append(f"{where}: selector does not match the template labels")
            for c in spec["template"]["spec"]["containers"]:
                for e in c.get("env", []):
                    if "value" in e and not isinstance(e["value"], str):
                        errors.append(f"{where}: env {e['name']} value is {type(e['value']).__name__}, must be a string (quote it)")
                ports = {p["name"] for p in c.get("ports", [])}
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    port = c.get(probe, {}).get("httpGet", {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        errors.append(f"{where}: {probe} port {port!r} is not a container port")
        if kind == "Service":
            for p in d["spec"]["ports"]:
                if not isinstance(p.get("port"), int):
                    errors.append(f"{where}: port {p.get('name')} must be an integer")

# Compose: build files exist and build their own service; env values are scalars.
compose = docs_by_file.get("docker-compose.yml", [{}])[0]
for name, svc in (compose.get("services") or {}).items():
    build = svc.get("build")
    if isinstance(build, dict):
        df = os.path.join(build.get("context", "."), build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(df):
            errors.append(f"docker-compose.yml: {name}: {df} does not exist")
    for k, v in (svc.get("environment") or {}).items():
        if isinstance(v, (dict, list)):
            errors.append(f"docker-compose.yml: {name}: environment {k} is not a scalar")

for df in sorted(glob.glob("services/*/Dockerfile")):
    svc = df.split("/")[1]
    text = open(df).read()
    for want in (f"go work init ./proto ./pkg ./services/{svc}",
                 f"-o /out/{svc} ./services/{svc}",
                 f'ENTRYPOINT ["/usr/local/bin/{svc}"]',
                 "CGO_ENABLED=0",
                 "FROM gcr.io/distroless/static-debian12:nonroot"):
        if want not in text:
            errors.append(f"{df}: missing {want!r}")
print(f"dockerfiles: {len(glob.glob('services/*/Dockerfile'))} checked")

# XML.
for f in sorted(glob.glob("deployments/**/*.xml", recursive=True)):
    try:
        xml.dom.minidom.parse(f)
    except Exception as e:  # the parser raises several types
        errors.append(f"{f}: {e}")

# Topics: pkg/topics/topics.go is the source of truth.
src = open("pkg/topics/topics.go").read()
consts = dict(re.findall(r'^\s*([A-Z]\w*)\s*=\s*"(sg\.[^"]+)"', src, re.M))
compacted = {consts[i] for i in re.findall(r'\{Name:\s*(\w+)[^}]*Compacted:\s*true', src)}
if not consts:
    errors.append("pkg/topics/topics.go: no topic constants found")
script = open("deployments/kafka/create-topics.sh").read()
readme = open("deployments/README.md").read()
for topic in sorted(consts.values()):
    line = re.search(r'^create\s+' + re.escape(topic) + r'\s.*$', script, re.M)
    if not line:
        errors.append(f"deployments/kafka/create-topics.sh: topic {topic} missing")
    elif (topic in compacted) != ("cleanup.policy=compact" in line.group(0)):
        errors.append(f"deployments/kafka/create-topics.sh: {topic} cleanup policy differs from topics.go")
    if f"`{topic}`" not in readme:
        errors.append(f"deployments/README.md: topic {topic} missing")
print(f"topics: {len(consts)} checked ({len(compacted)} compacted)")

if errors:
    for e in errors:
        print("validate:", e, file=sys.stderr)
    sys.exit(1)
PY

# 3. Kustomize render.
if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize deployments/k8s >/dev/null || fail "deployments/k8s: kubectl kustomize failed"
  echo "deployments/k8s: kustomize renders"
elif command -v kustomize >/dev/null 2>&1; then
  kustomize build deployments/k8s >/dev/null || fail "deployments/k8s: kustomize build failed"
  echo "deployments/k8s: kustomize renders"
else
  echo "deployments/k8s: no kubectl or kustomize, render check skipped"
fi

# 6. Rule files shipped for deployment (deployments/rules/*.yaml and a
#    rules.yaml key in k8s/configmap-rules.yaml), linted with sgctl. None are
#    shipped by default (the pack is built in), so this usually does nothing.
rules_tmp=$(mktemp -d)
trap 'rm -rf "$rules_tmp"' EXIT
"$PY" - "$rules_tmp" <<'PY'
import sys, yaml
doc = yaml.safe_load(open("deployments/k8s/configmap-rules.yaml"))
for key, value in (doc.get("data") or {}).items():
    if key.endswith((".yaml", ".yml")):
        with open(f"{sys.argv[1]}/configmap-{key}", "w") as fh:
            fh.write(value)
PY
rule_files=()
for f in deployments/rules/*.yaml deployments/rules/*.yml "$rules_tmp"/*; do
  [ -f "$f" ] && rule_files+=("$f")
done
if [ ${#rule_files[@]} -gt 0 ]; then
  command -v go >/dev/null 2>&1 || fail "rule files to lint but no go toolchain"
  sgctl="$rules_tmp/sgctl"
  go build -o "$sgctl" ./services/sgctl || fail "build sgctl"
  for f in "${rule_files[@]}"; do
    "$sgctl" rules lint "$f" || fail "$f: rules lint failed"
  done
fi

# Shell syntax of the scripts here.
for s in deployments/*.sh deployments/*/*.sh; do
  [ -e "$s" ] || continue
  bash -n "$s" || fail "$s: syntax error"
done

echo "deployments: all checks passed"
