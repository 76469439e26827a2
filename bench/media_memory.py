"""Peak memory while relaying a large file through the media store (put it in, stream it out).

Run: .venv/bin/python bench/media_memory.py [--size-mb 1024] [--s3] [--json]
See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

TARGET_MB = 100.0  # peak RSS over the idle process's, whatever the file size
WRITE_CHUNK = 8 * 1024 * 1024
MB = 1024 * 1024
BUCKET = "soku-bench-media"


@dataclass
class Run:
    name: str
    peak_rss_mb: float
    seconds: float | None = None
    over_baseline_mb: float | None = None
    passed: bool | None = None


# ---- the measured processes -----------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def relay(store_url: str, path: Path, sha256: str, expected_size: int) -> None:
    """put_file the file, stream every byte back out and check it, then delete it."""
    from soku.media.storage import store_from_settings

    store = store_from_settings(store_url)
    stored = await store.put_file(path, sha256, "mp4", "video/mp4")
    digest, size = hashlib.sha256(), 0
    async for chunk in store.stream(stored.key):
        digest.update(chunk)
        size += len(chunk)
    await store.delete(stored.key)
    if digest.hexdigest() != sha256 or size != expected_size:
        raise SystemExit(f"streamed {size} bytes hashing to {digest.hexdigest()}, not the file")


def child(args: argparse.Namespace) -> None:
    """One measured process: print its peak RSS (and time) as JSON on stdout."""
    import soku.media.probe
    import soku.media.storage  # noqa: F401  # the baseline pays for the same imports

    started = time.perf_counter()
    if args.child != "baseline":
        path = Path(args.file)
        asyncio.run(relay(args.store, path, args.sha256, path.stat().st_size))
    seconds = time.perf_counter() - started
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "seconds": seconds}))


# ---- the driver -----------------------------------------------------------------------------


def generate(path: Path, size_mb: int) -> str:
    """Write `size_mb` MiB of random bytes in chunks; return their SHA-256."""
    digest = hashlib.sha256()
    remaining = size_mb * MB
    with path.open("wb") as file:
        while remaining:
            chunk = os.urandom(min(WRITE_CHUNK, remaining))
            digest.update(chunk)
            file.write(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def measure(name: str, mode: str, store: str = "", file: Path | None = None, sha: str = "") -> Run:
    command = [sys.executable, __file__, "--child", mode, "--store", store, "--sha256", sha]
    command += ["--file", str(file or "")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = None if mode == "baseline" else result["seconds"]
    return Run(name=name, peak_rss_mb=result["peak_rss_mb"], seconds=seconds)


@contextmanager
def moto_s3() -> Iterator[str]:
    """An S3-compatible server on loopback with an empty bucket; yields the store URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_bucket(Bucket=BUCKET)
        yield f"s3://{BUCKET}/media?endpoint={endpoint}&region=us-east-1&key_id=bench&secret=bench"
    finally:
        server.stop()


def run(args: argparse.Namespace, folder: Path) -> list[Run]:
    big = folder / "big.bin"
    started = time.perf_counter()
    sha = generate(big, args.size_mb)
    print(f"wrote {args.size_mb} MiB in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    runs = [measure("baseline (imports only)", "baseline")]
    local = (folder / "store").as_uri()
    runs.append(measure("local folder", "relay", local, big, sha))
    if args.s3:
        with moto_s3() as s3_url:
            runs.append(measure("S3 (moto on loopback)", "relay", s3_url, big, sha))
    baseline = runs[0].peak_rss_mb
    for measured in runs[1:]:
        measured.over_baseline_mb = measured.peak_rss_mb - baseline
        measured.passed = measured.over_baseline_mb < TARGET_MB
    return runs


def report(runs: list[Run], size_mb: int) -> None:
    print(f"relay of a {size_mb} MiB file: put_file, then stream out every chunk and hash it")
    print(f"{'process':<26}{'peak RSS MB':>12}{'over base MB':>14}{'seconds':>9}  result")
    for r in runs:
        over = "-" if r.over_baseline_mb is None else f"{r.over_baseline_mb:.1f}"
        seconds = "-" if r.seconds is None else f"{r.seconds:.1f}"
        verdict = "" if r.passed is None else ("PASS" if r.passed else "FAIL")
        print(f"{r.name:<26}{r.peak_rss_mb:>12.1f}{over:>14}{seconds:>9}  {verdict}")
    print(f"target: peak RSS over the baseline < {TARGET_MB:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (1024)")
    parser.add_argument("--s3", action="store_true", help="also relay through a local moto S3")
    parser.add_argument("--json", action="store_true", help="print a JSON summary only")
    parser.add_argument("--tmp-dir", help="where the file is written (default: system temp)")
    parser.add_argument("--child", choices=["baseline", "relay"], help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--sha256", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    folder = Path(
        tempfile.mkdtemp(prefix=f"soku-media-bench-{uuid.uuid4().hex[:6]}-", dir=args.tmp_dir)
    )
    try:
        runs = run(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(
            json.dumps(
                {"size_mb": args.size_mb, "target_mb": TARGET_MB, "runs": [asdict(r) for r in runs]}
            )
        )
    else:
        report(runs, args.size_mb)
    sys.exit(0 if all(r.passed is not False for r in runs) else 1)


if __name__ == "__main__":
    main()
