"""How the built-in model was made: its procedural family, the training run and the evaluation.

* family.py: the stylised heads as a signed-distance + colour field, with exact renders.
* train.py: `python -m renderer.builtin.training.train` fits the generator to the family (CPU).
* evaluate.py: `python -m renderer.builtin.training.evaluate` scores the shipped model against it.

Only training, the tests and the benchmarks import this package; loading and rendering the built-in
model (renderer.builtin) never do.
"""
