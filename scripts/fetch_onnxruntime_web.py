"""Re-fetch the onnxruntime-web files that vqgen ships for `vqgen export --format web`, checking SHA-256.

python scripts/fetch_onnxruntime_web.py            # re-fetch the pinned version; fail on a changed file
python scripts/fetch_onnxruntime_web.py --update   # after changing ONNXRUNTIME_WEB_VERSION: new sums

Runs `npm pack onnxruntime-web@VERSION` (VERSION: `vqgen.web_export.ONNXRUNTIME_WEB_VERSION`) in a
temporary folder, takes `dist/<file>` for each file named in vqgen/web_page/onnxruntime-web/SHA256SUMS,
and checks each against its listed SHA-256 before copying it into that folder. With `--update` it
writes the new sums instead (review the diff: the files are what every exported page runs).
"""

import argparse
import os
import shutil
import subprocess
import tarfile
import tempfile

from vqgen.runs.code_shards import file_hash
from vqgen.web_export import ONNXRUNTIME_WEB_VERSION, SHIPPED_RUNTIME, runtime_checksums


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the fetched files' sums to SHA256SUMS")
    args = parser.parse_args()
    expected = runtime_checksums()
    with tempfile.TemporaryDirectory() as folder:
        package = f"onnxruntime-web@{ONNXRUNTIME_WEB_VERSION}"
        tarball = subprocess.run(
            ["npm", "pack", package, "--silent"], cwd=folder, check=True, capture_output=True, text=True
        ).stdout.split()[-1]
        with tarfile.open(os.path.join(folder, tarball)) as archive:
            archive.extractall(folder, filter="data")
        fetched = {name: os.path.join(folder, "package", "dist", name) for name in expected}
        sums = {name: file_hash(path) for name, path in fetched.items()}
        changed = [name for name in expected if sums[name] != expected[name]]
        if changed and not args.update:
            raise SystemExit(
                f"{package}: {', '.join(changed)} differ from SHA256SUMS; nothing copied "
                "(pass --update after changing the version on purpose)"
            )
        for name, path in fetched.items():
            shutil.copyfile(path, os.path.join(SHIPPED_RUNTIME, name))
        with open(os.path.join(SHIPPED_RUNTIME, "SHA256SUMS"), "w", encoding="utf-8") as stream:
            stream.writelines(f"{sums[name]}  {name}\n" for name in expected)
    size = sum(os.path.getsize(os.path.join(SHIPPED_RUNTIME, name)) for name in expected)
    print(f"{package}: {len(expected)} files, {size / 2**20:.1f} MiB, SHA-256 as listed in SHA256SUMS")


if __name__ == "__main__":
    main()
