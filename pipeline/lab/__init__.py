"""Tools around the product, not the product: the demo, threshold calibration and the benchmarks."""
