"""The screenshot of docs/serving.md: a run's web page in headless Chromium after pressing "Sample".

python scripts/web_page_screenshot.py --run runs/digits --out docs/web_page.png

Exports the run with `vqgen export --format web` (a temporary folder), opens the page
(vqgen.web_browser), picks "one of each" class, guidance 2 and 16 grids, presses "Sample" and saves a
PNG of the page once the grid is drawn.
"""

import argparse
import os
import tempfile

from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.web_browser import open_page
from vqgen.web_export import export_web


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run folder with a trained VQ-VAE and prior")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--guidance", default="2", help="the page's guidance scale")
    args = parser.parse_args()
    run = RunFolder(args.run)
    vqvae = load_stage_model(run, "vqvae")
    prior = load_stage_model(run, "prior")
    with tempfile.TemporaryDirectory() as folder:
        path = export_web(os.path.join(folder, "web"), vqvae, prior)
        with open_page(path) as page:
            if prior.conditional:
                page.select_option("#class", "each")
            if prior.get_config().get("label_dropout", 0) > 0:
                page.fill("#guidance", args.guidance)
            page.fill("#count", "16")
            page.click("#sample")
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('Sampled')", timeout=600_000
            )
            page.screenshot(path=args.out, full_page=True)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
