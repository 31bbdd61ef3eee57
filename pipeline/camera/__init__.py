"""One camera's process: source, detector + tracker, tracklet buffer, and the worker loop that runs them."""
