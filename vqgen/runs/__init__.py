"""The workflow over run folders: the only part of vqgen that joins stage 1 and the priors.

run_folder.py      names and reads the files of a run folder
atomic_file.py     every file is written aside and renamed into place
run_lock.py        one writing process per run folder (`RunLock`)
write_error.py     a write the storage refused, as one line (`WriteError`)
model_files.py     `.keras` files saved atomically, loaded with one-line errors
callbacks.py       metrics file, checkpoints, TensorBoard scalars, backup, non-finite guard
stage_trainer.py   the one resumable trainer both stages use
train_vqvae.py     stage 1 of a run
train_prior.py     stage 2 of a run (codes the dataset, trains the prior)
sample_images.py   sample a run's prior and decode
export_run.py      export a run as a SavedModel
image_grid.py      PNG grids of images
strategies.py      `tf.distribute` strategies by name
"""
