#!/usr/bin/env bash
# Build the facegate image and smoke-test it, on a machine with no container engine running (podman, chroot
# isolation; see ../shared/notes/containers.md): a Debian base made with mmdebstrap, the image built from the
# Containerfile, run with runc, then /readyz, the health check, and one recognition through the published port.
# Last line: image_mb=… smoke_readyz=200 smoke_recognized=<name>
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-localhost/facegate:smoke}
BASE=${BASE:-localhost/debian-bookworm-py:latest}
PORT=${PORT:-18777}
NAME=facegate-smoke-$$
export DEBIAN_FRONTEND=noninteractive

need=()
for tool in podman buildah mmdebstrap runc curl; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
    apt-get install -y --no-install-recommends podman buildah mmdebstrap runc curl >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends podman buildah mmdebstrap runc curl >/dev/null; }
fi

if ! podman image exists "$BASE"; then
    tmp=$(mktemp -d)
    mmdebstrap --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --include=python3,python3-venv,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
        bookworm "$tmp/base.tar" </dev/null >/dev/null
    podman import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' "$tmp/base.tar" "$BASE" >/dev/null
    rm -rf "$tmp"
fi

secret=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && secret=(--secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt)
started=$(date +%s)
podman build --isolation=chroot --format docker --build-arg "BASE=$BASE" "${secret[@]}" -t "$IMAGE" -f Containerfile . >/dev/null
echo "build_s=$(( $(date +%s) - started ))"
image_mb=$(( $(podman image inspect "$IMAGE" --format '{{.Size}}') / 1000000 ))

R=(--runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
started=$(date +%s.%N)
podman run -d --name "$NAME" "${R[@]}" -p "127.0.0.1:$PORT:8000" "$IMAGE" >/dev/null
trap 'podman rm -f "$NAME" >/dev/null 2>&1 || true' EXIT
readyz=000
for _ in $(seq 1 240); do
    readyz=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" || true)
    [ "$readyz" = 200 ] && break
    sleep 0.5
done
ready_s=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)")
podman healthcheck run "$NAME" >/dev/null 2>&1 && health=healthy || health=unhealthy
echo "health=$health user=$(podman exec "$NAME" id -u) ready_s=$ready_s"

# bound beyond loopback inside the container: keys are required; the first admin key is in the log
key=$(podman logs "$NAME" 2>&1 | grep -o 'fgk_[A-Za-z0-9_-]*' | head -n 1)
auth=(-H "Authorization: Bearer $key")
photos=tests/data/lfw_subset10_krasserm/Tony_Blair
person=$(curl -fs "${auth[@]}" -H 'content-type: application/json' -d '{"name": "Tony Blair"}' \
    "http://127.0.0.1:$PORT/v1/people" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
curl -fs "${auth[@]}" -F "images=@$photos/Tony_Blair_0001.jpg" -F "images=@$photos/Tony_Blair_0002.jpg" \
    "http://127.0.0.1:$PORT/v1/people/$person/faces" >/dev/null
recognized=$(curl -fs "${auth[@]}" -F "image=@$photos/Tony_Blair_0004.jpg" "http://127.0.0.1:$PORT/v1/recognize" \
    | python3 -c 'import json, sys; f = json.load(sys.stdin)["faces"]; print(f[0]["decision"]["name"] if f and f[0]["decision"]["name"] else "unknown")')
podman stop -t 10 "$NAME" >/dev/null
echo "image_mb=$image_mb smoke_readyz=$readyz smoke_recognized=${recognized// /_}"
