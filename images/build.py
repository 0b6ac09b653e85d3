#!/usr/bin/env python3
"""Builds the project's OCI images without a container daemon, reproducibly.

Writes one OCI image layout per image under OUT (default <target>/images/):
  xds-agent       static agent + the release affinity_filter.wasm, user 65532, entrypoint xds-agent
  demo-backend    static demo backend, user 65532, entrypoint demo-backend
  affinity-filter the filter as a Wasm image, "compat" variant (one tar+gzip layer holding plugin.wasm)
Every layer is a tar written here with sorted entries, uid/gid 0, one fixed mtime (SOURCE_DATE_EPOCH,
default: the commit time of HEAD; time 0 for the filter image, so its digest is a function of the .wasm alone)
and gzip without a name or time, so one commit gives one set of digests.
Unless --no-archives: <name>-<tag>.oci.tar (written here, reproducible) and <name>-<tag>.docker.tar (skopeo).
Prints "<name> <tag> sha256:<manifest digest> <compressed bytes>" for each image.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = "65532:65532"
WASM_IN_IMAGE = "usr/local/share/envoy-affinity/affinity_filter.wasm"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def layer(entries, epoch):
    """entries: {path: ("dir",) | ("file", bytes, mode) | ("link", target)} -> (gzip bytes, diff id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            kind = entries[path]
            info = tarfile.TarInfo(path)
            info.mtime = epoch
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if kind[0] == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind[0] == "link":
                info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, kind[1]
                tar.addfile(info)
            else:
                info.size, info.mode = len(kind[1]), kind[2]
                tar.addfile(info, io.BytesIO(kind[1]))
    tar_bytes = raw.getvalue()
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=packed, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(tar_bytes)
    return packed.getvalue(), "sha256:" + sha256(tar_bytes)


def with_parents(files):
    entries = dict(files)
    for path in list(files):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            entries.setdefault("/".join(parts[:i]), ("dir",))
    return entries


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_layout(out, name, tag, config, layers, manifest_annotations=None):
    """Writes an OCI image layout at out/name with one manifest tagged `tag`; returns (digest, size)."""
    layout = os.path.join(out, name)
    shutil.rmtree(layout, ignore_errors=True)
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)

    def blob(data):
        digest = sha256(data)
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return "sha256:" + digest

    config_bytes = canonical(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": blob(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": blob(data), "size": len(data)} for data in layers],
    }
    if manifest_annotations:
        manifest["annotations"] = manifest_annotations
    manifest_bytes = canonical(manifest)
    digest = blob(manifest_bytes)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                            "size": len(manifest_bytes),
                            "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(layout, "index.json"), "wb") as f:
        f.write(canonical(index))
    with open(os.path.join(layout, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    return digest, len(config_bytes) + len(manifest_bytes) + sum(len(d) for d in layers)


def image_config(created, diff_ids, entrypoint, arch="amd64", os_name="linux", user=USER):
    cfg = {"created": created, "architecture": arch, "os": os_name,
           "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "history": [{"created": created, "created_by": "images/build.py"}]}
    if entrypoint:
        cfg["config"] = {"User": user, "Entrypoint": entrypoint, "WorkingDir": "/",
                         "Env": ["PATH=/usr/local/bin:/bin"]}
    return cfg


def oci_archive(layout, path, epoch):
    """An oci-archive (a tar of the layout, as `ctr import` / `skopeo oci-archive:` read it), reproducibly."""
    entries = {}
    for base, dirs, files in os.walk(layout):
        for d in dirs:
            entries[os.path.relpath(os.path.join(base, d), layout)] = ("dir",)
        for f in files:
            full = os.path.join(base, f)
            entries[os.path.relpath(full, layout)] = ("file", read(full), 0o644)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(entries):
            kind = entries[rel]
            info = tarfile.TarInfo(rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
            if kind[0] == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(kind[1]), kind[2]
                tar.addfile(info, io.BytesIO(kind[1]))
    with open(path, "wb") as f:
        f.write(raw.getvalue())


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    target = os.path.abspath(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"))
    musl = os.path.join(target, "x86_64-unknown-linux-musl", "release")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(target, "images"))
    p.add_argument("--agent", default=os.path.join(musl, "xds-agent"))
    p.add_argument("--backend", default=os.path.join(musl, "demo-backend"))
    p.add_argument("--wasm", default=os.path.join(target, "wasm32-wasip1", "release", "affinity_filter.wasm"))
    p.add_argument("--busybox", default="/bin/busybox", help="a static busybox: the agent image's `cp`")
    p.add_argument("--version", default=None, help="image tag (default: the workspace version)")
    p.add_argument("--no-archives", action="store_true")
    a = p.parse_args()

    version = a.version
    if version is None:
        with open(os.path.join(ROOT, "Cargo.toml")) as f:
            in_ws = False
            for line in f:
                in_ws = line.strip() == "[workspace.package]" or (in_ws and not line.startswith("["))
                if in_ws and line.replace(" ", "").startswith("version="):
                    version = line.split("=", 1)[1].strip().strip('"')
                    break
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        epoch = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%ct"], capture_output=True,
                               text=True, check=True).stdout.strip()
    epoch = int(epoch)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))

    etc = {"etc/passwd": ("file", b"root:x:0:0::/:/sbin/nologin\nnonroot:x:65532:65532::/:/sbin/nologin\n", 0o644),
           "etc/group": ("file", b"root:x:0:\nnonroot:x:65532:\n", 0o644),
           "tmp": ("dir",)}
    os.makedirs(a.out, exist_ok=True)
    results = []

    agent_files = dict(etc)
    agent_files["usr/local/bin/xds-agent"] = ("file", read(a.agent), 0o755)
    agent_files[WASM_IN_IMAGE] = ("file", read(a.wasm), 0o644)
    agent_files["bin/busybox"] = ("file", read(a.busybox), 0o755)
    agent_files["bin/cp"] = ("link", "busybox")
    data, diff = layer(with_parents(agent_files), epoch)
    cfg = image_config(created, [diff], ["/usr/local/bin/xds-agent"])
    results.append(("xds-agent",) + write_layout(a.out, "xds-agent", version, cfg, [data]))

    backend_files = dict(etc)
    backend_files["usr/local/bin/demo-backend"] = ("file", read(a.backend), 0o755)
    data, diff = layer(with_parents(backend_files), epoch)
    cfg = image_config(created, [diff], ["/usr/local/bin/demo-backend"])
    results.append(("demo-backend",) + write_layout(a.out, "demo-backend", version, cfg, [data]))

    # The filter image's digest is pinned by the Istio examples, so it depends on the module only: time 0.
    data, diff = layer({"plugin.wasm": ("file", read(a.wasm), 0o644)}, 0)
    cfg = image_config("1970-01-01T00:00:00Z", [diff], None, arch="wasm", os_name="wasip1")
    results.append(("affinity-filter",) + write_layout(a.out, "affinity-filter", version, cfg, [data],
                                                        {"module.wasm.image/variant": "compat"}))

    for name, digest, size in results:
        ref = f"envoy-affinity/{name}:{version}"
        if not a.no_archives and shutil.which("skopeo"):
            path = os.path.join(a.out, f"{name}-{version}.docker.tar")
            if os.path.exists(path):
                os.remove(path)
            subprocess.run(["skopeo", "copy", "-q", f"oci:{os.path.join(a.out, name)}:{version}",
                            f"docker-archive:{path}:{ref}"], check=True)
        if not a.no_archives:
            oci_archive(os.path.join(a.out, name), os.path.join(a.out, f"{name}-{version}.oci.tar"), epoch)
        print(f"{ref} {digest} {size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
