"""The video re-ID network, its checkpoints and exports, and its runtimes.

Importing this package is cheap: onnxruntime and TensorRT load only when a backend that needs them is
opened (``models.embedder.load_embedder``).
"""
