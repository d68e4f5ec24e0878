"""The workflow over run folders: the only part of vqgen that joins stage 1 and the priors.

The command line (`vqgen.cli`) calls one public function of these modules per command.

run_folder.py      names and reads the files of a run folder
atomic_file.py     every file is written aside and renamed into place
run_lock.py        one writing process per run folder (`RunLock`)
write_error.py     a write the storage refused, as one line (`WriteError`)
model_files.py     `.keras` files saved atomically, loaded with one-line errors
callbacks.py       metrics file, checkpoints, TensorBoard scalars, backup, non-finite guard
stage_trainer.py   the one resumable trainer both stages use
precision.py       the mixed-precision policy of a stage ("auto": bfloat16 where the CPU computes it)
strategies.py      `tf.distribute` strategies by name
epoch_pictures.py  the pictures TensorBoard shows after each epoch
code_shards.py     the dataset's codes, cached in shards in the run folder
train_vqvae.py     stage 1 of a run (`vqgen train`)
train_prior.py     stage 2 of a run: codes the dataset, trains the prior (`vqgen train-prior`)
sample_images.py   sample a run's prior and decode, or inpaint an image (`vqgen sample`)
evaluate_run.py    reconstruction, codebook, likelihood and sample figures (`vqgen evaluate`)
export_run.py      export a run as a SavedModel (`vqgen export`)
portable_run.py    export a run for LiteRT or ONNX (`vqgen export --format litert|onnx`)
run_job.py         the whole job: both stages, samples and an export (`vqgen run`)
image_grid.py      PNG grids of images
"""
