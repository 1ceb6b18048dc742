"""What the tests (``vitcow_assets_tests``) and the benchmarks (``benchmarks``) both stand on,
so that neither imports the other: synthetic footage with exact ground truth, scoring
against that truth, test doubles, and real local servers.

- Synthetic inputs: ``synthetic`` (moving boxes over a textured background, ``write_video``),
  ``synthetic_tracks`` (animals that cross on clip boundaries, and ``ColourKeySegmenter``, a
  perfect detector with ids shuffled per clip), ``synthetic_scenes`` (school, herd and crowd
  scenes with noise, drift and lossy H.264; ``scene_case``), ``synthetic_catalog`` (crop
  videos of known content and their catalog), ``videomae_inputs`` (crop videos of seeded
  content, tiny random VideoMAE checkpoints of one set of weights in every layout).
- Scoring: ``idscore`` (IDF1 with TrackEval), ``trackscore`` (ids per clip, tracks per video,
  recall, jumps, crop switches), ``tracking_runs`` (a segmenter run as ``object_masks`` runs
  it, scored).
- Doubles: ``fakes`` (``FakeSegmenter``, the one segmenter test double), ``sam3_tiny`` (SAM3's
  real classes at test size, random weights), ``sam31_tiny`` (SAM 3.1's, where the installed
  sam3 has it), ``sam3_hf_tiny`` (transformers' SAM3 at the same sizes).
- Servers and processes: ``servers`` (sshd, S3, a cutting proxy, PostgreSQL, Redis, the
  labelling server), ``deploy_helpers`` (daemon subprocesses, step intervals).

May import ``vitcow_assets`` (public names only); must not import ``vitcow_assets_tests``,
``benchmarks`` or pytest. ``vitcow_assets`` never imports it, and the wheel does not ship it
(``docs/architecture.md``).
"""
