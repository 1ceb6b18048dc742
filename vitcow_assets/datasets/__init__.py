"""Training datasets from labelled crops: selection, splits, subsets, statistics, exports.

``inputs`` names the columns each module needs from its input tables; ``selection``,
``splits``, ``subsets``, ``stats`` and ``lineage`` are pure (pyarrow/numpy in, data out);
``formats`` renders file contents as bytes; ``chart`` draws the statistics; ``exports``
writes the files. See ``docs/datasets.md``.
"""
