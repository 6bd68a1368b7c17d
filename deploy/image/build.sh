#!/usr/bin/env bash
# Builds cmg's container image without a container engine, as an OCI image layout
# directory (https://github.com/opencontainers/image-spec, "Image Layout"):
#
#   deploy/image/build.sh [BINARY] [OUT]      # default: target/release/cmg, target/image
#
# One layer on a minimal base: the binary (debug info stripped) at /usr/local/bin/cmg,
# the shared libraries it links (as `ldd` finds them on this machine), the system CA
# bundle (the gateway's object storage client trusts it), /etc/passwd and /etc/group with
# user `cmg` (65532), an empty /tmp. No shell, no package manager. The image runs as
# 65532:65532 with `cmg` as its entrypoint: `cmg gateway --config /etc/cmg/gateway.toml`.
#
# Reproducible: the same binary gives the same bytes. Every timestamp is
# SOURCE_DATE_EPOCH (default: the last commit's time), the tar is sorted, owned by 0:0,
# without atime/ctime, gzip is run with -n. Load it with `skopeo copy oci:target/image
# docker-daemon:cmg:latest`, `podman load`, or push it with `skopeo copy` / `crane push`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/target/release/cmg}
OUT=${2:-$ROOT/target/image}
[ -x "$BIN" ] || { echo "build.sh: no binary $BIN (cargo build --release)" >&2; exit 1; }
for t in jq strip ldd tar gzip sha256sum; do
  command -v "$t" >/dev/null || { echo "build.sh: $t is missing" >&2; exit 1; }
done
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}
VERSION=$("$BIN" --version | awk '{print $2}')
case $(uname -m) in x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; *) ARCH=$(uname -m) ;; esac
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fs=$work/rootfs
mkdir -p "$fs/usr/local/bin" "$fs/etc/ssl/certs" "$fs/tmp" "$fs/var/lib/cmg" "$fs/etc/cmg"
strip --strip-debug -o "$fs/usr/local/bin/cmg" "$BIN"
# The libraries and the loader, each at the path the binary looks it up by.
for lib in $(ldd "$BIN" | awk '/=>/ {print $3} !/=>/ && $1 ~ /^\// {print $1}'); do
  mkdir -p "$fs$(dirname "$lib")"
  cp -L "$lib" "$fs$lib"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/"
fi
printf 'root:x:0:0:root:/root:/sbin/nologin\ncmg:x:65532:65532:cmg:/var/lib/cmg:/sbin/nologin\n' >"$fs/etc/passwd"
printf 'root:x:0:\ncmg:x:65532:\n' >"$fs/etc/group"
chmod 1777 "$fs/tmp"
chmod 0755 "$fs/usr/local/bin/cmg"
find "$fs" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$fs" -cf "$work/layer.tar" .
gzip -n -6 -c "$work/layer.tar" >"$work/layer.tar.gz"

rm -rf "$OUT"
mkdir -p "$OUT/blobs/sha256"
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
blob() { local d; d=$(sha "$1"); cp "$1" "$OUT/blobs/sha256/$d"; echo "$d"; }

diff_id=$(sha "$work/layer.tar")
layer=$(blob "$work/layer.tar.gz")
jq -cnS --arg created "$CREATED" --arg arch "$ARCH" --arg diff "sha256:$diff_id" --arg v "$VERSION" '{
  architecture: $arch, os: "linux", created: $created,
  config: {User: "65532:65532", Entrypoint: ["/usr/local/bin/cmg"], WorkingDir: "/var/lib/cmg",
           Env: ["PATH=/usr/local/bin:/usr/bin:/bin"],
           ExposedPorts: {"443/tcp": {}, "10140/tcp": {}, "9100/tcp": {}},
           Labels: {"org.opencontainers.image.title": "cmg", "org.opencontainers.image.version": $v}},
  rootfs: {type: "layers", diff_ids: [$diff]},
  history: [{created: $created, created_by: "deploy/image/build.sh"}]}' | tr -d '\n' >"$work/config.json"
config=$(blob "$work/config.json")
jq -cnS --arg c "sha256:$config" --argjson cs "$(size "$work/config.json")" \
  --arg l "sha256:$layer" --argjson ls "$(size "$work/layer.tar.gz")" --arg created "$CREATED" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}],
  annotations: {"org.opencontainers.image.created": $created}}' | tr -d '\n' >"$work/manifest.json"
manifest=$(blob "$work/manifest.json")
jq -cnS --arg m "sha256:$manifest" --argjson ms "$(size "$work/manifest.json")" --arg v "$VERSION" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
               annotations: {"org.opencontainers.image.ref.name": $v}}]}' | tr -d '\n' >"$OUT/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$OUT/oci-layout"
echo "image sha256:$manifest ($VERSION, $ARCH, layer $(size "$work/layer.tar.gz") bytes) in $OUT"
