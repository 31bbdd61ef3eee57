"""The video re-ID network, its checkpoints and exports, and its runtimes.

Importing this package is cheap: onnxruntime and TensorRT load only when a backend that needs them is
opened (``models.embedder.load_embedder``).
"""

import os

# PyTorch's CPU kernels run in OpenMP teams whose idle threads spin by default. When the cores are shared
# (a detector, decoders and other processes beside the network, as in every crosscam worker), a spinning
# thread holds a core its team mate needs, and each of the hundreds of operations of a forward pass waits a
# scheduler slice: OSNet-x0.25 embeds 6-40x slower than onnxruntime on a busy 2-core machine, 2x with
# passive waiting (docs/models.md, "CPU threads"). OpenMP reads this once, when torch loads, so it is set
# here, before any module of this package imports torch; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
