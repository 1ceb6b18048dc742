"""Evaluation of what the datasets are for: frozen embeddings scored by retrieval and a
linear probe, and imported predictions scored against a dataset's test split.

Pure (numpy and pyarrow in and out, no file I/O):

- ``chance``: the exact chance level of Hit@k for a query's class mix;
- ``neighbours``: exact nearest neighbours (Euclidean, cosine), in bounded blocks;
- ``retrieval``: Hit@k micro and macro, cross-farm and within-farm (split by track);
- ``probe``: the linear probe over a dataset's training subsets (the label-efficiency curve);
- ``scorecard``: accuracy, balanced accuracy, F1, mAP, confusion matrices (scikit-learn);
- ``predictions``: a predictions file's rows matched to the test split, or refused by line;
- ``frames``: the frame-level view of the splits for image classifiers;
- ``provenance``: the lineage columns every result row carries;
- ``settings``: ``RetrievalSettings`` and ``ProbeSettings``;
- ``charts``: the pictures (OpenCV), PNG and Dagster thumbnails.

Reading and writing files: ``inputs`` (a dataset export, an embeddings table), ``store``
(results, the predictions CSV, the frame export) and ``runs`` (each evaluation end to end).

No Dagster, no torch.
"""
