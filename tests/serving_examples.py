"""The serving commands and request bodies of docs/serving.md, as the exact text the page shows.

`tests/test_serving_examples.py` runs every command verbatim (`bash -c`) and feeds every REST body's
`inputs` to the loaded signature, against the SavedModels that `vqgen run` writes:

    vqgen run --run runs/digits                                # class-conditional, label dropout
    vqgen run --run runs/digits-unconditional --unconditional

The commands are run from a folder holding those two runs, so the paths in them are the docs' paths.
A command that writes `--outdir out/NAME` leaves `out/NAME/images.npy` and `out/NAME/codes.npy`.

Example:
>>> CONDITIONAL_COMMANDS[0]
'saved_model_cli show --dir runs/digits/saved_model --all'
"""

# The run folders the commands name (relative to the folder they are run from).
CONDITIONAL_RUN = "runs/digits"
UNCONDITIONAL_RUN = "runs/digits-unconditional"

# A class-conditional prior trained with label dropout, as `vqgen run` makes by default: `sample`
# takes the first release's inputs (labels: one per sample), `sample_guided` adds the guidance scale.
CONDITIONAL_COMMANDS = [
    "saved_model_cli show --dir runs/digits/saved_model --all",
    "saved_model_cli run --dir runs/digits/saved_model --tag_set serve --signature_def sample \\\n"
    "    --input_exprs 'num_samples=4;temperature=1.0;seed=7;labels=[0,1,2,3]' --outdir out/sample",
    "saved_model_cli run --dir runs/digits/saved_model --tag_set serve --signature_def sample_guided \\\n"
    "    --input_exprs 'num_samples=4;temperature=1.0;seed=7;labels=[0,1,2,3];guidance=3.0' \\\n"
    "    --outdir out/guided",
    "saved_model_cli run --dir runs/digits/saved_model --tag_set serve --signature_def decode \\\n"
    "    --inputs codes=out/sample/codes.npy --outdir out/decoded",
]

# An unconditional prior: `sample` takes num_samples, temperature and seed, nothing else.
UNCONDITIONAL_COMMANDS = [
    "saved_model_cli run --dir runs/digits-unconditional/saved_model --tag_set serve \\\n"
    "    --signature_def sample --input_exprs 'num_samples=4;temperature=1.0;seed=7' \\\n"
    "    --outdir out/unconditional",
]

# Bodies of TensorFlow Serving REST requests (`POST /v1/models/vqgen:predict`), as JSON text.
CONDITIONAL_REST_BODIES = [
    '{"signature_name": "sample", "inputs": {"num_samples": 4, "temperature": 1.0, "seed": 7, '
    '"labels": [0, 1, 2, 3]}}',
    '{"signature_name": "sample_guided", "inputs": {"num_samples": 4, "temperature": 1.0, "seed": 7, '
    '"labels": [0, 1, 2, 3], "guidance": 3.0}}',
]
UNCONDITIONAL_REST_BODIES = [
    '{"signature_name": "sample", "inputs": {"num_samples": 4, "temperature": 1.0, "seed": 7}}',
]
