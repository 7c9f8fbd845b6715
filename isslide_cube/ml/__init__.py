"""Deep learning on the patches: datasets (xbatcher), transforms, models, training, inference.

Submodules (import them directly; each imports torch):

* :mod:`isslide_cube.ml.datasets`: ``PatchDataset`` over a patches store, ``EpochSampler``;
* :mod:`isslide_cube.ml.transforms`: ``to_network_input`` and the augmentations;
* :mod:`isslide_cube.ml.models`: ``MODELS``, ``build_model``, ``count_parameters``, ``describe``;
* :mod:`isslide_cube.ml.training`: ``train``, ``load_run``, the presets;
* :mod:`isslide_cube.ml.inference`: ``predict_patches``.

This package's ``__init__`` imports nothing heavy, so ``import isslide_cube.ml``
stays cheap until a submodule is used.
"""
