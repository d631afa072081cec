"""Activation steering: per-agent vectors in one batched pass, fitted from a run's own logs.

* :mod:`steering.vectors`: :class:`~steering.vectors.SteeringVector` (per-layer tensors +
  metadata, safetensors + JSON, checked against the model);
* :mod:`steering.hooks`: :class:`~steering.hooks.Steerer`, the vector bank and forward
  hooks; :mod:`steering.positions` and :mod:`steering.operators` say where and how;
* :mod:`steering.extract` (the maths) and :mod:`steering.fit` (runs and prompt sets):
  EAST, contrastive mean difference and PCA, success vs failure, layer selection;
* :mod:`steering.engine`: steering inside the LLM engine (a group's ``steering:``
  block, :mod:`steering.config`, resolved to what its requests carry by
  :mod:`steering.resolve`);
* :mod:`steering.sweep`, :mod:`steering.bench`, :mod:`steering.cli`: ``normsim steer
  fit|sweep|bench``.

Importing this package loads nothing heavy; torch loads with the modules that need it.
"""
