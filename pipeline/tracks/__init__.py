"""Per-frame tracks: the MOTChallenge file layout (``mot``) and the multi-camera scores of a prediction against
ground truth (``metrics``). Pure file I/O and NumPy; no Redis. The layout and the conventions are documented in
docs/evaluation.md."""
