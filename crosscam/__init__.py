"""crosscam: real-time multi-camera person re-identification.

The code lives in four packages: ``models`` (the re-ID network and its runtimes), ``pipeline`` (the running
system: cameras, bus, matcher, store, API), ``trainer`` (training and evaluation) and ``synth`` (synthetic
people and scenes). This package holds what all of them share and nothing heavy: the base errors.
"""
